//! The Storage Read path against an in-process fake of the Storage Read gRPC API (and the REST
//! fake for tables.get): parallel streams, session options, and each fault: statuses before and
//! in the middle of a stream (resumed at the offset), a retry budget that runs out, permanent
//! statuses, a stream that ends cleanly but short, and a stalled stream.
use pulso_testkit::bigquery as bigquery_support;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, AsArray, Decimal128Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use bigquery_support::storage::{
    FakeStorageRead, StorageFault, StorageFaultKind, StorageOn, StorageState,
};
use bigquery_support::{FakeBigQuery, FakeState, context, far_timestamps};
use futures::StreamExt;
use pulso_operators::OperatorError;
use pulso_operators::source::bigquery::BigQueryError;
use pulso_operators::source::{BigQueryConnection, SourceContext, SourceSpec};
use pulso_operators::window::Window;
use pulso_types::{IncType, IncValue};
use serde_json::json;
use tonic::Code;

const ROWS: usize = 9_000;
const STREAMS: usize = 3;
/// 2024-01-01T00:00:00Z in microseconds.
const BASE_MICROS: i64 = 1_704_067_200_000_000;

/// The table as the server holds it: id, s, n NUMERIC, ts TIMESTAMP.
fn table() -> RecordBatch {
    let ids: Vec<i64> = (0..ROWS as i64).collect();
    let s: Vec<Option<String>> = ids
        .iter()
        .map(|i| (i % 7 != 0).then(|| format!("s-{i}")))
        .collect();
    let n = Decimal128Array::from(
        ids.iter()
            .map(|i| i128::from(*i) * 1_000_000_001)
            .collect::<Vec<_>>(),
    )
    .with_precision_and_scale(38, 9)
    .unwrap();
    let ts = TimestampMicrosecondArray::from(
        ids.iter()
            .map(|i| BASE_MICROS + i * 1_000_001)
            .collect::<Vec<_>>(),
    )
    .with_timezone("UTC");
    RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
        ("s", Arc::new(StringArray::from(s)) as ArrayRef),
        ("n", Arc::new(n) as ArrayRef),
        ("ts", Arc::new(ts) as ArrayRef),
    ])
    .unwrap()
}

struct Fakes {
    rest: FakeBigQuery,
    storage: FakeStorageRead,
}

async fn fakes() -> Fakes {
    let rest = FakeBigQuery::start_rest(FakeState {
        fields: json!([
            {"name": "id", "type": "INTEGER"},
            {"name": "s", "type": "STRING"},
            {"name": "n", "type": "NUMERIC"},
            {"name": "ts", "type": "TIMESTAMP"},
        ]),
        ..FakeState::default()
    })
    .await;
    let storage = FakeStorageRead::start_grpc(StorageState {
        table: Some(table()),
        rows_per_response: 500,
        report_progress: true,
        ..StorageState::default()
    })
    .await;
    Fakes { rest, storage }
}

fn ctx(f: &Fakes) -> SourceContext {
    let connection: BigQueryConnection = serde_json::from_value(json!({
        "project": "test-proj",
        "dataset": "ds",
        "endpoint": f.rest.url,
        "storage_endpoint": f.storage.url,
        "timeout_ms": 2_000,
        "retry": {"attempts": 4, "initial_backoff_ms": 5, "max_backoff_ms": 20}
    }))
    .expect("connection");
    context(
        connection,
        Some(Window {
            column: "ts".into(),
            ty: IncType::Timestamp,
            lower: Some(IncValue::parse(IncType::Timestamp, "2024-01-01T00:00:00Z").unwrap()),
            upper: Some(IncValue::parse(IncType::Timestamp, "2030-01-01T00:00:00Z").unwrap()),
        }),
    )
}

fn source() -> SourceSpec {
    serde_json::from_value(json!({
        "kind": "bigquery",
        "connection": "bq",
        "table": "t",
        "columns": ["id", "s", "n", "ts"],
        "filter": "id >= 0",
        "read_api": "storage",
        "streams": STREAMS,
    }))
    .expect("source")
}

