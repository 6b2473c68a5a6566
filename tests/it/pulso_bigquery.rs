//! The production pipeline file, `pipelines.yaml`, run as is against the BigQuery emulator of
//! `../shared/bqemu`: its nine source queries (casts, Lima dates, business filters, QUALIFY
//! dedup, the typed `@cliente` parameter and the engine's incremental window around each) run in
//! a BigQuery SQL engine, the rows land in raw with the documented rules applied, every aux and
//! mart build runs on them, and a second run changes nothing.
//!
//! The source tables have the columns and types of `../shared/domain/sources.md` and a handful
//! of hand-made rows: one campaign, three accounts of two clients, a debt snapshot with a
//! correction file the same day, two identical payments in one file delivered again the next day,
//! two bot and one agent interaction, homologation rules and agents, plus rows
//! each filter must drop. Without the emulator the test prints why it is skipped (it fails
//! instead with `BQEMU_REQUIRED=1`, as `.ci/run` sets).

use pulso_testkit as common;

use pulso_testkit::bqemu;

use std::path::PathBuf;

use bqemu::{Emulator, emulator, run_cli};
use common::{TestDb, counts, summary_json, text};
use serde_json::{Value, json};
use tokio_postgres::Client;

/// The 20-character project UID embedded in the BigQuery table names.
const UID: &str = "a1b2c3d4e5f6a7b8c9d0";
const CAMPAIGN: &str = "CARTERA_TEMPRANA_MOVIL_20250602";
/// MibotAir client id of this project's agents.
const CLIENT_ID: &str = "7";

const S: &str = "STRING";
const I: &str = "INT64";
const D: &str = "DATE";
const F: &str = "FLOAT64";
const T: &str = "TIMESTAMP";
const DT: &str = "DATETIME";

/// A source table: its BigQuery name, (column, type) pairs and rows.
struct Source {
    table: String,
    columns: Vec<(&'static str, &'static str)>,
    rows: Vec<Value>,
}

fn source(table: String, columns: Vec<(&'static str, &'static str)>, rows: Vec<Value>) -> Source {
    Source {
        table,
        columns,
        rows,
    }
}

/// The columns the bot and agent interaction tables share, then the table's own.
fn interaction_columns(own: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut columns = vec![
        ("uid", S),
        ("campaign_id", S),
        ("campaign_name", S),
        ("document", S),
        ("phone", F),
        ("date", DT),
        ("management", S),
        ("sub_management", S),
        ("weight", I),
        ("origin", S),
    ];
    columns.extend_from_slice(own);
    columns
}

