//! Every KPI of docs/kpis.md on a small hand-built fixture.
//!
//! The fixture (CSV files written below) is loaded through the CLI with the production DAG: the
//! `builds:` section of pipelines.yaml, unchanged, pointed at sql/. Every expected number is
//! worked out by hand in the comments next to it — never by running the same SQL.
//!
//! The world (June 2025, Lima):
//!
//! ```text
//! campaign A  FIX_TEMPRANA_A   opens Mon 06-02, closes Fri 06-06, reference snapshot 06-02
//! campaign B  FIX_AN_B         opens Wed 06-04, closes Tue 06-10, reference snapshot 06-04
//!                              (two calendar rows: the period fan-out must collapse)
//! snapshots   06-02 … 06-07, 06-09, 06-10 (no file on Sunday 06-08)
//!
//! account client campaign  servicio tramo  due day  documents (every snapshot unless noted)
//! 1001    501    A and B   MOVIL    T1     5        F11 100.00 + F12 50.00      → 150.00
//! 1002    501    A         FIJA     T9*    5        F21 200.00 on 06-02..06-04 only (paid off)
//! 1003    502    A         MOVIL    T2     9        F31 0.50                    (debt < 1 sol)
//! 1004    503    A         FIJA     T2     —        none                        (not in trandeuda)
//! 2001    504    B         MOVIL    T1     17       F41 1000.00
//! 2002    502    B         FIJA     T1     17       F51 300.00
//! (* 1002 was delivered again on 06-03 with tramo T9: attributes of the latest delivery)
//! A accounts assigned 06-01; B accounts 06-03.
//!
//! payments    P1 F21 06-04 200.00 delivered in 3 files   → account 1002, campaign A
//!             P2 F11 06-05  40.00                        → 1001, in A and B: B (opened last)
//!             P3 F11 06-03  10.00                        → 1001, only A
//!             P4 F41 06-02 500.00                        → 2001, before B opens: not attributed
//!             P5 F99 06-05  10.00                        → unknown document: not attributed
//!             P6 F51 06-09 300.00                        → 2002, campaign B
//!
//! interactions (Lima wall-clock)                      class (peso)   links (principal first)
//! G1 bot    501 06-02 10:00 CONTESTA                  CE (50)        A/1001, A/1002
//! G2 bot   0502 06-03 09:00 BUZON                     NC (10)        A/1003
//! G3 human  502 06-05 11:00 No_Contacto… Tercero      CNE (40)       B/2002, A/1003
//! G4 human  504 06-06 15:00 Promesa, 500.00 promised  CE (100) PDP   B/2001
//! G5 bot    503 06-06 23:30 CONTESTA/PROMESA/SI       CE (90) PDP    A/1004   (A's last day)
//! G6 bot    599 06-04 12:00 CONTESTA                  CE (50)        none (unknown client)
//! G7 bot    501 06-05 08:00 NOPE/X                    SIN_HOMOLOGAR  B/1001, A/1001, A/1002
//! G8 bot    501 06-05 09:00 " contesta " (normalised) CE (50)        B/1001, A/1001, A/1002
//! G9 human  504 06-09 10:00 No contesta (agent unknown) NC (5)       B/2001
//! ```
// Rows read back from the marts are compared as plain tuples, column for column, against
// hand-worked expectations; naming a type per query would only add indirection.
#![allow(clippy::type_complexity)]

mod api;
use pulso_testkit as common;
mod redelivery;

use std::path::{Path, PathBuf};

use common::{TestDb, cli, text, write};
use tokio_postgres::Client;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `builds:` section of the production pipeline, with its SQL paths made absolute.
fn production_builds() -> String {
    let text = std::fs::read_to_string(repo().join("pipelines.yaml")).expect("read pipelines.yaml");
    let start = text
        .find("\nbuilds:\n")
        .expect("pipelines.yaml has a builds: section")
        + 1;
    text[start..].replace("file: sql/", &format!("file: {}/sql/", repo().display()))
}

const CALENDARIO: &str = "\
archivo,periodo_date,tipo_cartera,fecha_apertura,fecha_trandeuda,fecha_cierre,fecha_cierre_planificada
FIX_TEMPRANA_A,2025-06-01,TEMPRANA,2025-06-02,2025-06-02,2025-06-06,2025-06-06
FIX_AN_B,2025-06-01,ALTAS NUEVAS,2025-06-04,2025-06-04,2025-06-10,2025-06-10
FIX_AN_B,2025-07-01,ALTAS NUEVAS,2025-06-04,2025-06-04,2025-06-10,2025-06-10
";

const ASIGNACIONES: &str = "\
cod_luna,cuenta,archivo,fecha_asignacion,negocio,tramo_gestion,min_vto,creado_el
501,1001,FIX_TEMPRANA_A.txt,2025-06-01,MOVIL,T1,2025-05-05,2025-06-01T12:00:00Z
501,1002,FIX_TEMPRANA_A.txt,2025-06-01,FIJA,T1,2025-05-05,2025-06-01T12:00:01Z
501,1002,FIX_TEMPRANA_A.txt,2025-06-03,FIJA,T9,2025-05-05,2025-06-03T12:00:00Z
502,1003,FIX_TEMPRANA_A.txt,2025-06-01,movil,T2,2025-05-09,2025-06-01T12:00:02Z
503,1004,FIX_TEMPRANA_A.txt,2025-06-01,HOGAR,T2,,2025-06-01T12:00:03Z
504,2001,FIX_AN_B.TXT,2025-06-03,MOVIL,T1,2025-05-17,2025-06-03T12:00:01Z
502,2002,FIX_AN_B.txt,2025-06-03,FIJA,T1,2025-05-17,2025-06-03T12:00:02Z
501,1001,FIX_AN_B.txt,2025-06-03,MOVIL,T1,2025-05-05,2025-06-03T12:00:03Z
";

fn trandeuda_csv() -> String {
    let days = [
        "2025-06-02",
        "2025-06-03",
        "2025-06-04",
        "2025-06-05",
        "2025-06-06",
        "2025-06-07",
        "2025-06-09",
        "2025-06-10",
    ];
    let mut csv =
        String::from("cod_cuenta,nro_documento,archivo,fecha_proceso,monto_exigible,creado_el\n");
    for day in days {
        let mut row = |cuenta: &str, doc: &str, monto: &str| {
            csv.push_str(&format!(
                "{cuenta},{doc},TD_{day}.txt,{day},{monto},{day}T12:00:00Z\n"
            ));
        };
        row("1001", "F11", "100.00");
        row("1001", "F12", "50.00");
        if day <= "2025-06-04" {
            row("1002", "F21", "200.00");
        }
        row("1003", "F31", "0.50");
        row("2001", "F41", "1000.00");
        row("2002", "F51", "300.00");
    }
    csv
}

