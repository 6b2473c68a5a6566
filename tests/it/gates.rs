//! Quality gates (`checks:`) and per-load reconciliation (`reconcile:`) against a real
//! PostgreSQL: a failing `error` gate or a mismatch with `on_mismatch: fail` leaves target,
//! watermark, ledger status and marts exactly as before; `warn` commits and records.

use pulso_testkit as common;

use std::path::Path;

use common::{TestDb, checksum, cli, summary_json, text, write};

const PIPELINE: &str = "\
defaults: { schema: g }
tables:
  - name: deuda
    source: { kind: csv, path: deuda.csv }
    columns: { doc: text, dia: date, monto: \"numeric(12,2)\", estado: text }
    primary_key: [doc]
    change_date: dia
    reconcile: { by: dia, sum: [monto], on_mismatch: ${ON_MISMATCH:-fail} }
    checks:
      - { name: keys_not_null, not_null: [dia] }
      - { name: monto_no_negativo, range: { column: monto, min: 0 }, severity: ${SEV:-error} }
      - { name: estado_conocido, accepted_values: { column: estado, values: [A, B] }, severity: warn }
      - { name: tamano_snapshot, row_count: { by: dia, min_ratio: 0.5 }, severity: warn }
builds:
  - name: total
    depends_on: [deuda]
    sql: |
      CREATE TABLE IF NOT EXISTS g.total (dia date PRIMARY KEY, monto numeric, filas bigint);
      DELETE FROM g.total;
      INSERT INTO g.total SELECT dia, sum(monto), count(*) FROM g.deuda GROUP BY dia;
    checks:
      - name: totales_iguales
        sql: \"SELECT t.dia FROM g.total t FULL JOIN (SELECT dia, sum(monto) AS s FROM g.deuda GROUP BY dia) d USING (dia) WHERE t.monto IS DISTINCT FROM d.s\"
      - { name: filas_positivas, table: g.total, key: [dia], range: { column: filas, min: ${MIN_FILAS:-1} } }
";

const CLEAN: &str = "doc,dia,monto,estado\n\
D1,2025-06-01,100.10,A\n\
D2,2025-06-01,200.20,B\n\
D3,2025-06-02,300.30,A\n\
D4,2025-06-02,400.40,A\n";

fn run(db: &TestDb, file: &Path, env: &[(&str, &str)]) -> std::process::Output {
    cli(
        &db.url,
        &["run", &file.display().to_string(), "--summary", "json"],
        env,
    )
}

/// Everything a failed gate must leave as it was: target, mart, watermark row and data version.
async fn snapshot(client: &tokio_postgres::Client) -> Vec<String> {
    let (n, sum) = checksum(client, "g.deuda").await;
    let (mn, msum) = checksum(client, "g.total").await;
    let state: Vec<String> = client
        .query(
            "SELECT node || ':' || coalesce(value, '') || ':' || data_version || ':' || last_status \
             FROM pulso_flow.watermarks ORDER BY node",
            &[],
        )
        .await
        .expect("watermarks")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let changes: i64 = client
        .query_one("SELECT count(*) FROM pulso_flow.changes", &[])
        .await
        .expect("changes")
        .get(0);
    let mut out = vec![
        format!("{n}:{sum}"),
        format!("{mn}:{msum}"),
        changes.to_string(),
    ];
    out.extend(state);
    out
}

fn node<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("node {name} not in summary: {summary}"))
}

