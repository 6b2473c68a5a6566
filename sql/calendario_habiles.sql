-- aux.calendario_habiles — the business-day calendar.
--
-- Grain:       one row per calendar day.
-- Inputs:      raw.calendario (only to know which years matter), aux.feriados.
-- Rule:        [pulso-flow] a business day is Monday–Friday and not in aux.feriados (empty by
--              default). Range: 1 January of the first campaign's opening year to 31 December of
--              the year after the latest opening/close/planned close, so it rolls forward with
--              the data instead of stopping at a fixed year.
-- Incremental: the table is small (hundreds of rows), so it is recomputed whole and compared with
--              what is stored; only differing days are rewritten, and only those days are reported
--              in pulso_flow_changed_days (usually none), so dependants recompute nothing when a
--              new campaign does not extend the range.

CREATE TEMP TABLE _cal (LIKE aux.calendario_habiles) ON COMMIT DROP;

INSERT INTO _cal (fecha, anio, mes, dia, dia_semana, nombre_dia, es_fin_de_semana, es_feriado,
                  es_dia_habil, dia_habil_del_mes, total_dias_habiles_mes)
WITH rango AS (
    SELECT make_date(extract(year FROM min(fecha_apertura))::int, 1, 1) AS desde,
           make_date(extract(year FROM max(GREATEST(fecha_apertura, fecha_cierre,
                                                    fecha_cierre_planificada)))::int + 1, 12, 31) AS hasta
      FROM raw.calendario
), dias AS (
    SELECT d::date AS fecha
      FROM rango, generate_series(rango.desde, rango.hasta, interval '1 day') AS d
     WHERE rango.desde IS NOT NULL
), base AS (
    SELECT d.fecha,
           extract(isodow FROM d.fecha)::int AS dia_semana,
           f.fecha IS NOT NULL AS es_feriado
      FROM dias d
      LEFT JOIN aux.feriados f ON f.fecha = d.fecha
), habil AS (
    SELECT b.*,
           b.dia_semana <= 5 AND NOT b.es_feriado AS es_dia_habil
      FROM base b
)
SELECT h.fecha,
       extract(year FROM h.fecha)::int,
       extract(month FROM h.fecha)::int,
       extract(day FROM h.fecha)::int,
       h.dia_semana,
       (ARRAY['Lunes', 'Martes', 'Miércoles', 'Jueves', 'Viernes', 'Sábado', 'Domingo'])[h.dia_semana],
       h.dia_semana >= 6,
       h.es_feriado,
       h.es_dia_habil,
       CASE WHEN h.es_dia_habil THEN
           count(*) FILTER (WHERE h.es_dia_habil)
               OVER (PARTITION BY date_trunc('month', h.fecha) ORDER BY h.fecha)::int
       END,
       count(*) FILTER (WHERE h.es_dia_habil) OVER (PARTITION BY date_trunc('month', h.fecha))::int
  FROM habil h;

-- Days whose row differs (new, changed or gone).
CREATE TEMP TABLE _dias_cambiados ON COMMIT DROP AS
SELECT fecha FROM ((TABLE _cal EXCEPT TABLE aux.calendario_habiles)
                   UNION ALL
                   (TABLE aux.calendario_habiles EXCEPT TABLE _cal)) AS d
 GROUP BY fecha;

DELETE FROM aux.calendario_habiles c USING _dias_cambiados d WHERE c.fecha = d.fecha;
INSERT INTO aux.calendario_habiles SELECT n.* FROM _cal n JOIN _dias_cambiados d USING (fecha);

-- Report exactly the days that changed to the builds that depend on this one.
DELETE FROM pulso_flow_changed_days;
INSERT INTO pulso_flow_changed_days SELECT fecha FROM _dias_cambiados;