const PAGOS: &str = "\
nro_documento,fecha_pago,monto_cancelado,archivo,ocurrencia,cod_sistema,creado_el
F21,2025-06-04,200.00,PAG_0604.txt,1,S1,2025-06-04T15:00:00Z
F21,2025-06-04,200.00,PAG_0605.txt,1,S1,2025-06-05T15:00:00Z
F21,2025-06-04,200.00,PAG_0606.txt,1,S2,2025-06-06T15:00:00Z
F11,2025-06-05,40.00,PAG_0605.txt,1,S1,2025-06-05T15:00:00Z
F11,2025-06-03,10.00,PAG_0603.txt,1,S1,2025-06-03T15:00:00Z
F41,2025-06-02,500.00,PAG_0602.txt,1,S1,2025-06-02T15:00:00Z
F99,2025-06-05,10.00,PAG_0605.txt,1,S1,2025-06-05T15:00:00Z
F51,2025-06-09,300.00,PAG_0609.txt,1,S1,2025-06-09T15:00:00Z
";

const VOICEBOT: &str = "\
uid,document,date,fecha_gestion,management,sub_management,compromiso,campaign_name
G1,501,2025-06-02 10:00:00,2025-06-02,CONTESTA,,,COLA1
G2,0502,2025-06-03 09:00:00,2025-06-03,BUZON,,,COLA1
G5,503,2025-06-06 23:30:00,2025-06-06,CONTESTA,PROMESA,SI,COLA2
G6,599,2025-06-04 12:00:00,2025-06-04,CONTESTA,,,COLA1
G7,501,2025-06-05 08:00:00,2025-06-05,NOPE,X,,COLA1
G8,501,2025-06-05 09:00:00,2025-06-05, contesta ,,,COLA1
";

const MIBOTAIR: &str = "\
uid,document,date,fecha_gestion,n1,n2,n3,correo_agente,nombre_agente,monto_compromiso,campaign_name
G3,502,2025-06-05 11:00:00,2025-06-05,Contacto_No_Efectivo,Tercero,,ANA@x.pe ,ana,,CALL1
G4,504,2025-06-06 15:00:00,2025-06-06,Contacto_Efectivo,Titular,Promesa,ana@x.pe,ana,500.00,CALL1
G9,504,2025-06-09 10:00:00,2025-06-09,No_Contacto,No contesta,,otro@x.pe,Otro Agente,,CALL1
";

const HOMOLOGACION_VOICEBOT: &str = "\
bot_management,bot_sub_management,bot_compromiso,contactabilidad_homologada,es_pdp_homologado,peso_homologado
CONTESTA,PROMESA,SI,Contacto Efectivo,1,90
CONTESTA,,,Contacto Efectivo,0,50
TERCERO,,,Contacto No Efectivo,0,40
BUZON,,,No contacto,0,10
";

const HOMOLOGACION_MIBOTAIR: &str = "\
n_1,n_2,n_3,peso,contactabilidad,pdp
Contacto_Efectivo,Titular,Promesa,100,Contacto Efectivo,SI
Contacto_No_Efectivo,Tercero,,40,Contacto No Efectivo,NO
No_Contacto,No contesta,,5,No Contacto,NO
";

const EJECUTIVOS: &str = "\
correo_name,document,nombre
ana@x.pe,111,Ana
";

