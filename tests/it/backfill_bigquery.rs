//! `pulso-flow backfill` from BigQuery: an injected fault in one chunk's query (the REST fake)
//! keeps the chunks before it and the rerun resumes there; `--parallel 3` on the emulator
//! (`../shared/bqemu`) reads three chunks at the same time and ends with the same table as
//! `--parallel 1`. Emulator tests are skipped when it is down unless `BQEMU_REQUIRED=1`.

use pulso_testkit as common;

use pulso_testkit::bigquery as bigquery_support;
use pulso_testkit::bqemu;

use std::path::Path;

use bigquery_support::{FakeBigQuery, FakeState, rest_row};
use bqemu::emulator;
use chrono::{DateTime, Utc};
use common::{TestDb, checksum, cli, text, watermark, write};
use serde_json::{Value, json};

/// 2025-01-01T00:00:00Z in seconds.
const BASE_SECONDS: i64 = 1_735_689_600;

/// Row `i` is stamped 2025-01-01T00:00Z + `i × step_min` minutes.
fn ts(i: i64, step_min: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(BASE_SECONDS + i * step_min * 60, 0).expect("timestamp")
}

/// `pulso-flow backfill FILE …` over 2025-01-01 .. 01-08 in 1-day chunks, off the runtime.
async fn backfill(db_url: &str, file: &Path, env: Vec<(String, String)>, extra: &[&str]) -> Value {
    let (url, file) = (db_url.to_string(), file.display().to_string());
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        let mut args = vec![
            "backfill",
            file.as_str(),
            "--tables",
            "ev",
            "--from",
            "2025-01-01",
            "--to",
            "2025-01-08",
            "--chunk",
            "1d",
            "--summary",
            "json",
        ];
        args.extend(extra.iter().map(String::as_str));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        cli(&url, &args, &env)
    })
    .await
    .expect("cli task");
    let mut summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON summary ({e}): {}", text(&out)));
    summary["exit_code"] = json!(out.status.code());
    summary
}