/// The nine sources.
fn sources() -> Vec<Source> {
    vec![
        source(
            format!("bi_{UID}_dash_calendario_v5"),
            vec![
                ("ARCHIVO", S),
                ("TIPO_CARTERA", S),
                ("fecha_apertura", D),
                ("fecha_trandeuda", D),
                ("fecha_cierre", D),
                ("FECHA_CIERRE_PLANIFICADA", D),
                ("DURACION_CAMPANA_DIAS_HABILES", I),
                ("ANNO_ASIGNACION", I),
                ("PERIODO_ASIGNACION", S),
                ("ES_CARTERA_ABIERTA", S),
                ("RANGO_VENCIMIENTO", S),
                ("ESTADO_CARTERA", S),
                ("periodo_mes", S),
                ("periodo_date", D),
                ("tipo_ciclo_campana", S),
                ("categoria_duracion", S),
            ],
            vec![
                json!({"ARCHIVO": CAMPAIGN, "TIPO_CARTERA": "TEMPRANA", "fecha_apertura": "2025-06-02",
                       "fecha_trandeuda": "2025-06-02", "fecha_cierre": "2025-06-27",
                       "FECHA_CIERRE_PLANIFICADA": "2025-06-27", "DURACION_CAMPANA_DIAS_HABILES": 20,
                       "ANNO_ASIGNACION": 2025, "PERIODO_ASIGNACION": "2025-06", "ES_CARTERA_ABIERTA": "si",
                       "RANGO_VENCIMIENTO": "0-30", "ESTADO_CARTERA": "CERRADA", "periodo_mes": "2025-06",
                       "periodo_date": "2025-06-01", "tipo_ciclo_campana": "MENSUAL", "categoria_duracion": "CORTA"}),
                // Dropped: a blank ARCHIVO.
                json!({"ARCHIVO": "  ", "TIPO_CARTERA": "TEMPRANA", "fecha_apertura": "2025-06-02",
                       "periodo_date": "2025-06-01"}),
            ],
        ),
        source(
            format!("batch_{UID}_asignacion"),
            vec![
                ("cliente", I),
                ("cuenta", I),
                ("cod_luna", I),
                ("telefono", I),
                ("tramo_gestion", S),
                ("min_vto", D),
                ("negocio", S),
                ("dias_sin_trafico", S),
                ("decil_contacto", I),
                ("decil_pago", I),
                ("zona", S),
                ("rango_renta", I),
                ("campania_act", S),
                ("archivo", S),
                ("creado_el", T),
            ],
            vec![
                assignment(Some(70_000_001), 5_000_000_001, "MOVIL"),
                assignment(Some(70_000_001), 5_000_000_002, "MOVIL"),
                assignment(Some(70_000_002), 5_000_000_003, "FIJA"),
                // Dropped: no client.
                assignment(None, 5_000_000_004, "MOVIL"),
            ],
        ),
        source(
            format!("batch_{UID}_tran_deuda"),
            vec![
                ("cod_cuenta", S),
                ("nro_documento", S),
                ("fecha_vencimiento", D),
                ("monto_exigible", F),
                ("archivo", S),
                ("creado_el", T),
                ("motivo_rechazo", S),
            ],
            vec![
                debt("02", "5000000001", " F1 ", 150.456, None),
                debt("02", "5000000002", "F2", 80.0, None),
                debt("02", "5000000003", "F3", 200.0, Some("")),
                // Loaded, but a document of 0 owes nothing; dropped: rejected by the loader.
                debt("02", "5000000003", "F4", 0.0, None),
                debt("02", "5000000001", "F5", 10.0, Some("DUPLICADO")),
                // A correction file the same day (11:00 Lima): F1 is 140.00, F2 unchanged; F3 is
                // not in it and keeps its earlier delivery. Each document counts once.
                correction("5000000001", "F1", 140.0),
                correction("5000000002", "F2", 80.0),
                // The next snapshot (the campaign's days run up to the latest one).
                debt("05", "5000000001", "F1", 100.21, None),
                debt("05", "5000000002", "F2", 80.0, None),
                debt("05", "5000000003", "F3", 200.0, None),
            ],
        ),
        source(
            format!("batch_{UID}_pagos"),
            vec![
                ("cod_sistema", S),
                ("nro_documento", S),
                ("monto_cancelado", F),
                ("fecha_pago", D),
                ("archivo", S),
                ("creado_el", T),
                ("motivo_rechazo", S),
            ],
            vec![
                // Two identical payments in one file (two payments), the file delivered again
                // the next day (the same two payments).
                payment("PAGOS_2025-06-05.txt", 50.25),
                payment("PAGOS_2025-06-05.txt", 50.25),
                payment("PAGOS_2025-06-06.txt", 50.25),
                payment("PAGOS_2025-06-06.txt", 50.25),
                // Dropped: not positive.
                payment("PAGOS_2025-06-06.txt", 0.0),
            ],
        ),
        source(
            format!("voicebot_{UID}"),
            interaction_columns(&[
                ("fecha_compromiso", D),
                ("compromiso", S),
                ("observacion", S),
                ("project", S),
                ("client", S),
                ("duracion", I),
                ("id_telephony", S),
                ("url_record_bot", S),
            ]),
            vec![
                json!({"uid": "vb-1", "campaign_id": "11", "campaign_name": "COLA_BOT", "document": "70000001",
                       "phone": 999000001.0, "date": "2025-06-03T10:15:00", "management": "CONTESTA",
                       "sub_management": "PROMESA", "weight": 5, "compromiso": "SI",
                       "fecha_compromiso": "2025-06-10", "duracion": 40}),
                json!({"uid": "vb-2", "campaign_id": "11", "campaign_name": "COLA_BOT", "document": "70000002",
                       "phone": 999000002.0, "date": "2025-06-03T11:00:00", "management": "NO CONTESTA",
                       "duracion": 0}),
                // Dropped: no id.
                json!({"uid": null, "document": "70000002", "date": "2025-06-03T12:00:00"}),
            ],
        ),
        source(
            format!("mibotair_{UID}"),
            interaction_columns(&[
                ("n1", S),
                ("n2", S),
                ("n3", S),
                ("observacion", S),
                ("extra", S),
                ("project", S),
                ("client", S),
                ("nombre_agente", S),
                ("correo_agente", S),
                ("duracion", I),
                ("monto_compromiso", F),
                ("fecha_compromiso", D),
                ("url", S),
            ]),
            vec![
                json!({"uid": "ma-1", "campaign_id": "21", "campaign_name": "COLA_CALL", "document": "70000002",
                       "phone": 999000002.0, "date": "2025-06-04T09:30:00", "management": "PROMESA",
                       "n1": "Contacto_Efectivo", "n2": "Titular", "n3": "Promesa de pago",
                       "nombre_agente": "Ana Quispe", "correo_agente": " Ana.Quispe@Agencia.pe ",
                       "duracion": 180, "monto_compromiso": 120.5, "fecha_compromiso": "2025-06-12"}),
            ],
        ),
        source(
            format!("homologacion_{UID}_v2"),
            vec![
                ("management", S),
                ("n_1", S),
                ("n_2", S),
                ("n_3", S),
                ("peso", S),
                ("contactabilidad", S),
                ("tipo_gestion", S),
                ("codigo_rpta", S),
                ("pdp", S),
                ("gestor", S),
            ],
            vec![
                json!({"management": "PROMESA", "n_1": "Contacto_Efectivo", "n_2": "Titular",
                       "n_3": "Promesa de pago", "peso": "100", "contactabilidad": "Contacto Efectivo",
                       "tipo_gestion": "LLAMADA", "codigo_rpta": "PDP", "pdp": "SI", "gestor": "CALL"}),
                // The same key with a lower weight: QUALIFY keeps the heaviest rule.
                json!({"management": "PROMESA", "n_1": "Contacto_Efectivo", "n_2": "Titular",
                       "n_3": " Promesa de pago", "peso": " 50", "contactabilidad": "Contacto Efectivo",
                       "pdp": "NO"}),
                // A NULL level is kept as '' (not dropped).
                json!({"management": "NO CONTESTA", "n_1": "No_Contacto", "n_2": "No contesta",
                       "n_3": null, "peso": "10", "contactabilidad": "No Contacto", "pdp": "NO"}),
            ],
        ),
        source(
            format!("homologacion_{UID}_voicebot"),
            vec![
                ("bot_management", S),
                ("bot_sub_management", S),
                ("bot_compromiso", S),
                ("n1_homologado", S),
                ("n2_homologado", S),
                ("n3_homologado", S),
                ("contactabilidad_homologada", S),
                ("es_pdp_homologado", I),
                ("peso_homologado", I),
            ],
            vec![
                json!({"bot_management": "CONTESTA", "bot_sub_management": "PROMESA", "bot_compromiso": "SI",
                       "n1_homologado": "CONTACTO", "n2_homologado": "TITULAR", "n3_homologado": "PROMESA DE PAGO",
                       "contactabilidad_homologada": "Contacto Efectivo", "es_pdp_homologado": 1,
                       "peso_homologado": 90}),
                json!({"bot_management": "NO CONTESTA", "bot_sub_management": null, "bot_compromiso": null,
                       "n1_homologado": "NO CONTACTO", "n2_homologado": "NO CONTESTA", "n3_homologado": "NO CONTESTA",
                       "contactabilidad_homologada": "No Contacto", "es_pdp_homologado": 0,
                       "peso_homologado": 10}),
            ],
        ),
        source(
            "sync_mibotair_batch_SYS_user".to_string(),
            vec![
                ("correo_name", S),
                ("document", S),
                ("nombre", S),
                ("id_cliente", I),
            ],
            vec![
                json!({"correo_name": "ana.quispe@agencia.pe", "document": null, "nombre": "Ana Q", "id_cliente": 7}),
                json!({"correo_name": "Ana.Quispe@Agencia.pe ", "document": "40112233", "nombre": " Ana Quispe ", "id_cliente": 7}),
                json!({"correo_name": "bruno.diaz@agencia.pe", "document": " ", "nombre": "Bruno Díaz", "id_cliente": 7}),
                // Another client's agent.
                json!({"correo_name": "otro@agencia.pe", "document": "1", "nombre": "Otro", "id_cliente": 8}),
            ],
        ),
    ]
}

