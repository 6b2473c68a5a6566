-- Which business days each committed load or build changed, so that aux/mart builds recompute
-- only those days. A NULL day means "anything may have changed" (a table without a change_date
-- column, or a full rebuild): dependants then rebuild everything.
CREATE TABLE IF NOT EXISTS pulso_flow.changes (
    id           bigserial PRIMARY KEY,
    node         text NOT NULL,
    run_id       text NOT NULL,
    day          date,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS changes_node_id ON pulso_flow.changes (node, id);

-- How far each build has consumed pulso_flow.changes.
CREATE TABLE IF NOT EXISTS pulso_flow.build_cursors (
    node            text PRIMARY KEY,
    last_change_id  bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
