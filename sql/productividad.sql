-- mart.productividad — the productivity page: human interactions per agent, day and campaign.
--
-- Grain:       (fecha, correo_agente, archivo): Lima day, the agent's e-mail (lower-cased;
--              SIN_CORREO when missing), the attributed campaign or SIN_CAMPANA.
-- Inputs:      aux.gestion (canal HUMANO, agent name/DNI from raw.ejecutivos), aux.gestion_cuenta,
--              aux.campana.
-- Rule:        each interaction counted once; nothing is invented (no team or score heuristics,
--              W-34). clientes = distinct clients of the agent that day in that campaign (not
--              additive across days or campaigns: use it per row only). Recovery credited to
--              agents is an open question (docs/kpis.md) and is not computed.
-- Incremental: exactly the Lima days whose interactions or links changed are replaced.

DELETE FROM mart.productividad
 WHERE pg_temp.full_refresh()
    OR fecha = ANY (pg_temp.changed_days());

INSERT INTO mart.productividad (
    fecha, correo_agente, archivo, nombre_agente, documento_agente, cartera, gestiones,
    contactos_efectivos, contactos_no_efectivos, pdp, monto_compromiso, clientes, peso_total,
    duracion_total, primera_gestion, ultima_gestion)
SELECT g.fecha,
       coalesce(g.correo_agente, 'SIN_CORREO'),
       coalesce(gc.archivo, 'SIN_CAMPANA'),
       min(g.nombre_agente),
       min(g.documento_agente),
       coalesce(min(c.cartera), 'SIN_CAMPANA'),
       count(*),
       count(*) FILTER (WHERE g.es_contacto_efectivo),
       count(*) FILTER (WHERE g.es_contacto_no_efectivo),
       count(*) FILTER (WHERE g.es_pdp),
       coalesce(sum(g.monto_compromiso) FILTER (WHERE g.es_pdp), 0),
       count(DISTINCT g.cod_luna),
       sum(g.peso),
       sum(coalesce(g.duracion, 0)),
       min(g.ts),
       max(g.ts)
  FROM aux.gestion g
  LEFT JOIN aux.gestion_cuenta gc
    ON gc.canal = g.canal AND gc.gestion_uid = g.gestion_uid AND gc.es_principal
  LEFT JOIN aux.campana c ON c.archivo = gc.archivo
 WHERE g.canal = 'HUMANO'
   AND (pg_temp.full_refresh()
        OR g.fecha = ANY (pg_temp.changed_days()))
 GROUP BY 1, 2, 3;
