-- One vocabulary for node_runs.mode, shared by table loads and SQL builds: 'incremental' or
-- 'full_refresh'. Builds used to write 'full' for a full rebuild.
UPDATE pulso_flow.node_runs SET mode = 'full_refresh' WHERE mode = 'full';
ALTER TABLE pulso_flow.node_runs
    ADD CONSTRAINT node_runs_mode CHECK (mode IN ('incremental', 'full_refresh'));
