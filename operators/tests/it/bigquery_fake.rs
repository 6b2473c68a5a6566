//! The BigQuery REST read path against an in-process fake of the API: paging, typed decoding,
//! parameters, bounded prefetch, and every fault the source must survive or report.

use pulso_testkit::bigquery as bigquery_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, Decimal128Array, Decimal256Array, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use bigquery_support::{
    FakeBigQuery, FakeState, Fault, FaultKind, On, context, far_timestamps, float_seconds, rest_row,
};
use futures::StreamExt;
use pulso_operators::OperatorError;
use pulso_operators::source::bigquery::BigQueryError;
use pulso_operators::source::bigquery::decode::parse_timestamp_micros;
use pulso_operators::source::{BigQueryConnection, SourceContext, SourceSpec};
use pulso_operators::window::Window;
use pulso_types::{IncType, IncValue};
use serde_json::{Value, json};

/// 2024-01-01T12:34:56.123456Z
const BASE_MICROS: i64 = 1_704_112_496_123_456;

fn fields() -> Value {
    json!([
        {"name": "id", "type": "INTEGER", "mode": "REQUIRED"},
        {"name": "s", "type": "STRING"},
        {"name": "f", "type": "FLOAT"},
        {"name": "n", "type": "NUMERIC"},
        {"name": "bn", "type": "BIGNUMERIC"},
        {"name": "b", "type": "BOOLEAN"},
        {"name": "d", "type": "DATE"},
        {"name": "dt", "type": "DATETIME"},
        {"name": "ts", "type": "TIMESTAMP"},
        {"name": "t", "type": "TIME"},
        {"name": "by", "type": "BYTES"},
        {"name": "j", "type": "JSON"},
        {"name": "rec", "type": "RECORD", "fields": [{"name": "a", "type": "INTEGER"}]},
        {"name": "arr", "type": "STRING", "mode": "REPEATED"},
        {"name": "g", "type": "GEOGRAPHY"},
        {"name": "iv", "type": "INTERVAL"}
    ])
}

/// The i-th row; TIMESTAMP cells rotate through the three encodings of the same kind of value.
fn row(i: usize) -> Value {
    let null = i % 7 == 6;
    let v = |x: Value| if null { None } else { Some(x) };
    let ts_micros = BASE_MICROS + i as i64 * 1_000_001;
    let ts = match i % 3 {
        0 => ts_micros.to_string(),
        1 => format!(
            "{}.{:06}",
            ts_micros.div_euclid(1_000_000),
            ts_micros.rem_euclid(1_000_000)
        ),
        _ => {
            // Scientific notation of the seconds, all digits kept.
            let digits = format!(
                "{}{:06}",
                ts_micros.div_euclid(1_000_000),
                ts_micros.rem_euclid(1_000_000)
            );
            let (head, tail) = digits.split_at(1);
            format!("{head}.{tail}E{}", digits.len() - 7)
        }
    };
    rest_row(vec![
        Some(json!(i.to_string())),
        v(json!(format!("fila {i}: it's \"quoted\" ñ"))),
        v(json!(format!("{i}.25"))),
        v(json!(format!(
            "{}{}.123456789",
            if i % 2 == 1 { "-" } else { "" },
            i * 1_000_000_007
        ))),
        v(json!(format!("{i}.{}", "9".repeat(38)))),
        v(json!(if i.is_multiple_of(2) { "true" } else { "false" })),
        v(json!("2024-02-29")),
        v(json!("2024-01-02T03:04:05.123456")),
        v(json!(ts)),
        v(json!("23:59:59.999999")),
        v(json!("AAEC/w==")),
        v(json!("{\"k\":[1,2]}")),
        v(json!({"f": [{"v": i.to_string()}]})),
        v(json!([{"v": "x"}, {"v": "y"}])),
        v(json!(format!("POINT({i} -12.05)"))),
        v(json!(format!("0-{} 3 -4:5:6.5", i % 12))),
    ])
}

fn state(rows: usize) -> FakeState {
    FakeState {
        fields: fields(),
        rows: (0..rows).map(row).collect(),
        dry_run_bytes: 3 << 30,
        ..FakeState::default()
    }
}

/// A connection with a timeout generous enough that a loaded machine never trips it by accident.
fn connection(url: &str) -> BigQueryConnection {
    connection_with_timeout(url, 5_000)
}

