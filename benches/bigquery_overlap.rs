//! Reading from BigQuery overlapped with writing into PostgreSQL (issue 15 item 5).
//!
//! The in-process fakes serve N trandeuda-shaped rows at a realistic latency: the REST fake
//! takes `BENCH_PAGE_MS` (default 200 ms) per getQueryResults page of 10,000 rows; the Storage
//! Read fake the same per 10,000-row response, on each of the 4 streams the client asks for.
//! Per repetition:
//!
//! - `read`    — the REST source alone, in this process: every page fetched and decoded, nothing
//!   written (the baseline: what the load cannot be faster than);
//! - `rest`    — `pulso-flow run` of the same query into an empty PostgreSQL table;
//! - `storage` — `pulso-flow run` of the same rows with `read_api: storage`, 4 streams.
//!
//! Goals: `rest` ≤ 1.1 × `read` (pages fetched ahead; decode and COPY overlapped with the wait
//! for the next page), `storage` ≥ 2 × faster than `rest`, and pulso-flow's peak RSS (GNU time
//! `%M`) ≤ 128 MiB.
//!
//! `cargo bench --bench bigquery_overlap` (env: `BENCH_ROWS` default 1000000, `BENCH_REPS`
//! default 3, `BENCH_PAGE_MS` default 200, `DATABASE_URL` server; database `pf_bench_bq` is
//! recreated).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use pulso_operators::source::{BigQueryConnection, SourceSpec};
use pulso_testkit as common;
use pulso_testkit::bigquery::storage::{FakeStorageRead, StorageState};
use pulso_testkit::bigquery::{FakeBigQuery, FakeState, rest_row};
use serde_json::json;

const PAGE_ROWS: usize = 10_000;
/// 2025-06-27T12:00:00Z in microseconds.
const BASE_MICROS: i64 = 1_751_025_600_000_000;
/// 2025-06-27 in days since 1970-01-01.
const DAY: i32 = 20_266;

fn fields() -> serde_json::Value {
    json!([
        {"name": "cod_cuenta", "type": "STRING"},
        {"name": "nro_documento", "type": "STRING"},
        {"name": "fecha_proceso", "type": "DATE"},
        {"name": "monto_exigible", "type": "NUMERIC"},
        {"name": "creado_el", "type": "TIMESTAMP"}
    ])
}

fn cod_cuenta(i: usize) -> String {
    format!("{}", 5_000_000_000u64 + (i / 2) as u64)
}
fn nro_documento(i: usize) -> String {
    format!("F{}", 100_000_000_000u64 + i as u64)
}
/// Cents.
fn monto(i: usize) -> i64 {
    (i as i64 * 7_919) % 9_999_999 + 100
}

/// The rows as the REST API sends them (TIMESTAMP as int64 microseconds, as asked).
fn rest_rows(n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let m = monto(i);
            rest_row(vec![
                Some(json!(cod_cuenta(i))),
                Some(json!(nro_documento(i))),
                Some(json!("2025-06-27")),
                Some(json!(format!("{}.{:02}", m / 100, m % 100))),
                Some(json!((BASE_MICROS + i as i64).to_string())),
            ])
        })
        .collect()
}

