-- aux.pago — payments deduplicated across re-deliveries and attributed to a campaign.
--
-- Grain:       one row per payment: (nro_documento, fecha_pago, monto_cancelado, ocurrencia).
-- Inputs:      raw.pagos (change_date: fecha_pago), raw.trandeuda (change_date: fecha_proceso,
--              through aux.trandeuda_vigente), aux.cuenta_campana, aux.campana, aux.campana_dia.
-- Rules:       [pulso-flow] a payment is (document, date, amount) plus its occurrence within its
--              delivery file (raw.pagos.ocurrencia: two identical payments in one file are
--              occurrences 1 and 2, two payments). The same occurrence delivered again in
--              another file, the same day or later, is the same payment (entregas = files that
--              delivered it; first/last file and load time kept, W-27; cod_sistema from the
--              latest delivery). Limitation: the source has no payment id, so a later file that
--              changes a payment's amount delivers another payment.
--              Document → account: the account of the document's delivery that counts
--              (aux.trandeuda_vigente: latest delivery of the day) in the latest snapshot on or
--              before the payment date; if the document only appears later, the first snapshot
--              after it (a document belongs to one account). No snapshot has the document:
--              not attributed, DOCUMENTO_SIN_CUENTA.
--              Account → campaign: among the campaigns whose universe has the account and whose
--              days contain the payment date (inclusive), the one opened last, then the smallest
--              archivo (deterministic). None: not attributed, FUERA_DE_VENTANA (the account is
--              assigned, but not on that date) or CUENTA_NO_ASIGNADA.
-- Incremental: a change on day m can move the attribution of payments dated m or later (new
--              snapshot, campaign days, payments), so payments dated >= min(changed days) are
--              recomputed, plus the payments not attributed whose reason no longer holds (their
--              document is now in a snapshot; their account is now in a campaign whose days hold
--              the payment date; their account's being assigned anywhere changed), plus payments
--              whose account came from a snapshot after their date that is >= m (an earlier
--              snapshot may have arrived). The result is diffed with the stored rows; only
--              changed payments are rewritten and only their payment dates reported.
--              Why the unattributed test is enough for a payment dated before m: its deliveries
--              (change day = fecha_pago) and its snapshot (on or before its date) did not change,
--              so only what the three tests look at can make it attributed or change its reason.
--              They are index probes; recomputing every unattributed payment instead made this
--              build grow with history (docs/benchmarks.md, "Steady state"). The campaign test
--              is also covered by m today (aux.cuenta_campana reports every day of a campaign
--              whose universe changed); it is kept so that this rule does not rest on that.

-- Stored payments in scope (see "Incremental" above; m = pg_temp.first_changed_day(), a
-- constant the planner folds, so each arm of the OR is an index range: pago_fecha,
-- pago_no_atribuido, pago_snapshot_posterior).
CREATE TEMP TABLE _previo ON COMMIT DROP AS
SELECT a.* FROM aux.pago a
 WHERE pg_temp.full_refresh()
    OR a.fecha_pago >= pg_temp.first_changed_day()
    OR (a.archivo IS NULL AND CASE
            WHEN a.cuenta IS NULL THEN
                 EXISTS (SELECT 1 FROM raw.trandeuda t WHERE t.nro_documento = a.nro_documento)
            ELSE EXISTS (SELECT 1 FROM aux.cuenta_campana cc
                           JOIN aux.campana_dia d ON d.archivo = cc.archivo AND d.fecha = a.fecha_pago
                          WHERE cc.cuenta = a.cuenta)
              OR (a.motivo_no_atribuido = 'CUENTA_NO_ASIGNADA')
               = EXISTS (SELECT 1 FROM aux.cuenta_campana x WHERE x.cuenta = a.cuenta)
        END)
    OR (a.fecha_snapshot > a.fecha_pago AND a.fecha_snapshot >= pg_temp.first_changed_day());

-- Payment identities in scope: the delivered ones dated >= m, and the stored ones above.
CREATE TEMP TABLE _ids ON COMMIT DROP AS
SELECT p.nro_documento, p.fecha_pago, p.monto_cancelado, p.ocurrencia
  FROM raw.pagos p
 WHERE pg_temp.full_refresh() OR p.fecha_pago >= pg_temp.first_changed_day()
UNION
SELECT nro_documento, fecha_pago, monto_cancelado, ocurrencia FROM _previo;

CREATE TEMP TABLE _pago (LIKE aux.pago) ON COMMIT DROP;
INSERT INTO _pago (nro_documento, fecha_pago, monto_cancelado, ocurrencia, entregas, primer_archivo,
                   ultimo_archivo, primera_carga, ultima_carga, cod_sistema, cuenta, fecha_snapshot,
                   archivo, cod_luna, motivo_no_atribuido)
WITH entregas AS (
    SELECT p.nro_documento, p.fecha_pago, p.monto_cancelado, p.ocurrencia,
           count(*)::int AS entregas,
           (array_agg(p.archivo ORDER BY p.creado_el, p.archivo))[1] AS primer_archivo,
           (array_agg(p.archivo ORDER BY p.creado_el DESC NULLS LAST, p.archivo DESC))[1] AS ultimo_archivo,
           min(p.creado_el) AS primera_carga,
           max(p.creado_el) AS ultima_carga,
           (array_agg(p.cod_sistema ORDER BY p.creado_el DESC NULLS LAST, p.archivo DESC))[1] AS cod_sistema
      FROM raw.pagos p
      JOIN _ids USING (nro_documento, fecha_pago, monto_cancelado, ocurrencia)
     GROUP BY 1, 2, 3, 4
), con_cuenta AS (
    SELECT e.*,
           aux.id_canonico(coalesce(antes.cod_cuenta, despues.cod_cuenta)) AS cta,
           coalesce(antes.fecha_proceso, despues.fecha_proceso) AS snap
      FROM entregas e
      -- The snapshot days first (one index probe each, trandeuda_documento), then the delivery
      -- that counts on that day (both DISTINCT ON columns fixed: a few rows; LIMIT 1, the one
      -- row there is, keeps the subquery from being flattened into a join with the whole view).
      -- Sorting every snapshot of the document instead would cost the history's length per
      -- payment.
      LEFT JOIN LATERAL (
          SELECT max(t.fecha_proceso) AS dia FROM raw.trandeuda t
           WHERE t.nro_documento = e.nro_documento AND t.fecha_proceso <= e.fecha_pago) d_antes ON true
      LEFT JOIN LATERAL (
          SELECT v.cod_cuenta, v.fecha_proceso FROM aux.trandeuda_vigente v
           WHERE v.nro_documento = e.nro_documento AND v.fecha_proceso = d_antes.dia LIMIT 1) antes ON true
      LEFT JOIN LATERAL (
          SELECT min(t.fecha_proceso) AS dia FROM raw.trandeuda t
           WHERE d_antes.dia IS NULL
             AND t.nro_documento = e.nro_documento AND t.fecha_proceso > e.fecha_pago) d_despues ON true
      LEFT JOIN LATERAL (
          SELECT v.cod_cuenta, v.fecha_proceso FROM aux.trandeuda_vigente v
           WHERE v.nro_documento = e.nro_documento AND v.fecha_proceso = d_despues.dia LIMIT 1) despues ON true
)
SELECT c.nro_documento, c.fecha_pago, c.monto_cancelado, c.ocurrencia, c.entregas, c.primer_archivo,
       c.ultimo_archivo, c.primera_carga, c.ultima_carga, c.cod_sistema, c.cta, c.snap,
       camp.archivo, camp.cod_luna,
       CASE
           WHEN c.cta IS NULL THEN 'DOCUMENTO_SIN_CUENTA'
           WHEN camp.archivo IS NOT NULL THEN NULL
           WHEN EXISTS (SELECT 1 FROM aux.cuenta_campana x WHERE x.cuenta = c.cta) THEN 'FUERA_DE_VENTANA'
           ELSE 'CUENTA_NO_ASIGNADA'
       END
  FROM con_cuenta c
  LEFT JOIN LATERAL (
      SELECT cc.archivo, cc.cod_luna
        FROM aux.cuenta_campana cc
        JOIN aux.campana_dia d ON d.archivo = cc.archivo AND d.fecha = c.fecha_pago
        JOIN aux.campana k ON k.archivo = cc.archivo
       WHERE cc.cuenta = c.cta
       ORDER BY k.fecha_apertura DESC, cc.archivo
       LIMIT 1) camp ON true;

-- The identities whose row differs from the stored one.
CREATE TEMP TABLE _cambiados ON COMMIT DROP AS
SELECT nro_documento, fecha_pago, monto_cancelado, ocurrencia FROM (
    (TABLE _pago EXCEPT TABLE _previo)
    UNION ALL
    (TABLE _previo EXCEPT TABLE _pago)
) x GROUP BY 1, 2, 3, 4;

DELETE FROM aux.pago a USING _cambiados c
 WHERE (a.nro_documento, a.fecha_pago, a.monto_cancelado, a.ocurrencia)
     = (c.nro_documento, c.fecha_pago, c.monto_cancelado, c.ocurrencia);
INSERT INTO aux.pago
SELECT n.* FROM _pago n JOIN _cambiados c USING (nro_documento, fecha_pago, monto_cancelado, ocurrencia);

DELETE FROM pulso_flow_changed_days;
INSERT INTO pulso_flow_changed_days SELECT DISTINCT fecha_pago FROM _cambiados;
