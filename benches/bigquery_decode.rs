//! BigQuery decoding throughput on one core:
//!
//! - `rest_page_json_to_arrow`: one getQueryResults page (10,000 rows of a trandeuda-shaped
//!   result: 3 STRING, 2 DATE, NUMERIC, TIMESTAMP in scientific notation, INT64, FLOAT64) from
//!   its JSON bytes to an Arrow RecordBatch (serde parse + typed decode), as the REST path does;
//! - `rest_rows_to_arrow`: the typed decode alone (rows already parsed);
//! - `storage_ipc_to_arrow`: one Storage Read response (100,000 rows, same columns as Arrow
//!   IPC) decoded and conformed to the canonical schema, as the Storage Read path does.
//! - `storage_read_over_grpc`: the whole Storage Read client on the same 100,000 rows: a read
//!   session on the in-process gRPC fake (loopback h2c, 10,000-row responses, 2 streams), every
//!   stream read, decoded and conformed, as `pulso-flow run` does with `read_api: storage`.
//!
//! Criterion reports rows/s (`Throughput::Elements`).
//! `cargo bench --bench bigquery_decode` (add `-- --quick` for a fast estimate).

use pulso_testkit::bigquery as bigquery_support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions, write_message};
use bigquery_support::storage::{FakeStorageRead, StorageState};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use pulso_operators::source::bigquery::decode::ResultSchema;
use pulso_operators::source::bigquery::gcp_bigquery_client::model::get_query_results_response::GetQueryResultsResponse;
use pulso_operators::source::bigquery::gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use pulso_operators::source::bigquery::storage::{IpcDecoder, conform};
use pulso_operators::source::{BigQueryConnection, SourceContext, SourceSpec};
use serde_json::{Value, json};

const PAGE_ROWS: usize = 10_000;
const IPC_ROWS: usize = 100_000;
/// 2025-06-27T12:00:00Z in microseconds.
const BASE_MICROS: i64 = 1_751_025_600_000_000;

fn fields() -> Value {
    json!([
        {"name": "cod_cuenta", "type": "STRING"},
        {"name": "nro_documento", "type": "STRING"},
        {"name": "archivo", "type": "STRING"},
        {"name": "fecha_vencimiento", "type": "DATE"},
        {"name": "fecha_proceso", "type": "DATE"},
        {"name": "monto_exigible", "type": "NUMERIC"},
        {"name": "creado_el", "type": "TIMESTAMP"},
        {"name": "cod_sistema", "type": "INTEGER"},
        {"name": "tasa", "type": "FLOAT"}
    ])
}

fn page_json() -> Vec<u8> {
    let rows: Vec<Value> = (0..PAGE_ROWS)
        .map(|i| {
            let micros = BASE_MICROS + i as i64 * 1_000;
            let digits = format!("{}{:06}", micros / 1_000_000, micros % 1_000_000);
            let ts = format!("{}.{}E9", &digits[..1], &digits[1..]);
            json!({"f": [
                {"v": format!("{}", 5_000_000_000u64 + i as u64)},
                {"v": format!("F{}", 100_000_000_000u64 + i as u64)},
                {"v": format!("TRANDEUDA_{}.csv", i / 1000)},
                {"v": format!("2025-{:02}-{:02}", 1 + i % 12, 1 + i % 28)},
                {"v": "2025-06-27"},
                {"v": format!("{}.{:02}", (i * 7919) % 100_000, i % 100)},
                {"v": ts},
                {"v": format!("{}", i % 97)},
                {"v": format!("{}.5", i % 1000)}
            ]})
        })
        .collect();
    serde_json::to_vec(&json!({
        "kind": "bigquery#getQueryResultsResponse",
        "jobComplete": true,
        "totalRows": PAGE_ROWS.to_string(),
        "schema": {"fields": fields()},
        "rows": rows,
        "pageToken": "next"
    }))
    .expect("page JSON")
}

fn schema() -> ResultSchema {
    let fields: Vec<TableFieldSchema> = serde_json::from_value(fields()).expect("fields");
    ResultSchema::new(&fields).expect("schema")
}