/// A connection whose calls time out quickly: for the tests that inject hangs. The hangs last
/// several times longer than this, so a slow but healthy page does not look like a hang.
fn connection_with_timeout(url: &str, timeout_ms: u64) -> BigQueryConnection {
    serde_json::from_value(json!({
        "project": "test-proj",
        "dataset": "ds",
        "location": "US",
        "endpoint": url,
        "timeout_ms": timeout_ms,
        "retry": {"attempts": 4, "initial_backoff_ms": 5, "max_backoff_ms": 20}
    }))
    .expect("connection")
}

fn ctx(fake: &FakeBigQuery, window: Option<Window>) -> SourceContext {
    context(connection(&fake.url), window)
}

fn source(page_size: u32) -> SourceSpec {
    serde_json::from_value(json!({
        "kind": "bigquery",
        "connection": "bq",
        "query": "SELECT id, s, f, n, bn, b, d, dt, ts, t, `by`, j, rec, arr, g, iv FROM `test-proj.ds.t` WHERE s IS NOT NULL OR TRUE",
        "page_size": page_size,
        "params": {"cliente": {"type": "STRING", "value": "x' OR 1=1; DROP TABLE t --"}}
    }))
    .expect("source")
}

fn window() -> Window {
    Window {
        column: "ts".into(),
        ty: IncType::Timestamp,
        lower: Some(IncValue::parse(IncType::Timestamp, "2024-01-01T00:00:00Z").unwrap()),
        upper: Some(IncValue::parse(IncType::Timestamp, "2030-01-01T00:00:00Z").unwrap()),
    }
}

async fn read(fake: &FakeBigQuery, page_size: u32) -> Result<Vec<RecordBatch>, OperatorError> {
    read_over(connection(&fake.url), page_size).await
}

/// `read` over a connection that times out after 800 ms (the injected hangs last 4 s).
async fn read_impatiently(
    fake: &FakeBigQuery,
    page_size: u32,
) -> Result<Vec<RecordBatch>, OperatorError> {
    read_over(connection_with_timeout(&fake.url, 800), page_size).await
}

async fn read_over(
    connection: BigQueryConnection,
    page_size: u32,
) -> Result<Vec<RecordBatch>, OperatorError> {
    let (_, stream) = source(page_size)
        .open(&context(connection, Some(window())))
        .await?;
    let items: Vec<_> = stream.collect().await;
    items.into_iter().collect()
}

fn total_rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

#[tokio::test]
async fn every_page_is_read_one_batch_per_page_with_every_type_exact() {
    let fake = FakeBigQuery::start_rest(state(10_500)).await;
    let batches = read(&fake, 1000).await.expect("read");
    assert_eq!(batches.len(), 11, "one batch per page");
    assert_eq!(total_rows(&batches), 10_500);
    assert_eq!(
        ids(&batches),
        (0..10_500).collect::<Vec<i64>>(),
        "in order, nothing twice"
    );
    assert_eq!(
        fake.with(|s| s.pages_served.clone()),
        (0..11).collect::<Vec<_>>()
    );

    let schema = batches[0].schema();
    let types: Vec<DataType> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(
        types,
        vec![
            DataType::Int64,
            DataType::Utf8,
            DataType::Float64,
            DataType::Decimal128(38, 9),
            DataType::Decimal256(76, 38),
            DataType::Boolean,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
            DataType::Time64(TimeUnit::Microsecond),
            DataType::Binary,
            DataType::Utf8,
            DataType::Utf8,
            DataType::Utf8,
            DataType::Utf8,
            DataType::Utf8,
        ]
    );
    let mut i = 0usize;
    for b in &batches {
        let ts = b.column(8).as_primitive::<TimestampMicrosecondType>();
        let n = b
            .column(3)
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .unwrap();
        for r in 0..b.num_rows() {
            if i % 7 == 6 {
                assert!(ts.is_null(r) && n.is_null(r));
            } else {
                // All three TIMESTAMP encodings are exact to the microsecond.
                assert_eq!(ts.value(r), BASE_MICROS + i as i64 * 1_000_001, "row {i}");
                let sign = if i % 2 == 1 { -1 } else { 1 };
                assert_eq!(
                    n.value(r),
                    sign * ((i as i128 * 1_000_000_007) * 1_000_000_000 + 123_456_789)
                );
            }
            i += 1;
        }
    }
    let b = &batches[0];
    assert_eq!(
        b.column(1).as_string::<i32>().value(1),
        "fila 1: it's \"quoted\" ñ"
    );
    assert_eq!(
        b.column(2)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .value(3),
        3.25
    );
    let bn = b
        .column(4)
        .as_any()
        .downcast_ref::<Decimal256Array>()
        .unwrap();
    assert_eq!(bn.value_as_string(2), format!("2.{}", "9".repeat(38)));
    assert_eq!(b.column(10).as_binary::<i32>().value(0), &[0, 1, 2, 255]);
    assert_eq!(b.column(12).as_string::<i32>().value(5), r#"{"a":5}"#);
    assert_eq!(b.column(13).as_string::<i32>().value(0), r#"["x","y"]"#);
    // GEOGRAPHY (WKT) and INTERVAL (canonical text) pass through as BigQuery sends them.
    assert_eq!(b.column(14).as_string::<i32>().value(5), "POINT(5 -12.05)");
    assert_eq!(b.column(15).as_string::<i32>().value(5), "0-5 3 -4:5:6.5");
    assert!(b.column(14).is_null(6) && b.column(15).is_null(6));
}

/// The TIMESTAMP values read (µs), in order.
fn timestamps(batches: &[RecordBatch], column: usize) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(column)
                .as_primitive::<TimestampMicrosecondType>()
                .values()
                .to_vec()
        })
        .collect()
}

