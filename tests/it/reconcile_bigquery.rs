//! `pulso-flow reconcile` of a BigQuery table against the REST fake: BigQuery computes the
//! per-day totals in one aggregate query (typed DATE parameters, the key's deduplication, the
//! byte limit sent), its dry run is shown before it runs, `--dry-run` stops there, and a query
//! over `maximum_bytes_billed` is refused before any job is billed. The target is never touched.
//! (The emulator test in `gates_bigquery.rs` runs the same query for real, and `--repair`.)

use pulso_testkit as common;

use common::bigquery::{FakeBigQuery, FakeState, rest_row};
use common::{TestDb, checksum, cli, summary_json, text, write};
use serde_json::{Value, json};

const PIPELINE: &str = r#"
connections:
  bq: { kind: bigquery, project: p, dataset: d, endpoint: "${BQ_REST}", maximum_bytes_billed: 10000, retry: { attempts: 1 } }
defaults: { schema: rb, time_zone: UTC }
tables:
  - name: deuda
    source: { kind: bigquery, connection: bq, query: "SELECT doc, dia, monto, creado_el FROM `p.d.deuda`" }
    columns: { doc: text, dia: date, monto: "numeric(12,2)", creado_el: timestamptz }
    primary_key: [doc]
    incremental: { column: creado_el, type: timestamp, lookback: 1d }
    change_date: dia
    reconcile: { by: dia, sum: [monto] }
"#;

fn param<'a>(job: &'a Value, name: &str) -> &'a Value {
    job["configuration"]["query"]["queryParameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("parameter {name} not in {job}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_asks_bigquery_for_day_totals_after_showing_the_dry_run_and_honours_the_byte_limit()
 {
    // BigQuery's answer: 2025-06-02 holds one more row than the target.
    let fake = FakeBigQuery::start_rest(FakeState {
        fields: json!([
            {"name": "day", "type": "STRING"},
            {"name": "n", "type": "INTEGER"},
            {"name": "s0", "type": "STRING"}
        ]),
        rows: vec![
            rest_row(vec![
                Some(json!("2025-06-01")),
                Some(json!("2")),
                Some(json!("300.3")),
            ]),
            rest_row(vec![
                Some(json!("2025-06-02")),
                Some(json!("2")),
                Some(json!("700.7")),
            ]),
        ],
        dry_run_bytes: 5000,
        ..FakeState::default()
    })
    .await;
    let db = TestDb::new("reconcile_bq").await;
    let c = db.client().await;
    c.batch_execute(
        "CREATE SCHEMA rb; \
         CREATE TABLE rb.deuda (doc text PRIMARY KEY, dia date, monto numeric(12,2), creado_el timestamptz); \
         INSERT INTO rb.deuda VALUES ('D1', '2025-06-01', 100.10, '2025-06-01T12:00:00Z'), \
                                    ('D2', '2025-06-01', 200.20, '2025-06-01T12:00:00Z'), \
                                    ('D3', '2025-06-02', 300.30, '2025-06-02T12:00:00Z');",
    )
    .await
    .expect("target");
    let before = checksum(&c, "rb.deuda").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", PIPELINE).display().to_string();
    let reconcile = |args: &[&str]| {
        let mut full = vec!["reconcile".to_string(), file.clone()];
        full.extend(args.iter().map(|a| a.to_string()));
        let (url, rest) = (db.url.clone(), fake.url.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                let a: Vec<&str> = full.iter().map(String::as_str).collect();
                cli(&url, &a, &[("BQ_REST", rest.as_str())])
            })
            .await
            .expect("cli task")
        }
    };

    // 1. For people: the query and its dry run first, then the differing day.
    let out = reconcile(&["--from", "2025-06-01", "--to", "2025-06-30"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let shown = stdout
        .find("deuda: BigQuery aggregate query, dry run: 5000 bytes processed")
        .unwrap_or_else(|| panic!("{stdout}"));
    let differs = stdout
        .find("2025-06-02")
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(shown < differs, "{stdout}");
    assert!(
        stdout.contains("@pulso_from DATE = \"2025-06-01\""),
        "{stdout}"
    );
    assert!(stdout.contains("1 day(s) differ"), "{stdout}");
    let (dry_runs, inserts) = fake.with(|s| (s.dry_runs.clone(), s.inserts.clone()));
    assert_eq!((dry_runs.len(), inserts.len()), (1, 1));
    let job = &inserts[0];
    let sql = job["configuration"]["query"]["query"]
        .as_str()
        .unwrap_or_default();
    assert!(
        sql.contains("ROW_NUMBER() OVER (PARTITION BY `doc` ORDER BY `creado_el` DESC NULLS LAST)")
            && sql.contains("ROUND(CAST(`monto` AS BIGNUMERIC), 2)")
            && sql.contains("pulso_day >= @pulso_from AND pulso_day <= @pulso_to")
            && !sql.contains("2025-06"),
        "{sql}"
    );
    assert_eq!(param(job, "pulso_from")["parameterType"]["type"], "DATE");
    assert_eq!(
        param(job, "pulso_to")["parameterValue"]["value"],
        "2025-06-30"
    );
    assert_eq!(job["configuration"]["query"]["maximumBytesBilled"], "10000");
    assert_eq!(checksum(&c, "rb.deuda").await, before);

    // 2. As JSON: the method, the query and the day; no source row was read.
    let out = reconcile(&["--summary", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = summary_json(&out);
    let t = &s["tables"][0];
    assert_eq!(t["method"], "bigquery_aggregate", "{s}");
    assert_eq!(t["rows_read"], 0, "{s}");
    assert_eq!(t["source_query"]["bytes_processed"], 5000, "{s}");
    assert_eq!(t["reconcile"]["mismatches"][0]["day"], "2025-06-02", "{s}");
    assert_eq!(t["reconcile"]["mismatches"][0]["source_rows"], 2, "{s}");
    assert_eq!(t["reconcile"]["mismatches"][0]["target_rows"], 1, "{s}");
    assert_eq!(
        t["reconcile"]["mismatches"].as_array().map(Vec::len),
        Some(1)
    );

    // 3. --dry-run: the query is planned and dry-run, never run.
    let out = reconcile(&["--dry-run"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(fake.with(|s| (s.dry_runs.len(), s.inserts.len())), (3, 2));

    // 4. Over the byte limit: refused after the dry run, no job inserted, nothing changed.
    fake.with(|s| s.dry_run_bytes = 20_000);
    let out = reconcile(&[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("would process 20000 bytes, more than maximum_bytes_billed (10000)"),
        "{}",
        text(&out)
    );
    assert_eq!(fake.with(|s| (s.dry_runs.len(), s.inserts.len())), (4, 2));
    assert_eq!(checksum(&c, "rb.deuda").await, before);
}
