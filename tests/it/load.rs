//! End-to-end loads through the CLI against a real PostgreSQL: counts, idempotence, exact change
//! counts, atomicity under SIGKILL and a terminated backend, bad rows, dedup and locking.

use pulso_testkit as common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestDb, checksum, cli, counts, summary_json, text, watermark, write};
use pulso_engine::pipeline::NodeKind;
use pulso_operators::source::SourceSpec;

/// A generated table with a stable key: a revision changes `change_share` of the rows in place
/// (updates) and adds `grow` rows (inserts).
const PIPELINE: &str = "\
defaults: { schema: t }
tables:
  - name: deuda
    source:
      kind: generate
      rows: ${ROWS:-20000}
      seed: 7
      revision: ${REV:-0}
      change_share: 0.05
      grow: 100
      columns:
        cuenta: { from_id: \"C{}\", offset: 1000000 }
        monto: { decimal: [\"1.00\", \"99999.99\"] }
        vence: { date: [\"2024-01-01\", \"2025-12-31\"] }
        nota: { choice: [\"a\", \"b\", \"ñandú\"], null_share: 0.2 }
        creado_el: { incremental: { start: \"2025-06-01T05:00:00Z\", step: \"1s\", type: timestamp } }
    columns: { cuenta: text, monto: \"numeric(15,2)\", vence: date, nota: text, creado_el: timestamptz }
    primary_key: [cuenta]
    incremental: { column: creado_el, type: timestamp, lookback: 1h }
";

fn run(db: &TestDb, file: &Path, env: &[(&str, &str)]) -> std::process::Output {
    cli(
        &db.url,
        &["run", &file.display().to_string(), "--summary", "json"],
        env,
    )
}

/// (changed, new) rows of revision `rev` of the `deuda` generator, as the generator defines them.
fn expected_changes(file: &Path, rows: &str, rev: u64) -> (u64, u64) {
    let text = std::fs::read_to_string(file).expect("read pipeline");
    let env = |k: &str| match k {
        "ROWS" => Some(rows.to_string()),
        _ => None,
    };
    let p = pulso_engine::compile::compile_text("p.yaml", Path::new("."), &text, &env)
        .expect("compile");
    let NodeKind::Table(t) = &p.nodes[0].kind else {
        panic!("not a table")
    };
    let SourceSpec::Generate(g) = &t.source else {
        panic!("not generate")
    };
    pulso_operators::source::changed_rows(g, rev)
}

#[tokio::test(flavor = "multi_thread")]
async fn second_run_changes_nothing_and_a_revision_reports_exact_counts() {
    let db = TestDb::new("counts").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", PIPELINE);

    let out = run(&db, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counts(&summary_json(&out), "deuda"), (20_000, 0, 0));

    let out = run(&db, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (ins, upd, unchanged) = counts(&summary_json(&out), "deuda");
    assert_eq!((ins, upd), (0, 0), "{}", text(&out));
    // The one-hour lookback re-read 3601 rows (one per second, both ends inclusive).
    assert_eq!(unchanged, 3601);

    let client = db.client().await;
    let before = checksum(&client, "t.deuda").await;
    let (changed, new) = expected_changes(&file, "20000", 1);
    assert!(changed > 500 && new == 100, "({changed}, {new})");
    let out = run(&db, &file, &[("REV", "1")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (ins, upd, _) = counts(&summary_json(&out), "deuda");
    assert_eq!((ins, upd), (new, changed), "{}", text(&out));
    let after = checksum(&client, "t.deuda").await;
    assert_eq!(after.0, before.0 + new as i64);

    // The run ledger has the same numbers, committed with the data.
    let row = client
        .query_one(
            "SELECT inserted, updated, status FROM pulso_flow.node_runs WHERE node = 'deuda' ORDER BY started_at DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, String>(2)
        ),
        (new as i64, changed as i64, "ok".into())
    );
}

/// Wait until the load's backend is inside `COPY <into> … FROM STDIN`, then return its pid.
async fn wait_for_copy_into(client: &tokio_postgres::Client, db: &str, into: &str) -> i32 {
    let t0 = Instant::now();
    let pattern = format!("COPY {into}%FROM STDIN%");
    loop {
        let rows = client
            .query(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE $2 AND state = 'active'",
                &[&db, &pattern],
            )
            .await
            .unwrap();
        if let Some(r) = rows.first() {
            return r.get(0);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the load never reached COPY"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Kill the process (or the backend) during COPY of revision 1 and check nothing changed; then
/// finish revision 1 and compare with an uninterrupted database.
#[derive(Clone, Copy, PartialEq)]
enum Interruption {
    /// SIGKILL the process.
    Kill,
    /// Ctrl-C: the process cancels, rolls back and exits 130.
    Interrupt,
    /// SIGTERM (systemd, Kubernetes, `docker stop`): the same, exit 143.
    Terminate,
    /// pg_terminate_backend on the load's connection.
    TerminateBackend,
}

async fn interrupted_copy_leaves_target_unchanged(how: Interruption) {
    let tag = match how {
        Interruption::Kill => "sigkill",
        Interruption::Interrupt => "sigint",
        Interruption::Terminate => "sigterm",
        Interruption::TerminateBackend => "terminate",
    };
    let db = TestDb::new(tag).await;
    let reference = TestDb::new(&format!("{tag}_ref")).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", PIPELINE);
    let rows = "300000";
    for d in [&db, &reference] {
        let out = run(d, &file, &[("ROWS", rows)]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let client = db.client().await;
    let before = checksum(&client, "t.deuda").await;
    let wm_before = watermark(&client, "deuda").await;
    assert!(wm_before.is_some());

    // Revision 1 with a full refresh so the whole table is re-sent (a long COPY).
    let mut child = Command::new(common::bin())
        .args(["run", &file.display().to_string(), "--full-refresh"])
        .env("DATABASE_URL", &db.url)
        .env("ROWS", rows)
        .env("REV", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = wait_for_copy_into(&client, &db.name, "\"pulso_flow_staging\"").await;
    match how {
        Interruption::Kill => {
            child.kill().unwrap(); // SIGKILL
            let _ = child.wait();
        }
        Interruption::Interrupt | Interruption::Terminate => {
            let (signal, code, name) = if how == Interruption::Interrupt {
                (libc::SIGINT, 130, "SIGINT")
            } else {
                (libc::SIGTERM, 143, "SIGTERM")
            };
            // SAFETY: sending a signal to our own child process.
            unsafe { libc::kill(child.id() as i32, signal) };
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(code), "{stderr}");
            // The summary is printed and says what happened.
            assert!(
                stderr.contains("deuda") && stderr.contains("cancelled"),
                "no summary: {stderr}"
            );
            assert!(
                stderr.contains(&format!(
                    "interrupted by {name}: the running loads were rolled back"
                )),
                "{stderr}"
            );
        }
        Interruption::TerminateBackend => {
            client
                .execute("SELECT pg_terminate_backend($1)", &[&pid])
                .await
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(1),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // The server notices the dead client and rolls back; wait for the backend to be gone.
    common::wait_until_backend_ends(&client, pid).await;
    assert_eq!(
        checksum(&client, "t.deuda").await,
        before,
        "target changed by an interrupted load"
    );
    assert_eq!(
        watermark(&client, "deuda").await,
        wm_before,
        "watermark moved by an interrupted load"
    );

    // The next run ends identical to an uninterrupted one.
    for d in [&db, &reference] {
        let out = run(d, &file, &[("ROWS", rows), ("REV", "1")]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let reference_client = reference.client().await;
    assert_eq!(
        checksum(&client, "t.deuda").await,
        checksum(&reference_client, "t.deuda").await
    );
    assert_eq!(
        watermark(&client, "deuda").await,
        watermark(&reference_client, "deuda").await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_copy_leaves_target_and_watermark_unchanged() {
    interrupted_copy_leaves_target_unchanged(Interruption::Kill).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_copy_rolls_back_and_exits_130() {
    interrupted_copy_leaves_target_unchanged(Interruption::Interrupt).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_copy_rolls_back_prints_the_summary_and_exits_143() {
    interrupted_copy_leaves_target_unchanged(Interruption::Terminate).await;
}

/// A second signal does not wait for the graceful stop: here the stop is stuck (the run ledger
/// is locked by another session, so recording the cancelled node blocks), and the second
/// SIGTERM still ends the process at once, with nothing committed.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_sigterm_exits_at_once() {
    let db = TestDb::new("sigterm2").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", PIPELINE);
    let rows = "300000";
    let out = run(&db, &file, &[("ROWS", rows)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let client = db.client().await;
    let before = checksum(&client, "t.deuda").await;
    let mut child = Command::new(common::bin())
        .args(["run", &file.display().to_string(), "--full-refresh"])
        .env("DATABASE_URL", &db.url)
        .env("ROWS", rows)
        .env("REV", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = wait_for_copy_into(&client, &db.name, "\"pulso_flow_staging\"").await;
    // Hold the ledger: the graceful stop writes the cancelled node's row there and waits.
    let mut locker = db.client().await;
    let tx = locker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE pulso_flow.node_runs IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    // The graceful stop is now blocked on the lock: the process is still there.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "test setup: the graceful stop did not block on pulso_flow.node_runs (does it still record the cancelled node there?)"
    );
    let t0 = Instant::now();
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "the second SIGTERM did not exit at once"
    );
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exiting at once"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tx.rollback().await.unwrap();
    common::wait_until_backend_ends(&client, pid).await;
    assert_eq!(
        checksum(&client, "t.deuda").await,
        before,
        "a load committed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn terminated_backend_during_copy_leaves_target_and_watermark_unchanged() {
    interrupted_copy_leaves_target_unchanged(Interruption::TerminateBackend).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_a_direct_first_load_leaves_the_empty_target_with_its_indexes() {
    let db = TestDb::new("sigkill_direct").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", PIPELINE);
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE SCHEMA t; CREATE TABLE t.deuda (cuenta text PRIMARY KEY, monto numeric(15,2), vence date, \
             nota text, creado_el timestamptz); CREATE INDEX deuda_vence ON t.deuda (vence)",
        )
        .await
        .unwrap();
    let mut child = Command::new(common::bin())
        .args(["run", &file.display().to_string()])
        .env("DATABASE_URL", &db.url)
        .env("ROWS", "300000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = wait_for_copy_into(&client, &db.name, "\"t\".\"deuda\"").await;
    child.kill().unwrap();
    let _ = child.wait();
    common::wait_until_backend_ends(&client, pid).await;
    assert_eq!(checksum(&client, "t.deuda").await.0, 0);
    let indexes: Vec<String> = client
        .query(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = 't' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(indexes, ["deuda_pkey", "deuda_vence"]);
    assert_eq!(watermark(&client, "deuda").await, None);
    // And the next run loads everything.
    let out = run(&db, &file, &[("ROWS", "300000")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counts(&summary_json(&out), "deuda"), (300_000, 0, 0));
}

const BAD_ROWS: &str = "\
defaults: { schema: t }
tables:
  - name: good
    source: { kind: csv, path: good.csv }
    columns: { id: integer, name: text }
    primary_key: [id]
  - name: null_key
    source: { kind: csv, path: null_key.csv }
    columns: { cuenta: text, doc: text, monto: \"numeric(15,2)\" }
    primary_key: [cuenta, doc]
  - name: overflow
    source: { kind: csv, path: overflow.csv }
    columns: { cuenta: text, doc: text, monto: \"numeric(15,2)\" }
    primary_key: [cuenta, doc]
  - name: not_finite
    source: { kind: csv, path: not_finite.csv }
    columns: { cuenta: text, doc: text, monto: \"numeric(5,2)\" }
    primary_key: [cuenta, doc]
  - name: inexact
    source: { kind: csv, path: inexact.csv }
    columns: { cuenta: text, doc: text, monto: \"numeric(5,2)\" }
    primary_key: [cuenta, doc]
  - name: not_int
    source: { kind: csv, path: not_int.csv }
    columns: { id: integer, decil: integer }
    primary_key: [id]
  - name: after_bad
    source: { kind: csv, path: good.csv }
    columns: { id: integer, name: text }
    primary_key: [id]
    depends_on: [not_int]
";

#[tokio::test(flavor = "multi_thread")]
async fn bad_rows_fail_their_table_with_table_column_and_key_and_commit_nothing() {
    let db = TestDb::new("badrows").await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "good.csv", "id,name\n1,uno\n2,dos\n");
    write(
        dir.path(),
        "null_key.csv",
        "cuenta,doc,monto\nA,D1,10.00\n,D2,5.00\n",
    );
    write(
        dir.path(),
        "overflow.csv",
        "cuenta,doc,monto\nA,D1,10.00\nB,D7,12345678901234.56\n",
    );
    write(
        dir.path(),
        "not_finite.csv",
        "cuenta,doc,monto\nA,D1,10.00\nB,D8,NaN\n",
    );
    // 1.2300 fits numeric(5,2) exactly; 1.239 would need rounding.
    write(
        dir.path(),
        "inexact.csv",
        "cuenta,doc,monto\nA,D1,1.2300\nC,D9,1.239\n",
    );
    write(dir.path(), "not_int.csv", "id,decil\n1,3\n2,12a\n");
    let file = write(dir.path(), "p.yaml", BAD_ROWS);
    let out = run(&db, &file, &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let summary = summary_json(&out);
    let node = |name: &str| {
        summary["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(node("good")["status"], "ok");
    assert_eq!(node("after_bad")["status"], "skipped");
    let err = |name: &str| node(name)["error"].as_str().unwrap_or_default().to_string();
    let e = err("null_key");
    assert!(
        e.contains("null_key") && e.contains("column cuenta") && e.contains("doc=D2"),
        "{e}"
    );
    let e = err("overflow");
    assert!(
        e.contains("column monto")
            && e.contains("cuenta=B")
            && e.contains("doc=D7")
            && e.contains("numeric(15,2)"),
        "{e}"
    );
    let e = err("not_finite");
    assert!(
        e.contains("table t.not_finite, column monto")
            && e.contains("cuenta=B, doc=D8")
            && e.contains("value NaN is not a finite number"),
        "{e}"
    );
    let e = err("inexact");
    assert!(
        e.contains("table t.inexact, column monto")
            && e.contains("cuenta=C, doc=D9")
            && e.contains("value 1.239 has more decimal places than numeric(5,2) keeps (2)"),
        "{e}"
    );
    let e = err("not_int");
    assert!(
        e.contains("column decil") && e.contains("id=2") && e.contains("12a"),
        "{e}"
    );

    let client = db.client().await;
    assert_eq!(checksum(&client, "t.good").await.0, 2);
    for t in ["null_key", "overflow", "not_finite", "inexact", "not_int"] {
        // Created inside the failed transaction, so not even the table exists.
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("t.{t}")])
            .await
            .unwrap()
            .get(0);
        assert!(!exists, "{t} was (partly) committed");
        assert_eq!(watermark(&client, t).await, None);
        let status: String = client
            .query_one(
                "SELECT status FROM pulso_flow.node_runs WHERE node = $1",
                &[&t],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(status, "failed");
    }
}

/// Two incremental file tables: a CSV and an NDJSON file that later receive a malformed timestamp.
const BAD_TIMESTAMPS: &str = "\
defaults: { schema: t }
tables:
  - name: pagos
    source: { kind: csv, path: pagos.csv }
    columns: { id: text, doc: text, creado_el: timestamptz }
    primary_key: [id, doc]
    incremental: { column: creado_el, type: timestamp, lookback: 1d }
  - name: gestiones
    source: { kind: ndjson, path: gestiones.ndjson }
    columns: { uid: text, creado_el: timestamptz }
    primary_key: [uid]
    incremental: { column: creado_el, type: timestamp, lookback: 1d }
";

/// Issue 14, item 15: a malformed timestamp in a file that the incremental window reads fails
/// its table naming the table, the file and line, the column and the row's key (not Arrow's bare
/// "Parser error"); nothing is committed and the watermark stays.
#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_timestamp_names_file_line_column_and_key_and_commits_nothing() {
    let db = TestDb::new("badts").await;
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,doc,creado_el\nA,1,2025-06-01T00:00:00Z\nB,2,2025-06-01T01:00:00Z\n";
    let ndjson = "{\"uid\": \"g1\", \"creado_el\": \"2025-06-01T00:00:00Z\"}\n";
    write(dir.path(), "pagos.csv", csv);
    write(dir.path(), "gestiones.ndjson", ndjson);
    let file = write(dir.path(), "p.yaml", BAD_TIMESTAMPS);
    let out = run(&db, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let client = db.client().await;
    let before = (
        checksum(&client, "t.pagos").await,
        checksum(&client, "t.gestiones").await,
        watermark(&client, "pagos").await,
        watermark(&client, "gestiones").await,
    );
    assert!(before.2.is_some() && before.3.is_some());

    // The next day's files: one good row, then a date that does not exist (June 31).
    write(
        dir.path(),
        "pagos.csv",
        &format!("{csv}C,3,2025-06-02T00:00:00Z\nD,4,2025-06-31T00:00:00Z\n"),
    );
    write(
        dir.path(),
        "gestiones.ndjson",
        &format!("{ndjson}\n{{\"uid\": \"g2\", \"creado_el\": \"ayer\"}}\n"),
    );
    let out = run(&db, &file, &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let summary = summary_json(&out);
    let error = |name: &str| {
        summary["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .and_then(|n| n["error"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let e = error("pagos");
    let at = format!(
        "csv file {} line 5, column creado_el, row key (id=D, doc=4): \"2025-06-31T00:00:00Z\" \
         is not a timestamp",
        dir.path().join("pagos.csv").display()
    );
    assert!(e.starts_with("table pagos: ") && e.contains(&at), "{e}");
    let e = error("gestiones");
    let at = format!(
        "ndjson file {} line 3, column creado_el, row key (uid=g2): \"ayer\" is not a timestamp",
        dir.path().join("gestiones.ndjson").display()
    );
    assert!(e.starts_with("table gestiones: ") && e.contains(&at), "{e}");

    let after = (
        checksum(&client, "t.pagos").await,
        checksum(&client, "t.gestiones").await,
        watermark(&client, "pagos").await,
        watermark(&client, "gestiones").await,
    );
    assert_eq!(after, before, "a failed table committed something");
    for node in ["pagos", "gestiones"] {
        let status: String = client
            .query_one(
                "SELECT status FROM pulso_flow.node_runs WHERE node = $1 ORDER BY started_at DESC LIMIT 1",
                &[&node],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(status, "failed", "{node}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_keys_keep_the_latest_incremental_value_then_the_last_row() {
    let db = TestDb::new("dedup").await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "pagos.csv",
        "doc,monto,creado_el\n\
         D1,10.00,2025-06-02T10:00:00Z\n\
         D1,11.00,2025-06-03T10:00:00Z\n\
         D1,12.00,2025-06-01T10:00:00Z\n\
         D2,20.00,2025-06-01T10:00:00Z\n\
         D2,21.00,2025-06-01T10:00:00Z\n\
         D3,30.00,2025-06-01T10:00:00Z\n",
    );
    let file = write(
        dir.path(),
        "p.yaml",
        "tables:\n  - name: pagos\n    source: { kind: csv, path: pagos.csv }\n    target: t.pagos\n    \
         columns: { doc: text, monto: \"numeric(15,2)\", creado_el: timestamptz }\n    primary_key: [doc]\n    \
         incremental: { column: creado_el, type: timestamp }\n",
    );
    // A pre-created empty target with a secondary index: the first load takes the direct path
    // (indexes dropped, COPY, rebuilt) and must leave both the key and the index in place.
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE SCHEMA t; CREATE TABLE t.pagos (doc text NOT NULL, monto numeric(15,2), creado_el timestamptz, \
             CONSTRAINT pagos_pk PRIMARY KEY (doc)); CREATE INDEX pagos_monto_idx ON t.pagos (monto)",
        )
        .await
        .unwrap();
    let out = run(&db, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let indexes: Vec<String> = client
        .query("SELECT indexname::text FROM pg_indexes WHERE schemaname = 't' AND tablename = 'pagos' ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(indexes, ["pagos_monto_idx", "pagos_pk"]);
    // ... and analysed: the next run's plans (its reconciliation's window scan) have statistics
    // at once, not when autovacuum comes by.
    let analysed: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stats WHERE schemaname = 't' AND tablename = 'pagos'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(analysed, 3, "one row of statistics per column");
    let n = &summary_json(&out)["nodes"][0];
    assert_eq!(
        (
            n["rows_staged"].as_u64(),
            n["duplicates"].as_u64(),
            n["inserted"].as_u64()
        ),
        (Some(6), Some(3), Some(3))
    );
    let rows: Vec<(String, String)> = client
        .query("SELECT doc, monto::text FROM t.pagos ORDER BY doc", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected = [("D1", "11.00"), ("D2", "21.00"), ("D3", "30.00")]
        .map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(rows, expected);
    assert_eq!(
        watermark(&client, "pagos").await.as_deref(),
        Some("2025-06-03T10:00:00.000000Z")
    );
}

/// A merge into a target that holds rows leaves out its SQL deduplication when the encoder saw
/// no key twice (sinks::encode::keys) and keeps it when a key came twice, in one batch or
/// across batches, or when the key's types cannot be checked. Every way gives the same counts and
/// rows: the latest row of a key wins.
#[tokio::test(flavor = "multi_thread")]
async fn a_merge_deduplicates_in_sql_only_when_a_key_may_repeat() {
    let db = TestDb::new("keys_distinct").await;
    let dir = tempfile::tempdir().unwrap();
    // The same file into two targets: `n` int8 (checked) and numeric (never: 1.0 and 1.00 are
    // one key with different bytes).
    let table = |name: &str, n_type: &str| {
        format!(
            "  - name: {name}\n    source: {{ kind: csv, path: pagos.csv }}\n    target: t.{name}\n    \
             create_target: true\n    batch_size: 2\n    \
             columns: {{ doc: text, n: \"{n_type}\", monto: \"numeric(15,2)\" }}\n    primary_key: [doc, n]\n"
        )
    };
    let pipeline = write(
        dir.path(),
        "p.yaml",
        &format!(
            "tables:\n{}{}",
            table("checked", "int8"),
            table("unchecked", "numeric(10,0)")
        ),
    );
    let client = db.client().await;
    let load = |csv: &str| {
        write(dir.path(), "pagos.csv", csv);
        let out = run(&db, &pipeline, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let nodes = summary_json(&out)["nodes"].as_array().unwrap().clone();
        let counts = |name: &str| {
            let n = nodes.iter().find(|n| n["name"] == name).unwrap();
            (
                n["inserted"].as_u64().unwrap(),
                n["updated"].as_u64().unwrap(),
                n["unchanged"].as_u64().unwrap(),
                n["duplicates"].as_u64().unwrap(),
            )
        };
        assert_eq!(counts("checked"), counts("unchecked"), "{csv}");
        counts("checked")
    };
    let keys_distinct = |node: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT details->'keys_distinct' FROM pulso_flow.node_runs WHERE node = $1 \
                     ORDER BY started_at DESC LIMIT 1",
                    &[&node],
                )
                .await
                .unwrap()
                .get::<_, Option<serde_json::Value>>(0)
        }
    };
    // First load: the direct path into the empty targets (nothing checked).
    assert_eq!(
        load("doc,n,monto\nA,1,1.00\nB,1,2.00\nÑ,1,3.00\n"),
        (3, 0, 0, 0)
    );
    // Distinct keys, non-ASCII and a key differing only in its second column included.
    assert_eq!(
        load("doc,n,monto\nA,1,1.50\nB,1,2.00\nÑ,2,4.00\nA,2,5.00\n"),
        (2, 1, 1, 0)
    );
    assert_eq!(
        keys_distinct("checked").await,
        Some(serde_json::json!(true))
    );
    assert_eq!(
        keys_distinct("unchecked").await,
        Some(serde_json::Value::Null)
    );
    // A key twice, in different batches (batch_size 2), and once more in the same batch: the
    // last row wins (no incremental column).
    assert_eq!(
        load("doc,n,monto\nC,1,6.00\nA,1,1.60\nB,1,2.00\nA,1,1.70\nD,1,7.00\nD,1,7.50\n"),
        (2, 1, 1, 2)
    );
    assert_eq!(
        keys_distinct("checked").await,
        Some(serde_json::json!(false))
    );
    for table in ["checked", "unchecked"] {
        let rows: Vec<(String, String, String)> = client
            .query(
                &format!("SELECT doc, n::text, monto::text FROM t.{table} ORDER BY doc, n"),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let expected = [
            ("A", "1", "1.70"),
            ("A", "2", "5.00"),
            ("B", "1", "2.00"),
            ("C", "1", "6.00"),
            ("D", "1", "7.50"),
            ("Ñ", "1", "3.00"),
            ("Ñ", "2", "4.00"),
        ]
        .map(|(a, n, m)| (a.to_string(), n.to_string(), m.to_string()));
        assert_eq!(rows, expected, "{table}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_runs_never_double_load_and_no_wait_exits_with_a_message() {
    let db = TestDb::new("locks").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", PIPELINE);
    let f = file.display().to_string();
    // Two simultaneous runs: one loads, the other waits and then finds nothing new.
    let spawn = || {
        Command::new(common::bin())
            .args(["run", &f, "--summary", "json"])
            .env("DATABASE_URL", &db.url)
            .env("ROWS", "100000")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));
    let mut inserted = [
        counts(&summary_json(&a), "deuda").0,
        counts(&summary_json(&b), "deuda").0,
    ];
    inserted.sort();
    assert_eq!(inserted, [0, 100_000]);
    let client = db.client().await;
    assert_eq!(checksum(&client, "t.deuda").await.0, 100_000);

    // Hold the table's lock as a concurrent run would: --no-wait gives up at once with exit 3.
    client
        .execute(
            "SELECT pg_advisory_lock(hashtextextended('pulso-flow:t.deuda', 0))",
            &[],
        )
        .await
        .unwrap();
    let out = cli(&db.url, &["run", &f, "--no-wait"], &[("ROWS", "100000")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("is being loaded by another run"),
        "{}",
        text(&out)
    );
}