/// Issue 9, defect 5: float seconds cannot hold a microsecond far from 1970
/// (`9999-12-31 23:59:59.999999` becomes `10000-01-01`), so every getQueryResults call asks for
/// int64 timestamps; a server that ignores the option still gets its float and scientific forms
/// read.
#[tokio::test]
async fn timestamps_from_year_1_to_9999_keep_their_microseconds() {
    let far = far_timestamps();
    let fake = FakeBigQuery::start_rest(FakeState {
        fields: json!([{"name": "id", "type": "INTEGER"}, {"name": "ts", "type": "TIMESTAMP"}]),
        rows: far
            .iter()
            .enumerate()
            .map(|(i, (_, micros))| {
                rest_row(vec![
                    Some(json!(i.to_string())),
                    Some(json!(micros.to_string())),
                ])
            })
            .collect(),
        ..FakeState::default()
    })
    .await;
    let spec: SourceSpec = serde_json::from_value(json!({
        "kind": "bigquery", "connection": "bq", "query": "SELECT id, ts FROM `test-proj.ds.t`",
        "page_size": 4
    }))
    .expect("source");
    let read_all = || async {
        let (_, stream) = spec.open(&ctx(&fake, None)).await.expect("open");
        let items: Vec<_> = stream.collect().await;
        items
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .expect("read")
    };
    let batches = read_all().await;
    let want: Vec<i64> = far.iter().map(|(_, m)| *m).collect();
    assert_eq!(timestamps(&batches, 1), want, "{far:?}");
    let asked = fake.with(|s| std::mem::take(&mut s.int64_timestamps_asked));
    assert!(
        asked.len() >= 2 && asked.iter().all(|a| *a),
        "every getQueryResults call (both pages) asks for int64 timestamps: {asked:?}"
    );

    // A server that ignores the option sends float seconds: read as exactly as they are
    // written (the microseconds near 1970 survive; far from it the float carried none).
    fake.with(|s| s.ignore_format_options = true);
    let batches = read_all().await;
    let got = timestamps(&batches, 1);
    for ((text, micros), got) in far.iter().zip(&got) {
        let float = float_seconds(*micros);
        let from_float = parse_timestamp_micros(&float).expect("float seconds parse");
        assert_eq!(*got, from_float, "{text} served as {float}");
        if text.starts_with("2024") || text.starts_with("1969") {
            assert_eq!(*got, *micros, "{text} served as {float}");
        }
    }
    assert_ne!(
        got[5], want[5],
        "the float rendering of year 9999 is not exact"
    );
}

