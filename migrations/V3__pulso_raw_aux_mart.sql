-- Pulso's business layers: raw (the nine source tables as loaded), aux (normalised, homologated,
-- deduplicated facts and the daily account state) and mart (pre-aggregated, additive counters the
-- API reads). Plain PostgreSQL (no TimescaleDB).
--
-- Schema names are fixed (raw, aux, mart) and carry no tenant UID: one Pulso project = one database.
-- The project UID only appears in BigQuery table names, which pipelines.yaml takes from the
-- environment (PULSO_UID). Every table of these schemas is created here, never by a load
-- (`create_target: false` in the pipelines), so the DDL has one owner.
--
-- Idempotent (IF NOT EXISTS / OR REPLACE) so that re-applying on an existing database is harmless.
-- The SQL that fills aux and mart lives in sql/*.sql (one build per file); docs/kpis.md defines
-- every counter and KPI.

CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS aux;
CREATE SCHEMA IF NOT EXISTS mart;

-- ───────────────────────────────────────── raw ─────────────────────────────────────────
-- Column names are the lower-case BigQuery names; ids are text (canonical integer text), money is
-- numeric(15,2). Derived key columns (fecha_asignacion, fecha_proceso, fecha_gestion) are computed
-- by the source query in America/Lima.

-- Campaign calendar: one row per campaign file and calendar month it spans.
CREATE TABLE IF NOT EXISTS raw.calendario (
    archivo                       text NOT NULL,      -- campaign file WITHOUT ".txt"
    periodo_date                  date NOT NULL,      -- first day of the period
    tipo_cartera                  text,
    fecha_apertura                date NOT NULL,      -- incremental column (date)
    fecha_trandeuda               date,
    fecha_cierre                  date,               -- NULL: campaign still open
    fecha_cierre_planificada      date,
    duracion_campana_dias_habiles integer,
    anno_asignacion               integer,
    periodo_asignacion            text,
    es_cartera_abierta            boolean,
    rango_vencimiento             text,
    estado_cartera                text,
    periodo_mes                   text,
    tipo_ciclo_campana            text,
    categoria_duracion            text,
    PRIMARY KEY (archivo, periodo_date)
);

-- Accounts assigned to a campaign file; a re-delivery of the file on another day is another row.
CREATE TABLE IF NOT EXISTS raw.asignaciones (
    cod_luna          text NOT NULL,   -- client
    cuenta            text NOT NULL,   -- account (= trandeuda.cod_cuenta)
    archivo           text NOT NULL,   -- campaign file WITH ".txt"
    fecha_asignacion  date NOT NULL,   -- Lima date of creado_el
    cliente           text,
    telefono          text,
    tramo_gestion     text,
    min_vto           date,
    negocio           text,
    dias_sin_trafico  text,
    decil_contacto    integer,
    decil_pago        integer,
    zona              text,
    rango_renta       integer,
    campania_act      text,
    creado_el         timestamptz,     -- incremental column (load time)
    PRIMARY KEY (cod_luna, cuenta, archivo, fecha_asignacion)
);
CREATE INDEX IF NOT EXISTS asignaciones_fecha ON raw.asignaciones (fecha_asignacion);

-- Daily debt snapshots: one row per account, document and snapshot file.
CREATE TABLE IF NOT EXISTS raw.trandeuda (
    cod_cuenta        text NOT NULL,
    nro_documento     text NOT NULL,
    archivo           text NOT NULL,   -- snapshot file (not a campaign)
    fecha_proceso     date NOT NULL,   -- snapshot date = Lima date of creado_el
    fecha_vencimiento date,
    monto_exigible    numeric(15,2),   -- > 0 (filtered at the source)
    creado_el         timestamptz,
    PRIMARY KEY (cod_cuenta, nro_documento, archivo, fecha_proceso)
);
CREATE INDEX IF NOT EXISTS trandeuda_fecha ON raw.trandeuda (fecha_proceso);
CREATE INDEX IF NOT EXISTS trandeuda_documento ON raw.trandeuda (nro_documento, fecha_proceso);

-- Payments as delivered: the same payment re-delivered in several files is one row per file.
CREATE TABLE IF NOT EXISTS raw.pagos (
    nro_documento   text NOT NULL,
    fecha_pago      date NOT NULL,
    monto_cancelado numeric(15,2) NOT NULL,
    archivo         text NOT NULL,     -- payments file (not a campaign)
    cod_sistema     text,
    creado_el       timestamptz,
    PRIMARY KEY (nro_documento, fecha_pago, monto_cancelado, archivo)
);
CREATE INDEX IF NOT EXISTS pagos_fecha ON raw.pagos (fecha_pago);

-- Bot interactions. "date" is the source's zone-less Lima wall-clock time.
CREATE TABLE IF NOT EXISTS raw.voicebot_gestiones (
    uid              text PRIMARY KEY,
    campaign_id      text,
    campaign_name    text,
    document         text,             -- client = asignaciones.cod_luna
    phone            text,
    "date"           timestamp,        -- incremental column (datetime, Lima)
    fecha_gestion    date,             -- date of "date" (Lima)
    management       text,
    sub_management   text,
    weight           integer,
    origin           text,
    fecha_compromiso date,
    compromiso       text,
    observacion      text,
    project          text,
    client           text,
    duracion         integer,
    id_telephony     text,
    url_record_bot   text
);
CREATE INDEX IF NOT EXISTS voicebot_gestiones_fecha ON raw.voicebot_gestiones (fecha_gestion);

-- Human (call-centre agent) interactions.
CREATE TABLE IF NOT EXISTS raw.mibotair_gestiones (
    uid              text PRIMARY KEY,
    campaign_id      text,
    campaign_name    text,
    document         text,
    phone            text,
    "date"           timestamp,        -- incremental column (datetime, Lima)
    fecha_gestion    date,
    management       text,
    sub_management   text,
    weight           integer,
    origin           text,
    n1               text,
    n2               text,
    n3               text,
    observacion      text,
    extra            text,
    project          text,
    client           text,
    nombre_agente    text,
    correo_agente    text,
    duracion         integer,
    monto_compromiso numeric(15,2),
    fecha_compromiso date,
    url              text
);
CREATE INDEX IF NOT EXISTS mibotair_gestiones_fecha ON raw.mibotair_gestiones (fecha_gestion);

-- Homologation rules (dimensions, full refresh). Rule keys are NOT NULL: a NULL source level is
-- loaded as '' (empty string), so rules with missing levels are kept and matched null-safely.
CREATE TABLE IF NOT EXISTS raw.homologacion_mibotair (
    n_1             text NOT NULL,
    n_2             text NOT NULL,
    n_3             text NOT NULL,
    management      text,
    peso            integer,
    contactabilidad text,
    tipo_gestion    text,
    codigo_rpta     text,
    pdp             text,
    gestor          text,
    PRIMARY KEY (n_1, n_2, n_3)
);

CREATE TABLE IF NOT EXISTS raw.homologacion_voicebot (
    bot_management             text NOT NULL,
    bot_sub_management         text NOT NULL,
    bot_compromiso             text NOT NULL,
    n1_homologado              text,
    n2_homologado              text,
    n3_homologado              text,
    contactabilidad_homologada text,
    es_pdp_homologado          boolean,
    peso_homologado            integer,
    PRIMARY KEY (bot_management, bot_sub_management, bot_compromiso)
);

CREATE TABLE IF NOT EXISTS raw.ejecutivos (
    correo_name text PRIMARY KEY,      -- lower-cased, trimmed e-mail/login
    document    text,
    nombre      text
);

-- ───────────────────────────────────── business rules ─────────────────────────────────────
-- One function per derivation rule; tests/kpis.rs unit-tests each of them.

-- Campaign id: the campaign file name without ".txt" (calendario spells it without, asignaciones with).
CREATE OR REPLACE FUNCTION aux.campana_id(archivo text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT regexp_replace(btrim(archivo), '\.txt$', '', 'i') $$;

-- Canonical text of an id: trimmed; an integer written with leading zeros or a ".0" suffix becomes
-- its plain digits ("00123" and "123.0" → "123"); anything else is kept as trimmed text; '' → NULL.
CREATE OR REPLACE FUNCTION aux.id_canonico(id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE
            WHEN btrim(id) ~ '^[0-9]+(\.0+)?$'
                THEN coalesce(nullif(ltrim(split_part(btrim(id), '.', 1), '0'), ''), '0')
            ELSE nullif(btrim(id), '')
          END $$;

-- [pulso-flow] cartera from the campaign file name, POC order, case-insensitive substring match:
-- TEMPRANA → TEMPRANA; else CF_ANN → CUOTA_FRACCIONAMIENTO; else AN → ALTAS_NUEVAS; else OTRAS.
CREATE OR REPLACE FUNCTION aux.cartera(archivo text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE
            WHEN strpos(upper(coalesce(archivo, '')), 'TEMPRANA') > 0 THEN 'TEMPRANA'
            WHEN strpos(upper(coalesce(archivo, '')), 'CF_ANN') > 0 THEN 'CUOTA_FRACCIONAMIENTO'
            WHEN strpos(upper(coalesce(archivo, '')), 'AN') > 0 THEN 'ALTAS_NUEVAS'
            ELSE 'OTRAS'
          END $$;

-- [pulso-flow] servicio: MOVIL when negocio is MOVIL (any case, accent, spaces), otherwise FIJA.
CREATE OR REPLACE FUNCTION aux.servicio(negocio text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN translate(upper(btrim(coalesce(negocio, ''))), 'Ó', 'O') = 'MOVIL'
               THEN 'MOVIL' ELSE 'FIJA' END $$;

-- Due-day group of an account (day of month of min_vto): {1,5} GRUPO_1_5, {9,13} GRUPO_9_13,
-- {17,21,25} GRUPO_17_25, other days DIA_<n>, unknown SIN_VTO.
CREATE OR REPLACE FUNCTION aux.grupo_vencimiento(dia integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE
            WHEN dia IS NULL OR dia = 0 THEN 'SIN_VTO'
            WHEN dia IN (1, 5) THEN 'GRUPO_1_5'
            WHEN dia IN (9, 13) THEN 'GRUPO_9_13'
            WHEN dia IN (17, 21, 25) THEN 'GRUPO_17_25'
            ELSE 'DIA_' || dia
          END $$;

-- [pulso-flow] debt bracket of an account's assigned debt (soles, lower bound inclusive).
CREATE OR REPLACE FUNCTION aux.rango_deuda(deuda numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE
            WHEN deuda IS NULL OR deuda <= 0 THEN 'SIN_DEUDA'
            WHEN deuda < 100 THEN '0-99'
            WHEN deuda < 500 THEN '100-499'
            WHEN deuda < 1000 THEN '500-999'
            WHEN deuda < 3000 THEN '1000-2999'
            ELSE '3000+'
          END $$;

-- Periodo (YYYY-MM) of a campaign on day d (BQ POC rule): the opening month until the month of the
-- close begins, then the closing month. Open campaigns stay in their opening month.
CREATE OR REPLACE FUNCTION aux.periodo(apertura date, cierre date, d date) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE
            WHEN d >= date_trunc('month', apertura)::date
             AND d < date_trunc('month', coalesce(cierre, (d + interval '1 month')::date))::date
                THEN to_char(apertura, 'YYYY-MM')
            ELSE to_char(coalesce(cierre, apertura), 'YYYY-MM')
          END $$;

-- Contact class of a homologated contactabilidad text: CONTACTO_EFECTIVO (direct),
-- CONTACTO_NO_EFECTIVO (indirect), NO_CONTACTO, or SIN_CLASIFICAR for any other text.
-- ("Contacto Efectivo", "Contacto_Efectivo", "CONTACTO  EFECTIVO" are the same class.)
-- Unmatched interactions do not reach this function: they are SIN_HOMOLOGAR.
CREATE OR REPLACE FUNCTION aux.clase_contacto(contactabilidad text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE regexp_replace(upper(btrim(translate(coalesce(contactabilidad, ''), '_', ' '))), '\s+', ' ', 'g')
            WHEN 'CONTACTO EFECTIVO' THEN 'CONTACTO_EFECTIVO'
            WHEN 'CONTACTO NO EFECTIVO' THEN 'CONTACTO_NO_EFECTIVO'
            WHEN 'NO CONTACTO' THEN 'NO_CONTACTO'
            ELSE 'SIN_CLASIFICAR'
          END $$;

-- Priority of a contact class when two interactions have the same weight (higher is better).
CREATE OR REPLACE FUNCTION aux.prioridad_clase(clase text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE clase
            WHEN 'CONTACTO_EFECTIVO' THEN 4
            WHEN 'CONTACTO_NO_EFECTIVO' THEN 3
            WHEN 'NO_CONTACTO' THEN 2
            WHEN 'SIN_CLASIFICAR' THEN 1
            ELSE 0                              -- SIN_HOMOLOGAR
          END $$;

-- The class encoded in a "best interaction" score (peso * 10 + prioridad), see cuenta_estado_diario.
CREATE OR REPLACE FUNCTION aux.clase_de_puntaje(puntaje integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN puntaje IS NULL THEN NULL
               ELSE CASE ((puntaje % 10) + 10) % 10
                        WHEN 4 THEN 'CONTACTO_EFECTIVO'
                        WHEN 3 THEN 'CONTACTO_NO_EFECTIVO'
                        WHEN 2 THEN 'NO_CONTACTO'
                        WHEN 1 THEN 'SIN_CLASIFICAR'
                        ELSE 'SIN_HOMOLOGAR'
                    END
          END $$;

-- Assignments are looked up by campaign id (their file name without ".txt").
CREATE INDEX IF NOT EXISTS asignaciones_campana ON raw.asignaciones (aux.campana_id(archivo));

-- ───────────────────────────────────────── aux ─────────────────────────────────────────

-- Holidays excluded from business days (empty by default: the business has not decided whether
-- Peruvian holidays count; add rows with a new migration and run with --full-refresh).
CREATE TABLE IF NOT EXISTS aux.feriados (
    fecha  date PRIMARY KEY,
    nombre text NOT NULL
);

-- Business-day calendar. Built by sql/calendario_habiles.sql.
CREATE TABLE IF NOT EXISTS aux.calendario_habiles (
    fecha                  date PRIMARY KEY,
    anio                   integer NOT NULL,
    mes                    integer NOT NULL,
    dia                    integer NOT NULL,
    dia_semana             integer NOT NULL,   -- ISO: 1 = Monday … 7 = Sunday
    nombre_dia             text NOT NULL,      -- Lunes … Domingo
    es_fin_de_semana       boolean NOT NULL,
    es_feriado             boolean NOT NULL,
    es_dia_habil           boolean NOT NULL,   -- Monday–Friday and not a holiday
    dia_habil_del_mes      integer,            -- 1-based ordinal; NULL on non-business days
    total_dias_habiles_mes integer NOT NULL
);

-- One row per campaign (the calendar's per-period rows collapsed). Built by sql/campana.sql.
CREATE TABLE IF NOT EXISTS aux.campana (
    archivo                  text PRIMARY KEY,  -- campaign id: file name without ".txt"
    tipo_cartera             text,
    cartera                  text NOT NULL,     -- aux.cartera(archivo)
    estado_cartera           text,
    fecha_apertura           date NOT NULL,
    fecha_cierre             date,              -- NULL: open
    fecha_cierre_planificada date,
    fecha_trandeuda          date,
    fecha_fin                date,              -- last day in campana_dia: LEAST(fecha_cierre, latest snapshot)
    duracion_dias_habiles    integer,           -- from the calendar (planned)
    periodos                 integer NOT NULL   -- calendar rows collapsed
);

-- The days of each campaign with their numbering: every day from fecha_apertura to fecha_cierre,
-- or, for an open campaign, to the latest debt snapshot loaded (photos need a snapshot).
CREATE TABLE IF NOT EXISTS aux.campana_dia (
    archivo      text NOT NULL,
    fecha        date NOT NULL,
    dia_campana  integer NOT NULL,   -- calendar days since opening + 1
    dia_gestion  integer NOT NULL,   -- business days in [fecha_apertura, fecha] (management day)
    es_dia_habil boolean NOT NULL,
    es_dia_cierre boolean NOT NULL,  -- fecha = fecha_cierre
    periodo      text NOT NULL,      -- aux.periodo(apertura, cierre, fecha)
    PRIMARY KEY (archivo, fecha)
);
CREATE INDEX IF NOT EXISTS campana_dia_fecha ON aux.campana_dia (fecha);

-- Debt per account and snapshot day (Σ of its documents). Built by sql/deuda_diaria.sql.
CREATE TABLE IF NOT EXISTS aux.deuda_cuenta_dia (
    fecha      date NOT NULL,
    cuenta     text NOT NULL,
    deuda      numeric(15,2) NOT NULL,
    documentos integer NOT NULL,
    PRIMARY KEY (fecha, cuenta)
);
CREATE INDEX IF NOT EXISTS deuda_cuenta_dia_cuenta ON aux.deuda_cuenta_dia (cuenta, fecha);

-- The snapshot days that exist (a day without a trandeuda file is not a snapshot day).
CREATE TABLE IF NOT EXISTS aux.snapshot_dia (
    fecha   date PRIMARY KEY,
    cuentas integer NOT NULL,
    deuda   numeric(18,2) NOT NULL
);

-- One row per (campaign, account): the campaign's universe with its dimensions and assigned debt.
-- Built by sql/cuenta_campana.sql.
CREATE TABLE IF NOT EXISTS aux.cuenta_campana (
    archivo                   text NOT NULL,
    cuenta                    text NOT NULL,
    cod_luna                  text NOT NULL,
    cartera                   text NOT NULL,
    es_principal_cliente      boolean NOT NULL,  -- one account per (campaign, client): counts clients
    fecha_asignacion          date NOT NULL,     -- first delivery of the account in this campaign
    entregas                  integer NOT NULL,  -- assignment rows (re-deliveries) seen
    tramo                     text NOT NULL,
    negocio                   text,
    servicio                  text NOT NULL,
    min_vto                   date,
    dia_vencimiento           integer NOT NULL,  -- day of month of min_vto, 0 if unknown
    grupo_vencimiento         text NOT NULL,
    zona                      text,
    decil_contacto            integer,
    decil_pago                integer,
    fecha_snapshot_asignacion date,              -- snapshot that defines the assigned debt
    deuda_asignada            numeric(15,2) NOT NULL,
    rango_deuda               text NOT NULL,
    PRIMARY KEY (archivo, cuenta)
);
CREATE INDEX IF NOT EXISTS cuenta_campana_cliente ON aux.cuenta_campana (cod_luna);
CREATE INDEX IF NOT EXISTS cuenta_campana_cuenta ON aux.cuenta_campana (cuenta);

-- One row per interaction (bot or human), homologated, with Lima date/hour. sql/gestion.sql.
CREATE TABLE IF NOT EXISTS aux.gestion (
    canal                   text NOT NULL CHECK (canal IN ('BOT', 'HUMANO')),
    gestion_uid             text NOT NULL,
    ts                      timestamptz NOT NULL,
    fecha                   date NOT NULL,      -- Lima date
    hora                    integer NOT NULL CHECK (hora BETWEEN 0 AND 23),  -- Lima hour
    intento                 integer NOT NULL,   -- rank of the interaction for the client that day
    cod_luna                text,               -- client (canonical id); NULL if the source has none
    cola                    text NOT NULL,      -- dialer campaign_name ('SIN_COLA')
    codigo_1                text,               -- raw codes: management/sub_management/compromiso
    codigo_2                text,               --   (BOT) or n1/n2/n3 (HUMANO)
    codigo_3                text,
    homologado              boolean NOT NULL,   -- a homologation rule matched
    nivel_1                 text,
    nivel_2                 text,
    nivel_3                 text,
    contactabilidad         text,               -- as homologated; 'SIN_HOMOLOGAR' when no rule matched
    clase_contacto          text NOT NULL,      -- CONTACTO_EFECTIVO | CONTACTO_NO_EFECTIVO | NO_CONTACTO | SIN_CLASIFICAR | SIN_HOMOLOGAR
    es_contacto_efectivo    boolean NOT NULL,
    es_contacto_no_efectivo boolean NOT NULL,
    es_pdp                  boolean NOT NULL,
    peso                    integer NOT NULL,   -- 0 when unmatched
    monto_compromiso        numeric(15,2),
    fecha_compromiso        date,
    correo_agente           text,
    nombre_agente           text NOT NULL,      -- VOICEBOT for bot interactions
    documento_agente        text NOT NULL,      -- 999 for bot, SIN_DNI when unknown
    duracion                integer,
    PRIMARY KEY (canal, gestion_uid)
);
CREATE INDEX IF NOT EXISTS gestion_fecha ON aux.gestion (fecha);
CREATE INDEX IF NOT EXISTS gestion_cliente ON aux.gestion (cod_luna, fecha);

-- Bridge interaction ↔ (campaign, account): every account of the client in every campaign whose
-- days contain the interaction's Lima date. Exactly one row per matched interaction is
-- es_principal (campaign opened last, then the client's principal account): interaction counters
-- are summed over es_principal rows so each interaction counts once. sql/gestion_cuenta.sql.
CREATE TABLE IF NOT EXISTS aux.gestion_cuenta (
    canal       text NOT NULL,
    gestion_uid text NOT NULL,
    archivo     text NOT NULL,
    cuenta      text NOT NULL,
    fecha       date NOT NULL,
    cod_luna    text NOT NULL,
    es_principal boolean NOT NULL,
    PRIMARY KEY (canal, gestion_uid, archivo, cuenta)
);
CREATE INDEX IF NOT EXISTS gestion_cuenta_fecha ON aux.gestion_cuenta (fecha);
CREATE INDEX IF NOT EXISTS gestion_cuenta_cuenta ON aux.gestion_cuenta (archivo, cuenta, fecha);

-- One row per payment (re-deliveries collapsed), attributed to a campaign. sql/pago.sql.
CREATE TABLE IF NOT EXISTS aux.pago (
    nro_documento   text NOT NULL,
    fecha_pago      date NOT NULL,
    monto_cancelado numeric(15,2) NOT NULL,
    entregas        integer NOT NULL,        -- payment files that delivered it
    primer_archivo  text NOT NULL,
    ultimo_archivo  text NOT NULL,
    primera_carga   timestamptz,
    ultima_carga    timestamptz,
    cod_sistema     text,
    cuenta          text,                    -- account of the document (trandeuda)
    fecha_snapshot  date,                    -- snapshot the account was taken from
    archivo         text,                    -- attributed campaign; NULL = not attributed
    cod_luna        text,
    motivo_no_atribuido text,                -- DOCUMENTO_SIN_CUENTA | FUERA_DE_CAMPANA
    PRIMARY KEY (nro_documento, fecha_pago, monto_cancelado)
);
CREATE INDEX IF NOT EXISTS pago_fecha ON aux.pago (fecha_pago);
CREATE INDEX IF NOT EXISTS pago_sin_cuenta ON aux.pago (fecha_pago) WHERE cuenta IS NULL;

-- Attributed payments per account and day. sql/pago_diario.sql.
CREATE TABLE IF NOT EXISTS aux.pago_diario (
    fecha    date NOT NULL,
    archivo  text NOT NULL,
    cuenta   text NOT NULL,
    cod_luna text NOT NULL,
    monto    numeric(15,2) NOT NULL,
    pagos    integer NOT NULL,
    PRIMARY KEY (fecha, archivo, cuenta)
);
CREATE INDEX IF NOT EXISTS pago_diario_cuenta ON aux.pago_diario (archivo, cuenta, fecha);

-- Daily state of every assigned account on every day of its campaign (from its assignment on).
-- Cumulative counters run from the campaign's opening to `fecha`. sql/cuenta_estado_diario.sql.
CREATE TABLE IF NOT EXISTS aux.cuenta_estado_diario (
    fecha                 date NOT NULL,
    archivo               text NOT NULL,
    cuenta                text NOT NULL,
    cod_luna              text NOT NULL,
    fecha_snapshot        date,             -- latest snapshot day <= fecha
    en_trandeuda          boolean NOT NULL, -- the account is in that snapshot
    deuda_actual          numeric(15,2) NOT NULL,  -- its debt there (0 if absent)
    es_gestionable        boolean NOT NULL, -- deuda_actual >= 1
    motivo_no_gestionable text,             -- NULL | NO_ESTA_EN_TRANDEUDA | DEUDA_MENOR_A_1
    pagado_dia            numeric(15,2) NOT NULL,
    pagado_acum           numeric(15,2) NOT NULL,
    pagos_acum            integer NOT NULL,
    es_pagadora           boolean NOT NULL, -- pagado_acum > 0
    gestiones_dia         integer NOT NULL, -- interactions touching the account that day (client level)
    gestiones_acum        integer NOT NULL,
    es_gestionada         boolean NOT NULL, -- gestiones_acum > 0
    mejor_puntaje         integer,          -- best interaction: peso * 10 + class priority
    mejor_clase           text,             -- its contact class (NULL if not managed)
    es_cd                 boolean NOT NULL, -- best class CONTACTO_EFECTIVO
    es_ci                 boolean NOT NULL, -- best class CONTACTO_NO_EFECTIVO
    es_sc                 boolean NOT NULL, -- managed, best class neither of those
    tiene_pdp             boolean NOT NULL, -- some interaction with a promise to pay
    gp_acum               integer NOT NULL, -- principal interactions (each interaction once)
    gp_ce_acum            integer NOT NULL, --   … with effective contact
    gp_cne_acum           integer NOT NULL, --   … with non-effective contact
    gp_pdp_acum           integer NOT NULL, --   … with a promise to pay
    gp_bot_acum           integer NOT NULL,
    gp_humano_acum        integer NOT NULL,
    fecha_ultima_gestion  date,
    PRIMARY KEY (fecha, archivo, cuenta)
);
CREATE INDEX IF NOT EXISTS cuenta_estado_diario_cuenta ON aux.cuenta_estado_diario (archivo, cuenta, fecha);

-- ───────────────────────────────────────── mart ─────────────────────────────────────────
-- Every measure is an additive counter or sum: the API sums rows of any grouping, then divides
-- (docs/kpis.md). Never averages of percentages.

-- Dashboard: per photo date, campaign and dimensions; counters cumulative from the opening.
CREATE TABLE IF NOT EXISTS mart.dashboard (
    fecha_foto           date NOT NULL,
    archivo              text NOT NULL,
    cartera              text NOT NULL,
    servicio             text NOT NULL,
    periodo              text NOT NULL,
    tramo                text NOT NULL,
    dia_vencimiento      integer NOT NULL,
    grupo_vencimiento    text NOT NULL,
    rango_deuda          text NOT NULL,
    dia_gestion          integer NOT NULL,
    es_dia_habil         boolean NOT NULL,
    cuentas              integer NOT NULL,
    clientes             integer NOT NULL,
    cuentas_gestionables integer NOT NULL,
    deuda_asig           numeric(18,2) NOT NULL,
    deuda_act            numeric(18,2) NOT NULL,
    cuentas_gestionadas  integer NOT NULL,
    cuentas_sg           integer NOT NULL,
    cuentas_cd           integer NOT NULL,
    cuentas_ci           integer NOT NULL,
    cuentas_sc           integer NOT NULL,
    cuentas_pdp          integer NOT NULL,
    cuentas_pagadoras    integer NOT NULL,
    recupero             numeric(18,2) NOT NULL,
    pagos                integer NOT NULL,
    gestiones            integer NOT NULL,
    gestiones_ce         integer NOT NULL,
    gestiones_cne        integer NOT NULL,
    gestiones_pdp        integer NOT NULL,
    gestiones_bot        integer NOT NULL,
    gestiones_humano     integer NOT NULL,
    PRIMARY KEY (fecha_foto, archivo, servicio, tramo, dia_vencimiento, rango_deuda)
);
CREATE INDEX IF NOT EXISTS dashboard_cartera ON mart.dashboard (cartera, fecha_foto);

-- Evolution: the dashboard's counters per campaign, servicio and business day (dia_gestion).
CREATE TABLE IF NOT EXISTS mart.evolucion (
    fecha_foto           date NOT NULL,
    archivo              text NOT NULL,
    servicio             text NOT NULL,
    cartera              text NOT NULL,
    periodo              text NOT NULL,
    dia_gestion          integer NOT NULL,
    cuentas              integer NOT NULL,
    clientes             integer NOT NULL,
    cuentas_gestionables integer NOT NULL,
    deuda_asig           numeric(18,2) NOT NULL,
    deuda_act            numeric(18,2) NOT NULL,
    cuentas_gestionadas  integer NOT NULL,
    cuentas_cd           integer NOT NULL,
    cuentas_ci           integer NOT NULL,
    cuentas_sc           integer NOT NULL,
    cuentas_pdp          integer NOT NULL,
    cuentas_pagadoras    integer NOT NULL,
    recupero             numeric(18,2) NOT NULL,
    pagos                integer NOT NULL,
    gestiones            integer NOT NULL,
    gestiones_ce         integer NOT NULL,
    gestiones_pdp        integer NOT NULL,
    PRIMARY KEY (fecha_foto, archivo, servicio)
);
CREATE INDEX IF NOT EXISTS evolucion_cartera ON mart.evolucion (cartera, dia_gestion);

-- Assignment: per month, cartera and servicio, with the previous month's figures on the same row.
CREATE TABLE IF NOT EXISTS mart.asignacion (
    periodo          text NOT NULL,      -- YYYY-MM
    cartera          text NOT NULL,
    servicio         text NOT NULL,
    periodo_anterior text NOT NULL,
    cuentas          integer NOT NULL,
    clientes         integer NOT NULL,
    deuda_asig       numeric(18,2) NOT NULL,
    deuda_act        numeric(18,2) NOT NULL,
    cuentas_ant      integer NOT NULL,
    clientes_ant     integer NOT NULL,
    deuda_asig_ant   numeric(18,2) NOT NULL,
    deuda_act_ant    numeric(18,2) NOT NULL,
    PRIMARY KEY (periodo, cartera, servicio)
);

-- Operation: interactions per Lima day, hour, channel, attempt, dialer queue and campaign.
CREATE TABLE IF NOT EXISTS mart.operacion (
    fecha                  date NOT NULL,
    hora                   integer NOT NULL,
    canal                  text NOT NULL,    -- BOT | HUMANO (display labels belong to the API)
    intento                integer NOT NULL,
    cola                   text NOT NULL,
    archivo                text NOT NULL,    -- attributed campaign, SIN_CAMPANA when none
    cartera                text NOT NULL,
    gestiones              integer NOT NULL,
    contactos_efectivos    integer NOT NULL,
    contactos_no_efectivos integer NOT NULL,
    no_contactos           integer NOT NULL,
    sin_clasificar         integer NOT NULL,
    sin_homologar          integer NOT NULL,
    pdp                    integer NOT NULL,
    peso_total             bigint NOT NULL,
    duracion_total         bigint NOT NULL,
    PRIMARY KEY (fecha, hora, canal, intento, cola, archivo)
);

-- Productivity: human interactions per agent, Lima day and campaign.
CREATE TABLE IF NOT EXISTS mart.productividad (
    fecha                  date NOT NULL,
    correo_agente          text NOT NULL,    -- SIN_CORREO when the source has none
    archivo                text NOT NULL,
    nombre_agente          text NOT NULL,
    documento_agente       text NOT NULL,
    cartera                text NOT NULL,
    gestiones              integer NOT NULL,
    contactos_efectivos    integer NOT NULL,
    contactos_no_efectivos integer NOT NULL,
    pdp                    integer NOT NULL,
    monto_compromiso       numeric(18,2) NOT NULL,
    clientes               integer NOT NULL,
    peso_total             bigint NOT NULL,
    duracion_total         bigint NOT NULL,
    primera_gestion        timestamptz NOT NULL,
    ultima_gestion         timestamptz NOT NULL,
    PRIMARY KEY (fecha, correo_agente, archivo)
);
CREATE INDEX IF NOT EXISTS productividad_agente ON mart.productividad (correo_agente, fecha);
