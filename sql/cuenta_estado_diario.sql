-- aux.cuenta_estado_diario — the daily state of every assigned account.
--
-- Grain:       (fecha, archivo, cuenta) for every day of the campaign (aux.campana_dia) on or
--              after the account's assignment date. The largest aux table: accounts × days.
-- Inputs:      aux.campana_dia, aux.cuenta_campana, aux.snapshot_dia, aux.deuda_cuenta_dia,
--              aux.pago_diario, aux.gestion_cuenta, aux.gestion.
-- Rules:       debt [pulso-flow]: the account's debt (Σ documents) in the latest snapshot day on
--              or before `fecha` (weekends/holidays without a file use the previous snapshot); an
--              account missing from that snapshot has debt 0 and is "NO_ESTA_EN_TRANDEUDA".
--              gestionable: that debt >= 1 sol, else DEUDA_MENOR_A_1 (§1.5).
--              Cumulative columns run from the campaign's opening to `fecha` (inclusive):
--              payments attributed to (campaign, account); interactions linked to the account
--              (client level, gestiones_*); the best interaction = highest peso, ties broken by
--              class (effective > non-effective > no contact > unclassified > unmatched), encoded
--              as peso * 10 + priority; es_cd / es_ci / es_sc from the best class; tiene_pdp;
--              gp_* = interactions whose principal bridge row is this account (each interaction
--              counted once across all accounts and campaigns).
-- Incremental: the counters of day d depend on every day <= d, so every day >= m = min(changed
--              days) is recomputed (all campaigns) and replaced; the running sums start from the
--              events before the first recomputed day of each account (read from the sparse event
--              tables, not from the dense grid). Reports the days it rewrote.

-- m = pg_temp.first_changed_day(); it and pg_temp.full_refresh() are constants the planner
-- folds, so an incremental run reads only the days >= m, through the indexes on fecha.
CREATE TEMP TABLE _dias ON COMMIT DROP AS
SELECT d.archivo, d.fecha
  FROM aux.campana_dia d
 WHERE pg_temp.full_refresh() OR d.fecha >= pg_temp.first_changed_day();

CREATE TEMP TABLE _snap ON COMMIT DROP AS
SELECT f.fecha, (SELECT max(s.fecha) FROM aux.snapshot_dia s WHERE s.fecha <= f.fecha) AS fecha_snapshot
  FROM (SELECT DISTINCT fecha FROM _dias) f;

CREATE TEMP TABLE _univ ON COMMIT DROP AS
SELECT d.fecha, d.archivo, cc.cuenta, cc.cod_luna
  FROM _dias d
  JOIN aux.cuenta_campana cc ON cc.archivo = d.archivo AND cc.fecha_asignacion <= d.fecha;

CREATE TEMP TABLE _primer ON COMMIT DROP AS
SELECT archivo, cuenta, min(fecha) AS desde FROM _univ GROUP BY 1, 2;
ANALYZE _univ;
ANALYZE _primer;

-- Events are read from the earliest opening among the campaigns in scope (index on fecha).
CREATE TEMP TABLE _apertura ON COMMIT DROP AS
SELECT min(c.fecha_apertura) AS desde
  FROM aux.campana c
 WHERE c.archivo IN (SELECT DISTINCT archivo FROM _dias);

-- Sparse daily events of the accounts in scope (whole campaign history: needed for the base).
CREATE TEMP TABLE _ev ON COMMIT DROP AS
SELECT archivo, cuenta, fecha,
       sum(pagado) AS pagado, sum(pagos)::int AS pagos,
       sum(gestiones)::int AS gestiones, max(puntaje) AS puntaje, bool_or(pdp) AS pdp,
       sum(gp)::int AS gp, sum(gp_ce)::int AS gp_ce, sum(gp_cne)::int AS gp_cne,
       sum(gp_pdp)::int AS gp_pdp, sum(gp_bot)::int AS gp_bot, sum(gp_humano)::int AS gp_humano
  FROM (
      SELECT pd.archivo, pd.cuenta, pd.fecha, pd.monto AS pagado, pd.pagos,
             0 AS gestiones, NULL::int AS puntaje, false AS pdp,
             0 AS gp, 0 AS gp_ce, 0 AS gp_cne, 0 AS gp_pdp, 0 AS gp_bot, 0 AS gp_humano
        FROM aux.pago_diario pd
        JOIN _primer p ON p.archivo = pd.archivo AND p.cuenta = pd.cuenta
       WHERE pd.fecha >= (SELECT desde FROM _apertura)
      UNION ALL
      SELECT gc.archivo, gc.cuenta, gc.fecha, 0, 0,
             1, g.peso * 10 + aux.prioridad_clase(g.clase_contacto), g.es_pdp,
             gc.es_principal::int,
             (gc.es_principal AND g.es_contacto_efectivo)::int,
             (gc.es_principal AND g.es_contacto_no_efectivo)::int,
             (gc.es_principal AND g.es_pdp)::int,
             (gc.es_principal AND g.canal = 'BOT')::int,
             (gc.es_principal AND g.canal = 'HUMANO')::int
        FROM aux.gestion_cuenta gc
        JOIN _primer p ON p.archivo = gc.archivo AND p.cuenta = gc.cuenta
        JOIN aux.gestion g ON g.canal = gc.canal AND g.gestion_uid = gc.gestion_uid
       WHERE gc.fecha >= (SELECT desde FROM _apertura)
  ) x
 GROUP BY archivo, cuenta, fecha;
ANALYZE _ev;