#[tokio::test]
async fn the_window_and_params_travel_as_typed_parameters_never_in_the_sql() {
    let fake = FakeBigQuery::start_rest(state(10)).await;
    read(&fake, 100).await.expect("read");
    let insert = fake.with(|s| s.inserts[0].clone());
    let q = &insert["configuration"]["query"];
    let sql = q["query"].as_str().unwrap();
    assert_eq!(
        sql,
        "SELECT * FROM (\nSELECT id, s, f, n, bn, b, d, dt, ts, t, `by`, j, rec, arr, g, iv FROM `test-proj.ds.t` WHERE s IS NOT NULL OR TRUE\n) AS pulso_src\nWHERE (`ts` IS NULL OR (`ts` >= @lower AND `ts` < @upper))"
    );
    assert!(!sql.contains("DROP") && !sql.contains("2024"));
    assert_eq!(q["parameterMode"], "NAMED");
    assert_eq!(q["useLegacySql"], false);
    assert_eq!(
        q["queryParameters"],
        json!([
            {"name": "cliente", "parameterType": {"type": "STRING"}, "parameterValue": {"value": "x' OR 1=1; DROP TABLE t --"}},
            {"name": "lower", "parameterType": {"type": "TIMESTAMP"}, "parameterValue": {"value": "2024-01-01 00:00:00.000000+00:00"}},
            {"name": "upper", "parameterType": {"type": "TIMESTAMP"}, "parameterValue": {"value": "2030-01-01 00:00:00.000000+00:00"}}
        ])
    );
    assert_eq!(
        q["defaultDataset"],
        json!({"datasetId": "ds", "projectId": "test-proj"})
    );
    assert_eq!(insert["jobReference"]["location"], "US");
    assert_eq!(
        insert["configuration"]["labels"],
        json!({"app": "pulso-flow"})
    );
    assert!(q.get("maximumBytesBilled").is_none(), "{q}");
}