async fn last_details(client: &tokio_postgres::Client, node: &str) -> (String, serde_json::Value) {
    let row = client
        .query_one(
            "SELECT status, details FROM pulso_flow.node_runs WHERE node = $1 \
             ORDER BY started_at DESC LIMIT 1",
            &[&node],
        )
        .await
        .expect("ledger row");
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_error_gate_commits_nothing_and_names_check_and_keys() {
    let db = TestDb::new("gate_err").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", PIPELINE);
    write(dir.path(), "deuda.csv", CLEAN);
    let out = run(&db, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&out);
    let checks = node(&s, "deuda")["checks"]
        .as_array()
        .expect("checks")
        .clone();
    assert_eq!(checks.len(), 4, "{s}");
    assert!(checks.iter().all(|c| c["passed"] == true), "{s}");
    assert_eq!(node(&s, "deuda")["reconcile"]["days"], 2, "{s}");
    assert_eq!(
        node(&s, "total")["checks"].as_array().map(Vec::len),
        Some(2),
        "{s}"
    );

    let client = db.client().await;
    let before = snapshot(&client).await;

    // Two negative amounts (and a third row changed): the range gate fails the load.
    write(
        dir.path(),
        "deuda.csv",
        "doc,dia,monto,estado\n\
         D1,2025-06-01,-1.00,A\n\
         D2,2025-06-01,200.20,B\n\
         D3,2025-06-02,-3.00,A\n\
         D4,2025-06-02,400.41,A\n",
    );
    let out = run(&db, &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = summary_json(&out);
    let d = node(&s, "deuda");
    assert_eq!(d["status"], "failed", "{s}");
    let error = d["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("monto_no_negativo")
            && error.contains("2 offending row(s)")
            && error.contains("doc=D1")
            && error.contains("doc=D3"),
        "{error}"
    );
    assert_eq!(node(&s, "total")["status"], "skipped", "{s}");
    let failed: Vec<&serde_json::Value> = d["checks"]
        .as_array()
        .expect("checks of a failed node")
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{s}");
    assert_eq!(
        failed[0]["sample"],
        serde_json::json!(["doc=D1 monto=-1.00", "doc=D3 monto=-3.00"])
    );
    assert_eq!(
        snapshot(&client).await,
        before,
        "a failed gate changed something"
    );
    let (status, details) = last_details(&client, "deuda").await;
    assert_eq!(status, "failed");
    assert_eq!(details["checks"][1]["offending"], 2, "{details}");

    // The same data with the gate at severity warn: committed, recorded, reported.
    let out = run(&db, &file, &[("SEV", "warn")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&out);
    let warnings = node(&s, "deuda")["warnings"].to_string();
    assert!(warnings.contains("monto_no_negativo"), "{s}");
    let (status, details) = last_details(&client, "deuda").await;
    assert_eq!(status, "ok");
    assert_eq!(details["checks"][1]["passed"], false, "{details}");
    assert_eq!(
        details["warnings"].as_array().map(Vec::len),
        Some(1),
        "{details}"
    );
    let (n, _) = checksum(&client, "g.deuda").await;
    assert_eq!(n, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_build_gate_rolls_the_build_back() {
    let db = TestDb::new("gate_build").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", PIPELINE);
    write(dir.path(), "deuda.csv", CLEAN);
    let out = run(&db, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let client = db.client().await;
    let mart_before = checksum(&client, "g.total").await;

    // A new day of data; the build's gate now demands 5 rows a day: the build fails, the
    // table's load is committed, the mart keeps its previous content.
    write(
        dir.path(),
        "deuda.csv",
        &format!("{CLEAN}D5,2025-06-03,1.00,A\nD6,2025-06-03,2.00,B\n"),
    );
    let out = run(&db, &file, &[("MIN_FILAS", "5")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = summary_json(&out);
    assert_eq!(node(&s, "deuda")["status"], "ok", "{s}");
    let t = node(&s, "total");
    assert_eq!(t["status"], "failed", "{s}");
    let error = t["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("filas_positivas") && error.contains("dia=2025-06-01"),
        "{error}"
    );
    assert_eq!(checksum(&client, "g.total").await, mart_before);
    // The build's cursor did not move: the next run rebuilds the changed day.
    let out = run(&db, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let filas: i64 = client
        .query_one("SELECT filas FROM g.total WHERE dia = '2025-06-03'", &[])
        .await
        .expect("rebuilt day")
        .get(0);
    assert_eq!(filas, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_gone_from_the_source_fails_reconciliation_or_warns() {
    let db = TestDb::new("recon_load").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", PIPELINE);
    write(dir.path(), "deuda.csv", CLEAN);
    let out = run(&db, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Second run, same data, through staging: reconciles cleanly.
    let out = run(&db, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&out);
    let r = &node(&s, "deuda")["reconcile"];
    assert_eq!(r["mismatches"], serde_json::json!([]), "{s}");
    assert_eq!(
        (r["source_rows"].as_i64(), r["target_rows"].as_i64()),
        (Some(4), Some(4))
    );

    let client = db.client().await;
    let before = snapshot(&client).await;
    // D4 disappears from the source and D2's amount is corrected: the merge updates D2 but
    // keeps D4, so day 06-02 differs (rows 1 vs 2).
    write(
        dir.path(),
        "deuda.csv",
        "doc,dia,monto,estado\nD1,2025-06-01,100.10,A\nD2,2025-06-01,250.00,B\nD3,2025-06-02,300.30,A\n",
    );
    let out = run(&db, &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = summary_json(&out);
    let d = node(&s, "deuda");
    let error = d["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("reconciliation failed")
            && error.contains("2025-06-02: rows 1 vs 2, monto 300.30 vs 700.70")
            && !error.contains("2025-06-01"),
        "{error}"
    );
    assert_eq!(
        d["reconcile"]["mismatches"].as_array().map(Vec::len),
        Some(1),
        "{s}"
    );
    assert_eq!(
        snapshot(&client).await,
        before,
        "a failed reconciliation changed something"
    );
    let (status, details) = last_details(&client, "deuda").await;
    assert_eq!(status, "failed");
    assert_eq!(
        details["reconcile"]["mismatches"][0]["day"], "2025-06-02",
        "{details}"
    );

    let out = run(&db, &file, &[("ON_MISMATCH", "warn")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&out);
    assert!(
        node(&s, "deuda")["warnings"]
            .to_string()
            .contains("2025-06-02"),
        "{s}"
    );
    let (status, details) = last_details(&client, "deuda").await;
    assert_eq!(status, "ok");
    assert_eq!(
        details["reconcile"]["mismatches"][0]["target_rows"], 2,
        "{details}"
    );
    let monto: String = client
        .query_one("SELECT monto::text FROM g.deuda WHERE doc = 'D2'", &[])
        .await
        .expect("D2")
        .get(0);
    assert_eq!(monto, "250.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_command_names_the_differing_days_and_repair_reloads_exactly_them() {
    let db = TestDb::new("recon_cmd").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", PIPELINE);
    let path = file.display().to_string();
    write(
        dir.path(),
        "deuda.csv",
        &format!("{CLEAN}D5,2025-06-03,5.00,A\n"),
    );
    let out = run(&db, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = cli(&db.url, &["reconcile", &path], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "3 day(s) compared by dia, 5 source rows (deduplicated) vs 5 target rows: clean"
        ),
        "{}",
        text(&out)
    );

    // At the source, D1's amount is corrected and D4 deleted; the day 06-03 is untouched.
    write(
        dir.path(),
        "deuda.csv",
        "doc,dia,monto,estado\nD1,2025-06-01,100.00,A\nD2,2025-06-01,200.20,B\n\
         D3,2025-06-02,300.30,A\nD5,2025-06-03,5.00,A\n",
    );
    let client = db.client().await;
    let before = snapshot(&client).await;
    let out = cli(&db.url, &["reconcile", &path, "--summary", "json"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = summary_json(&out);
    let r = &s["tables"][0]["reconcile"];
    let days: Vec<&str> = r["mismatches"]
        .as_array()
        .expect("mismatches")
        .iter()
        .filter_map(|d| d["day"].as_str())
        .collect();
    assert_eq!(days, ["2025-06-01", "2025-06-02"], "{s}");
    assert_eq!(
        r["mismatches"][0]["source_sums"],
        serde_json::json!(["300.20"])
    );
    assert_eq!(
        r["mismatches"][0]["target_sums"],
        serde_json::json!(["300.30"])
    );
    assert_eq!(
        (
            r["mismatches"][1]["source_rows"].as_i64(),
            r["mismatches"][1]["target_rows"].as_i64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(
        snapshot(&client).await,
        before,
        "reconcile without --repair wrote something"
    );

    // A range of days narrows the comparison; the table text shows both sides.
    let out = cli(
        &db.url,
        &[
            "reconcile",
            &path,
            "--from",
            "2025-06-02",
            "--to",
            "2025-06-03",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 day(s) differ") && stdout.contains("2025-06-02"),
        "{stdout}"
    );
    assert!(!stdout.contains("2025-06-01 "), "{stdout}");

    let out = cli(&db.url, &["reconcile", &path, "--repair"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("repaired 2 day(s): 4 target rows deleted, 3 source rows written")
            && stdout.contains("rebuilt total: ok"),
        "{stdout}"
    );
    let out = cli(&db.url, &["reconcile", &path], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The target is the source; the mart was rebuilt for exactly the repaired days.
    let rows: Vec<String> = client
        .query("SELECT doc || ':' || monto FROM g.deuda ORDER BY doc", &[])
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, ["D1:100.00", "D2:200.20", "D3:300.30", "D5:5.00"]);
    let (status, details) = last_details(&client, "total").await;
    assert_eq!(status, "ok");
    assert_eq!(
        details["received_days"],
        serde_json::json!(["2025-06-01", "2025-06-02"]),
        "{details}"
    );
    let totals: Vec<String> = client
        .query(
            "SELECT dia || ':' || monto || ':' || filas FROM g.total ORDER BY dia",
            &[],
        )
        .await
        .expect("mart")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        totals,
        [
            "2025-06-01:300.20:2",
            "2025-06-02:300.30:1",
            "2025-06-03:5.00:1"
        ]
    );
    // The watermark row is still the load's; the repair has its own ledger row.
    let (status, details) = last_details(&client, "deuda").await;
    assert_eq!(status, "ok");
    assert_eq!(
        details["repair"]["days"],
        serde_json::json!(["2025-06-01", "2025-06-02"])
    );
}
