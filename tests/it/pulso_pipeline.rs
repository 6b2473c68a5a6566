//! The Pulso pipeline as a whole: the production file's DAG (offline), the demo mirrors it, and
//! the demo fills every layer, is idempotent, and recomputes only the days new data touches.

use pulso_testkit as common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use common::{TestDb, bin, checksum, cli, counts, summary_json, text};
use serde_json::Value;
use tokio_postgres::Client;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const TABLES: [&str; 9] = [
    "calendario",
    "asignaciones",
    "trandeuda",
    "pagos",
    "voicebot_gestiones",
    "mibotair_gestiones",
    "homologacion_mibotair",
    "homologacion_voicebot",
    "ejecutivos",
];

/// Every aux/mart build and what it depends on (the DAG of docs/kpis.md).
const BUILDS: [(&str, &[&str]); 14] = [
    ("calendario_habiles", &["calendario"]),
    ("deuda_diaria", &["trandeuda"]),
    (
        "campana",
        &["calendario", "calendario_habiles", "deuda_diaria"],
    ),
    (
        "cuenta_campana",
        &["asignaciones", "campana", "deuda_diaria"],
    ),
    (
        "gestion",
        &[
            "voicebot_gestiones",
            "mibotair_gestiones",
            "homologacion_voicebot",
            "homologacion_mibotair",
            "ejecutivos",
        ],
    ),
    ("gestion_cuenta", &["gestion", "cuenta_campana", "campana"]),
    ("pago", &["pagos", "trandeuda", "cuenta_campana", "campana"]),
    ("pago_diario", &["pago"]),
    (
        "cuenta_estado_diario",
        &[
            "campana",
            "cuenta_campana",
            "deuda_diaria",
            "pago_diario",
            "gestion_cuenta",
        ],
    ),
    (
        "dashboard",
        &["cuenta_estado_diario", "cuenta_campana", "campana"],
    ),
    ("evolucion", &["dashboard"]),
    ("asignacion", &["cuenta_estado_diario", "cuenta_campana"]),
    ("operacion", &["gestion", "gestion_cuenta"]),
    ("productividad", &["gestion", "gestion_cuenta"]),
];

/// `pulso-flow explain FILE --format json`, offline and without touching real BigQuery: the
/// credentials path points nowhere, so the dry run fails fast and locally.
fn explain(file: &str, env: &[(&str, &str)]) -> Value {
    let mut cmd = Command::new(bin());
    cmd.args(["explain", file, "--format", "json"])
        .current_dir(repo())
        .env("PULSO_LOG", "error")
        .env(
            "BIGQUERY_CREDENTIALS_PATH",
            "/nonexistent/pulso-flow-test-key.json",
        )
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("BIGQUERY_EMULATOR_HOST")
        .env_remove("BIGQUERY_EMULATOR_GRPC_HOST")
        .env_remove("DATABASE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run pulso-flow explain");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("explain is not JSON ({e}): {}", text(&out)))
}

const PROD_ENV: [(&str, &str); 5] = [
    ("BQ_PROJECT", "proyecto-prueba"),
    ("BQ_DATASET", "dataset_prueba"),
    ("PULSO_UID", "uid0123456789abcdefg"),
    ("MIBOTAIR_CLIENT_ID", "77"),
    ("PULSO_BACKFILL_FROM", "2025-06-01"),
];

