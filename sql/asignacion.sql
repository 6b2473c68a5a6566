-- mart.asignacion — portfolio composition per month, with the previous month on the same row.
--
-- Grain:       (periodo YYYY-MM, cartera, servicio).
-- Inputs:      aux.cuenta_estado_diario, aux.cuenta_campana.
-- Rule:        an account counts in month M when it is in its campaign's universe on some day of
--              M (a campaign spanning two months counts in both). cuentas = (campaign, account)
--              pairs; clientes = clients once per campaign (principal account), real counts
--              (W-34: never cuentas ÷ 1.2); deuda_asig = Σ assigned debt; deuda_act = Σ debt on
--              each account's last day of M. *_ant = the same for M − 1 month and the same
--              (cartera, servicio); a group present only in M − 1 has a row with zeros for M.
--              Months after the latest data month are not created (and are removed).
-- Incremental: the months of the changed days are recomputed, and the month after each (its
--              *_ant columns), limited to months that have data.

CREATE TEMP TABLE _ultimo_mes ON COMMIT DROP AS
SELECT date_trunc('month', max(fecha))::date AS mes FROM aux.cuenta_estado_diario;

CREATE TEMP TABLE _meses ON COMMIT DROP AS
SELECT DISTINCT mes FROM (
    SELECT date_trunc('month', fecha)::date AS mes
      FROM (SELECT DISTINCT fecha FROM aux.cuenta_estado_diario) f
     WHERE pg_temp.full_refresh()
    UNION ALL
    SELECT date_trunc('month', day)::date FROM pulso_flow_changed_days
    UNION ALL
    SELECT (date_trunc('month', day) + interval '1 month')::date FROM pulso_flow_changed_days
) m
 WHERE mes <= (SELECT mes FROM _ultimo_mes);

-- Per (month, cartera, servicio) for the months in scope and the month before each.
CREATE TEMP TABLE _agg ON COMMIT DROP AS
WITH meses AS (
    SELECT mes FROM _meses
    UNION
    SELECT (mes - interval '1 month')::date FROM _meses
), mes_cuenta AS (
    SELECT m.mes, e.archivo, e.cuenta, max(e.fecha) AS ultimo
      FROM meses m
      JOIN aux.cuenta_estado_diario e
        ON e.fecha >= m.mes AND e.fecha < (m.mes + interval '1 month')::date
     GROUP BY 1, 2, 3
)
SELECT mc.mes, cc.cartera, cc.servicio,
       count(*)::int AS cuentas,
       (count(*) FILTER (WHERE cc.es_principal_cliente))::int AS clientes,
       sum(cc.deuda_asignada) AS deuda_asig,
       sum(e.deuda_actual) AS deuda_act
  FROM mes_cuenta mc
  JOIN aux.cuenta_campana cc ON cc.archivo = mc.archivo AND cc.cuenta = mc.cuenta
  JOIN aux.cuenta_estado_diario e
    ON e.fecha = mc.ultimo AND e.archivo = mc.archivo AND e.cuenta = mc.cuenta
 GROUP BY 1, 2, 3;

DELETE FROM mart.asignacion
 WHERE pg_temp.full_refresh()
    OR periodo IN (SELECT to_char(mes, 'YYYY-MM') FROM _meses)
    -- months the data no longer reaches (e.g. a campaign's days shrank)
    OR periodo > coalesce((SELECT to_char(mes, 'YYYY-MM') FROM _ultimo_mes), '');

INSERT INTO mart.asignacion (periodo, cartera, servicio, periodo_anterior, cuentas, clientes,
                             deuda_asig, deuda_act, cuentas_ant, clientes_ant, deuda_asig_ant,
                             deuda_act_ant)
WITH grupos AS (
    SELECT mes, cartera, servicio FROM _agg
    UNION
    SELECT (mes + interval '1 month')::date, cartera, servicio FROM _agg
)
SELECT to_char(g.mes, 'YYYY-MM'), g.cartera, g.servicio,
       to_char(g.mes - interval '1 month', 'YYYY-MM'),
       coalesce(a.cuentas, 0), coalesce(a.clientes, 0),
       coalesce(a.deuda_asig, 0), coalesce(a.deuda_act, 0),
       coalesce(p.cuentas, 0), coalesce(p.clientes, 0),
       coalesce(p.deuda_asig, 0), coalesce(p.deuda_act, 0)
  FROM grupos g
  JOIN _meses USING (mes)
  LEFT JOIN _agg a ON a.mes = g.mes AND a.cartera = g.cartera AND a.servicio = g.servicio
  LEFT JOIN _agg p ON p.mes = (g.mes - interval '1 month')::date
                  AND p.cartera = g.cartera AND p.servicio = g.servicio;
