-- The chunk ledger of `pulso-flow backfill`: one row per chunk (a half-open window lo <= column
-- < hi of one table). A chunk's row becomes 'committed' in the same transaction as its rows and
-- the watermark, so 'committed' exists if and only if the chunk's data does. Rows are registered
-- 'pending' when a backfill plans them; 'running' and 'failed' are written on their own
-- connection (a chunk killed in flight stays 'running' until a rerun loads it).
CREATE TABLE IF NOT EXISTS pulso_flow.backfill_chunks (
    node          text NOT NULL,
    target        text NOT NULL,
    -- The column the chunks split (the incremental column, or the change_date) and its type.
    chunk_column  text NOT NULL,
    chunk_type    text NOT NULL CHECK (chunk_type IN ('date', 'datetime', 'timestamp')),
    -- Canonical IncValue text of the bounds: lo inclusive, hi exclusive.
    lo            text NOT NULL,
    hi            text NOT NULL,
    -- The backfill plan the chunk last belonged to ('<from>..<to>/<chunk>') and its position in it.
    plan          text NOT NULL,
    seq           integer NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'running', 'committed', 'failed')),
    rows_read     bigint NOT NULL DEFAULT 0,
    rows_loaded   bigint NOT NULL DEFAULT 0,
    inserted      bigint NOT NULL DEFAULT 0,
    updated       bigint NOT NULL DEFAULT 0,
    bytes         bigint NOT NULL DEFAULT 0,
    -- Greatest incremental value the chunk loaded (NULL: none, or no incremental column).
    max_loaded    text,
    attempts      integer NOT NULL DEFAULT 0,
    -- The backfill's run (pulso_flow.runs) and the chunk's own load run (node_runs, changes).
    run_id        text,
    load_run_id   text,
    error         text,
    started_at    timestamptz,
    finished_at   timestamptz,
    duration_ms   bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node, lo, hi)
);
CREATE INDEX IF NOT EXISTS backfill_chunks_plan ON pulso_flow.backfill_chunks (node, plan, seq);