#[tokio::test]
async fn a_byte_limit_travels_with_the_job_and_explain_checks_it() {
    let mut st = state(10);
    // What BigQuery answers when the limit is too low: a failed job, not retried.
    st.job_error = Some((
        "bytesBilledLimitExceeded".into(),
        "Query exceeded limit for bytes billed: 1073741824. 3221225472 or higher required.".into(),
    ));
    let fake = FakeBigQuery::start_rest(st).await;
    let mut conn = connection(&fake.url);
    conn.maximum_bytes_billed = Some(10 << 30);
    let ctx = context(conn, Some(window()));
    let mut spec = source(100);
    let SourceSpec::Bigquery(bq) = &mut spec else {
        panic!("a BigQuery source")
    };
    // The table's own limit wins over the connection's.
    bq.maximum_bytes_billed = Some(1 << 30);

    let lines = spec.explain(&ctx).await;
    let limit = lines
        .iter()
        .find(|(l, _)| l == "maximum bytes billed")
        .map(|(_, v)| v.as_str());
    assert_eq!(
        limit,
        Some("1.00 GiB (1073741824 bytes): the query would FAIL: it processes more than the limit")
    );

    // The job fails before the first page: opening the source fails.
    let e = match spec.open(&ctx).await {
        Ok(_) => panic!("the read should fail"),
        Err(e) => bq_error(e),
    };
    assert!(
        matches!(
            e,
            BigQueryError::Job {
                transient: false,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("Query exceeded limit for bytes billed")
    );
    let insert = fake.with(|s| s.inserts.clone());
    assert_eq!(insert.len(), 1, "a permanent job error is not re-run");
    assert_eq!(
        insert[0]["configuration"]["query"]["maximumBytesBilled"],
        "1073741824"
    );
}

/// Every transient fault, once on the fourth page: survived, resumed at that page.
#[tokio::test]
async fn each_transient_fault_is_retried_and_resumes_at_the_failed_page() {
    let faults = [
        FaultKind::Status(
            429,
            "rateLimitExceeded",
            "Exceeded rate limits: too many api requests per user per method",
        ),
        FaultKind::Status(500, "backendError", "Backend error"),
        FaultKind::Status(502, "backendError", "Bad gateway"),
        FaultKind::Status(503, "backendError", "The service is currently unavailable"),
        FaultKind::Status(504, "backendError", "Deadline exceeded"),
        FaultKind::Status(
            403,
            "rateLimitExceeded",
            "Exceeded rate limits: too many table update operations",
        ),
        FaultKind::Html(502),
        FaultKind::Reset,
        FaultKind::Truncated,
        FaultKind::Hang(Duration::from_secs(4)),
    ];
    for kind in faults {
        let mut st = state(5_000);
        st.faults.push(Fault {
            on: On::Page(3),
            kind: kind.clone(),
            times: 2,
        });
        let fake = FakeBigQuery::start_rest(st).await;
        let read = if matches!(kind, FaultKind::Hang(_)) {
            read_impatiently(&fake, 500).await
        } else {
            read(&fake, 500).await
        };
        let batches = read.unwrap_or_else(|e| panic!("{kind:?} was not survived: {e}"));
        assert_eq!(total_rows(&batches), 5_000, "{kind:?}");
        assert_eq!(ids(&batches), (0..5_000).collect::<Vec<i64>>(), "{kind:?}");
        let calls: Vec<Option<usize>> =
            fake.with(|s| s.results_calls.iter().map(|c| c.1).collect());
        // Pages 0..2 once, page 3 three times (two faults, then the answer), then the rest once.
        let mut want: Vec<Option<usize>> = (0..3).map(Some).collect();
        want.extend([Some(3), Some(3), Some(3)]);
        want.extend((4..10).map(Some));
        assert_eq!(
            calls, want,
            "{kind:?}: retried at the failed page, not from the start"
        );
    }
}

#[tokio::test]
async fn a_retried_insert_does_not_start_a_second_job() {
    for kind in [
        FaultKind::AfterCreate(503),
        FaultKind::Reset,
        FaultKind::Status(500, "backendError", "Backend error"),
    ] {
        let mut st = state(100);
        st.faults.push(Fault {
            on: On::Insert,
            kind: kind.clone(),
            times: 1,
        });
        let fake = FakeBigQuery::start_rest(st).await;
        let batches = read(&fake, 50)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(total_rows(&batches), 100);
        let (inserts, created) = fake.with(|s| (s.inserts.len(), s.created.len()));
        assert_eq!((inserts, created), (2, 1), "{kind:?}");
        // Both tries used the same job id.
        let ids: Vec<String> = fake.with(|s| {
            s.inserts
                .iter()
                .map(|b| b["jobReference"]["jobId"].as_str().unwrap().to_string())
                .collect()
        });
        assert_eq!(ids[0], ids[1]);
    }
}

fn bq_error(e: OperatorError) -> BigQueryError {
    match e {
        OperatorError::BigQuery(b) => *b,
        other => panic!("not a BigQuery error: {other}"),
    }
}

#[tokio::test]
async fn past_the_retry_budget_the_read_fails_with_bigquerys_message() {
    let mut st = state(5_000);
    st.faults.push(Fault {
        on: On::Page(2),
        kind: FaultKind::Status(503, "backendError", "The service is currently unavailable."),
        times: u32::MAX,
    });
    let fake = FakeBigQuery::start_rest(st).await;
    let (_, stream) = source(500)
        .open(&ctx(&fake, Some(window())))
        .await
        .expect("open");
    let items: Vec<_> = stream.collect().await;
    // Pages 0 and 1 arrived, then the error ends the stream: the table fails, nothing commits.
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[1].is_ok());
    let e = bq_error(items.into_iter().nth(2).unwrap().unwrap_err());
    assert_eq!(
        e.to_string(),
        "BigQuery jobs.getQueryResults (page 2) failed after 4 attempt(s): The service is currently unavailable. (HTTP 503, UNAVAILABLE, reason backendError)"
    );
    assert!(matches!(
        e,
        BigQueryError::Api {
            transient: true,
            attempts: 4,
            ..
        }
    ));
    assert_eq!(
        fake.with(|s| s.results_calls.iter().filter(|c| c.1 == Some(2)).count()),
        4
    );

    // A connection that never answers in time: timeouts, then the same clear failure.
    let mut st = state(100);
    st.faults.push(Fault {
        on: On::Page(0),
        kind: FaultKind::Hang(Duration::from_secs(4)),
        times: u32::MAX,
    });
    let fake = FakeBigQuery::start_rest(st).await;
    let t0 = Instant::now();
    let e = bq_error(read_impatiently(&fake, 50).await.unwrap_err());
    assert!(e.to_string().contains("failed after 4 attempt(s)"), "{e}");
    assert!(
        e.to_string().contains("timed out") || e.to_string().contains("timeout"),
        "{e}"
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn permanent_errors_fail_at_once_with_bigquerys_message() {
    let cases = [
        (
            On::Insert,
            FaultKind::Status(
                403,
                "accessDenied",
                "Access Denied: Project test-proj: User does not have bigquery.jobs.create permission in project test-proj.",
            ),
            "Access Denied: Project test-proj: User does not have bigquery.jobs.create permission",
        ),
        (
            On::Insert,
            FaultKind::Status(
                403,
                "quotaExceeded",
                "Quota exceeded: Your project exceeded quota for free query bytes scanned.",
            ),
            "Quota exceeded",
        ),
        (
            On::Page(0),
            FaultKind::Status(400, "invalidQuery", "Unrecognized name: monto at [1:40]"),
            "Unrecognized name: monto",
        ),
        (
            On::Page(0),
            FaultKind::Status(
                404,
                "notFound",
                "Not found: Table test-proj:ds.t was not found in location US",
            ),
            "Not found: Table",
        ),
    ];
    for (on, kind, want) in cases {
        let mut st = state(10);
        st.faults.push(Fault {
            on,
            kind: kind.clone(),
            times: u32::MAX,
        });
        let fake = FakeBigQuery::start_rest(st).await;
        let e = bq_error(read(&fake, 5).await.unwrap_err());
        let text = e.to_string();
        assert!(
            text.contains(want) && text.contains("after 1 attempt(s)"),
            "{kind:?}: {text}"
        );
    }
    // A job that fails (bad SQL): BigQuery's message, no retries.
    let mut st = state(10);
    st.job_error = Some((
        "invalidQuery".into(),
        "Syntax error: Unexpected keyword FROM at [1:8]".into(),
    ));
    let fake = FakeBigQuery::start_rest(st).await;
    let e = bq_error(read(&fake, 5).await.unwrap_err());
    assert!(matches!(e, BigQueryError::Job { .. }));
    assert!(
        e.to_string().ends_with(
            "failed: Syntax error: Unexpected keyword FROM at [1:8] (reason invalidQuery)"
        ),
        "{e}"
    );
    assert_eq!(fake.with(|s| s.inserts.len()), 1);
}

#[tokio::test]
async fn a_job_that_fails_for_a_backend_error_is_run_again_as_a_new_job() {
    let backend_error = || {
        Some((
            "backendError".to_string(),
            "Error encountered during execution. Retrying may solve the problem.".to_string(),
        ))
    };
    let mut st = state(1_000);
    st.job_error = backend_error();
    st.job_error_limit = Some(2);
    let fake = FakeBigQuery::start_rest(st).await;
    let batches = read(&fake, 400).await.expect("read");
    assert_eq!(ids(&batches), (0..1_000).collect::<Vec<i64>>());
    // Three jobs, each with its own id: a failed job is never resumed, only replaced.
    let job_ids: std::collections::HashSet<String> = fake.with(|s| {
        s.inserts
            .iter()
            .map(|b| b["jobReference"]["jobId"].as_str().unwrap().to_string())
            .collect()
    });
    assert_eq!(job_ids.len(), 3);

    // A job that keeps failing: the budget runs out, with BigQuery's message.
    let mut st = state(10);
    st.job_error = backend_error();
    let fake = FakeBigQuery::start_rest(st).await;
    let e = bq_error(read(&fake, 5).await.unwrap_err());
    assert!(
        matches!(
            e,
            BigQueryError::Job {
                transient: true,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().ends_with(
            "Retrying may solve the problem. (reason backendError); gave up after 4 job(s)"
        ),
        "{e}"
    );
    assert_eq!(fake.with(|s| s.inserts.len()), 4);
}

#[tokio::test]
async fn a_job_that_completes_late_is_waited_for() {
    let mut st = state(1_000);
    st.polls_before_complete = 3;
    let fake = FakeBigQuery::start_rest(st).await;
    let batches = read(&fake, 400).await.expect("read");
    assert_eq!(total_rows(&batches), 1_000);
    // Three polls saw jobComplete=false, then the first page came with the completion.
    assert_eq!(fake.with(|s| s.results_calls.len()), 3 + 3);
}

#[tokio::test]
async fn a_short_result_is_never_accepted() {
    // totalRows promises more rows than the pages hold.
    let mut st = state(1_000);
    st.report_total = Some(1_200);
    let fake = FakeBigQuery::start_rest(st).await;
    let e = bq_error(read(&fake, 300).await.unwrap_err());
    assert!(
        matches!(
            e,
            BigQueryError::RowCount {
                read: 1_000,
                total: 1_200,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("read 1000 rows but the job reported totalRows = 1200")
    );

    // The page tokens stop early (a truncated result, W-07): also refused.
    let mut st = state(1_000);
    st.last_page = Some(1);
    let fake = FakeBigQuery::start_rest(st).await;
    let e = bq_error(read(&fake, 300).await.unwrap_err());
    assert!(
        matches!(
            e,
            BigQueryError::RowCount {
                read: 600,
                total: 1_000,
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn slow_pages_are_prefetched_at_most_two_ahead() {
    let mut st = state(3_000);
    st.page_delay = Duration::from_millis(20);
    let fake = FakeBigQuery::start_rest(st).await;
    let (_, mut stream) = source(100)
        .open(&ctx(&fake, Some(window())))
        .await
        .expect("open");
    let mut consumed = 0usize;
    let mut rows = 0usize;
    let mut max_ahead = 0usize;
    while let Some(b) = stream.next().await {
        rows += b.expect("batch").num_rows();
        consumed += 1;
        // A slow consumer: the reader must wait instead of reading the whole result.
        tokio::time::sleep(Duration::from_millis(60)).await;
        let served = fake.with(|s| s.pages_served.len());
        max_ahead = max_ahead.max(served - consumed);
    }
    assert_eq!((consumed, rows), (30, 3_000));
    assert!(
        max_ahead <= 2,
        "read {max_ahead} pages ahead of the consumer"
    );
    assert!(
        max_ahead >= 1,
        "no page was fetched while the consumer worked"
    );
}

#[tokio::test]
async fn dropping_the_stream_stops_the_reader() {
    let fake = FakeBigQuery::start_rest(state(10_000)).await;
    let (_, mut stream) = source(100)
        .open(&ctx(&fake, Some(window())))
        .await
        .expect("open");
    stream.next().await.expect("a batch").expect("ok");
    drop(stream);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let served = fake.with(|s| s.pages_served.len());
    assert!(served <= 3, "{served} pages read after the consumer left");
}

#[tokio::test]
async fn explain_resolves_parameters_and_reports_the_dry_run() {
    let fake = FakeBigQuery::start_rest(state(10)).await;
    let lines = source(100).explain(&ctx(&fake, Some(window()))).await;
    let get = |label: &str| {
        lines
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {label} in {lines:?}"))
    };
    assert!(
        get("read path").starts_with("rest: jobs.insert + jobs.getQueryResults, 100 rows per page")
    );
    assert!(
        get("bigquery sql").contains("WHERE (`ts` IS NULL OR (`ts` >= @lower AND `ts` < @upper))")
    );
    assert_eq!(
        get("bigquery parameters"),
        "@cliente STRING = \"x' OR 1=1; DROP TABLE t --\"\n@lower TIMESTAMP = \"2024-01-01 00:00:00.000000+00:00\"\n@upper TIMESTAMP = \"2030-01-01 00:00:00.000000+00:00\""
    );
    assert_eq!(
        get("dry run"),
        "3.00 GiB processed (3221225472 bytes) (emulator); estimated on-demand query cost $0.0183 at $6.25/TiB"
    );
    assert_eq!(fake.with(|s| s.dry_runs[0]["dryRun"].clone()), json!(true));

    // Nobody listening: explain says it could not reach BigQuery, and still shows the SQL.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let ctx = context(connection(&dead), None);
    let lines = source(100).explain(&ctx).await;
    let dry = lines.iter().find(|(l, _)| l == "dry run").unwrap();
    assert!(dry.1.starts_with("could not reach BigQuery:"), "{dry:?}");
    assert!(
        lines
            .iter()
            .any(|(l, v)| l == "bigquery sql" && v.contains("FROM `test-proj.ds.t`"))
    );
}

#[tokio::test]
async fn the_schema_comes_from_a_dry_run() {
    let fake = FakeBigQuery::start_rest(state(10)).await;
    let schema = source(100)
        .schema(&ctx(&fake, Some(window())))
        .await
        .expect("schema");
    assert_eq!(schema.fields().len(), 16);
    assert_eq!(schema.field(3).data_type(), &DataType::Decimal128(38, 9));
}
