-- aux.cuenta_campana — each campaign's universe: one row per (campaign, account).
--
-- Grain:       (archivo, cuenta).
-- Inputs:      raw.asignaciones (change_date: fecha_asignacion), aux.campana, aux.campana_dia,
--              aux.snapshot_dia, aux.deuda_cuenta_dia.
-- Rules:       assignment rows join their campaign by campaign id (file name without ".txt",
--              W-24). A re-delivered assignment file does not add accounts: the account keeps its
--              first assignment date and takes its attributes (client included) from the latest
--              delivery (greatest creado_el, then assignment date, then file name). An account
--              missing from a later delivery stays in the universe (files arrive partially: late
--              assignments come as later deliveries of the same file).
--              es_principal_cliente marks one account per (campaign, client) — the earliest
--              assigned, then the lowest account id — so that client counts are additive.
--              servicio, cartera, due-day group and debt bracket come from the aux.* rule functions.
--              Assigned debt [pulso-flow]: the account's debt in the campaign's reference snapshot,
--              i.e. the latest snapshot day on or before fecha_trandeuda (fallback fecha_apertura),
--              or the first one after it when none precedes; 0 when the account is not in it.
-- Incremental: recomputes the campaigns the changed days can affect — assignments delivered on a
--              changed day, campaigns with a changed day, campaigns whose reference snapshot lies
--              between the stored snapshot and the reference date — and diffs with the stored rows.
--              Reports every day of each campaign whose universe actually changed.

CREATE TEMP TABLE _alcance ON COMMIT DROP AS
SELECT c.archivo FROM aux.campana c
 WHERE pg_temp.full_refresh()
    OR EXISTS (SELECT 1 FROM aux.campana_dia d JOIN pulso_flow_changed_days x ON x.day = d.fecha
                WHERE d.archivo = c.archivo)
    OR EXISTS (SELECT 1 FROM raw.asignaciones a JOIN pulso_flow_changed_days x ON x.day = a.fecha_asignacion
                WHERE aux.campana_id(a.archivo) = c.archivo)
    OR EXISTS (SELECT 1 FROM pulso_flow_changed_days x
                CROSS JOIN LATERAL (SELECT max(cc.fecha_snapshot_asignacion) AS snap
                                      FROM aux.cuenta_campana cc WHERE cc.archivo = c.archivo) s
                WHERE s.snap IS NULL
                   OR x.day BETWEEN LEAST(s.snap, coalesce(c.fecha_trandeuda, c.fecha_apertura))
                                AND GREATEST(s.snap, coalesce(c.fecha_trandeuda, c.fecha_apertura)))
UNION
-- campaigns that no longer exist lose their universe
SELECT DISTINCT cc.archivo FROM aux.cuenta_campana cc
 WHERE NOT EXISTS (SELECT 1 FROM aux.campana c WHERE c.archivo = cc.archivo);

-- The reference snapshot of each campaign in scope.
CREATE TEMP TABLE _snap ON COMMIT DROP AS
SELECT c.archivo,
       coalesce((SELECT max(s.fecha) FROM aux.snapshot_dia s
                  WHERE s.fecha <= coalesce(c.fecha_trandeuda, c.fecha_apertura)),
                (SELECT min(s.fecha) FROM aux.snapshot_dia s
                  WHERE s.fecha > coalesce(c.fecha_trandeuda, c.fecha_apertura))) AS fecha_snapshot
  FROM aux.campana c JOIN _alcance USING (archivo);

CREATE TEMP TABLE _cc (LIKE aux.cuenta_campana) ON COMMIT DROP;
INSERT INTO _cc (archivo, cuenta, cod_luna, cartera, es_principal_cliente, fecha_asignacion, entregas,
                 tramo, negocio, servicio, min_vto, dia_vencimiento, grupo_vencimiento, zona,
                 decil_contacto, decil_pago, fecha_snapshot_asignacion, deuda_asignada, rango_deuda)
WITH asig AS (
    SELECT aux.campana_id(a.archivo) AS campana,
           aux.id_canonico(a.cuenta) AS cta,
           aux.id_canonico(a.cod_luna) AS id_cliente,
           a.*
      FROM raw.asignaciones a
     WHERE aux.campana_id(a.archivo) IN (SELECT archivo FROM _alcance)
), por_cuenta AS (
    -- attributes of the latest delivery, first assignment date, number of deliveries
    SELECT DISTINCT ON (campana, cta)
           campana, cta, id_cliente, tramo_gestion, negocio, min_vto, zona, decil_contacto, decil_pago,
           min(fecha_asignacion) OVER (PARTITION BY campana, cta) AS primera,
           count(*) OVER (PARTITION BY campana, cta) AS n
      FROM asig
     WHERE cta IS NOT NULL AND id_cliente IS NOT NULL
     ORDER BY campana, cta, creado_el DESC NULLS LAST, fecha_asignacion DESC, archivo DESC, id_cliente
), universo AS (
    SELECT p.*, c.cartera, s.fecha_snapshot
      FROM por_cuenta p
      JOIN aux.campana c ON c.archivo = p.campana
      JOIN _snap s ON s.archivo = p.campana
)
SELECT u.campana, u.cta, u.id_cliente, u.cartera,
       row_number() OVER (PARTITION BY u.campana, u.id_cliente ORDER BY u.primera, u.cta) = 1,
       u.primera, u.n::int,
       coalesce(nullif(btrim(u.tramo_gestion), ''), 'SIN_TRAMO'),
       u.negocio,
       aux.servicio(u.negocio),
       u.min_vto,
       coalesce(extract(day FROM u.min_vto)::int, 0),
       aux.grupo_vencimiento(extract(day FROM u.min_vto)::int),
       u.zona, u.decil_contacto, u.decil_pago,
       u.fecha_snapshot,
       coalesce(d.deuda, 0),
       aux.rango_deuda(coalesce(d.deuda, 0))
  FROM universo u
  LEFT JOIN aux.deuda_cuenta_dia d ON d.fecha = u.fecha_snapshot AND d.cuenta = u.cta;

-- Campaigns whose universe differs from the stored one.
CREATE TEMP TABLE _cambiadas ON COMMIT DROP AS
SELECT archivo FROM (
    (TABLE _cc EXCEPT SELECT * FROM aux.cuenta_campana WHERE archivo IN (SELECT archivo FROM _alcance))
    UNION ALL
    (SELECT * FROM aux.cuenta_campana WHERE archivo IN (SELECT archivo FROM _alcance) EXCEPT TABLE _cc)
) x GROUP BY archivo;

DELETE FROM aux.cuenta_campana WHERE archivo IN (SELECT archivo FROM _cambiadas);
INSERT INTO aux.cuenta_campana SELECT * FROM _cc WHERE archivo IN (SELECT archivo FROM _cambiadas);

DELETE FROM pulso_flow_changed_days;
INSERT INTO pulso_flow_changed_days
SELECT DISTINCT d.fecha FROM aux.campana_dia d JOIN _cambiadas USING (archivo);
