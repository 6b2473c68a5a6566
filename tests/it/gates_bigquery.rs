//! Quality gates and reconciliation with a BigQuery source (the emulator of `../shared/bqemu`):
//! a clean run, a mismatch that fails then warns, `pulso-flow reconcile` naming a day changed at
//! the source outside every lookback, `--repair`, and a failing gate that commits nothing.
//! Without the emulator the test prints why it is skipped (it fails with BQEMU_REQUIRED=1).

use pulso_testkit as common;

use pulso_testkit::bqemu;

use bqemu::{Emulator, emulator, run_cli};
use common::{TestDb, checksum, cli, summary_json, text, write};
use serde_json::{Value, json};

const PIPELINE: &str = "\
connections:
  bq: { kind: bigquery, project: \"${BQ_PROJECT}\", dataset: \"${BQ_DATASET}\" }
defaults: { schema: gq }
tables:
  - name: deuda
    source:
      kind: bigquery
      connection: bq
      query: \"SELECT doc, dia, monto, creado_el FROM `${BQ_PROJECT}.${BQ_DATASET}.deuda`\"
    columns: { doc: text, dia: date, monto: \"numeric(12,2)\", creado_el: timestamptz }
    primary_key: [doc]
    incremental: { column: creado_el, type: timestamp, lookback: 1d }
    change_date: dia
    reconcile: { by: dia, sum: [monto], on_mismatch: ${ON_MISMATCH:-fail} }
    checks:
      - { name: monto_no_negativo, range: { column: monto, min: 0 } }
";

fn row(doc: &str, dia: &str, monto: &str) -> Value {
    json!({"doc": doc, "dia": dia, "monto": monto, "creado_el": format!("{dia}T12:00:00Z")})
}

async fn dml(emu: &Emulator, sql: String) {
    emu.post("/queries", json!({"query": sql, "useLegacySql": false}))
        .await;
}

fn node<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in {s}"))
}

async fn state(client: &tokio_postgres::Client) -> (i64, String, String) {
    let (n, sum) = checksum(client, "gq.deuda").await;
    let w: String = client
        .query_one(
            "SELECT value || ':' || data_version FROM pulso_flow.watermarks WHERE node = 'deuda'",
            &[],
        )
        .await
        .expect("watermark")
        .get(0);
    (n, sum, w)
}

#[tokio::test(flavor = "multi_thread")]
async fn gates_and_reconcile_against_the_bigquery_emulator() {
    let Some(emu) = emulator().await else { return };
    let dataset = emu.create_dataset("pf_gates").await;
    emu.create_table(
        &dataset,
        "deuda",
        &[
            ("doc", "STRING"),
            ("dia", "DATE"),
            ("monto", "NUMERIC"),
            ("creado_el", "TIMESTAMP"),
        ],
    )
    .await;
    emu.insert_rows(
        &dataset,
        "deuda",
        [
            row("D0", "2025-05-01", "10.00"),
            row("D1", "2025-06-01", "100.10"),
            row("D2", "2025-06-01", "200.20"),
            row("D3", "2025-06-02", "300.30"),
            row("D4", "2025-06-02", "400.40"),
        ]
        .into_iter(),
    )
    .await;
    let db = TestDb::new("gates_bq").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", PIPELINE);
    let path = file.display().to_string();
    let env = |extra: &[(&str, &str)]| {
        let mut v = vec![
            ("BIGQUERY_EMULATOR_HOST".to_string(), emu.rest.clone()),
            ("BQ_PROJECT".to_string(), emu.project.clone()),
            ("BQ_DATASET".to_string(), dataset.clone()),
        ];
        v.extend(extra.iter().map(|(k, x)| (k.to_string(), x.to_string())));
        v
    };
    let reconcile = |args: Vec<&str>| {
        let env = env(&[]);
        let mut full = vec!["reconcile", path.as_str(), "--summary", "json"];
        full.extend(args);
        let full: Vec<String> = full.into_iter().map(String::from).collect();
        let url = db.url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let a: Vec<&str> = full.iter().map(String::as_str).collect();
                let e: Vec<(&str, &str)> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                cli(&url, &a, &e)
            })
            .await
            .expect("cli task")
        }
    };

    // 1. Clean: the load reconciles its window, `reconcile` the whole source.
    let out = run_cli(db.url.clone(), &file, env(&[]), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&out);
    assert_eq!(node(&s, "deuda")["reconcile"]["source_rows"], 5, "{s}");
    assert_eq!(
        node(&s, "deuda")["reconcile"]["mismatches"],
        json!([]),
        "{s}"
    );
    let out = reconcile(vec![]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // 2. D4 is deleted at the source, inside the window: the load fails and commits nothing…
    let client = db.client().await;
    let before = state(&client).await;
    dml(
        &emu,
        format!(
            "DELETE FROM `{}.{dataset}.deuda` WHERE doc = 'D4'",
            emu.project
        ),
    )
    .await;
    let out = run_cli(db.url.clone(), &file, env(&[]), &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = summary_json(&out);
    let error = node(&s, "deuda")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("2025-06-02: rows 1 vs 2, monto 300.30 vs 700.70"),
        "{error}"
    );
    assert_eq!(state(&client).await, before);
    // …or, with on_mismatch: warn, commits and records it.
    let out = run_cli(db.url.clone(), &file, env(&[("ON_MISMATCH", "warn")]), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&out);
    assert!(
        node(&s, "deuda")["warnings"]
            .to_string()
            .contains("2025-06-02"),
        "{s}"
    );

    // 3. D0 corrected at the source, a month before the window: only `reconcile` sees it.
    dml(
        &emu,
        format!(
            "UPDATE `{}.{dataset}.deuda` SET monto = 99 WHERE doc = 'D0'",
            emu.project
        ),
    )
    .await;
    let out = reconcile(vec![]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = summary_json(&out);
    let days: Vec<&str> = s["tables"][0]["reconcile"]["mismatches"]
        .as_array()
        .expect("mismatches")
        .iter()
        .filter_map(|d| d["day"].as_str())
        .collect();
    assert_eq!(days, ["2025-05-01", "2025-06-02"], "{s}");
    // BigQuery computed the per-day totals: no source row was read.
    assert_eq!(s["tables"][0]["method"], "bigquery_aggregate", "{s}");
    assert_eq!(s["tables"][0]["rows_read"], 0, "{s}");
    let out = reconcile(vec!["--from", "2025-05-01", "--to", "2025-05-31"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        summary_json(&out)["tables"][0]["reconcile"]["mismatches"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let out = reconcile(vec!["--repair"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The repair read the source rows of the differing days' range (D0…D3) and wrote those
    // of the two days (D0, D3).
    let s = summary_json(&out);
    assert_eq!(s["tables"][0]["rows_read"], 4, "{s}");
    assert_eq!(s["tables"][0]["repair"]["inserted"], 2, "{s}");
    let out = reconcile(vec![]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rows: Vec<String> = client
        .query("SELECT doc || ':' || monto FROM gq.deuda ORDER BY doc", &[])
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, ["D0:99.00", "D1:100.10", "D2:200.20", "D3:300.30"]);

    // 4. A negative amount arrives: the gate fails the load, nothing is committed.
    let before = state(&client).await;
    emu.insert_rows(
        &dataset,
        "deuda",
        [row("D5", "2025-06-03", "-5.00")].into_iter(),
    )
    .await;
    let out = run_cli(db.url.clone(), &file, env(&[]), &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = summary_json(&out);
    let error = node(&s, "deuda")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("monto_no_negativo") && error.contains("doc=D5"),
        "{error}"
    );
    assert_eq!(state(&client).await, before);
}
