-- A backfill that starts on an empty target fills it with its indexes dropped and builds them
-- once at the end (sinks/src/bulk.rs): one row per target in that state, written in the same
-- transaction as the DROP and deleted in the same transaction as the rebuild. So the indexes to
-- build survive a killed backfill, and whoever loads the table next (a rerun of the backfill, or
-- a normal run) builds them before anything else.
CREATE TABLE IF NOT EXISTS pulso_flow.backfill_bulk (
    target      text PRIMARY KEY,
    node        text NOT NULL,
    run_id      text NOT NULL,
    -- [{"drop": "...", "create": "..."}]: the catalog's own definitions, in build order.
    indexes     jsonb NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now()
);