/// An assignment row of the campaign, loaded 2025-06-03 03:00 UTC (= 2025-06-02 in Lima).
fn assignment(cod_luna: Option<i64>, cuenta: i64, negocio: &str) -> Value {
    json!({"cliente": cod_luna.map(|c| c - 60_000_000), "cuenta": cuenta, "cod_luna": cod_luna,
           "telefono": 999_000_000, "tramo_gestion": "TRAMO 1", "min_vto": "2025-06-05",
           "negocio": negocio, "dias_sin_trafico": "0", "decil_contacto": 3, "decil_pago": 4,
           "zona": "LIMA", "rango_renta": 2, "campania_act": "C1",
           "archivo": format!("{CAMPAIGN}.txt"), "creado_el": "2025-06-03T03:00:00Z"})
}

/// A row of the debt snapshot of 2025-06-`day` (loaded 12:00 UTC).
fn debt(day: &str, cuenta: &str, documento: &str, monto: f64, rechazo: Option<&str>) -> Value {
    json!({"cod_cuenta": cuenta, "nro_documento": documento, "fecha_vencimiento": "2025-06-30",
           "monto_exigible": monto, "archivo": format!("TRAN_DEUDA_{day}06.txt"),
           "creado_el": format!("2025-06-{day}T12:00:00Z"), "motivo_rechazo": rechazo})
}

