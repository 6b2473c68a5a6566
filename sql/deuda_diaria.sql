-- aux.deuda_cuenta_dia and aux.snapshot_dia — debt per account and snapshot day.
--
-- Grain:       deuda_cuenta_dia: (snapshot day, account); snapshot_dia: snapshot day.
-- Inputs:      raw.trandeuda (change_date: fecha_proceso).
-- Rule:        an account's debt on a snapshot day is the SUM of its documents in that day's
--              files (W-28: never the largest single document). Amounts are > 0 by the source
--              filter; an account absent from a snapshot has no row.
-- Incremental: exactly the snapshot days trandeuda wrote (or everything on a full refresh) are
--              recomputed and replaced; those days are reported downstream.

DELETE FROM aux.deuda_cuenta_dia
 WHERE current_setting('pulso_flow.full_refresh')::boolean
    OR fecha IN (SELECT day FROM pulso_flow_changed_days);

INSERT INTO aux.deuda_cuenta_dia (fecha, cuenta, deuda, documentos)
SELECT t.fecha_proceso, aux.id_canonico(t.cod_cuenta), sum(t.monto_exigible), count(DISTINCT t.nro_documento)
  FROM raw.trandeuda t
 WHERE (current_setting('pulso_flow.full_refresh')::boolean
        OR t.fecha_proceso IN (SELECT day FROM pulso_flow_changed_days))
   AND aux.id_canonico(t.cod_cuenta) IS NOT NULL
 GROUP BY 1, 2;

DELETE FROM aux.snapshot_dia
 WHERE current_setting('pulso_flow.full_refresh')::boolean
    OR fecha IN (SELECT day FROM pulso_flow_changed_days);

INSERT INTO aux.snapshot_dia (fecha, cuentas, deuda)
SELECT fecha, count(*), sum(deuda)
  FROM aux.deuda_cuenta_dia
 WHERE current_setting('pulso_flow.full_refresh')::boolean
    OR fecha IN (SELECT day FROM pulso_flow_changed_days)
 GROUP BY fecha;