fn statuses(summary: &Value) -> Vec<String> {
    summary["chunks"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["status"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_injected_bigquery_fault_keeps_the_chunks_before_it_and_the_rerun_resumes() {
    // 1,000 rows every 10 minutes: 2025-01-01T00:00Z .. 01-07T22:30Z.
    let rows: Vec<Value> = (0..1_000i64)
        .map(|i| {
            rest_row(vec![
                Some(json!(i.to_string())),
                Some(json!((ts(i, 10).timestamp() * 1_000_000).to_string())),
                Some(json!(format!("v{i}"))),
            ])
        })
        .collect();
    let fake = FakeBigQuery::start_rest(FakeState {
        fields: json!([{"name": "id", "type": "INTEGER"}, {"name": "ts", "type": "TIMESTAMP"}, {"name": "v", "type": "STRING"}]),
        rows,
        // The third chunk's query job fails (and every one after it).
        job_error_skip: 2,
        job_error: Some(("invalidQuery".into(), "injected fault in this job".into())),
        ..FakeState::default()
    })
    .await;
    let yaml = r#"
connections:
  bq: { kind: bigquery, project: p, dataset: d, endpoint: "${BQ_REST}", retry: { attempts: 2, initial_backoff_ms: 5 } }
defaults: { schema: t, time_zone: UTC }
tables:
  - name: ev
    source: { kind: bigquery, connection: bq, query: "SELECT id, ts, v FROM `p.d.t`", page_size: 100 }
    columns: { id: bigint, ts: timestamptz, v: text }
    primary_key: [id]
    incremental: { column: ts, type: timestamp, lookback: 1d }
"#;
    let db = TestDb::new("backfill_bq_fault").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", yaml);
    let env = vec![("BQ_REST".to_string(), fake.url.clone())];

    let summary = backfill(&db.url, &file, env.clone(), &[]).await;
    assert_eq!(summary["exit_code"], 1, "{summary}");
    assert_eq!(
        statuses(&summary),
        [
            "committed",
            "committed",
            "failed",
            "not started",
            "not started",
            "not started",
            "not started"
        ],
        "{summary}"
    );
    let error = summary["chunks"][2]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("ev chunk 2 [2025-01-03T00:00:00.000000Z, 2025-01-04T00:00:00.000000Z)")
            && error.contains("injected fault in this job"),
        "{error}"
    );
    let c = db.client().await;
    // Two days of rows; the watermark is the last row of the second day.
    assert_eq!(checksum(&c, "t.ev").await.0, 288);
    assert_eq!(watermark(&c, "ev").await, Some(iso(ts(287, 10))));

    // BigQuery answers again: the rerun skips the two committed chunks and loads the rest.
    let inserts_before = fake.with(|s| {
        s.job_error = None;
        s.inserts.len()
    });
    let summary = backfill(&db.url, &file, env, &[]).await;
    assert_eq!(summary["exit_code"], 0, "{summary}");
    assert_eq!(
        statuses(&summary),
        [
            "skipped",
            "skipped",
            "committed",
            "committed",
            "committed",
            "committed",
            "committed"
        ],
        "{summary}"
    );
    // One query job per chunk loaded, none for the skipped ones.
    assert_eq!(fake.with(|s| s.inserts.len()) - inserts_before, 5);
    assert_eq!(checksum(&c, "t.ev").await.0, 1_000);
    assert_eq!(watermark(&c, "ev").await, Some(iso(ts(999, 10))));
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_three_on_the_emulator_reads_chunks_concurrently_and_equals_parallel_one() {
    let Some(emu) = emulator().await else { return };
    let dataset = emu.create_dataset("pf_backfill").await;
    emu.create_table(
        &dataset,
        "ev",
        &[("id", "INT64"), ("ts", "TIMESTAMP"), ("v", "STRING")],
    )
    .await;
    // 3,000 rows every 3 minutes: 2025-01-01T00:00Z .. 01-07T05:57Z.
    emu.insert_rows(
        &dataset,
        "ev",
        (0..3_000i64).map(|i| json!({"id": i, "ts": iso(ts(i, 3)), "v": format!("v{i}")})),
    )
    .await;
    let yaml = format!(
        r#"
connections:
  bq:
    kind: bigquery
    project: {project}
    dataset: {dataset}
    location: US
    endpoint: "${{BQ_REST}}"
    storage_endpoint: "${{BQ_GRPC}}"
defaults: {{ schema: t, time_zone: UTC }}
tables:
  - name: ev
    source:
      kind: bigquery
      connection: bq
      query: "SELECT id, ts, v FROM `{project}.{dataset}.ev`"
      page_size: 200
    columns: {{ id: bigint, ts: timestamptz, v: text }}
    primary_key: [id]
    incremental: {{ column: ts, type: timestamp, lookback: 1d }}
"#,
        project = emu.project
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", &yaml);
    let env = vec![
        ("BQ_REST".to_string(), emu.rest.clone()),
        ("BQ_GRPC".to_string(), emu.grpc.clone()),
    ];
    let parallel = TestDb::new("backfill_par3").await;
    let serial = TestDb::new("backfill_par1").await;
    let s3 = backfill(&parallel.url, &file, env.clone(), &["--parallel", "3"]).await;
    assert_eq!(s3["exit_code"], 0, "{s3}");
    let s1 = backfill(&serial.url, &file, env, &["--parallel", "1"]).await;
    assert_eq!(s1["exit_code"], 0, "{s1}");
    assert!(statuses(&s3).iter().all(|s| s == "committed"), "{s3}");

    let (p, s) = (parallel.client().await, serial.client().await);
    let sum = checksum(&p, "t.ev").await;
    assert_eq!(sum.0, 3_000);
    assert_eq!(sum, checksum(&s, "t.ev").await);
    assert_eq!(watermark(&p, "ev").await, Some(iso(ts(2_999, 3))));
    assert_eq!(watermark(&p, "ev").await, watermark(&s, "ev").await);

    // The target was empty (bulk mode: every chunk appends), so chunks 0, 1 and 2 were all in
    // flight at once: each started before any of them committed.
    assert_eq!(s3["index_builds"][0]["ok"], true, "{s3}");
    let overlap: bool = p
        .query_one(
            "SELECT max(started_at) < min(finished_at) FROM pulso_flow.backfill_chunks \
             WHERE node = 'ev' AND seq BETWEEN 0 AND 2",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        overlap,
        "chunks 0..2 did not run concurrently with --parallel 3"
    );
    // And --parallel 1 loaded them one after the other.
    let sequential: bool = s
        .query_one(
            "SELECT bool_and(a.finished_at <= b.started_at) FROM pulso_flow.backfill_chunks a \
             JOIN pulso_flow.backfill_chunks b ON b.node = a.node AND b.seq = a.seq + 1 \
             WHERE a.node = 'ev'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(sequential);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_each_chunks_query_parameters_bytes_and_cost_and_the_total() {
    let fake = FakeBigQuery::start_rest(FakeState {
        fields: json!([{"name": "id", "type": "INTEGER"}, {"name": "ts", "type": "TIMESTAMP"}, {"name": "v", "type": "STRING"}]),
        dry_run_bytes: 2_000_000_000,
        ..FakeState::default()
    })
    .await;
    let yaml = r#"
connections:
  bq: { kind: bigquery, project: p, dataset: d, endpoint: "${BQ_REST}", maximum_bytes_billed: 3000000000 }
defaults: { schema: t, time_zone: UTC }
tables:
  - name: ev
    source: { kind: bigquery, connection: bq, query: "SELECT id, ts, v FROM `p.d.t`" }
    columns: { id: bigint, ts: timestamptz, v: text }
    primary_key: [id]
    incremental: { column: ts, type: timestamp, lookback: 1d }
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", yaml);
    let (file, rest) = (file.display().to_string(), fake.url.clone());
    let out = tokio::task::spawn_blocking(move || {
        let args = [
            "backfill",
            file.as_str(),
            "--tables",
            "ev",
            "--from",
            "2025-01-01",
            "--to",
            "2025-01-08",
            "--chunk",
            "1d",
            "--dry-run",
        ];
        // No database: a dry run does not connect to it.
        cli(
            "postgres://nobody@127.0.0.1:1/none",
            &args,
            &[("BQ_REST", rest.as_str())],
        )
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // One dry run per chunk, each with its own window in the parameters.
    assert_eq!(fake.with(|s| s.dry_runs.len()), 7, "{stdout}");
    let chunk2 = stdout
        .split("ev chunk 2: ")
        .nth(1)
        .and_then(|s| s.split("ev chunk 3: ").next())
        .unwrap_or_default();
    assert!(
        chunk2.starts_with("[2025-01-03T00:00:00.000000Z, 2025-01-04T00:00:00.000000Z)")
            && chunk2.contains("bigquery sql:")
            && chunk2.contains("WHERE (`ts` IS NULL OR (`ts` >= @lower AND `ts` < @upper))")
            && chunk2.contains("@lower TIMESTAMP = \"2025-01-03 00:00:00.000000+00:00\"")
            && chunk2.contains("@upper TIMESTAMP = \"2025-01-04 00:00:00.000000+00:00\"")
            && chunk2.contains("(2000000000 bytes)")
            && chunk2.contains("estimated on-demand query cost $")
            && chunk2.contains("the processed bytes are within the limit"),
        "{stdout}"
    );
    assert!(
        stdout.contains("7 chunks; dry run answered for 7: 14000000000 bytes processed in total"),
        "{stdout}"
    );
    // Nothing ran.
    assert!(fake.with(|s| s.inserts.is_empty()));
}
