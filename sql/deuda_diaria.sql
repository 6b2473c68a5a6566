-- aux.deuda_cuenta_dia and aux.snapshot_dia — debt per account and snapshot day.
--
-- Grain:       deuda_cuenta_dia: (snapshot day, account); snapshot_dia: snapshot day.
-- Inputs:      raw.trandeuda (change_date: fecha_proceso), through aux.trandeuda_vigente.
-- Rules:       within one snapshot day a document counts once: its latest delivery (a second
--              file of the same day re-delivers or corrects documents; a document missing from
--              it keeps its earlier delivery). aux.trandeuda_vigente (migrations/V4) owns that
--              rule. An account's debt on a snapshot day is the SUM of its documents' amounts
--              (W-28: never the largest single document); a document whose latest amount is
--              <= 0 owes nothing and is not counted; an account without a positive document has
--              no row (it is not in that snapshot).
--              A snapshot day is a day with a delivered trandeuda row (snapshot_dia, possibly
--              with no account in debt).
-- Incremental: exactly the snapshot days trandeuda wrote (or everything on a full refresh) are
--              recomputed and replaced; those days are reported downstream.

DELETE FROM aux.deuda_cuenta_dia
 WHERE pg_temp.full_refresh()
    OR fecha = ANY (pg_temp.changed_days());

INSERT INTO aux.deuda_cuenta_dia (fecha, cuenta, deuda, documentos)
SELECT v.fecha_proceso, aux.id_canonico(v.cod_cuenta), sum(v.monto_exigible), count(*)
  FROM aux.trandeuda_vigente v
 WHERE (pg_temp.full_refresh()
        OR v.fecha_proceso = ANY (pg_temp.changed_days()))
   AND v.monto_exigible > 0
   AND aux.id_canonico(v.cod_cuenta) IS NOT NULL
 GROUP BY 1, 2;

DELETE FROM aux.snapshot_dia
 WHERE pg_temp.full_refresh()
    OR fecha = ANY (pg_temp.changed_days());

INSERT INTO aux.snapshot_dia (fecha, cuentas, deuda)
SELECT d.fecha, count(c.cuenta), coalesce(sum(c.deuda), 0)
  FROM (SELECT DISTINCT t.fecha_proceso AS fecha
          FROM raw.trandeuda t
         WHERE pg_temp.full_refresh()
            OR t.fecha_proceso = ANY (pg_temp.changed_days())) d
  LEFT JOIN aux.deuda_cuenta_dia c ON c.fecha = d.fecha
 GROUP BY d.fecha;