fn ipc_batch(target: &ResultSchema) -> RecordBatch {
    let ids = 0..IPC_ROWS;
    let utf8 = |f: &dyn Fn(usize) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(ids.clone().map(f)))
    };
    // The server's types: timestamps with a "+00:00" zone, cast to "UTC" by `conform`.
    let columns: Vec<ArrayRef> = vec![
        utf8(&|i| format!("{}", 5_000_000_000u64 + i as u64)),
        utf8(&|i| format!("F{}", 100_000_000_000u64 + i as u64)),
        utf8(&|i| format!("TRANDEUDA_{}.csv", i / 10_000)),
        Arc::new(Date32Array::from_iter_values(
            ids.clone().map(|i| 20_000 + (i % 365) as i32),
        )),
        Arc::new(Date32Array::from_iter_values(ids.clone().map(|_| 20_266))),
        Arc::new(
            Decimal128Array::from_iter_values(
                ids.clone().map(|i| (i as i128 * 7_919) % 10_000_000_000),
            )
            .with_precision_and_scale(38, 9)
            .expect("decimal"),
        ),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                ids.clone().map(|i| BASE_MICROS + i as i64),
            )
            .with_timezone("+00:00"),
        ),
        Arc::new(Int64Array::from_iter_values(
            ids.clone().map(|i| (i % 97) as i64),
        )),
        Arc::new(Float64Array::from_iter_values(
            ids.clone().map(|i| i as f64 / 2.0),
        )),
    ];
    let fields: Vec<arrow::datatypes::Field> = target
        .arrow
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| arrow::datatypes::Field::new(f.name(), c.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns).expect("batch")
}

/// The schema message and one record batch message, as ReadSession / ReadRowsResponse carry them.
fn ipc_messages(batch: &RecordBatch) -> (Vec<u8>, Vec<u8>) {
    let generator = IpcDataGenerator::default();
    let opts = IpcWriteOptions::default();
    let mut tracker = DictionaryTracker::new(false);
    let mut schema = Vec::new();
    let msg =
        generator.schema_to_bytes_with_dictionary_tracker(batch.schema_ref(), &mut tracker, &opts);
    write_message(&mut schema, msg, &opts).expect("schema message");
    let (_, encoded) = generator
        .encode(batch, &mut tracker, &opts, &mut Default::default())
        .expect("encode");
    let mut body = Vec::new();
    write_message(&mut body, encoded, &opts).expect("batch message");
    (schema, body)
}

fn bench(c: &mut Criterion) {
    let target = schema();
    let page = page_json();
    let mut group = c.benchmark_group("bigquery_decode");
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(PAGE_ROWS as u64));
    group.bench_function("rest_page_json_to_arrow", |b| {
        b.iter(|| {
            let resp: GetQueryResultsResponse =
                serde_json::from_slice(black_box(&page)).expect("parse");
            let rows = resp.rows.unwrap_or_default();
            black_box(target.decode(&rows, 0).expect("decode"))
        })
    });
    let parsed: GetQueryResultsResponse = serde_json::from_slice(&page).expect("parse");
    let rows = parsed.rows.unwrap_or_default();
    group.bench_function("rest_rows_to_arrow", |b| {
        b.iter(|| black_box(target.decode(black_box(&rows), 0).expect("decode")))
    });

    let batch = ipc_batch(&target);
    let (schema_bytes, body) = ipc_messages(&batch);
    let mut decoder = IpcDecoder::new(&schema_bytes).expect("schema");
    group.throughput(Throughput::Elements(IPC_ROWS as u64));
    group.bench_function("storage_ipc_to_arrow", |b| {
        b.iter(|| {
            let batches = decoder.decode(black_box(body.clone())).expect("decode");
            for batch in &batches {
                black_box(conform(batch, &target.arrow).expect("conform"));
            }
        })
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (ctx, _fakes) = runtime.block_on(storage_fakes(batch));
    let source: SourceSpec = serde_json::from_value(json!({
        "kind": "bigquery", "connection": "bq", "table": "t", "read_api": "storage", "streams": 2,
        "columns": fields().as_array().expect("fields").iter().map(|f| f["name"].clone()).collect::<Vec<_>>(),
    }))
    .expect("source");
    group.bench_function("storage_read_over_grpc", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let (_, mut stream) = source.open(&ctx).await.expect("open");
                let mut rows = 0;
                while let Some(batch) = stream.next().await {
                    rows += batch.expect("batch").num_rows();
                }
                assert_eq!(rows, IPC_ROWS);
            })
        })
    });
    group.finish();
}

/// The REST fake (tables.get) and the Storage Read fake holding `table`, and a context whose
/// connection `bq` points at them.
async fn storage_fakes(
    table: RecordBatch,
) -> (
    SourceContext,
    (bigquery_support::FakeBigQuery, FakeStorageRead),
) {
    let rest = bigquery_support::FakeBigQuery::start_rest(bigquery_support::FakeState {
        fields: fields(),
        ..Default::default()
    })
    .await;
    let storage = FakeStorageRead::start_grpc(StorageState {
        table: Some(table),
        rows_per_response: 10_000,
        report_progress: true,
        ..Default::default()
    })
    .await;
    let connection: BigQueryConnection = serde_json::from_value(json!({
        "project": "p", "dataset": "d", "endpoint": rest.url, "storage_endpoint": storage.url,
    }))
    .expect("connection");
    (bigquery_support::context(connection, None), (rest, storage))
}

criterion_group!(benches, bench);
criterion_main!(benches);