fn node<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("node {name} not in the plan"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn explain_production_pipeline_shows_every_table_build_and_edge() {
    let plan = explain("pipelines.yaml", &PROD_ENV);
    let names: Vec<String> = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    let mut expected: Vec<String> = TABLES.iter().map(|t| t.to_string()).collect();
    expected.extend(BUILDS.iter().map(|(b, _)| b.to_string()));
    assert_eq!(names, expected);

    for t in TABLES {
        let n = node(&plan, t);
        assert_eq!(n["kind"], "table", "{t}");
        assert_eq!(n["target"], format!("raw.{t}"), "{t}");
        // The dimensions and the small curated calendar are read whole (a row removed at the
        // source must leave raw); the fact tables incrementally.
        let full = t.starts_with("homologacion") || t == "ejecutivos" || t == "calendario";
        assert_eq!(
            n["mode"],
            if full { "full_refresh" } else { "incremental" },
            "{t}"
        );
        assert!(
            n["source"].as_str().unwrap().starts_with("bigquery query"),
            "{t}: {}",
            n["source"]
        );
        let sql = n["source_details"]["bigquery sql"].as_str().unwrap();
        // Project, dataset and UID come from the environment.
        assert!(
            sql.contains("`proyecto-prueba.dataset_prueba."),
            "{t}: {sql}"
        );
        assert!(!sql.contains("SELECT *"), "{t}: {sql}");
        if t != "ejecutivos" {
            assert!(sql.contains("uid0123456789abcdefg"), "{t}: {sql}");
        }
    }
    // The MibotAir client id is a typed query parameter, not SQL text.
    let params = node(&plan, "ejecutivos")["source_details"]["bigquery parameters"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        params.contains("cliente") && params.contains("77"),
        "{params}"
    );

    for (b, deps) in BUILDS {
        let n = node(&plan, b);
        assert_eq!(n["kind"], "sql", "{b}");
        assert_eq!(strings(&n["depends_on"]), deps.to_vec(), "{b}");
        assert_eq!(n["source"], format!("SQL (sql/{b}.sql)"), "{b}");
    }
    let edges: BTreeSet<(String, String)> = plan["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e[0].as_str().unwrap().to_string(),
                e[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected_edges: BTreeSet<(String, String)> = BUILDS
        .iter()
        .flat_map(|(b, deps)| deps.iter().map(move |d| (d.to_string(), b.to_string())))
        .collect();
    assert_eq!(edges, expected_edges);
    assert_eq!(
        plan["pipeline"]["name"]
            .as_str()
            .or(plan["pipeline"].as_str()),
        Some("pulso")
    );
}

#[test]
fn production_files_hold_no_literal_ids_or_dates() {
    let date = |s: &str| {
        s.as_bytes().windows(10).any(|w| {
            w[..4].iter().all(u8::is_ascii_digit)
                && w[4] == b'-'
                && w[5..7].iter().all(u8::is_ascii_digit)
                && w[7] == b'-'
                && w[8..].iter().all(u8::is_ascii_digit)
        })
    };
    let mut files = vec![repo().join("pipelines.yaml")];
    for e in std::fs::read_dir(repo().join("sql")).unwrap() {
        files.push(e.unwrap().path());
    }
    assert!(files.len() >= 15);
    for f in files {
        let body = std::fs::read_to_string(&f).unwrap();
        // Comments may cite examples; code may not.
        let code: String = body
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(|l| l.split("--").next().unwrap().split(" #").next().unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!date(&code), "{} has a literal date", f.display());
        assert!(
            !code.to_lowercase().contains("raw_")
                && !code.contains("mart_")
                && !code.contains("aux_"),
            "{} names a UID schema",
            f.display()
        );
    }
    // Undefined environment: validate names every missing variable instead of guessing.
    let out = Command::new(bin())
        .args(["validate", "pipelines.yaml"])
        .current_dir(repo())
        .env_remove("BQ_PROJECT")
        .env_remove("BQ_DATASET")
        .env_remove("PULSO_UID")
        .env_remove("MIBOTAIR_CLIENT_ID")
        .env_remove("PULSO_BACKFILL_FROM")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for v in [
        "BQ_PROJECT",
        "BQ_DATASET",
        "PULSO_UID",
        "MIBOTAIR_CLIENT_ID",
        "PULSO_BACKFILL_FROM",
    ] {
        assert!(err.contains(v), "{v} not reported: {err}");
    }
}

/// The key columns of a table node (from its merge's ON CONFLICT), its change-date column (from
/// the RETURNING of its change log) and its staged columns with their types.
fn table_shape(n: &Value) -> (String, Option<String>, BTreeMap<String, String>) {
    let merge = n["sql"]["merge"].as_str().unwrap();
    let key = merge
        .split("ON CONFLICT (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_string();
    let day = merge
        .split("AS inserted, ")
        .nth(1)
        .map(|s| s.split(" AS day").next().unwrap().to_string());
    let staging = n["sql"]["staging"].as_str().unwrap();
    let cols = staging
        .split_once(" (")
        .unwrap()
        .1
        .rsplit_once(") ON COMMIT")
        .unwrap()
        .0;
    let mut columns = BTreeMap::new();
    for c in cols.split(", \"") {
        let c = c.trim_start_matches('"');
        let (name, ty) = c.split_once("\" ").unwrap();
        columns.insert(name.to_string(), ty.to_string());
    }
    (key, day, columns)
}

#[test]
fn demo_mirrors_the_production_pipeline() {
    let prod = explain("pipelines.yaml", &PROD_ENV);
    let demo = explain("examples/demo.yaml", &[]);
    for t in TABLES {
        let (p, d) = (node(&prod, t), node(&demo, t));
        assert_eq!(
            (&d["target"], &d["mode"]),
            (&p["target"], &p["mode"]),
            "{t}"
        );
        let (pk, pday, pcols) = table_shape(p);
        let (dk, dday, dcols) = table_shape(d);
        assert_eq!((dk, dday), (pk, pday), "{t}: key and change date");
        for (c, ty) in &dcols {
            assert_eq!(
                pcols.get(c),
                Some(ty),
                "{t}.{c}: the demo's column is not production's"
            );
        }
    }
    for (b, _) in BUILDS {
        let (p, d) = (node(&prod, b), node(&demo, b));
        assert_eq!(d["depends_on"], p["depends_on"], "{b}");
        assert_eq!(
            d["sql"]["build"], p["sql"]["build"],
            "{b}: not the same SQL"
        );
    }
    assert_eq!(demo["edges"], prod["edges"]);
}

async fn table_counts(c: &Client) -> BTreeMap<String, i64> {
    let tables: Vec<String> = c
        .query(
            "SELECT schemaname || '.' || tablename FROM pg_tables
              WHERE schemaname IN ('raw', 'aux', 'mart') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = BTreeMap::new();
    for t in tables {
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .await
            .unwrap()
            .get(0);
        out.insert(t, n);
    }
    out
}

async fn build_checksums(c: &Client) -> Vec<(String, (i64, String))> {
    let mut out = Vec::new();
    for (t, _) in table_counts(c).await {
        if t.starts_with("aux.") || t.starts_with("mart.") {
            out.push((t.clone(), checksum(c, &t).await));
        }
    }
    out
}

/// (node, ran, changed days) of the builds of the latest run.
async fn last_builds(c: &Client) -> BTreeMap<String, (bool, Option<Vec<String>>)> {
    c.query(
        "SELECT node, (details->>'ran')::boolean, details->'changed_days' FROM pulso_flow.node_runs
          WHERE kind = 'sql' AND run_id = (SELECT max(run_id) FROM pulso_flow.runs)",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| {
        let days: Option<Value> = r.get(2);
        (
            r.get::<_, String>(0),
            (
                r.get::<_, bool>(1),
                days.filter(|d| !d.is_null()).map(|d| strings(&d)),
            ),
        )
    })
    .collect()
}

/// uid → (Lima day, row text) of both interaction tables.
async fn interactions(c: &Client) -> BTreeMap<String, (String, String)> {
    c.query(
        "SELECT uid, fecha_gestion::text, t::text FROM raw.voicebot_gestiones t
         UNION ALL SELECT uid, fecha_gestion::text, t::text FROM raw.mibotair_gestiones t",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2))))
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_fills_every_layer_and_recomputes_only_affected_days() {
    let db = TestDb::new("pulso_demo").await;
    let demo = repo().join("examples/demo.yaml").display().to_string();
    let c = db.client().await;
    let run = |rev: &str, extra: &[&str]| {
        let mut args = vec!["run", demo.as_str(), "--summary", "json"];
        args.extend_from_slice(extra);
        let out = cli(&db.url, &args, &[("DEMO_REVISION", rev)]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        summary_json(&out)
    };

    // 1. Empty database: every raw, aux and mart table gets rows (aux.feriados is the business's
    //    holiday list, empty until it decides).
    run("0", &[]);
    let n = table_counts(&c).await;
    assert_eq!(n.len(), 26, "{n:?}");
    for (t, rows) in &n {
        if t != "aux.feriados" {
            assert!(*rows > 0, "{t} is empty: {n:?}");
        }
    }
    let (diff, pairs): (i64, i64) = {
        let r = c
            .query_one(include_str!("fixtures/dashboard_vs_aux.sql"), &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(diff, 0, "dashboard totals differ from the aux tables");
    assert!(pairs > 80, "{pairs}");
    // The demo re-delivers (docs/kpis.md, "Re-delivered, corrected and vanished source rows"):
    // a correction file of each snapshot day, payments in several files and twice in one file.
    // Each snapshot counts each document once, as of its latest delivery (computed here with a
    // window function, not with the build's view), and each payment occurrence is one payment.
    let r = c
        .query_one(
            "SELECT (SELECT count(*) FROM raw.trandeuda WHERE archivo LIKE '%CORRECCION%'),
                    (SELECT count(*) FROM raw.pagos WHERE ocurrencia = 2),
                    (SELECT count(*) FROM (SELECT DISTINCT nro_documento, fecha_pago, monto_cancelado,
                                                           ocurrencia FROM raw.pagos) p)
                        - (SELECT count(*) FROM aux.pago),
                    (SELECT count(*) FROM aux.snapshot_dia s
                       FULL JOIN (SELECT fecha_proceso, coalesce(sum(monto_exigible)
                                                        FILTER (WHERE monto_exigible > 0), 0) AS deuda
                                    FROM (SELECT t.*, row_number() OVER (
                                                   PARTITION BY fecha_proceso, nro_documento
                                                   ORDER BY creado_el DESC, archivo DESC) AS n
                                            FROM raw.trandeuda t) x
                                   WHERE n = 1 GROUP BY 1) w ON w.fecha_proceso = s.fecha
                      WHERE w.deuda IS DISTINCT FROM s.deuda)",
            &[],
        )
        .await
        .unwrap();
    let (corrections, second, payments_diff, days_diff): (i64, i64, i64, i64) =
        (r.get(0), r.get(1), r.get(2), r.get(3));
    assert!(corrections > 0 && second > 0, "{corrections} {second}");
    assert_eq!(
        payments_diff, 0,
        "aux.pago is not one row per payment occurrence"
    );
    assert_eq!(
        days_diff, 0,
        "a snapshot's debt is not its documents' latest deliveries"
    );

    // 2. Again: nothing changes, no build runs.
    let before = build_checksums(&c).await;
    let s = run("0", &[]);
    for t in TABLES {
        let (ins, upd, _) = counts(&s, t);
        assert_eq!((ins, upd), (0, 0), "{t}");
    }
    for (b, (ran, _)) in last_builds(&c).await {
        assert!(!ran, "{b} ran without upstream changes");
    }
    assert_eq!(build_checksums(&c).await, before);

    // 3. Revision 1: the next day (2025-07-02) arrives everywhere, and a few interactions inside
    //    their 7-day lookback are corrected. Expected days, from what the loads actually wrote.
    let old = interactions(&c).await;
    run("1", &[]);
    let new = interactions(&c).await;
    let touched: BTreeSet<String> = new
        .iter()
        .filter(|(uid, row)| old.get(*uid) != Some(row))
        .map(|(_, (day, _))| day.clone())
        .collect();
    assert!(
        touched.contains("2025-07-02") && touched.len() > 1,
        "{touched:?}"
    );
    let builds = last_builds(&c).await;
    let days = |b: &str| {
        builds[b]
            .1
            .clone()
            .unwrap_or_else(|| panic!("{b} was a full rebuild"))
    };
    let next = vec!["2025-07-02".to_string()];
    assert_eq!(days("deuda_diaria"), next, "one new snapshot day");
    assert_eq!(days("campana"), next, "open campaigns grow by that day");
    assert_eq!(
        days("cuenta_campana"),
        Vec::<String>::new(),
        "no universe changed"
    );
    assert_eq!(days("pago"), next, "only the new day's payments");
    assert_eq!(days("gestion"), touched.iter().cloned().collect::<Vec<_>>());
    // The cumulative state: every campaign day from the earliest touched day on.
    let from = touched.iter().next().unwrap().clone();
    let expected: Vec<String> = c
        .query(
            "SELECT DISTINCT fecha::text FROM aux.campana_dia WHERE fecha >= $1::text::date ORDER BY 1",
            &[&from],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(days("cuenta_estado_diario"), expected);
    assert_eq!(days("dashboard"), expected);
    assert!(
        !builds["calendario_habiles"].0,
        "the calendar did not change"
    );
    let r = c
        .query_one(include_str!("fixtures/dashboard_vs_aux.sql"), &[])
        .await
        .unwrap();
    assert_eq!(
        r.get::<_, i64>(0),
        0,
        "dashboard totals differ from the aux tables"
    );

    // 4. The incremental result equals rebuilding every build from scratch.
    let incremental = build_checksums(&c).await;
    let all: Vec<&str> = BUILDS.iter().map(|(b, _)| *b).collect();
    run("1", &["--tables", &all.join(","), "--full-refresh"]);
    assert_eq!(build_checksums(&c).await, incremental);
}
