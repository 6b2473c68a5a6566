-- Issue 15 item 2: a lookback's re-read of an unchanged day costs its COPY, not its merge.
--
-- Every incremental load stores, per whole day of its incremental column that it staged, the
-- count and a hash of those rows as the COPY encoded them (sinks/src/fingerprints.rs). The next
-- load compares the days it stages with these; a day whose rows are exactly the ones loaded last
-- time is left out of the merge. The rows are valid only while the load that wrote them is the
-- node's last committed writer (pulso_flow.watermarks.last_run_id, last_status 'ok'): a backfill
-- chunk, a reconcile repair or `watermarks set/reset` makes them stale at once.
CREATE TABLE IF NOT EXISTS pulso_flow.day_fingerprints (
    node        text NOT NULL,
    -- The incremental column whose day this is, and the load that staged the rows.
    inc_column  text NOT NULL,
    run_id      text NOT NULL,
    day         date NOT NULL,
    rows        bigint NOT NULL,
    -- Two independent 64-bit sums of per-row hashes (wrapping, as signed bigint).
    hash_a      bigint NOT NULL,
    hash_b      bigint NOT NULL,
    PRIMARY KEY (node, day)
);