/// The same rows as the Storage Read API sends them (NUMERIC as decimal(38,9)).
fn arrow_table(n: usize) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values((0..n).map(cod_cuenta))),
        Arc::new(StringArray::from_iter_values((0..n).map(nro_documento))),
        Arc::new(Date32Array::from_iter_values((0..n).map(|_| DAY))),
        Arc::new(
            Decimal128Array::from_iter_values((0..n).map(|i| i128::from(monto(i)) * 10_000_000))
                .with_precision_and_scale(38, 9)
                .expect("decimal"),
        ),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values((0..n).map(|i| BASE_MICROS + i as i64))
                .with_timezone("+00:00"),
        ),
    ];
    let names = [
        "cod_cuenta",
        "nro_documento",
        "fecha_proceso",
        "monto_exigible",
        "creado_el",
    ];
    let fields: Vec<Field> = names
        .iter()
        .zip(&columns)
        .map(|(name, c)| Field::new(*name, c.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("table")
}

fn pipeline(source: &str) -> String {
    format!(
        "name: bench-bq
connections:
  bq: {{ kind: bigquery, project: p, dataset: d, endpoint: \"${{BQ_REST}}\", storage_endpoint: \"${{BQ_GRPC}}\" }}
tables:
  - name: trandeuda
    target: bench.trandeuda
    source: {source}
    columns:
      cod_cuenta: text
      nro_documento: text
      fecha_proceso: date
      monto_exigible: \"numeric(15,2)\"
      creado_el: timestamptz
    primary_key: [cod_cuenta, nro_documento, fecha_proceso]
    incremental: {{ column: creado_el, type: timestamp, lookback: 0s }}
"
    )
}

const REST_SOURCE: &str = "{ kind: bigquery, connection: bq, page_size: 10000, query: \"SELECT cod_cuenta, nro_documento, fecha_proceso, monto_exigible, creado_el FROM `p.d.t`\" }";
const STORAGE_SOURCE: &str = "{ kind: bigquery, connection: bq, table: p.d.t, read_api: storage, streams: 4, columns: [cod_cuenta, nro_documento, fecha_proceso, monto_exigible, creado_el] }";

/// Wall seconds and peak RSS (KiB) of one `pulso-flow run`.
fn run_pulso(db_url: &str, file: &std::path::Path, env: &[(&str, &str)]) -> (f64, i64) {
    let file = file.display().to_string();
    let run = common::bench::timed_run(
        env!("CARGO_BIN_EXE_pulso-flow"),
        db_url,
        &["run", &file],
        env,
    );
    (run.seconds, run.rss_kib)
}

/// The REST source read to its end in this process: (seconds, rows).
async fn read_alone(connection: &BigQueryConnection) -> (f64, usize) {
    let spec: SourceSpec = serde_json::from_value(json!({
        "kind": "bigquery", "connection": "bq", "page_size": PAGE_ROWS,
        "query": "SELECT cod_cuenta, nro_documento, fecha_proceso, monto_exigible, creado_el FROM `p.d.t`"
    }))
    .expect("spec");
    let ctx = pulso_testkit::bigquery::context(connection.clone(), None);
    let t0 = Instant::now();
    let (_, mut stream) = spec.open(&ctx).await.expect("open");
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        rows += batch.expect("page").num_rows();
    }
    (t0.elapsed().as_secs_f64(), rows)
}

async fn reset(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "DROP SCHEMA IF EXISTS pulso_flow CASCADE; DROP TABLE IF EXISTS refinery_schema_history; \
             DROP TABLE IF EXISTS bench.trandeuda; CHECKPOINT",
        )
        .await
        .expect("reset");
}

async fn loaded(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM bench.trandeuda", &[])
        .await
        .expect("count")
        .get(0)
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rows: usize = common::bench::env_number("BENCH_ROWS", 1_000_000);
    let reps: usize = common::bench::env_number("BENCH_REPS", 3);
    let page_ms: u64 = common::bench::env_number("BENCH_PAGE_MS", 200);
    let delay = Duration::from_millis(page_ms);
    let (db_url, client) = common::bench::fresh_bench_database("pf_bench_bq").await;

    let rest = FakeBigQuery::start_rest(FakeState {
        fields: fields(),
        rows: rest_rows(rows),
        page_delay: delay,
        ..FakeState::default()
    })
    .await;
    let storage = FakeStorageRead::start_grpc(StorageState {
        table: Some(arrow_table(rows)),
        rows_per_response: PAGE_ROWS,
        response_delay: delay,
        report_progress: true,
        ..StorageState::default()
    })
    .await;
    let connection: BigQueryConnection = serde_json::from_value(json!({
        "project": "p", "dataset": "d", "endpoint": rest.url, "storage_endpoint": storage.url,
    }))
    .expect("connection");
    let dir = tempfile::tempdir().expect("dir");
    let rest_file = common::write(dir.path(), "rest.yaml", &pipeline(REST_SOURCE));
    let storage_file = common::write(dir.path(), "storage.yaml", &pipeline(STORAGE_SOURCE));
    let env = [
        ("BQ_REST", rest.url.as_str()),
        ("BQ_GRPC", storage.url.as_str()),
    ];

    println!(
        "\nBigQuery → PostgreSQL, {rows} rows, {page_ms} ms per 10,000-row page/response, {reps} reps"
    );
    println!(
        "{:<8} {:>4} {:>9} {:>9} {:>24} {:>8}",
        "scenario", "rep", "seconds", "rows/s", "ratio", "rss_MiB"
    );
    let mut overlap = Vec::new();
    let mut speedup = Vec::new();
    let mut peak = 0i64;
    for rep in 0..reps {
        let (read_s, n) = read_alone(&connection).await;
        assert_eq!(n, rows);
        println!(
            "{:<8} {:>4} {:>9.2} {:>9.0} {:>24} {:>8}",
            "read",
            rep,
            read_s,
            rows as f64 / read_s,
            "1.00 (baseline)",
            "-"
        );
        reset(&client).await;
        let (rest_s, rss) = run_pulso(&db_url, &rest_file, &env);
        assert_eq!(loaded(&client).await as usize, rows);
        peak = peak.max(rss);
        overlap.push(rest_s / read_s);
        println!(
            "{:<8} {:>4} {:>9.2} {:>9.0} {:>24} {:>8.1}",
            "rest",
            rep,
            rest_s,
            rows as f64 / rest_s,
            format!("{:.2} x read", rest_s / read_s),
            rss as f64 / 1024.0
        );
        reset(&client).await;
        let (storage_s, rss) = run_pulso(&db_url, &storage_file, &env);
        assert_eq!(loaded(&client).await as usize, rows);
        peak = peak.max(rss);
        speedup.push(rest_s / storage_s);
        println!(
            "{:<8} {:>4} {:>9.2} {:>9.0} {:>24} {:>8.1}",
            "storage",
            rep,
            storage_s,
            rows as f64 / storage_s,
            format!("{:.2} x faster than rest", rest_s / storage_s),
            rss as f64 / 1024.0
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    println!(
        "median rest load / read alone: {:.2} (goal <= 1.10)",
        median(&mut overlap)
    );
    println!(
        "median storage (4 streams) speed-up over rest: {:.2} (goal >= 2)",
        median(&mut speedup)
    );
    println!(
        "peak RSS of pulso-flow: {:.1} MiB (goal <= 128)",
        peak as f64 / 1024.0
    );
}
