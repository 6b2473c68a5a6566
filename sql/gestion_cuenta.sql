-- aux.gestion_cuenta — bridge interaction ↔ (campaign, account).
--
-- Grain:       (canal, gestion_uid, archivo, cuenta).
-- Inputs:      aux.gestion, aux.cuenta_campana, aux.campana, aux.campana_dia.
-- Rules:       an interaction is about a client (document = cod_luna); it is linked to every
--              account of that client in every campaign whose days contain the interaction's Lima
--              date (inclusive bounds: an interaction at 23:30 Lima on the closing day is in,
--              W-29). Account-level KPIs (managed, contacted, PDP accounts) use all rows.
--              es_principal marks exactly one row per linked interaction — the campaign opened
--              last (then the smallest archivo), and there the client's principal account — so
--              interaction-level counters (gestiones, contactos, PDP) count each interaction
--              once (W-25) and stay additive over any grouping.
-- Incremental: the changed days are exact here (an interaction's links depend only on its own
--              day's campaigns and universe), so exactly those Lima days are rebuilt and reported.

DELETE FROM aux.gestion_cuenta
 WHERE pg_temp.full_refresh()
    OR fecha = ANY (pg_temp.changed_days());

INSERT INTO aux.gestion_cuenta (canal, gestion_uid, archivo, cuenta, fecha, cod_luna, es_principal)
WITH candidatos AS (
    SELECT g.canal, g.gestion_uid, g.fecha, g.cod_luna, cc.archivo, cc.cuenta,
           cc.es_principal_cliente, c.fecha_apertura
      FROM aux.gestion g
      JOIN aux.cuenta_campana cc ON cc.cod_luna = g.cod_luna
      JOIN aux.campana_dia d ON d.archivo = cc.archivo AND d.fecha = g.fecha
      JOIN aux.campana c ON c.archivo = cc.archivo
     WHERE pg_temp.full_refresh()
        OR g.fecha = ANY (pg_temp.changed_days())
), campana_elegida AS (
    SELECT DISTINCT ON (canal, gestion_uid) canal, gestion_uid, archivo
      FROM candidatos
     ORDER BY canal, gestion_uid, fecha_apertura DESC, archivo
)
SELECT c.canal, c.gestion_uid, c.archivo, c.cuenta, c.fecha, c.cod_luna,
       c.archivo = e.archivo AND c.es_principal_cliente
  FROM candidatos c
  JOIN campana_elegida e USING (canal, gestion_uid);