-- What each account had accumulated before its first recomputed day.
CREATE TEMP TABLE _base ON COMMIT DROP AS
SELECT e.archivo, e.cuenta,
       sum(e.pagado) AS pagado, sum(e.pagos)::int AS pagos, sum(e.gestiones)::int AS gestiones,
       max(e.puntaje) AS puntaje, bool_or(e.pdp) AS pdp,
       sum(e.gp)::int AS gp, sum(e.gp_ce)::int AS gp_ce, sum(e.gp_cne)::int AS gp_cne,
       sum(e.gp_pdp)::int AS gp_pdp, sum(e.gp_bot)::int AS gp_bot, sum(e.gp_humano)::int AS gp_humano,
       max(e.fecha) FILTER (WHERE e.gestiones > 0) AS ultima
  FROM _ev e
  JOIN _primer p ON p.archivo = e.archivo AND p.cuenta = e.cuenta
 WHERE e.fecha < p.desde
 GROUP BY 1, 2;

CREATE TEMP TABLE _reescritos ON COMMIT DROP AS
WITH borrados AS (
    DELETE FROM aux.cuenta_estado_diario c
     WHERE pg_temp.full_refresh() OR c.fecha >= pg_temp.first_changed_day()
    RETURNING c.fecha
)
SELECT DISTINCT fecha FROM borrados;

INSERT INTO aux.cuenta_estado_diario (
    fecha, archivo, cuenta, cod_luna, fecha_snapshot, en_trandeuda, deuda_actual, es_gestionable,
    motivo_no_gestionable, pagado_dia, pagado_acum, pagos_acum, es_pagadora, gestiones_dia,
    gestiones_acum, es_gestionada, mejor_puntaje, mejor_clase, es_cd, es_ci, es_sc, tiene_pdp,
    gp_acum, gp_ce_acum, gp_cne_acum, gp_pdp_acum, gp_bot_acum, gp_humano_acum, fecha_ultima_gestion)
WITH acum AS (
    SELECT u.fecha, u.archivo, u.cuenta, u.cod_luna, s.fecha_snapshot,
           dd.cuenta IS NOT NULL AS en_trandeuda,
           coalesce(dd.deuda, 0) AS deuda,
           coalesce(e.pagado, 0) AS pagado_dia,
           coalesce(b.pagado, 0) + sum(coalesce(e.pagado, 0)) OVER w AS pagado_acum,
           coalesce(b.pagos, 0) + sum(coalesce(e.pagos, 0)) OVER w AS pagos_acum,
           coalesce(e.gestiones, 0) AS gestiones_dia,
           coalesce(b.gestiones, 0) + sum(coalesce(e.gestiones, 0)) OVER w AS gestiones_acum,
           GREATEST(b.puntaje, max(e.puntaje) OVER w) AS puntaje,
           coalesce(b.pdp, false) OR coalesce(bool_or(e.pdp) OVER w, false) AS tiene_pdp,
           coalesce(b.gp, 0) + sum(coalesce(e.gp, 0)) OVER w AS gp,
           coalesce(b.gp_ce, 0) + sum(coalesce(e.gp_ce, 0)) OVER w AS gp_ce,
           coalesce(b.gp_cne, 0) + sum(coalesce(e.gp_cne, 0)) OVER w AS gp_cne,
           coalesce(b.gp_pdp, 0) + sum(coalesce(e.gp_pdp, 0)) OVER w AS gp_pdp,
           coalesce(b.gp_bot, 0) + sum(coalesce(e.gp_bot, 0)) OVER w AS gp_bot,
           coalesce(b.gp_humano, 0) + sum(coalesce(e.gp_humano, 0)) OVER w AS gp_humano,
           GREATEST(b.ultima, max(CASE WHEN e.gestiones > 0 THEN e.fecha END) OVER w) AS ultima
      FROM _univ u
      JOIN _snap s ON s.fecha = u.fecha
      LEFT JOIN aux.deuda_cuenta_dia dd ON dd.fecha = s.fecha_snapshot AND dd.cuenta = u.cuenta
      LEFT JOIN _ev e ON e.archivo = u.archivo AND e.cuenta = u.cuenta AND e.fecha = u.fecha
      LEFT JOIN _base b ON b.archivo = u.archivo AND b.cuenta = u.cuenta
    WINDOW w AS (PARTITION BY u.archivo, u.cuenta ORDER BY u.fecha)
)
SELECT a.fecha, a.archivo, a.cuenta, a.cod_luna, a.fecha_snapshot, a.en_trandeuda, a.deuda,
       a.deuda >= 1,
       CASE WHEN NOT a.en_trandeuda THEN 'NO_ESTA_EN_TRANDEUDA'
            WHEN a.deuda < 1 THEN 'DEUDA_MENOR_A_1' END,
       a.pagado_dia, a.pagado_acum, a.pagos_acum, a.pagado_acum > 0,
       a.gestiones_dia, a.gestiones_acum, a.gestiones_acum > 0,
       a.puntaje, aux.clase_de_puntaje(a.puntaje),
       aux.clase_de_puntaje(a.puntaje) IS NOT DISTINCT FROM 'CONTACTO_EFECTIVO',
       aux.clase_de_puntaje(a.puntaje) IS NOT DISTINCT FROM 'CONTACTO_NO_EFECTIVO',
       a.gestiones_acum > 0
           AND aux.clase_de_puntaje(a.puntaje) NOT IN ('CONTACTO_EFECTIVO', 'CONTACTO_NO_EFECTIVO'),
       a.tiene_pdp,
       a.gp, a.gp_ce, a.gp_cne, a.gp_pdp, a.gp_bot, a.gp_humano, a.ultima
  FROM acum a;

INSERT INTO _reescritos SELECT DISTINCT fecha FROM _dias;

DELETE FROM pulso_flow_changed_days;
INSERT INTO pulso_flow_changed_days SELECT DISTINCT fecha FROM _reescritos;
