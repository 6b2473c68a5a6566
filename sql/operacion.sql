-- mart.operacion — the operation page: interactions per day, hour, channel, attempt and queue.
--
-- Grain:       (fecha, hora, canal, intento, cola, archivo); Lima day and hour (W-36), canal
--              BOT | HUMANO, intento = rank of the interaction for its client that day, cola =
--              the dialer's campaign_name, archivo = the campaign the interaction is attributed
--              to (its principal bridge row) or SIN_CAMPANA.
-- Inputs:      aux.gestion, aux.gestion_cuenta, aux.campana.
-- Rule:        each interaction counted once (one row per interaction in aux.gestion). Nothing
--              is simulated (W-34): no interactions → no rows.
-- Incremental: exactly the Lima days whose interactions or links changed are replaced.

DELETE FROM mart.operacion
 WHERE pg_temp.full_refresh()
    OR fecha = ANY (pg_temp.changed_days());

INSERT INTO mart.operacion (
    fecha, hora, canal, intento, cola, archivo, cartera, gestiones, contactos_efectivos,
    contactos_no_efectivos, no_contactos, sin_clasificar, sin_homologar, pdp, peso_total,
    duracion_total)
SELECT g.fecha, g.hora, g.canal, g.intento, g.cola,
       coalesce(gc.archivo, 'SIN_CAMPANA'), coalesce(c.cartera, 'SIN_CAMPANA'),
       count(*),
       count(*) FILTER (WHERE g.clase_contacto = 'CONTACTO_EFECTIVO'),
       count(*) FILTER (WHERE g.clase_contacto = 'CONTACTO_NO_EFECTIVO'),
       count(*) FILTER (WHERE g.clase_contacto = 'NO_CONTACTO'),
       count(*) FILTER (WHERE g.clase_contacto = 'SIN_CLASIFICAR'),
       count(*) FILTER (WHERE g.clase_contacto = 'SIN_HOMOLOGAR'),
       count(*) FILTER (WHERE g.es_pdp),
       sum(g.peso),
       sum(coalesce(g.duracion, 0))
  FROM aux.gestion g
  LEFT JOIN aux.gestion_cuenta gc
    ON gc.canal = g.canal AND gc.gestion_uid = g.gestion_uid AND gc.es_principal
  LEFT JOIN aux.campana c ON c.archivo = gc.archivo
 WHERE pg_temp.full_refresh()
    OR g.fecha = ANY (pg_temp.changed_days())
 GROUP BY 1, 2, 3, 4, 5, 6, 7;
