-- aux.campana and aux.campana_dia — one row per campaign, and the campaign's days numbered.
--
-- Grain:       aux.campana: one row per campaign (archivo without ".txt");
--              aux.campana_dia: one row per (campaign, day).
-- Inputs:      raw.calendario, aux.calendario_habiles, aux.snapshot_dia.
-- Rules:       raw.calendario has one row per campaign and period: rows are collapsed to the
--              campaign's most recent period row (W-25 fan-out). A campaign's days run from
--              fecha_apertura to fecha_cierre, and never past the latest debt snapshot loaded
--              (a photo date needs a snapshot; an open campaign grows one day per new snapshot
--              day). dia_gestion = business days in [fecha_apertura, fecha] (1 on the first
--              business day; a weekend keeps the number of the Friday before).
-- Incremental: small tables, recomputed whole and diffed with what is stored. Reported days
--              (pulso_flow_changed_days) = the days whose campana_dia row appeared, changed or
--              disappeared, plus every day of a campaign whose attributes changed — that is how
--              a calendar edit becomes "these business days changed" for the builds downstream.

CREATE TEMP TABLE _camp (LIKE aux.campana) ON COMMIT DROP;
INSERT INTO _camp (archivo, tipo_cartera, cartera, estado_cartera, fecha_apertura, fecha_cierre,
                   fecha_cierre_planificada, fecha_trandeuda, fecha_fin, duracion_dias_habiles, periodos)
WITH filas AS (
    SELECT aux.campana_id(c.archivo) AS campana, c.*,
           count(*) OVER (PARTITION BY aux.campana_id(c.archivo)) AS n_periodos
      FROM raw.calendario c
), ultima AS (
    SELECT DISTINCT ON (campana) *
      FROM filas
     ORDER BY campana, periodo_date DESC
), horizonte AS (
    SELECT max(fecha) AS ultimo_snapshot FROM aux.snapshot_dia
)
SELECT u.campana, u.tipo_cartera, aux.cartera(u.campana), u.estado_cartera, u.fecha_apertura,
       u.fecha_cierre, u.fecha_cierre_planificada, u.fecha_trandeuda,
       CASE WHEN h.ultimo_snapshot IS NOT NULL THEN LEAST(u.fecha_cierre, h.ultimo_snapshot) END,
       u.duracion_campana_dias_habiles, u.n_periodos::int
  FROM ultima u CROSS JOIN horizonte h;

CREATE TEMP TABLE _camp_dia (LIKE aux.campana_dia) ON COMMIT DROP;
INSERT INTO _camp_dia (archivo, fecha, dia_campana, dia_gestion, es_dia_habil, es_dia_cierre, periodo)
SELECT c.archivo,
       d.fecha,
       (d.fecha - c.fecha_apertura) + 1,
       (count(*) FILTER (WHERE d.es_dia_habil)
            OVER (PARTITION BY c.archivo ORDER BY d.fecha))::int,
       d.es_dia_habil,
       d.fecha = c.fecha_cierre IS TRUE,
       aux.periodo(c.fecha_apertura, c.fecha_cierre, d.fecha)
  FROM _camp c
  JOIN aux.calendario_habiles d ON d.fecha BETWEEN c.fecha_apertura AND c.fecha_fin;

-- Campaigns whose attributes changed (the horizon fecha_fin moving is not an attribute change:
-- its effect is the new days, found below).
CREATE TEMP TABLE _camp_cambiadas ON COMMIT DROP AS
SELECT archivo FROM (
    (SELECT archivo, tipo_cartera, cartera, estado_cartera, fecha_apertura, fecha_cierre,
            fecha_cierre_planificada, fecha_trandeuda, duracion_dias_habiles, periodos FROM _camp
     EXCEPT
     SELECT archivo, tipo_cartera, cartera, estado_cartera, fecha_apertura, fecha_cierre,
            fecha_cierre_planificada, fecha_trandeuda, duracion_dias_habiles, periodos FROM aux.campana)
    UNION ALL
    (SELECT archivo, tipo_cartera, cartera, estado_cartera, fecha_apertura, fecha_cierre,
            fecha_cierre_planificada, fecha_trandeuda, duracion_dias_habiles, periodos FROM aux.campana
     EXCEPT
     SELECT archivo, tipo_cartera, cartera, estado_cartera, fecha_apertura, fecha_cierre,
            fecha_cierre_planificada, fecha_trandeuda, duracion_dias_habiles, periodos FROM _camp)
) x GROUP BY archivo;

CREATE TEMP TABLE _dias_reportados ON COMMIT DROP AS
SELECT fecha FROM (
    -- campaign days that appeared, changed or disappeared
    (TABLE _camp_dia EXCEPT TABLE aux.campana_dia)
    UNION ALL
    (TABLE aux.campana_dia EXCEPT TABLE _camp_dia)
) x GROUP BY fecha
UNION
-- every day, old and new, of a campaign whose attributes changed
SELECT d.fecha FROM aux.campana_dia d JOIN _camp_cambiadas USING (archivo)
UNION
SELECT d.fecha FROM _camp_dia d JOIN _camp_cambiadas USING (archivo);

-- Apply: campaigns (all rows: the table is tiny) and the campaign days that differ.
DELETE FROM aux.campana c
 WHERE NOT EXISTS (SELECT 1 FROM _camp n WHERE (n.*) IS NOT DISTINCT FROM (c.*));
INSERT INTO aux.campana
SELECT n.* FROM _camp n
 WHERE NOT EXISTS (SELECT 1 FROM aux.campana c WHERE c.archivo = n.archivo);

DELETE FROM aux.campana_dia c
 WHERE NOT EXISTS (SELECT 1 FROM _camp_dia n WHERE (n.*) IS NOT DISTINCT FROM (c.*));
INSERT INTO aux.campana_dia
SELECT n.* FROM _camp_dia n
 WHERE NOT EXISTS (SELECT 1 FROM aux.campana_dia c WHERE (c.archivo, c.fecha) = (n.archivo, n.fecha));

DELETE FROM pulso_flow_changed_days;
INSERT INTO pulso_flow_changed_days SELECT fecha FROM _dias_reportados;