async fn read(f: &Fakes) -> Result<Vec<RecordBatch>, OperatorError> {
    let (_, stream) = source().open(&ctx(f)).await?;
    stream.collect::<Vec<_>>().await.into_iter().collect()
}

/// The whole table: no filter, no window, so the session has no row restriction.
async fn read_whole_table(f: &Fakes) -> Result<Vec<RecordBatch>, OperatorError> {
    let source: SourceSpec = serde_json::from_value(json!({
        "kind": "bigquery", "connection": "bq", "table": "t",
        "columns": ["id", "s", "n", "ts"], "read_api": "storage", "streams": STREAMS,
    }))
    .expect("source");
    let mut ctx = ctx(f);
    ctx.window = None;
    let (_, stream) = source.open(&ctx).await?;
    stream.collect::<Vec<_>>().await.into_iter().collect()
}

/// The ids read, sorted (streams interleave).
fn sorted_ids(batches: &[RecordBatch]) -> Vec<i64> {
    let mut ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    ids.sort_unstable();
    ids
}

fn every_id() -> Vec<i64> {
    (0..ROWS as i64).collect()
}

fn bq_error(e: OperatorError) -> BigQueryError {
    match e {
        OperatorError::BigQuery(e) => *e,
        other => panic!("expected a BigQuery error, got {other}"),
    }
}

/// The read fails with a [`BigQueryError::Api`]: (attempts, transient, message).
async fn api_error(f: &Fakes) -> (u32, bool, String) {
    match bq_error(read(f).await.unwrap_err()) {
        e @ BigQueryError::Api {
            attempts,
            transient,
            ..
        } => (attempts, transient, e.to_string()),
        other => panic!("expected an API error, got {other}"),
    }
}

fn fault(on: StorageOn, kind: StorageFaultKind, times: u32) -> StorageFault {
    StorageFault { on, kind, times }
}

