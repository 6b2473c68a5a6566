-- aux.gestion — unified, homologated interactions: one row per interaction (bot or human).
--
-- Grain:       (canal, gestion_uid); canal BOT (voicebot) or HUMANO (MibotAir), one vocabulary
--              (W-31).
-- Inputs:      raw.voicebot_gestiones, raw.mibotair_gestiones (change_date: fecha_gestion),
--              raw.homologacion_voicebot, raw.homologacion_mibotair, raw.ejecutivos (full refresh,
--              no change date: any change re-homologates everything).
-- Rules:       the source "date" is Lima wall-clock time: ts = date AT TIME ZONE 'America/Lima',
--              fecha and hora are the Lima date and hour (W-36).
--              Homologation is null-safe on ALL rule keys (W-26): both sides compare
--              upper(trim(coalesce(key, ''))); voicebot on (management, sub_management,
--              compromiso), MibotAir on (n1, n2, n3). If normalisation makes two rules collide,
--              the heavier one wins (then the alphabetically first levels), so one interaction
--              never fans out. Unmatched interactions are kept: contactabilidad and
--              clase_contacto SIN_HOMOLOGAR, peso 0, not a contact, not a PDP.
--              PDP: voicebot es_pdp_homologado; MibotAir pdp in (SI, SÍ, 1) (any case).
--              monto_compromiso: the amount the agent typed (humans, when PDP); none for bots.
--              intento = rank of the interaction among the client's interactions of that Lima
--              day (both channels, by time).
-- Incremental: exactly the Lima days the interaction tables wrote are rebuilt (delete + insert);
--              a homologation or agent change rebuilds everything. Reports the same days.

DELETE FROM aux.gestion
 WHERE pg_temp.full_refresh()
    OR fecha = ANY (pg_temp.changed_days());

INSERT INTO aux.gestion (canal, gestion_uid, ts, fecha, hora, intento, cod_luna, cola, codigo_1,
                         codigo_2, codigo_3, homologado, nivel_1, nivel_2, nivel_3, contactabilidad,
                         clase_contacto, es_contacto_efectivo, es_contacto_no_efectivo, es_pdp, peso,
                         monto_compromiso, fecha_compromiso, correo_agente, nombre_agente,
                         documento_agente, duracion)
WITH reglas_bot AS (
    SELECT DISTINCT ON (k1, k2, k3) *
      FROM (SELECT upper(btrim(bot_management)) AS k1, upper(btrim(bot_sub_management)) AS k2,
                   upper(btrim(bot_compromiso)) AS k3, h.*
              FROM raw.homologacion_voicebot h) r
     ORDER BY k1, k2, k3, peso_homologado DESC NULLS LAST, n1_homologado, n2_homologado,
              n3_homologado, contactabilidad_homologada
), reglas_air AS (
    SELECT DISTINCT ON (k1, k2, k3) *
      FROM (SELECT upper(btrim(n_1)) AS k1, upper(btrim(n_2)) AS k2, upper(btrim(n_3)) AS k3, h.*
              FROM raw.homologacion_mibotair h) r
     ORDER BY k1, k2, k3, peso DESC NULLS LAST, management, contactabilidad, pdp
), bot AS (
    SELECT 'BOT'::text AS canal, v.uid, v."date", v.document, v.campaign_name,
           v.management AS codigo_1, v.sub_management AS codigo_2, v.compromiso AS codigo_3,
           r.k1 IS NOT NULL AS homologado,
           r.n1_homologado AS nivel_1, r.n2_homologado AS nivel_2, r.n3_homologado AS nivel_3,
           r.contactabilidad_homologada AS contactabilidad,
           coalesce(r.es_pdp_homologado, false) AS es_pdp,
           coalesce(r.peso_homologado, 0) AS peso,
           NULL::numeric(15,2) AS monto_compromiso,
           v.fecha_compromiso,
           NULL::text AS correo_agente, 'VOICEBOT'::text AS nombre_agente, '999'::text AS documento_agente,
           v.duracion
      FROM raw.voicebot_gestiones v
      LEFT JOIN reglas_bot r
        ON r.k1 = upper(btrim(coalesce(v.management, '')))
       AND r.k2 = upper(btrim(coalesce(v.sub_management, '')))
       AND r.k3 = upper(btrim(coalesce(v.compromiso, '')))
     WHERE (pg_temp.full_refresh()
            OR v.fecha_gestion = ANY (pg_temp.changed_days()))
       AND v."date" IS NOT NULL
), humano AS (
    SELECT 'HUMANO'::text AS canal, m.uid, m."date", m.document, m.campaign_name,
           m.n1, m.n2, m.n3,
           r.k1 IS NOT NULL,
           r.n_1, r.n_2, r.n_3,
           r.contactabilidad,
           coalesce(upper(btrim(r.pdp)) IN ('SI', 'SÍ', '1'), false),
           coalesce(r.peso, 0),
           CASE WHEN coalesce(upper(btrim(r.pdp)) IN ('SI', 'SÍ', '1'), false) THEN m.monto_compromiso END,
           m.fecha_compromiso,
           nullif(lower(btrim(m.correo_agente)), ''),
           coalesce(nullif(btrim(e.nombre), ''), nullif(btrim(m.nombre_agente), ''), 'SIN_NOMBRE'),
           coalesce(nullif(btrim(e.document), ''), 'SIN_DNI'),
           m.duracion
      FROM raw.mibotair_gestiones m
      LEFT JOIN reglas_air r
        ON r.k1 = upper(btrim(coalesce(m.n1, '')))
       AND r.k2 = upper(btrim(coalesce(m.n2, '')))
       AND r.k3 = upper(btrim(coalesce(m.n3, '')))
      LEFT JOIN raw.ejecutivos e ON e.correo_name = lower(btrim(m.correo_agente))
     WHERE (pg_temp.full_refresh()
            OR m.fecha_gestion = ANY (pg_temp.changed_days()))
       AND m."date" IS NOT NULL
), todas AS (
    SELECT * FROM bot
    UNION ALL
    SELECT * FROM humano
), clasificadas AS (
    SELECT t.*,
           t."date" AT TIME ZONE 'America/Lima' AS ts,
           t."date"::date AS fecha,
           extract(hour FROM t."date")::int AS hora,
           aux.id_canonico(t.document) AS cliente,
           CASE WHEN t.homologado THEN aux.clase_contacto(t.contactabilidad) ELSE 'SIN_HOMOLOGAR' END AS clase
      FROM todas t
)
SELECT c.canal, c.uid, c.ts, c.fecha, c.hora,
       row_number() OVER (PARTITION BY coalesce(c.cliente, c.canal || ':' || c.uid), c.fecha
                          ORDER BY c.ts, c.canal, c.uid)::int,
       c.cliente,
       coalesce(nullif(btrim(c.campaign_name), ''), 'SIN_COLA'),
       c.codigo_1, c.codigo_2, c.codigo_3,
       c.homologado, c.nivel_1, c.nivel_2, c.nivel_3,
       CASE WHEN c.homologado THEN c.contactabilidad ELSE 'SIN_HOMOLOGAR' END,
       c.clase,
       c.clase = 'CONTACTO_EFECTIVO',
       c.clase = 'CONTACTO_NO_EFECTIVO',
       c.es_pdp, c.peso, c.monto_compromiso, c.fecha_compromiso, c.correo_agente, c.nombre_agente,
       c.documento_agente, c.duracion
  FROM clasificadas c;
