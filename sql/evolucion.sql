-- mart.evolucion — the dashboard's counters by management day, for the evolution charts.
--
-- Grain:       (fecha_foto, archivo, servicio) on the campaign's business days; dia_gestion is
--              the x axis (business days since opening), comparable across campaigns.
-- Inputs:      mart.dashboard.
-- Rule:        cumulative counters as in the dashboard (a weekend's activity shows on the next
--              business day). Series per cartera = sum of the campaigns' rows with the same
--              dia_gestion; percentages are computed after summing (docs/kpis.md).
-- Incremental: exactly the photo dates the dashboard rewrote are replaced.

DELETE FROM mart.evolucion
 WHERE pg_temp.full_refresh()
    OR fecha_foto = ANY (pg_temp.changed_days());

INSERT INTO mart.evolucion (
    fecha_foto, archivo, servicio, cartera, periodo, dia_gestion, cuentas, clientes,
    cuentas_gestionables, deuda_asig, deuda_act, cuentas_gestionadas, cuentas_cd, cuentas_ci,
    cuentas_sc, cuentas_pdp, cuentas_pagadoras, recupero, pagos, gestiones, gestiones_ce,
    gestiones_pdp)
SELECT fecha_foto, archivo, servicio, cartera, periodo, dia_gestion,
       sum(cuentas), sum(clientes), sum(cuentas_gestionables), sum(deuda_asig), sum(deuda_act),
       sum(cuentas_gestionadas), sum(cuentas_cd), sum(cuentas_ci), sum(cuentas_sc),
       sum(cuentas_pdp), sum(cuentas_pagadoras), sum(recupero), sum(pagos), sum(gestiones),
       sum(gestiones_ce), sum(gestiones_pdp)
  FROM mart.dashboard
 WHERE es_dia_habil
   AND (pg_temp.full_refresh()
        OR fecha_foto = ANY (pg_temp.changed_days()))
 GROUP BY fecha_foto, archivo, servicio, cartera, periodo, dia_gestion;
