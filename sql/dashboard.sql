-- mart.dashboard — what the dashboard page reads: one photo date at a time.
--
-- Grain:       (fecha_foto, archivo, servicio, tramo, dia_vencimiento, rango_deuda); cartera,
--              periodo, grupo_vencimiento, dia_gestion and es_dia_habil are functions of the key.
-- Inputs:      aux.cuenta_estado_diario, aux.cuenta_campana, aux.campana_dia.
-- Rule:        every measure is an additive counter over the accounts assigned on or before the
--              photo date, cumulative from the campaign's opening to the photo date (see
--              docs/kpis.md for each column). clientes counts each client once per campaign (its
--              principal account); gestiones* count each interaction once (principal bridge row).
--              The API must select exactly one fecha_foto before summing (never sum photo dates).
-- Incremental: exactly the photo dates whose account state was rewritten are replaced.

DELETE FROM mart.dashboard
 WHERE pg_temp.full_refresh()
    OR fecha_foto = ANY (pg_temp.changed_days());

INSERT INTO mart.dashboard (
    fecha_foto, archivo, cartera, servicio, periodo, tramo, dia_vencimiento, grupo_vencimiento,
    rango_deuda, dia_gestion, es_dia_habil, cuentas, clientes, cuentas_gestionables, deuda_asig,
    deuda_act, cuentas_gestionadas, cuentas_sg, cuentas_cd, cuentas_ci, cuentas_sc, cuentas_pdp,
    cuentas_pagadoras, recupero, pagos, gestiones, gestiones_ce, gestiones_cne, gestiones_pdp,
    gestiones_bot, gestiones_humano)
SELECT e.fecha, e.archivo, cc.cartera, cc.servicio, d.periodo, cc.tramo, cc.dia_vencimiento,
       cc.grupo_vencimiento, cc.rango_deuda, d.dia_gestion, d.es_dia_habil,
       count(*),
       count(*) FILTER (WHERE cc.es_principal_cliente),
       count(*) FILTER (WHERE e.es_gestionable),
       sum(cc.deuda_asignada),
       sum(e.deuda_actual),
       count(*) FILTER (WHERE e.es_gestionada),
       count(*) FILTER (WHERE NOT e.es_gestionada),
       count(*) FILTER (WHERE e.es_cd),
       count(*) FILTER (WHERE e.es_ci),
       count(*) FILTER (WHERE e.es_sc),
       count(*) FILTER (WHERE e.tiene_pdp),
       count(*) FILTER (WHERE e.es_pagadora),
       sum(e.pagado_acum),
       sum(e.pagos_acum),
       sum(e.gp_acum),
       sum(e.gp_ce_acum),
       sum(e.gp_cne_acum),
       sum(e.gp_pdp_acum),
       sum(e.gp_bot_acum),
       sum(e.gp_humano_acum)
  FROM aux.cuenta_estado_diario e
  JOIN aux.cuenta_campana cc ON cc.archivo = e.archivo AND cc.cuenta = e.cuenta
  JOIN aux.campana_dia d ON d.archivo = e.archivo AND d.fecha = e.fecha
 WHERE pg_temp.full_refresh()
    OR e.fecha = ANY (pg_temp.changed_days())
 GROUP BY e.fecha, e.archivo, cc.cartera, cc.servicio, d.periodo, cc.tramo, cc.dia_vencimiento,
          cc.grupo_vencimiento, cc.rango_deuda, d.dia_gestion, d.es_dia_habil;