/// ReadRows offsets of one stream, in call order.
fn offsets(f: &Fakes, stream: usize) -> Vec<i64> {
    f.storage.with(|s| {
        s.reads
            .iter()
            .filter(|(i, _)| *i == stream)
            .map(|(_, o)| *o)
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_stream_is_read_in_parallel_with_the_session_options() {
    let f = fakes().await;
    let batches = read(&f).await.unwrap();
    assert_eq!(sorted_ids(&batches), every_id());
    // The canonical types of the table's metadata, values intact.
    let schema = batches[0].schema();
    assert_eq!(schema.field(2).data_type(), &DataType::Decimal128(38, 9));
    assert_eq!(
        schema.field(3).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    let expected = table();
    for b in &batches {
        let first = b.column(0).as_primitive::<Int64Type>().value(0) as usize;
        assert_eq!(b.columns(), expected.slice(first, b.num_rows()).columns());
    }

    let session = f.storage.with(|s| s.sessions[0].clone());
    assert_eq!(session.parent, "projects/test-proj");
    assert_eq!(session.max_stream_count, STREAMS as i32);
    let asked = session.read_session.unwrap();
    assert_eq!(asked.table, "projects/test-proj/datasets/ds/tables/t");
    let options = asked.read_options.unwrap();
    assert_eq!(options.selected_fields, vec!["id", "s", "n", "ts"]);
    assert_eq!(
        options.row_restriction,
        "(id >= 0) AND (`ts` IS NULL OR (`ts` >= TIMESTAMP '2024-01-01 00:00:00.000000+00:00' \
         AND `ts` < TIMESTAMP '2030-01-01 00:00:00.000000+00:00'))"
    );
    // Each stream was read once, from its start, and no row twice.
    for stream in 0..STREAMS {
        assert_eq!(offsets(&f, stream), vec![0]);
    }
    assert_eq!(f.storage.with(|s| s.rows_sent), ROWS);
}

/// Issue 9, defect 5 on this path: Arrow carries TIMESTAMP as integer microseconds, so values
/// from year 1 to 9999 arrive exact.
#[tokio::test(flavor = "multi_thread")]
async fn timestamps_from_year_1_to_9999_keep_their_microseconds() {
    let f = fakes().await;
    let far = far_timestamps();
    let ids: Vec<i64> = (0..far.len() as i64).collect();
    let ts = TimestampMicrosecondArray::from(far.iter().map(|(_, m)| *m).collect::<Vec<_>>())
        .with_timezone("UTC");
    let n = Decimal128Array::from(vec![0i128; far.len()])
        .with_precision_and_scale(38, 9)
        .unwrap();
    let table = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
        (
            "s",
            Arc::new(StringArray::from(vec![None::<&str>; far.len()])) as ArrayRef,
        ),
        ("n", Arc::new(n) as ArrayRef),
        ("ts", Arc::new(ts) as ArrayRef),
    ])
    .unwrap();
    f.storage.with(|s| s.table = Some(table));
    let batches = read_whole_table(&f).await.unwrap();
    let mut got: Vec<(i64, i64)> = batches
        .iter()
        .flat_map(|b| {
            let id = b.column(0).as_primitive::<Int64Type>().clone();
            let ts = b
                .column(3)
                .as_primitive::<TimestampMicrosecondType>()
                .clone();
            (0..b.num_rows())
                .map(|r| (id.value(r), ts.value(r)))
                .collect::<Vec<_>>()
        })
        .collect();
    got.sort_unstable();
    let want: Vec<(i64, i64)> = far
        .iter()
        .enumerate()
        .map(|(i, (_, m))| (i as i64, *m))
        .collect();
    assert_eq!(got, want, "{far:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_statuses_are_retried_and_a_broken_stream_resumes_at_its_offset() {
    let f = fakes().await;
    f.storage.with(|s| {
        s.faults = vec![
            fault(
                StorageOn::CreateSession,
                StorageFaultKind::Status(Code::Unavailable, "try again"),
                1,
            ),
            fault(
                StorageOn::Stream(0),
                StorageFaultKind::Status(Code::ResourceExhausted, "slow down"),
                1,
            ),
            fault(
                StorageOn::Stream(1),
                StorageFaultKind::StatusAfter(1_200, Code::Unavailable, "stream reset"),
                2,
            ),
            fault(
                StorageOn::Stream(2),
                StorageFaultKind::StatusAfter(700, Code::Internal, "RST_STREAM"),
                1,
            ),
        ]
    });
    let batches = read(&f).await.unwrap();
    assert_eq!(sorted_ids(&batches), every_id());
    assert_eq!(f.storage.with(|s| s.sessions.len()), 2);
    assert_eq!(offsets(&f, 0), vec![0, 0]);
    assert_eq!(offsets(&f, 1), vec![0, 1_200, 2_400]);
    assert_eq!(offsets(&f, 2), vec![0, 700]);
    // Resuming never re-sent a row.
    assert_eq!(f.storage.with(|s| s.rows_sent), ROWS);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_connection_resumes_at_the_first_row_not_received() {
    // Reset (RST_STREAM), or ended without the gRPC status trailer (a truncating proxy): both
    // are failures, never a clean end, and the read resumes after the rows received.
    for reset in [true, false] {
        let f = fakes().await;
        f.storage.with(|s| {
            s.faults = vec![fault(
                StorageOn::Stream(1),
                StorageFaultKind::Cut { frames: 2, reset },
                2,
            )]
        });
        let batches = read(&f).await.unwrap();
        // Every row exactly once although the server produced rows that never arrived.
        assert_eq!(sorted_ids(&batches), every_id(), "reset: {reset}");
        let resumed = offsets(&f, 1);
        assert_eq!(resumed.len(), 3, "reset: {reset}: {resumed:?}");
        assert!(
            resumed.windows(2).all(|w| w[0] < w[1]) && resumed[2] % 500 == 0,
            "reset: {reset}: each retry starts after the rows received: {resumed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_retry_budget_the_read_fails_with_the_servers_message() {
    let f = fakes().await;
    f.storage.with(|s| {
        s.faults = vec![fault(
            StorageOn::Stream(1),
            StorageFaultKind::Status(Code::Unavailable, "The service is currently unavailable."),
            u32::MAX,
        )]
    });
    let (attempts, transient, text) = api_error(&f).await;
    assert_eq!((attempts, transient), (4, true), "{text}");
    assert!(
        text.contains("streams/1-of-3 at row 0")
            && text.contains("The service is currently unavailable."),
        "{text}"
    );
    assert_eq!(offsets(&f, 1).len(), 4);

    // The budget counts tries without progress: a stream that breaks after some rows each
    // time keeps going, one that breaks before any row does not.
    let f = fakes().await;
    f.storage.with(|s| {
        s.faults = vec![fault(
            StorageOn::Stream(0),
            StorageFaultKind::StatusAfter(500, Code::Unavailable, "flaky"),
            6,
        )]
    });
    let batches = read(&f).await.unwrap();
    assert_eq!(sorted_ids(&batches), every_id());
    assert_eq!(
        offsets(&f, 0),
        vec![0, 500, 1_000, 1_500, 2_000, 2_500, 3_000]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_statuses_fail_at_once_with_the_servers_message() {
    let cases = [
        (
            StorageOn::CreateSession,
            Code::PermissionDenied,
            "Permission denied on table t: bigquery.readsessions.create",
        ),
        (
            StorageOn::CreateSession,
            Code::InvalidArgument,
            "Syntax error in row restriction",
        ),
        (StorageOn::Stream(2), Code::NotFound, "Stream expired"),
    ];
    for (on, code, message) in cases {
        let f = fakes().await;
        f.storage.with(|s| {
            s.faults = vec![fault(on, StorageFaultKind::Status(code, message), u32::MAX)]
        });
        let (attempts, transient, text) = api_error(&f).await;
        assert_eq!((attempts, transient), (1, false), "{text}");
        assert!(text.contains(message), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_ends_cleanly_but_short_is_resumed_then_refused() {
    // Once: the stream is resumed at its offset and the read completes.
    let f = fakes().await;
    f.storage.with(|s| {
        s.faults = vec![fault(
            StorageOn::Stream(1),
            StorageFaultKind::EndAfter(700),
            1,
        )]
    });
    let batches = read(&f).await.unwrap();
    assert_eq!(sorted_ids(&batches), every_id());
    assert_eq!(offsets(&f, 1), vec![0, 700]);

    // Always, on a read without a row restriction (where progress is exact): never accepted.
    let f = fakes().await;
    f.storage.with(|s| {
        s.faults = vec![
            fault(StorageOn::Stream(1), StorageFaultKind::EndAfter(1_000), 1),
            fault(
                StorageOn::Stream(1),
                StorageFaultKind::EndAfter(0),
                u32::MAX,
            ),
        ]
    });
    let e = bq_error(read_whole_table(&f).await.unwrap_err());
    let text = e.to_string();
    assert!(
        matches!(
            e,
            BigQueryError::ShortStream {
                read: 1_000,
                attempts: 4,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("ended after 1000 rows with 33.333% of it processed"),
        "{text}"
    );
    assert_eq!(
        f.storage
            .with(|s| s.sessions[0].clone())
            .read_session
            .unwrap()
            .read_options
            .unwrap()
            .row_restriction,
        ""
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filtered_stream_below_full_progress_is_asked_again_and_its_end_confirmed() {
    // With a row restriction the server's progress also counts the rows the filter dropped, so
    // a stream can end below 1. Asked again at its offset, the server ends at once: confirmed.
    let f = fakes().await;
    f.storage.with(|s| s.progress_scale = Some(0.9));
    let batches = read(&f).await.unwrap();
    assert_eq!(sorted_ids(&batches), every_id());
    for stream in 0..STREAMS {
        assert_eq!(offsets(&f, stream), vec![0, 3_000]);
    }
    assert_eq!(f.storage.with(|s| s.rows_sent), ROWS);

    // The same progress without a row restriction is a short read.
    let f = fakes().await;
    f.storage.with(|s| s.progress_scale = Some(0.9));
    let e = bq_error(read_whole_table(&f).await.unwrap_err());
    assert!(
        matches!(e, BigQueryError::ShortStream { read: 3_000, .. }),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_stream_is_resumed_after_the_timeout() {
    let f = fakes().await;
    f.storage.with(|s| {
        s.faults = vec![fault(
            StorageOn::Stream(0),
            StorageFaultKind::StallAfter(1_500, Duration::from_secs(30)),
            1,
        )]
    });
    let started = std::time::Instant::now();
    let batches = read(&f).await.unwrap();
    assert_eq!(sorted_ids(&batches), every_id());
    assert_eq!(offsets(&f, 0), vec![0, 1_500]);
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// A service-account key file whose `token_uri` is the REST fake's token endpoint, with a fresh
/// RSA key (made by the `openssl` command, so no private key is committed).
fn service_account_key(dir: &std::path::Path, token_uri: &str) -> std::path::PathBuf {
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("the openssl command (Debian package openssl) makes the test key");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = String::from_utf8(out.stdout).expect("PEM");
    let key = json!({
        "type": "service_account",
        "project_id": "test-proj",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "loader@test-proj.iam.gserviceaccount.com",
        "client_id": "1",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    });
    let path = dir.join("sa.json");
    std::fs::write(&path, key.to_string()).expect("write the key file");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_account_token_reaches_rest_and_storage_read_calls_with_routing_headers() {
    let f = fakes().await;
    let dir = tempfile::tempdir().unwrap();
    let key = service_account_key(dir.path(), &format!("{}/token", f.rest.url));
    let connection: BigQueryConnection = serde_json::from_value(json!({
        "project": "test-proj",
        "dataset": "ds",
        "endpoint": f.rest.url,
        "storage_endpoint": f.storage.url,
        "credentials": key,
        "retry": {"attempts": 2, "initial_backoff_ms": 5}
    }))
    .unwrap();
    let ctx = context(connection, ctx(&f).window);
    let (_, stream) = source().open(&ctx).await.unwrap();
    let batches: Vec<RecordBatch> = stream
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(sorted_ids(&batches), every_id());

    // One signed JWT-bearer grant for the BigQuery scope, from the key's account to its token_uri.
    let grants = f.rest.with(|s| s.token_grants.clone());
    assert_eq!(grants.len(), 1, "the token is fetched once and reused");
    let parts: Vec<&str> = grants[0].split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT: header.claims.signature");
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .expect("base64url claims"),
    )
    .expect("JSON claims");
    assert_eq!(claims["iss"], "loader@test-proj.iam.gserviceaccount.com");
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/bigquery");
    assert_eq!(claims["aud"], format!("{}/token", f.rest.url));
    assert!(!parts[2].is_empty(), "signed");

    // The token on every REST call (tables.get) and every gRPC call, with the routing header
    // real BigQuery routes Storage Read calls by.
    let bearer = "Bearer ya29.fake-token-1";
    let rest = f.rest.with(|s| s.authorizations.clone());
    assert!(
        !rest.is_empty() && rest.iter().all(|a| a == bearer),
        "{rest:?}"
    );
    let grpc = f.storage.with(|s| s.metadata.clone());
    assert_eq!(grpc.len(), 1 + STREAMS);
    for (method, authorization, routing) in &grpc {
        assert_eq!(authorization, bearer, "{method}");
        let want = match *method {
            "CreateReadSession" => {
                "read_session.table=projects/test-proj/datasets/ds/tables/t".to_string()
            }
            _ => "read_stream=projects/p/locations/us/sessions/fake/streams/".to_string(),
        };
        assert!(routing.starts_with(&want), "{method}: {routing}");
    }
}
