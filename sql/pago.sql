-- aux.pago — payments deduplicated across re-deliveries and attributed to a campaign.
--
-- Grain:       one row per payment identity (nro_documento, fecha_pago, monto_cancelado).
-- Inputs:      raw.pagos (change_date: fecha_pago), raw.trandeuda (change_date: fecha_proceso),
--              aux.cuenta_campana, aux.campana, aux.campana_dia.
-- Rules:       [pulso-flow] a payment delivered again in later payment files is one payment
--              (entregas = files that delivered it; first/last file and load time kept, W-27).
--              Document → account: the account of the document in the latest snapshot on or
--              before the payment date; if the document only appears later, the first snapshot
--              after it (a document belongs to one account). No snapshot has the document:
--              not attributed, DOCUMENTO_SIN_CUENTA.
--              Account → campaign: among the campaigns whose universe has the account and whose
--              days contain the payment date (inclusive), the one opened last, then the smallest
--              archivo (deterministic). None: not attributed, FUERA_DE_VENTANA (the account is
--              assigned, but not on that date) or CUENTA_NO_ASIGNADA.
--              Limitation: two genuinely identical payments (same document, date and amount) in
--              ONE file are one row in raw.pagos (its key) and therefore one payment here.
-- Incremental: a change on day m can move the attribution of payments dated m or later (new
--              snapshot, campaign days, payments), so payments dated >= min(changed days) are
--              recomputed, plus every payment still without an account (its document may have
--              arrived in a snapshot). The result is diffed with the stored rows; only changed
--              payments are rewritten and only their payment dates are reported downstream.

CREATE TEMP TABLE _desde ON COMMIT DROP AS
SELECT CASE WHEN current_setting('pulso_flow.full_refresh')::boolean THEN NULL
            ELSE (SELECT min(day) FROM pulso_flow_changed_days) END AS m,
       current_setting('pulso_flow.full_refresh')::boolean AS todo;

-- Payment identities in scope.
CREATE TEMP TABLE _ids ON COMMIT DROP AS
SELECT p.nro_documento, p.fecha_pago, p.monto_cancelado
  FROM raw.pagos p, _desde
 WHERE _desde.todo OR p.fecha_pago >= _desde.m
UNION
SELECT a.nro_documento, a.fecha_pago, a.monto_cancelado
  FROM aux.pago a
 WHERE a.cuenta IS NULL;

CREATE TEMP TABLE _pago (LIKE aux.pago) ON COMMIT DROP;
INSERT INTO _pago (nro_documento, fecha_pago, monto_cancelado, entregas, primer_archivo, ultimo_archivo,
                   primera_carga, ultima_carga, cod_sistema, cuenta, fecha_snapshot, archivo, cod_luna,
                   motivo_no_atribuido)
WITH entregas AS (
    SELECT p.nro_documento, p.fecha_pago, p.monto_cancelado,
           count(*)::int AS entregas,
           (array_agg(p.archivo ORDER BY p.creado_el, p.archivo))[1] AS primer_archivo,
           (array_agg(p.archivo ORDER BY p.creado_el DESC, p.archivo DESC))[1] AS ultimo_archivo,
           min(p.creado_el) AS primera_carga,
           max(p.creado_el) AS ultima_carga,
           (array_agg(p.cod_sistema ORDER BY p.creado_el DESC, p.archivo DESC))[1] AS cod_sistema
      FROM raw.pagos p
      JOIN _ids USING (nro_documento, fecha_pago, monto_cancelado)
     GROUP BY 1, 2, 3
), con_cuenta AS (
    SELECT e.*,
           aux.id_canonico(coalesce(antes.cod_cuenta, despues.cod_cuenta)) AS cta,
           coalesce(antes.fecha_proceso, despues.fecha_proceso) AS snap
      FROM entregas e
      LEFT JOIN LATERAL (
          SELECT t.cod_cuenta, t.fecha_proceso FROM raw.trandeuda t
           WHERE t.nro_documento = e.nro_documento AND t.fecha_proceso <= e.fecha_pago
           ORDER BY t.fecha_proceso DESC, t.cod_cuenta LIMIT 1) antes ON true
      LEFT JOIN LATERAL (
          SELECT t.cod_cuenta, t.fecha_proceso FROM raw.trandeuda t
           WHERE antes.cod_cuenta IS NULL
             AND t.nro_documento = e.nro_documento AND t.fecha_proceso > e.fecha_pago
           ORDER BY t.fecha_proceso, t.cod_cuenta LIMIT 1) despues ON true
)
SELECT c.nro_documento, c.fecha_pago, c.monto_cancelado, c.entregas, c.primer_archivo, c.ultimo_archivo,
       c.primera_carga, c.ultima_carga, c.cod_sistema, c.cta, c.snap,
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

-- Stored rows in the same scope, then the identities whose row differs.
CREATE TEMP TABLE _previo ON COMMIT DROP AS
SELECT a.* FROM aux.pago a, _desde
 WHERE _desde.todo OR a.fecha_pago >= _desde.m OR a.cuenta IS NULL;

CREATE TEMP TABLE _cambiados ON COMMIT DROP AS
SELECT nro_documento, fecha_pago, monto_cancelado FROM (
    (TABLE _pago EXCEPT TABLE _previo)
    UNION ALL
    (TABLE _previo EXCEPT TABLE _pago)
) x GROUP BY 1, 2, 3;

DELETE FROM aux.pago a USING _cambiados c
 WHERE (a.nro_documento, a.fecha_pago, a.monto_cancelado) = (c.nro_documento, c.fecha_pago, c.monto_cancelado);
INSERT INTO aux.pago
SELECT n.* FROM _pago n JOIN _cambiados c USING (nro_documento, fecha_pago, monto_cancelado);

DELETE FROM pulso_flow_changed_days;
INSERT INTO pulso_flow_changed_days SELECT DISTINCT fecha_pago FROM _cambiados;