/// The fixture pipeline: the production table names, targets, keys and change dates over the
/// CSV files above (read whole each run), and the production builds.
fn pipeline(dir: &Path) -> String {
    format!(
        "name: kpis
defaults: {{ schema: raw, create_target: false }}
tables:
  - name: calendario
    source: {{ kind: csv, path: {d}/calendario.csv }}
    columns: {{ archivo: text, periodo_date: date, tipo_cartera: text, fecha_apertura: date, fecha_trandeuda: date, fecha_cierre: date, fecha_cierre_planificada: date }}
    primary_key: [archivo, periodo_date]
    mode: full_refresh
    change_date: fecha_apertura
  - name: asignaciones
    source: {{ kind: csv, path: {d}/asignaciones.csv }}
    columns: {{ cod_luna: text, cuenta: text, archivo: text, fecha_asignacion: date, negocio: text, tramo_gestion: text, min_vto: date, creado_el: timestamptz }}
    primary_key: [cod_luna, cuenta, archivo, fecha_asignacion]
    change_date: fecha_asignacion
  - name: trandeuda
    source: {{ kind: csv, path: {d}/trandeuda.csv }}
    columns: {{ cod_cuenta: text, nro_documento: text, archivo: text, fecha_proceso: date, monto_exigible: \"numeric(15,2)\", creado_el: timestamptz }}
    primary_key: [cod_cuenta, nro_documento, archivo, fecha_proceso]
    change_date: fecha_proceso
  - name: pagos
    source: {{ kind: csv, path: {d}/pagos.csv }}
    columns: {{ nro_documento: text, fecha_pago: date, monto_cancelado: \"numeric(15,2)\", archivo: text, ocurrencia: integer, cod_sistema: text, creado_el: timestamptz }}
    primary_key: [nro_documento, fecha_pago, monto_cancelado, archivo, ocurrencia]
    change_date: fecha_pago
  - name: voicebot_gestiones
    source: {{ kind: csv, path: {d}/voicebot.csv, null_text: ~ }}
    transform:
      derive:
        management: \"nullif(management, '')\"
        sub_management: \"nullif(sub_management, '')\"
        compromiso: \"nullif(compromiso, '')\"
    columns: {{ uid: text, document: text, date: timestamp, fecha_gestion: date, management: text, sub_management: text, compromiso: text, campaign_name: text }}
    primary_key: [uid]
    change_date: fecha_gestion
  - name: mibotair_gestiones
    source: {{ kind: csv, path: {d}/mibotair.csv }}
    columns: {{ uid: text, document: text, date: timestamp, fecha_gestion: date, n1: text, n2: text, n3: text, correo_agente: text, nombre_agente: text, monto_compromiso: \"numeric(15,2)\", campaign_name: text }}
    primary_key: [uid]
    change_date: fecha_gestion
  - name: homologacion_voicebot
    source: {{ kind: csv, path: {d}/homologacion_voicebot.csv }}
    transform:
      derive:
        bot_sub_management: \"coalesce(bot_sub_management, '')\"
        bot_compromiso: \"coalesce(bot_compromiso, '')\"
    columns: {{ bot_management: text, bot_sub_management: text, bot_compromiso: text, contactabilidad_homologada: text, es_pdp_homologado: boolean, peso_homologado: integer }}
    primary_key: [bot_management, bot_sub_management, bot_compromiso]
    mode: full_refresh
  - name: homologacion_mibotair
    source: {{ kind: csv, path: {d}/homologacion_mibotair.csv }}
    transform:
      derive:
        n_3: \"coalesce(n_3, '')\"
    columns: {{ n_1: text, n_2: text, n_3: text, peso: integer, contactabilidad: text, pdp: text }}
    primary_key: [n_1, n_2, n_3]
    mode: full_refresh
  - name: ejecutivos
    source: {{ kind: csv, path: {d}/ejecutivos.csv }}
    columns: {{ correo_name: text, document: text, nombre: text }}
    primary_key: [correo_name]
    mode: full_refresh

{builds}",
        d = dir.display(),
        builds = production_builds()
    )
}

struct Fixture {
    db: TestDb,
    client: Client,
    dir: tempfile::TempDir,
    file: String,
}

impl Fixture {
    fn run(&self, args: &[&str]) {
        let mut all = vec!["run", self.file.as_str(), "--summary", "json"];
        all.extend_from_slice(args);
        let out = cli(&self.db.url, &all, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
}

async fn fixture(tag: &str) -> Fixture {
    let db = TestDb::new(tag).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "calendario.csv", CALENDARIO);
    write(d, "asignaciones.csv", ASIGNACIONES);
    write(d, "trandeuda.csv", &trandeuda_csv());
    write(d, "pagos.csv", PAGOS);
    write(d, "voicebot.csv", VOICEBOT);
    write(d, "mibotair.csv", MIBOTAIR);
    write(d, "homologacion_voicebot.csv", HOMOLOGACION_VOICEBOT);
    write(d, "homologacion_mibotair.csv", HOMOLOGACION_MIBOTAIR);
    write(d, "ejecutivos.csv", EJECUTIVOS);
    let file = write(d, "kpis.yaml", &pipeline(d)).display().to_string();
    let client = db.client().await;
    let f = Fixture {
        db,
        client,
        dir,
        file,
    };
    f.run(&[]);
    f
}

/// The dashboard's counters of one campaign at one photo date, summed over all dimensions.
#[derive(Debug, Clone, PartialEq)]
struct Totals {
    cuentas: i64,
    clientes: i64,
    gestionables: i64,
    deuda_asig: String,
    deuda_act: String,
    gestionadas: i64,
    sg: i64,
    cd: i64,
    ci: i64,
    sc: i64,
    pdp: i64,
    pagadoras: i64,
    recupero: String,
    pagos: i64,
    gestiones: i64,
    gestiones_ce: i64,
    gestiones_cne: i64,
    gestiones_pdp: i64,
    gestiones_bot: i64,
    gestiones_humano: i64,
}

async fn dashboard(client: &Client, archivo: &str, fecha: &str) -> Totals {
    let r = client
        .query_one(
            "SELECT coalesce(sum(cuentas), 0)::int8, coalesce(sum(clientes), 0)::int8,
                    coalesce(sum(cuentas_gestionables), 0)::int8, coalesce(sum(deuda_asig), 0)::text,
                    coalesce(sum(deuda_act), 0)::text, coalesce(sum(cuentas_gestionadas), 0)::int8,
                    coalesce(sum(cuentas_sg), 0)::int8, coalesce(sum(cuentas_cd), 0)::int8,
                    coalesce(sum(cuentas_ci), 0)::int8, coalesce(sum(cuentas_sc), 0)::int8,
                    coalesce(sum(cuentas_pdp), 0)::int8, coalesce(sum(cuentas_pagadoras), 0)::int8,
                    coalesce(sum(recupero), 0)::text, coalesce(sum(pagos), 0)::int8,
                    coalesce(sum(gestiones), 0)::int8, coalesce(sum(gestiones_ce), 0)::int8,
                    coalesce(sum(gestiones_cne), 0)::int8, coalesce(sum(gestiones_pdp), 0)::int8,
                    coalesce(sum(gestiones_bot), 0)::int8, coalesce(sum(gestiones_humano), 0)::int8
               FROM mart.dashboard WHERE archivo = $1 AND fecha_foto = $2::text::date",
            &[&archivo, &fecha],
        )
        .await
        .unwrap();
    Totals {
        cuentas: r.get(0),
        clientes: r.get(1),
        gestionables: r.get(2),
        deuda_asig: r.get(3),
        deuda_act: r.get(4),
        gestionadas: r.get(5),
        sg: r.get(6),
        cd: r.get(7),
        ci: r.get(8),
        sc: r.get(9),
        pdp: r.get(10),
        pagadoras: r.get(11),
        recupero: r.get(12),
        pagos: r.get(13),
        gestiones: r.get(14),
        gestiones_ce: r.get(15),
        gestiones_cne: r.get(16),
        gestiones_pdp: r.get(17),
        gestiones_bot: r.get(18),
        gestiones_humano: r.get(19),
    }
}

const A: &str = "FIX_TEMPRANA_A";
const B: &str = "FIX_AN_B";

/// A percentage as the API computes it: numerator ÷ denominator × 100, from summed counters.
fn pct(num: i64, den: i64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 * 100.0 / den as f64
    }
}

/// variación = (actual − anterior) ÷ anterior × 100, one decimal; 100 when anterior = 0 < actual;
/// 0 when both are 0 (docs/kpis.md).
fn variacion(actual: f64, anterior: f64) -> f64 {
    if anterior == 0.0 {
        if actual > 0.0 { 100.0 } else { 0.0 }
    } else {
        ((actual - anterior) / anterior * 1000.0).round() / 10.0
    }
}

fn money(s: &str) -> f64 {
    s.parse().unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test(flavor = "multi_thread")]
async fn rule_functions() {
    let db = TestDb::new("kpi_rules").await;
    let out = cli(&db.url, &["migrate"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let c = db.client().await;
    let cases: &[(&str, &str)] = &[
        // cartera: POC order, case-insensitive; TEMPRANA wins although it contains "AN".
        (
            "aux.cartera('Cartera_Gestion_Temprana_20250601.txt')",
            "TEMPRANA",
        ),
        (
            "aux.cartera('CARTERA_CF_ANN_0605')",
            "CUOTA_FRACCIONAMIENTO",
        ),
        ("aux.cartera('CARTERA_AN_0616')", "ALTAS_NUEVAS"),
        ("aux.cartera('CARTERA_TARDIA_0609')", "OTRAS"),
        ("aux.cartera(NULL)", "OTRAS"),
        // servicio
        ("aux.servicio('MOVIL')", "MOVIL"),
        ("aux.servicio(' móvil ')", "MOVIL"),
        ("aux.servicio('Movil ')", "MOVIL"),
        ("aux.servicio('HOGAR')", "FIJA"),
        ("aux.servicio(NULL)", "FIJA"),
        // due-day groups
        ("aux.grupo_vencimiento(1)", "GRUPO_1_5"),
        ("aux.grupo_vencimiento(5)", "GRUPO_1_5"),
        ("aux.grupo_vencimiento(13)", "GRUPO_9_13"),
        ("aux.grupo_vencimiento(25)", "GRUPO_17_25"),
        ("aux.grupo_vencimiento(28)", "DIA_28"),
        ("aux.grupo_vencimiento(0)", "SIN_VTO"),
        // debt brackets, lower bound inclusive
        ("aux.rango_deuda(0)", "SIN_DEUDA"),
        ("aux.rango_deuda(0.50)", "0-99"),
        ("aux.rango_deuda(99.99)", "0-99"),
        ("aux.rango_deuda(100)", "100-499"),
        ("aux.rango_deuda(999.99)", "500-999"),
        ("aux.rango_deuda(1000)", "1000-2999"),
        ("aux.rango_deuda(3000)", "3000+"),
        // periodo: opening month until the closing month starts
        (
            "aux.periodo('2025-06-05', '2025-07-04', '2025-06-30')",
            "2025-06",
        ),
        (
            "aux.periodo('2025-06-05', '2025-07-04', '2025-07-01')",
            "2025-07",
        ),
        ("aux.periodo('2025-06-16', NULL, '2025-08-20')", "2025-06"),
        // contact classes
        (
            "aux.clase_contacto('Contacto Efectivo')",
            "CONTACTO_EFECTIVO",
        ),
        (
            "aux.clase_contacto('Contacto_Efectivo')",
            "CONTACTO_EFECTIVO",
        ),
        (
            "aux.clase_contacto(' contacto  no efectivo ')",
            "CONTACTO_NO_EFECTIVO",
        ),
        ("aux.clase_contacto('No Contacto')", "NO_CONTACTO"),
        ("aux.clase_contacto('No contacto')", "NO_CONTACTO"),
        ("aux.clase_contacto('Otra cosa')", "SIN_CLASIFICAR"),
        // best-interaction score decoding (peso * 10 + priority), negative weights included
        ("aux.clase_de_puntaje(504)", "CONTACTO_EFECTIVO"),
        ("aux.clase_de_puntaje(-6)", "CONTACTO_EFECTIVO"),
        ("aux.clase_de_puntaje(0)", "SIN_HOMOLOGAR"),
        // ids and campaign ids
        ("aux.id_canonico(' 00123 ')", "123"),
        ("aux.id_canonico('123.0')", "123"),
        ("aux.id_canonico('0')", "0"),
        ("aux.id_canonico('AB-01')", "AB-01"),
        ("aux.campana_id(' CARTERA_X.TXT ')", "CARTERA_X"),
    ];
    for (expr, expected) in cases {
        let got: Option<String> = c
            .query_one(&format!("SELECT {expr}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(got.as_deref(), Some(*expected), "{expr}");
    }
    let empty: Option<String> = c
        .query_one("SELECT aux.id_canonico('  ')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(empty, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn calendar_and_campaign_days() {
    let f = fixture("kpi_cal").await;
    let c = &f.client;
    // B: two calendar rows collapse to one campaign; its days run 06-04 … 06-10 (7 days, not 14).
    let rows = c
        .query(
            "SELECT fecha::text, dia_campana, dia_gestion, es_dia_habil, periodo FROM aux.campana_dia
              WHERE archivo = $1 ORDER BY fecha",
            &[&B],
        )
        .await
        .unwrap();
    let got: Vec<(String, i32, i32, bool, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let p = "2025-06".to_string();
    // Wed 04 = management day 1, Thu 2, Fri 3, the weekend keeps 3, Mon 09 = 4, Tue 10 = 5.
    assert_eq!(
        got,
        vec![
            ("2025-06-04".into(), 1, 1, true, p.clone()),
            ("2025-06-05".into(), 2, 2, true, p.clone()),
            ("2025-06-06".into(), 3, 3, true, p.clone()),
            ("2025-06-07".into(), 4, 3, false, p.clone()),
            ("2025-06-08".into(), 5, 3, false, p.clone()),
            ("2025-06-09".into(), 6, 4, true, p.clone()),
            ("2025-06-10".into(), 7, 5, true, p.clone()),
        ]
    );
    // The business-day calendar: Monday–Friday, ISO weekday, business-day ordinal of the month.
    let r = c
        .query_one(
            "SELECT dia_semana, nombre_dia, es_dia_habil, dia_habil_del_mes, total_dias_habiles_mes
               FROM aux.calendario_habiles WHERE fecha = '2025-06-09'",
            &[],
        )
        .await
        .unwrap();
    // June 2025: Mon 2 … Fri 6 are business days 1–5, Mon 9 is the 6th; 21 business days.
    assert_eq!(
        (
            r.get::<_, i32>(0),
            r.get::<_, String>(1),
            r.get::<_, bool>(2),
            r.get::<_, Option<i32>>(3),
            r.get::<_, i32>(4)
        ),
        (1, "Lunes".to_string(), true, Some(6), 21)
    );
    let sunday: (bool, Option<i32>) = c
        .query_one("SELECT es_dia_habil, dia_habil_del_mes FROM aux.calendario_habiles WHERE fecha = '2025-06-08'", &[])
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(sunday, (false, None));
    // Carteras from the file names.
    let carteras: Vec<(String, String)> = c
        .query(
            "SELECT archivo, cartera FROM aux.campana ORDER BY archivo",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        carteras,
        vec![
            (B.to_string(), "ALTAS_NUEVAS".to_string()),
            (A.to_string(), "TEMPRANA".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kpi_accounts_debt_gestionable_ticket() {
    let f = fixture("kpi_deuda").await;
    let c = &f.client;

    // A on its last day 06-06: accounts 1001..1004 → cuentas 4; clients 501, 502, 503 → 3.
    // Assigned debt (snapshot 06-02): 150.00 + 200.00 + 0.50 + 0 = 350.50.
    // Current debt (snapshot 06-06): 150.00 + 0 (1002 paid off) + 0.50 + 0 = 150.50.
    // Gestionable (debt >= 1 in that snapshot): only 1001 → 1.
    let a = dashboard(c, A, "2025-06-06").await;
    assert_eq!((a.cuentas, a.clientes, a.gestionables), (4, 3, 1));
    assert_eq!(
        (a.deuda_asig.as_str(), a.deuda_act.as_str()),
        ("350.50", "150.50")
    );
    // gestionable % = 1 / 4; ticket promedio = 350.50 / 4 = 87.625.
    assert!(close(pct(a.gestionables, a.cuentas), 25.0));
    assert!(close(money(&a.deuda_asig) / a.cuentas as f64, 87.625));

    // B on Sunday 06-08 (no snapshot that day): the 06-07 snapshot counts, so all three accounts
    // (2001: 1000, 2002: 300, 1001: 150) are gestionable; assigned = current = 1450.00.
    let b = dashboard(c, B, "2025-06-08").await;
    assert_eq!((b.cuentas, b.clientes, b.gestionables), (3, 3, 3));
    assert_eq!(
        (b.deuda_asig.as_str(), b.deuda_act.as_str()),
        ("1450.00", "1450.00")
    );
    assert!(close(money(&b.deuda_asig) / b.cuentas as f64, 1450.0 / 3.0));

    // Why not gestionable, per account on 06-06.
    let motivos: Vec<(String, Option<String>)> = c
        .query(
            "SELECT cuenta, motivo_no_gestionable FROM aux.cuenta_estado_diario
              WHERE archivo = $1 AND fecha = '2025-06-06' ORDER BY cuenta",
            &[&A],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        motivos,
        vec![
            ("1001".into(), None),
            ("1002".into(), Some("NO_ESTA_EN_TRANDEUDA".into())),
            ("1003".into(), Some("DEUDA_MENOR_A_1".into())),
            ("1004".into(), Some("NO_ESTA_EN_TRANDEUDA".into())),
        ]
    );

    // The universe: 1002 was delivered twice; it keeps its first assignment date and takes the
    // latest delivery's tramo (T9). 1001 is in both campaigns.
    let r = c
        .query_one(
            "SELECT fecha_asignacion::text, entregas, tramo FROM aux.cuenta_campana WHERE archivo = $1 AND cuenta = '1002'",
            &[&A],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            r.get::<_, String>(0),
            r.get::<_, i32>(1),
            r.get::<_, String>(2)
        ),
        ("2025-06-01".into(), 2, "T9".into())
    );

    // Dimensions of A's rows on 06-06: one row per account here.
    let dims: Vec<(String, String, i32, String, String, i32)> = c
        .query(
            "SELECT servicio, tramo, dia_vencimiento, grupo_vencimiento, rango_deuda, cuentas
               FROM mart.dashboard WHERE archivo = $1 AND fecha_foto = '2025-06-06'
              ORDER BY servicio, tramo, dia_vencimiento",
            &[&A],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    assert_eq!(
        dims,
        vec![
            // 1004: HOGAR → FIJA, no due date, not in trandeuda at assignment
            (
                "FIJA".into(),
                "T2".into(),
                0,
                "SIN_VTO".into(),
                "SIN_DEUDA".into(),
                1
            ),
            // 1002: FIJA, T9, due day 5, assigned 200.00
            (
                "FIJA".into(),
                "T9".into(),
                5,
                "GRUPO_1_5".into(),
                "100-499".into(),
                1
            ),
            // 1001: MOVIL, T1, due day 5, assigned 150.00
            (
                "MOVIL".into(),
                "T1".into(),
                5,
                "GRUPO_1_5".into(),
                "100-499".into(),
                1
            ),
            // 1003: "movil" → MOVIL, T2, due day 9, assigned 0.50
            (
                "MOVIL".into(),
                "T2".into(),
                9,
                "GRUPO_9_13".into(),
                "0-99".into(),
                1
            ),
        ]
    );
    let meta: (String, String, i32, bool) = c
        .query_one(
            "SELECT DISTINCT cartera, periodo, dia_gestion, es_dia_habil FROM mart.dashboard
              WHERE archivo = $1 AND fecha_foto = '2025-06-06'",
            &[&A],
        )
        .await
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .unwrap();
    assert_eq!(meta, ("TEMPRANA".into(), "2025-06".into(), 5, true));
}

#[tokio::test(flavor = "multi_thread")]
async fn kpi_contact_coverage_intensity() {
    let f = fixture("kpi_contacto").await;
    let c = &f.client;

    // Edge case: G1 (06-02) touches both accounts of client 501 in A. At photo 06-02 it makes
    // 2 managed, 2 direct-contact accounts, but it is ONE interaction with ONE effective contact.
    let a = dashboard(c, A, "2025-06-02").await;
    assert_eq!(
        (a.cuentas, a.gestionadas, a.cd, a.ci, a.sc, a.sg),
        (4, 2, 2, 0, 0, 2)
    );
    assert_eq!((a.gestiones, a.gestiones_ce), (1, 1));
    // tasa de contacto (per interaction) = 1 / 1; intensidad = 1 interaction / 2 managed accounts.
    assert!(close(pct(a.gestiones_ce, a.gestiones), 100.0));
    assert!(close(a.gestiones as f64 / a.gestionadas as f64, 0.5));

    // A on 06-03: G2 (client 0502 → 502, BUZON = no contact) manages 1003: its best interaction
    // is "no contact" → sin contacto. Managed 1001, 1002, 1003 = 3; not managed 1004 = 1.
    let a = dashboard(c, A, "2025-06-03").await;
    assert_eq!((a.gestionadas, a.cd, a.ci, a.sc, a.sg), (3, 2, 0, 1, 1));
    // cobertura = 3/4 = 75 %; contacto = (cd + ci) / cuentas = 2/4 = 50 %; sc = 1/4 = 25 %.
    assert!(close(pct(a.gestionadas, a.cuentas), 75.0));
    assert!(close(pct(a.cd + a.ci, a.cuentas), 50.0));
    assert!(close(pct(a.sc, a.cuentas), 25.0));

    // A on 06-05: G3 (non-effective contact, peso 40) beats G2 (no contact, 10) for 1003 → CI.
    // G7 (unmatched) and G8 (" contesta " → CONTESTA, CE 50) touch 1001/1002 again.
    // Managed 3 (1004 still untouched); cd 1001, 1002; ci 1003.
    let a = dashboard(c, A, "2025-06-05").await;
    assert_eq!((a.gestionadas, a.cd, a.ci, a.sc, a.sg), (3, 2, 1, 0, 1));
    assert!(close(pct(a.gestionadas, a.cuentas), 75.0));
    assert!(close(pct(a.cd + a.ci, a.cuentas), 75.0));
    // Interactions counted for A: G1, G2 only — G3, G7, G8 happened while B (opened later) was
    // also open for those clients, so they count once, in B.
    assert_eq!((a.gestiones, a.gestiones_ce, a.gestiones_cne), (2, 1, 0));

    // Edge case: G5 at 23:30 Lima on 06-06, A's closing day (04:30 UTC on 06-07), is inside A:
    // it manages 1004 with a direct contact and a promise.
    let a = dashboard(c, A, "2025-06-06").await;
    assert_eq!(
        (a.gestionadas, a.cd, a.ci, a.sc, a.sg, a.pdp),
        (4, 3, 1, 0, 0, 1)
    );
    // cobertura 4/4, contacto (3 + 1)/4, contacto directo 3/4, indirecto 1/4.
    assert!(close(pct(a.gestionadas, a.cuentas), 100.0));
    assert!(close(pct(a.cd + a.ci, a.cuentas), 100.0));
    assert!(close(pct(a.cd, a.cuentas), 75.0));
    assert!(close(pct(a.ci, a.cuentas), 25.0));
    // Interactions of A: G1, G2, G5 (all bot); effective G1, G5.
    assert_eq!(
        (
            a.gestiones,
            a.gestiones_ce,
            a.gestiones_cne,
            a.gestiones_bot,
            a.gestiones_humano
        ),
        (3, 2, 0, 3, 0)
    );
    // intensidad = 3 / 4; tasa de contacto = 2 / 3.
    assert!(close(a.gestiones as f64 / a.gestionadas as f64, 0.75));
    assert!(close(pct(a.gestiones_ce, a.gestiones), 200.0 / 3.0));
    let hora: (String, i32) = c
        .query_one(
            "SELECT fecha::text, hora FROM aux.gestion WHERE gestion_uid = 'G5'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(hora, ("2025-06-06".into(), 23));

    // B on 06-10: 2001 (G4 CE 100 + G9 NC 5 → CD), 2002 (G3 → CI), 1001 (G7 unmatched, G8 CE →
    // CD; G1 was before B opened). Interactions of B: G3, G4, G7, G8, G9 = 5; effective G4, G8;
    // non-effective G3; bot G7, G8; human G3, G4, G9.
    let b = dashboard(c, B, "2025-06-10").await;
    assert_eq!(
        (b.cuentas, b.gestionadas, b.cd, b.ci, b.sc, b.sg),
        (3, 3, 2, 1, 0, 0)
    );
    assert_eq!(
        (
            b.gestiones,
            b.gestiones_ce,
            b.gestiones_cne,
            b.gestiones_bot,
            b.gestiones_humano
        ),
        (5, 2, 1, 2, 3)
    );
    assert!(close(b.gestiones as f64 / b.gestionadas as f64, 5.0 / 3.0));

    // Each linked interaction counted once over all campaigns: by 06-06, G1, G2, G3, G4, G5, G7,
    // G8 = 7 (G6 has no known client, G9 is later).
    let total: i64 = c
        .query_one(
            "SELECT sum(gestiones)::int8 FROM mart.dashboard WHERE fecha_foto = '2025-06-06'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 7);

    // Homologation: null-safe on all keys, unmatched kept as SIN_HOMOLOGAR.
    let clases: Vec<(String, String, bool, i32)> = c
        .query("SELECT gestion_uid, clase_contacto, homologado, peso FROM aux.gestion ORDER BY gestion_uid", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let e = |u: &str, k: &str, h: bool, p: i32| (u.to_string(), k.to_string(), h, p);
    assert_eq!(
        clases,
        vec![
            e("G1", "CONTACTO_EFECTIVO", true, 50),
            e("G2", "NO_CONTACTO", true, 10),
            e("G3", "CONTACTO_NO_EFECTIVO", true, 40),
            e("G4", "CONTACTO_EFECTIVO", true, 100),
            e("G5", "CONTACTO_EFECTIVO", true, 90),
            e("G6", "CONTACTO_EFECTIVO", true, 50),
            e("G7", "SIN_HOMOLOGAR", false, 0),
            e("G8", "CONTACTO_EFECTIVO", true, 50),
            e("G9", "NO_CONTACTO", true, 5),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kpi_pdp_and_conversion() {
    let f = fixture("kpi_pdp").await;
    let c = &f.client;
    // A on 06-06: promise accounts = 1004 (G5) → 1; promise interactions G5 → 1; effective 2.
    let a = dashboard(c, A, "2025-06-06").await;
    assert_eq!((a.pdp, a.gestiones_pdp, a.gestiones_ce), (1, 1, 2));
    // PDP % of accounts = 1/4; conversion (promises ÷ effective contacts) = 1/2.
    assert!(close(pct(a.pdp, a.cuentas), 25.0));
    assert!(close(pct(a.gestiones_pdp, a.gestiones_ce), 50.0));
    // B on 06-10: 2001 (G4) → 1 account; G4 → 1 interaction of 2 effective.
    let b = dashboard(c, B, "2025-06-10").await;
    assert_eq!((b.pdp, b.gestiones_pdp, b.gestiones_ce), (1, 1, 2));
    assert!(close(pct(b.gestiones_pdp, b.gestiones_ce), 50.0));
    // Before G4 (B on 06-05): no promise yet.
    assert_eq!(dashboard(c, B, "2025-06-05").await.pdp, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn kpi_payments_recupero_cierre() {
    let f = fixture("kpi_pagos").await;
    let c = &f.client;

    // Dedup and attribution of every payment.
    let pagos: Vec<(
        String,
        String,
        i32,
        Option<String>,
        Option<String>,
        Option<String>,
    )> = c
        .query(
            "SELECT nro_documento, fecha_pago::text, entregas, cuenta, archivo, motivo_no_atribuido
               FROM aux.pago ORDER BY fecha_pago, nro_documento",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        pagos,
        vec![
            // P4: 2001 is only in B, which opens 06-04 → outside every window.
            (
                "F41".into(),
                "2025-06-02".into(),
                1,
                s("2001"),
                None,
                s("FUERA_DE_VENTANA")
            ),
            // P3: 1001 on 06-03: only A is open.
            ("F11".into(), "2025-06-03".into(), 1, s("1001"), s(A), None),
            // P1: delivered in three files, one payment.
            ("F21".into(), "2025-06-04".into(), 3, s("1002"), s(A), None),
            // P2: 1001 on 06-05 is in A and B → B, opened last.
            ("F11".into(), "2025-06-05".into(), 1, s("1001"), s(B), None),
            // P5: no snapshot knows F99.
            (
                "F99".into(),
                "2025-06-05".into(),
                1,
                None,
                None,
                s("DOCUMENTO_SIN_CUENTA")
            ),
            // P6
            ("F51".into(), "2025-06-09".into(), 1, s("2002"), s(B), None),
        ]
    );

    // A on 06-06: recupero = P3 10.00 + P1 200.00 (once, not 600.00) = 210.00; paying accounts
    // 1001, 1002 → 2; payments 2. cierre = 2/4 = 50 %; % recupero = 210.00 / 350.50.
    let a = dashboard(c, A, "2025-06-06").await;
    assert_eq!(
        (a.recupero.as_str(), a.pagadoras, a.pagos),
        ("210.00", 2, 2)
    );
    assert!(close(pct(a.pagadoras, a.cuentas), 50.0));
    assert!(close(
        money(&a.recupero) / money(&a.deuda_asig),
        210.0 / 350.5
    ));
    // ticket promedio de pago = recupero ÷ pagos = 105.00
    assert!(close(money(&a.recupero) / a.pagos as f64, 105.0));
    // Before P1 (A on 06-03): only P3.
    let a3 = dashboard(c, A, "2025-06-03").await;
    assert_eq!((a3.recupero.as_str(), a3.pagadoras), ("10.00", 1));

    // B on 06-10: P2 40.00 + P6 300.00 = 340.00; paying 1001, 2002 → 2 of 3 accounts. P4 (500.00
    // before B opened) is not B's recovery.
    let b = dashboard(c, B, "2025-06-10").await;
    assert_eq!(
        (b.recupero.as_str(), b.pagadoras, b.pagos),
        ("340.00", 2, 2)
    );
    assert!(close(pct(b.pagadoras, b.cuentas), 200.0 / 3.0));
    assert!(close(
        money(&b.recupero) / money(&b.deuda_asig),
        340.0 / 1450.0
    ));

    // Daily payments: one row per attributed account and day.
    let diarios: Vec<(String, String, String, String)> = c
        .query(
            "SELECT fecha::text, archivo, cuenta, monto::text FROM aux.pago_diario ORDER BY fecha, archivo",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let d = |f: &str, a: &str, cu: &str, m: &str| {
        (f.to_string(), a.to_string(), cu.to_string(), m.to_string())
    };
    assert_eq!(
        diarios,
        vec![
            d("2025-06-03", A, "1001", "10.00"),
            d("2025-06-04", A, "1002", "200.00"),
            d("2025-06-05", B, "1001", "40.00"),
            d("2025-06-09", B, "2002", "300.00"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn marts_operation_productivity_evolution_assignment() {
    let f = fixture("kpi_marts").await;
    let c = &f.client;

    // Operation 06-05: G7 (bot, 08h, client 501's 1st attempt, unmatched), G8 (bot, 09h, 2nd
    // attempt, effective), G3 (human, 11h, client 502's 1st attempt, non-effective) — all
    // attributed to B.
    let op: Vec<(i32, String, i32, String, i32, i32, i32, i32)> = c
        .query(
            "SELECT hora, canal, intento, archivo, gestiones, contactos_efectivos,
                    contactos_no_efectivos, sin_homologar
               FROM mart.operacion WHERE fecha = '2025-06-05' ORDER BY hora",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
            )
        })
        .collect();
    assert_eq!(
        op,
        vec![
            (8, "BOT".into(), 1, B.into(), 1, 0, 0, 1),
            (9, "BOT".into(), 2, B.into(), 1, 1, 0, 0),
            (11, "HUMANO".into(), 1, B.into(), 1, 0, 1, 0),
        ]
    );
    // 06-04: G6 has no known client → SIN_CAMPANA, still counted.
    let sin: (String, i32) = c
        .query_one(
            "SELECT archivo, gestiones FROM mart.operacion WHERE fecha = '2025-06-04'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(sin, ("SIN_CAMPANA".into(), 1));
    // 06-06: G5 at 23h (Lima), A, a promise; G4 at 15h, B, a promise.
    let prom: Vec<(i32, String, i32)> = c
        .query("SELECT hora, archivo, pdp FROM mart.operacion WHERE fecha = '2025-06-06' ORDER BY hora", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(prom, vec![(15, B.into(), 1), (23, A.into(), 1)]);
    // pct_gestiones_del_dia: 08h holds 1 of the 3 interactions of 06-05.
    let share: f64 = c
        .query_one(
            "SELECT (sum(gestiones) FILTER (WHERE hora = 8))::float8 / sum(gestiones)::float8
               FROM mart.operacion WHERE fecha = '2025-06-05'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(close(share, 1.0 / 3.0));
    // cierreRate of the operation (promises ÷ effective contacts) on 06-06: G4 and G5 are both
    // effective and both promises → 2 / 2; on 06-05: no promise of 1 effective (G8) → 0.
    let rate = |d: &'static str| async move {
        let r = c
            .query_one(
                "SELECT sum(pdp)::int8, sum(contactos_efectivos)::int8 FROM mart.operacion WHERE fecha = $1::text::date",
                &[&d],
            )
            .await
            .unwrap();
        (r.get::<_, i64>(0), r.get::<_, i64>(1))
    };
    assert_eq!(rate("2025-06-06").await, (2, 2));
    assert_eq!(rate("2025-06-05").await, (0, 1));
    // Every interaction once: 9 in aux.gestion, 9 in the mart.
    let n: i64 = c
        .query_one("SELECT sum(gestiones)::int8 FROM mart.operacion", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 9);

    // Productivity: ana@x.pe (written "ANA@x.pe " in G3) — name and DNI from ejecutivos; the
    // unknown agent keeps the source name and SIN_DNI.
    let prod: Vec<(String, String, String, String, i32, i32, i32, i32, String)> = c
        .query(
            "SELECT fecha::text, correo_agente, nombre_agente, documento_agente, gestiones,
                    contactos_efectivos, contactos_no_efectivos, pdp, monto_compromiso::text
               FROM mart.productividad ORDER BY fecha",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
                r.get(8),
            )
        })
        .collect();
    let p = |f: &str, e: &str, n: &str, d: &str, g, ce, cne, pdp, m: &str| {
        (
            f.to_string(),
            e.to_string(),
            n.to_string(),
            d.to_string(),
            g,
            ce,
            cne,
            pdp,
            m.to_string(),
        )
    };
    assert_eq!(
        prod,
        vec![
            p("2025-06-05", "ana@x.pe", "Ana", "111", 1, 0, 1, 0, "0.00"),
            p("2025-06-06", "ana@x.pe", "Ana", "111", 1, 1, 0, 1, "500.00"),
            p(
                "2025-06-09",
                "otro@x.pe",
                "Otro Agente",
                "SIN_DNI",
                1,
                0,
                0,
                0,
                "0.00"
            ),
        ]
    );

    // Evolution of B: business days only; the weekend is not a point, Monday 06-09 is day 4.
    let evo: Vec<(i32, String, i64, i64)> = c
        .query(
            "SELECT dia_gestion, fecha_foto::text, sum(cuentas_gestionadas)::int8, sum(gestiones)::int8
               FROM mart.evolucion WHERE archivo = $1 GROUP BY 1, 2 ORDER BY 1",
            &[&B],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    // Managed / interactions of B: 06-04 none; 06-05 G3 (2002), G7, G8 (1001) → 2 / 3;
    // 06-06 + G4 (2001) → 3 / 4; 06-09 + G9 → 3 / 5; 06-10 unchanged.
    assert_eq!(
        evo,
        vec![
            (1, "2025-06-04".into(), 0, 0),
            (2, "2025-06-05".into(), 2, 3),
            (3, "2025-06-06".into(), 3, 4),
            (4, "2025-06-09".into(), 3, 5),
            (5, "2025-06-10".into(), 3, 5),
        ]
    );

    // Assignment, June: per cartera × servicio, each account once, clients once per campaign,
    // current debt on the account's last June day (A: 06-06, B: 06-10).
    let asig: Vec<(String, String, i32, i32, String, String, String)> = c
        .query(
            "SELECT cartera, servicio, cuentas, clientes, deuda_asig::text, deuda_act::text, periodo_anterior
               FROM mart.asignacion WHERE periodo = '2025-06' ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6)))
        .collect();
    let q = |ca: &str, s: &str, cu, cl, da: &str, dc: &str| {
        (
            ca.to_string(),
            s.to_string(),
            cu,
            cl,
            da.to_string(),
            dc.to_string(),
            "2025-05".to_string(),
        )
    };
    assert_eq!(
        asig,
        vec![
            // B FIJA: 2002 (300.00)
            q("ALTAS_NUEVAS", "FIJA", 1, 1, "300.00", "300.00"),
            // B MOVIL: 2001 (1000.00), 1001 (150.00)
            q("ALTAS_NUEVAS", "MOVIL", 2, 2, "1150.00", "1150.00"),
            // A FIJA: 1002 (200.00 assigned, 0 on 06-06; client 501 counted on 1001), 1004 (0)
            q("TEMPRANA", "FIJA", 2, 1, "200.00", "0.00"),
            // A MOVIL: 1001 (150.00), 1003 (0.50)
            q("TEMPRANA", "MOVIL", 2, 2, "150.50", "150.50"),
        ]
    );
    // variación (actual vs previous month) as docs/kpis.md defines it: the fixture has no May,
    // so every June figure is "100 % up" (anterior 0, actual > 0) and 0 when both are 0.
    assert_eq!(variacion(2.0, 0.0), 100.0);
    assert_eq!(variacion(0.0, 0.0), 0.0);
    assert!(close(variacion(3.0, 2.0), 50.0));
    assert!(close(variacion(1.0, 3.0), -66.7));
    // No previous month in the fixture: zeros; no July rows (no data in July).
    let ant: i64 = c
        .query_one(
            "SELECT sum(cuentas_ant)::int8 FROM mart.asignacion WHERE periodo = '2025-06'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ant, 0);
    let julio: i64 = c
        .query_one(
            "SELECT count(*) FROM mart.asignacion WHERE periodo > '2025-06'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(julio, 0);
}

/// Dashboard totals over all dimensions equal the totals computed straight from the aux tables,
/// on every photo date (the check the API relies on when it sums any grouping).
const DASHBOARD_VS_AUX: &str = include_str!("fixtures/dashboard_vs_aux.sql");

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_sums_equal_aux_totals() {
    let f = fixture("kpi_sumas").await;
    let r = f.client.query_one(DASHBOARD_VS_AUX, &[]).await.unwrap();
    let (diff, dates): (i64, i64) = (r.get(0), r.get(1));
    // A: 5 photo dates, B: 7.
    assert_eq!((diff, dates), (0, 12));
    // And by hand for one date: 06-06, A + B: accounts 4 + 3 = 7, assigned debt 350.50 + 1450.00.
    let r = f
        .client
        .query_one(
            "SELECT sum(cuentas)::int8, sum(deuda_asig)::text FROM mart.dashboard WHERE fecha_foto = '2025-06-06'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (r.get::<_, i64>(0), r.get::<_, String>(1)),
        (7, "1800.50".to_string())
    );

    // porcentajeCuentas / porcentajeDeuda: a group's share of the photo date's total, from sums.
    // TEMPRANA (A) on 06-06: 4 of 7 accounts, 350.50 of 1800.50 assigned debt.
    let r = f
        .client
        .query_one(
            "SELECT sum(cuentas) FILTER (WHERE cartera = 'TEMPRANA')::float8 / sum(cuentas)::float8,
                    (sum(deuda_asig) FILTER (WHERE cartera = 'TEMPRANA') / sum(deuda_asig))::float8
               FROM mart.dashboard WHERE fecha_foto = '2025-06-06'",
            &[],
        )
        .await
        .unwrap();
    assert!(close(r.get::<_, f64>(0), 4.0 / 7.0));
    assert!(close(r.get::<_, f64>(1), 350.5 / 1800.5));
}

/// Row count and checksum of every aux and mart table the builds write.
async fn build_checksums(c: &Client) -> Vec<(&'static str, (i64, String))> {
    let mut out = Vec::new();
    for t in [
        "aux.calendario_habiles",
        "aux.campana",
        "aux.campana_dia",
        "aux.deuda_cuenta_dia",
        "aux.snapshot_dia",
        "aux.cuenta_campana",
        "aux.gestion",
        "aux.gestion_cuenta",
        "aux.pago",
        "aux.pago_diario",
        "aux.cuenta_estado_diario",
        "mart.dashboard",
        "mart.evolucion",
        "mart.asignacion",
        "mart.operacion",
        "mart.productividad",
    ] {
        out.push((t, common::checksum(c, t).await));
    }
    out
}

/// A late interaction and a re-delivered payment arrive: only the days from the earliest change
/// on are recomputed, and the result equals a full rebuild.
#[tokio::test(flavor = "multi_thread")]
async fn late_data_recomputes_only_affected_days() {
    let f = fixture("kpi_incr").await;
    let c = &f.client;
    let before = dashboard(c, B, "2025-06-10").await;

    // G10: human, client 502 on Monday 06-09 (B only: A is closed) — CE + PDP for 2002.
    // P1 delivered a fourth time (PAG_0609): still one payment.
    let d = f.dir.path();
    write(
        d,
        "mibotair.csv",
        &format!(
            "{MIBOTAIR}G10,502,2025-06-09 16:00:00,2025-06-09,Contacto_Efectivo,Titular,Promesa,ana@x.pe,ana,120.00,CALL1\n"
        ),
    );
    write(
        d,
        "pagos.csv",
        &format!("{PAGOS}F21,2025-06-04,200.00,PAG_0609.txt,1,S1,2025-06-09T15:00:00Z\n"),
    );
    f.run(&[]);

    let ledger: Vec<(String, Option<serde_json::Value>)> = c
        .query(
            "SELECT node, details->'changed_days' FROM pulso_flow.node_runs
              WHERE run_id = (SELECT max(run_id) FROM pulso_flow.runs) AND kind = 'sql' AND (details->>'ran')::boolean
              ORDER BY node",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let days = |node: &str| -> Vec<String> {
        let v = ledger
            .iter()
            .find(|(n, _)| n == node)
            .unwrap_or_else(|| panic!("{node} did not run: {ledger:?}"))
            .1
            .clone()
            .unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_string())
            .collect()
    };
    // The interaction's day only; the payment's entregas changed (3 → 4) on its day only.
    assert_eq!(days("gestion"), vec!["2025-06-09"]);
    assert_eq!(days("pago"), vec!["2025-06-04"]);
    // The account state is cumulative: every campaign day from 06-04 on.
    assert_eq!(
        days("cuenta_estado_diario"),
        vec![
            "2025-06-04",
            "2025-06-05",
            "2025-06-06",
            "2025-06-07",
            "2025-06-08",
            "2025-06-09",
            "2025-06-10"
        ]
    );
    // Nothing about the campaigns or the debt changed.
    assert!(
        !ledger
            .iter()
            .any(|(n, _)| n == "campana" || n == "deuda_diaria" || n == "cuenta_campana"),
        "{ledger:?}"
    );

    // B on 06-10: 2002 is now a direct contact with a promise (was indirect); one more
    // interaction, effective and a promise; recovery unchanged (the re-delivery is not a payment).
    let after = dashboard(c, B, "2025-06-10").await;
    assert_eq!(
        (after.cd, after.ci, after.pdp),
        (before.cd + 1, before.ci - 1, before.pdp + 1)
    );
    assert_eq!(
        (
            after.gestiones,
            after.gestiones_ce,
            after.gestiones_pdp,
            after.recupero.clone()
        ),
        (
            before.gestiones + 1,
            before.gestiones_ce + 1,
            before.gestiones_pdp + 1,
            before.recupero.clone()
        )
    );
    let entregas: i32 = c
        .query_one(
            "SELECT entregas FROM aux.pago WHERE nro_documento = 'F21'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(entregas, 4);

    assert_equals_full_rebuild(&f).await;
}

/// The builds' incremental result equals rebuilding every build from scratch.
async fn assert_equals_full_rebuild(f: &Fixture) {
    let incremental = build_checksums(&f.client).await;
    let builds = "calendario_habiles,deuda_diaria,campana,cuenta_campana,gestion,gestion_cuenta,pago,pago_diario,cuenta_estado_diario,dashboard,evolucion,asignacion,operacion,productividad";
    f.run(&["--tables", builds, "--full-refresh"]);
    assert_eq!(
        incremental,
        build_checksums(&f.client).await,
        "the incremental builds differ from a full rebuild"
    );
}
