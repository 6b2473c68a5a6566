-- pulso-flow's own state: watermarks, the run ledger and data versions.
-- Everything lives in the schema pulso_flow so that it never collides with raw/aux/mart data.
CREATE SCHEMA IF NOT EXISTS pulso_flow;

-- One row per pipeline node (table or SQL build). `value` is the greatest incremental value actually
-- loaded (canonical ISO text of `inc_type`), never the wall clock. `data_version` grows by one on every
-- commit that changed the target, so API caches keyed by it can never serve an answer from before it.
CREATE TABLE IF NOT EXISTS pulso_flow.watermarks (
    node          text PRIMARY KEY,
    target        text NOT NULL,
    inc_column    text,
    inc_type      text CHECK (inc_type IN ('date', 'datetime', 'timestamp')),
    value         text,
    last_run_id   text,
    last_status   text NOT NULL,
    data_version  bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per `pulso-flow run` invocation.
CREATE TABLE IF NOT EXISTS pulso_flow.runs (
    run_id       text PRIMARY KEY,
    pipeline     text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    status       text NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'cancelled')),
    args         jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- One row per node and run. A successful load writes its row in the load's own transaction, so a row
-- with status 'ok' exists if and only if the data it describes was committed.
CREATE TABLE IF NOT EXISTS pulso_flow.node_runs (
    run_id           text NOT NULL,
    node             text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('table', 'sql')),
    target           text,
    mode             text,
    window_lower     text,
    window_upper     text,
    watermark_before text,
    watermark_after  text,
    rows_read        bigint NOT NULL DEFAULT 0,
    rows_staged      bigint NOT NULL DEFAULT 0,
    inserted         bigint NOT NULL DEFAULT 0,
    updated          bigint NOT NULL DEFAULT 0,
    unchanged        bigint NOT NULL DEFAULT 0,
    deleted          bigint NOT NULL DEFAULT 0,
    bytes_billed     bigint,
    started_at       timestamptz NOT NULL,
    duration_ms      bigint NOT NULL,
    status           text NOT NULL CHECK (status IN ('ok', 'failed', 'skipped', 'cancelled')),
    error            text,
    details          jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (run_id, node)
);
CREATE INDEX IF NOT EXISTS node_runs_node_started ON pulso_flow.node_runs (node, started_at DESC);
