-- Issue 15: a scheduled run costs what changed, not the history.
--
-- Builds see their inputs as constants the planner folds (sinks/src/build.rs:
-- pg_temp.first_changed_day() and friends), so each predicate on a day is an index range.
-- pago.sql re-examines, besides the payments dated on or after the first changed day, those
-- whose account came from a snapshot after their date that is on or after it: this partial
-- index serves that arm of its OR (a bitmap OR with pago_fecha and pago_no_atribuido) instead
-- of a scan of every payment.
CREATE INDEX IF NOT EXISTS pago_snapshot_posterior ON aux.pago (fecha_snapshot)
    WHERE fecha_snapshot > fecha_pago;

-- Every load of an incremental table reconciles the rows it read with the target's rows inside
-- the same window of the incremental column (sinks/src/reconcile.rs). Without an index on that
-- column the target side is a scan of the whole history on every scheduled run. Rows arrive in
-- the order of that column (a load appends its window; a correction's new version is appended
-- too), so a BRIN index finds the window's block ranges at almost no write cost.
CREATE INDEX IF NOT EXISTS trandeuda_creado_el ON raw.trandeuda USING brin (creado_el);
CREATE INDEX IF NOT EXISTS pagos_creado_el ON raw.pagos USING brin (creado_el);
CREATE INDEX IF NOT EXISTS asignaciones_creado_el ON raw.asignaciones USING brin (creado_el);
CREATE INDEX IF NOT EXISTS voicebot_gestiones_date ON raw.voicebot_gestiones USING brin (date);
CREATE INDEX IF NOT EXISTS mibotair_gestiones_date ON raw.mibotair_gestiones USING brin (date);