/// A row of the correction file of the 2025-06-02 snapshot (loaded 16:00 UTC, the same Lima day).
fn correction(cuenta: &str, documento: &str, monto: f64) -> Value {
    json!({"cod_cuenta": cuenta, "nro_documento": documento, "fecha_vencimiento": "2025-06-30",
           "monto_exigible": monto, "archivo": "TRAN_DEUDA_0206_CORRECCION.txt",
           "creado_el": "2025-06-02T16:00:00Z", "motivo_rechazo": null})
}

fn payment(archivo: &str, monto: f64) -> Value {
    json!({"cod_sistema": "S1", "nro_documento": "F1", "monto_cancelado": monto,
           "fecha_pago": "2025-06-05", "archivo": archivo, "creado_el": "2025-06-06T15:00:00Z"})
}

async fn load_sources(emu: &Emulator) -> String {
    let dataset = emu.create_dataset("pf_pulso").await;
    for s in sources() {
        emu.create_table(&dataset, &s.table, &s.columns).await;
        emu.insert_rows(&dataset, &s.table, s.rows.into_iter())
            .await;
    }
    dataset
}

/// The query's one value as text (`NULL`, or the error).
async fn scalar(client: &Client, sql: &str) -> String {
    match client
        .query_one(&format!("SELECT ({sql})::text"), &[])
        .await
    {
        Ok(row) => row
            .get::<_, Option<String>>(0)
            .unwrap_or_else(|| "NULL".into()),
        Err(e) => format!(
            "error: {}",
            e.as_db_error()
                .map_or(e.to_string(), |d| d.message().to_string())
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_production_pipeline_runs_against_the_emulator_and_fills_every_layer() {
    let Some(emu) = emulator().await else { return };
    let dataset = load_sources(&emu).await;
    let db = TestDb::new("pulso_bq").await;
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines.yaml");
    let env = vec![
        ("BIGQUERY_EMULATOR_HOST".to_string(), emu.rest.clone()),
        ("BQ_PROJECT".to_string(), emu.project.clone()),
        ("BQ_DATASET".to_string(), dataset),
        ("PULSO_UID".to_string(), UID.to_string()),
        ("MIBOTAIR_CLIENT_ID".to_string(), CLIENT_ID.to_string()),
        ("PULSO_BACKFILL_FROM".to_string(), "2025-06-01".to_string()),
    ];

    let out = run_cli(db.url.clone(), &file, env.clone(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary = summary_json(&out);
    let nodes = summary["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 9 + 14, "{summary}");
    for node in nodes {
        assert_eq!(node["status"], "ok", "{node}");
    }
    // Rows the business filters keep (and the dedup of the dimensions).
    let loaded = [
        ("calendario", 1),
        ("asignaciones", 3),
        ("trandeuda", 9),
        ("pagos", 4),
        ("voicebot_gestiones", 2),
        ("mibotair_gestiones", 1),
        ("homologacion_mibotair", 2),
        ("homologacion_voicebot", 2),
        ("ejecutivos", 2),
    ];
    for (table, rows) in loaded {
        assert_eq!(counts(&summary, table), (rows, 0, 0), "{table}");
    }

    let client = db.client().await;
    let checks = [
        // Lima dates of UTC load times; INT64 ids as canonical text.
        (
            "SELECT string_agg(DISTINCT fecha_asignacion::text, ',') FROM raw.asignaciones",
            "2025-06-02",
        ),
        (
            "SELECT string_agg(cuenta, ',' ORDER BY cuenta) FROM raw.asignaciones WHERE cod_luna = '70000001'",
            "5000000001,5000000002",
        ),
        // Trimmed keys, money rounded to the cent, the rejected rows gone.
        (
            "SELECT string_agg(monto_exigible::text, ',' ORDER BY fecha_proceso, creado_el) FROM raw.trandeuda WHERE nro_documento = 'F1'",
            "150.46,140.00,100.21",
        ),
        (
            "SELECT string_agg(fecha_proceso::text, ',' ORDER BY fecha_proceso) FROM raw.trandeuda WHERE nro_documento = 'F2'",
            "2025-06-02,2025-06-02,2025-06-05",
        ),
        ("SELECT es_cartera_abierta FROM raw.calendario", "true"),
        // Interactions: Lima wall-clock DATETIME, the phone as integer text.
        (
            "SELECT phone || ' ' || fecha_gestion FROM raw.voicebot_gestiones WHERE uid = 'vb-1'",
            "999000001 2025-06-03",
        ),
        (
            "SELECT correo_agente || ' ' || monto_compromiso FROM raw.mibotair_gestiones",
            "ana.quispe@agencia.pe 120.50",
        ),
        // QUALIFY keeps the heaviest rule per normalised key; a NULL level becomes ''.
        (
            "SELECT peso || ' ' || pdp FROM raw.homologacion_mibotair WHERE n_3 = 'Promesa de pago'",
            "100 SI",
        ),
        (
            "SELECT count(*) FROM raw.homologacion_mibotair WHERE n_3 = ''",
            "1",
        ),
        // Only this client's agents, one per e-mail, the one with a document; blank → SIN DNI.
        (
            "SELECT string_agg(correo_name || '=' || document, ',' ORDER BY correo_name) FROM raw.ejecutivos",
            "ana.quispe@agencia.pe=40112233,bruno.diaz@agencia.pe=SIN DNI",
        ),
        // aux: the campaign's accounts with their assigned debt (snapshot 06-02, each document
        // once, as of its latest delivery: 140.00 + 80.00 + 200.00), homologated interactions.
        (
            "SELECT count(*) || ' ' || sum(deuda_asignada) FROM aux.cuenta_campana",
            "3 420.00",
        ),
        (
            "SELECT string_agg(gestion_uid || ':' || clase_contacto || ':' || es_pdp, ',' ORDER BY gestion_uid) FROM aux.gestion",
            "ma-1:CONTACTO_EFECTIVO:true,vb-1:CONTACTO_EFECTIVO:true,vb-2:NO_CONTACTO:false",
        ),
        // The two payments, each once (the re-delivery collapsed), attributed to the campaign:
        // ROW_NUMBER in the source query numbered them 1 and 2 in each file.
        (
            "SELECT string_agg(archivo || ':' || ocurrencia, ',' ORDER BY archivo, ocurrencia) FROM raw.pagos",
            "PAGOS_2025-06-05.txt:1,PAGOS_2025-06-05.txt:2,PAGOS_2025-06-06.txt:1,PAGOS_2025-06-06.txt:2",
        ),
        (
            "SELECT string_agg(ocurrencia || ': ' || entregas || ' ' || monto_cancelado || ' ' || archivo || ' ' || cuenta, ', ' ORDER BY ocurrencia) FROM aux.pago",
            "1: 2 50.25 CARTERA_TEMPRANA_MOVIL_20250602 5000000001, 2: 2 50.25 CARTERA_TEMPRANA_MOVIL_20250602 5000000001",
        ),
        // marts: the dashboard counts the three accounts on each of the campaign's four days,
        // the current debt from the latest snapshot, the payment recovered from its date on.
        (
            "SELECT string_agg(fecha_foto || '=' || c || '/' || d || '/' || r, ',' ORDER BY fecha_foto) FROM (SELECT fecha_foto, sum(cuentas) AS c, sum(deuda_act) AS d, sum(recupero) AS r FROM mart.dashboard GROUP BY 1) x",
            "2025-06-02=3/420.00/0.00,2025-06-03=3/420.00/0.00,2025-06-04=3/420.00/0.00,2025-06-05=3/380.21/100.50",
        ),
        ("SELECT count(*) > 0 FROM mart.evolucion", "true"),
        (
            "SELECT sum(gestiones) || ' ' || sum(pdp) FROM mart.operacion",
            "3 2",
        ),
        (
            "SELECT correo_agente || ' ' || nombre_agente || ' ' || gestiones || ' ' || pdp FROM mart.productividad",
            "ana.quispe@agencia.pe Ana Quispe 1 1",
        ),
    ];
    let mut wrong = Vec::new();
    for (sql, want) in checks {
        let got = scalar(&client, sql).await;
        if got != want {
            wrong.push(format!("{sql}\n  want {want}\n  got  {got}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Again: the windows re-read their lookback, nothing changed, so nothing is written and no
    // build runs.
    let out = run_cli(db.url.clone(), &file, env, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary = summary_json(&out);
    for (table, rows) in loaded {
        let (inserted, updated, _) = counts(&summary, table);
        assert_eq!((inserted, updated), (0, 0), "{table}: {rows} rows re-read");
    }
    let ran: Vec<String> = client
        .query(
            "SELECT node FROM pulso_flow.node_runs WHERE kind = 'sql' AND (details->>'ran')::boolean
               AND run_id = (SELECT max(run_id) FROM pulso_flow.runs)",
            &[],
        )
        .await
        .expect("ledger")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        ran.is_empty(),
        "builds ran without upstream changes: {ran:?}"
    );
}
