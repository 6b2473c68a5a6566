//! BigQuery → PostgreSQL through `pulso-flow run`:
//!
//! - against the BigQuery emulator of `../shared/bqemu` (REST pages and the Storage Read API):
//!   a 50,000-row table with every scalar type round-trips with identical values, then an
//!   incremental run loads exactly the new rows plus the lookback window;
//! - against the in-process fakes of the REST and Storage Read APIs: a read that fails past its
//!   retry budget, or ends short, commits nothing (target and watermark unchanged).
//!
//! The emulator tests need it running (`bash ../shared/bqemu/setup.sh`). Without it they print
//! why they are skipped, unless `BQEMU_REQUIRED=1` (set by `.ci/run`), which makes them fail.

use pulso_testkit as common;

use pulso_testkit::bigquery as bigquery_support;
use pulso_testkit::bqemu;

use std::path::Path;

use bigquery_support::{FakeBigQuery, FakeState, Fault, FaultKind, On, far_timestamps, rest_row};
use bqemu::{emulator, run_cli};
use common::{TestDb, checksum, cli, counts, summary_json, text, watermark, write};
use serde_json::{Value, json};

const ROWS: usize = 50_000;
const NEW_ROWS: usize = 1_000;
/// 2025-01-01T00:00:00Z in seconds.
const BASE_SECONDS: i64 = 1_735_689_600;

/// One source row: every scalar type the emulator stores. BIGNUMERIC and GEOGRAPHY are aside:
/// the emulator cannot create a BIGNUMERIC column and answers GEOGRAPHY as BYTES; the REST fake
/// covers both.
struct Row {
    id: i64,
    s: Option<String>,
    f: Option<f64>,
    n: Option<String>,
    b: Option<bool>,
    d: Option<String>,
    dt: Option<String>,
    ts_micros: i64,
    t: Option<String>,
    bin: Option<Vec<u8>>,
    j: Option<String>,
    /// INTERVAL in BigQuery's canonical text (`Y-M D H:M:S[.F]`), loaded as text.
    iv: Option<String>,
}

fn make_row(i: usize) -> Row {
    let null = i % 11 == 10;
    let opt = |v: String| (!null).then_some(v);
    let ts_micros = (BASE_SECONDS + i as i64) * 1_000_000 + (i as i64 * 7919) % 1_000_000;
    Row {
        id: i as i64,
        s: opt(format!("fila {i}: it's \"q\" ñ")),
        f: (!null).then_some(i as f64 / 4.0 - 100.0),
        n: opt(format!(
            "{}{}.{:09}",
            if i.is_multiple_of(3) { "-" } else { "" },
            i * 1_234_567,
            (i * 987_654_321) % 1_000_000_000
        )),
        b: (!null).then_some(i.is_multiple_of(2)),
        d: opt(format!("2024-{:02}-{:02}", 1 + i % 12, 1 + i % 28)),
        dt: opt(format!(
            "2024-03-10T{:02}:{:02}:{:02}.{:06}",
            i % 24,
            i % 60,
            (i / 60) % 60,
            i % 1_000_000
        )),
        ts_micros,
        t: opt(format!(
            "{:02}:{:02}:{:02}.{:06}",
            i % 24,
            (i / 7) % 60,
            i % 60,
            (i * 13) % 1_000_000
        )),
        bin: (!null).then(|| (i as u32).to_le_bytes().to_vec()),
        j: opt(format!("{{\"i\": {i}, \"tag\": \"x'y\"}}")),
        iv: opt(format!(
            "{}-{} {} {}:{}:{}{}",
            i % 5,
            i % 12,
            i % 40,
            i % 30,
            i % 60,
            (i / 3) % 60,
            if i.is_multiple_of(4) {
                String::new()
            } else {
                format!(".{}", i % 999 + 1)
                    .trim_end_matches('0')
                    .to_string()
            }
        )),
    }
}

fn ts_text(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .expect("timestamp")
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn bq_json(r: &Row) -> Value {
    use base64::Engine as _;
    json!({
        "id": r.id, "s": r.s, "f": r.f, "num": r.n, "b": r.b, "d": r.d, "dt": r.dt,
        "ts": ts_text(r.ts_micros), "t": r.t,
        "bin": r.bin.as_ref().map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        "j": r.j, "iv": r.iv,
    })
}

const PG_COLUMNS: &str = "id bigint PRIMARY KEY, s text, f double precision, num numeric(38,9), b boolean, d date, dt timestamp, ts timestamptz, t time, bin bytea, j jsonb, iv text";

/// The expected table, written straight into PostgreSQL from the same values.
async fn reference(client: &tokio_postgres::Client, rows: &[Row]) {
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS t; CREATE TABLE IF NOT EXISTS t.reference ({PG_COLUMNS})"
        ))
        .await
        .unwrap();
    let col =
        |f: &dyn Fn(&Row) -> Option<String>| rows.iter().map(f).collect::<Vec<Option<String>>>();
    let ids = col(&|r| Some(r.id.to_string()));
    let s = col(&|r| r.s.clone());
    let f = col(&|r| r.f.map(|x| x.to_string()));
    let n = col(&|r| r.n.clone());
    let b = col(&|r| r.b.map(|x| x.to_string()));
    let d = col(&|r| r.d.clone());
    let dt = col(&|r| r.dt.clone());
    let ts = col(&|r| Some(ts_text(r.ts_micros)));
    let t = col(&|r| r.t.clone());
    let bin = col(&|r| {
        r.bin.as_ref().map(|b| {
            format!(
                "\\x{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            )
        })
    });
    let j = col(&|r| r.j.clone());
    let iv = col(&|r| r.iv.clone());
    client
        .execute(
            "INSERT INTO t.reference SELECT id::bigint, s, f::float8, num::numeric, b::boolean, d::date, dt::timestamp, ts::timestamptz, t::time, bin::bytea, j::jsonb, iv \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[]) \
             AS u(id, s, f, num, b, d, dt, ts, t, bin, j, iv)",
            &[&ids, &s, &f, &n, &b, &d, &dt, &ts, &t, &bin, &j, &iv],
        )
        .await
        .unwrap();
}

fn pipeline(dataset: &str, project: &str) -> String {
    let columns = "{ id: bigint, s: text, f: double precision, num: \"numeric(38,9)\", b: boolean, d: date, dt: timestamp, ts: timestamptz, t: time, bin: bytea, j: jsonb, iv: text }";
    format!(
        r#"
connections:
  bq:
    kind: bigquery
    project: {project}
    dataset: {dataset}
    location: US
    endpoint: "${{BQ_REST}}"
    storage_endpoint: "${{BQ_GRPC}}"
    retry: {{ attempts: 3, initial_backoff_ms: 50 }}
defaults: {{ schema: t }}
tables:
  - name: via_rest
    source:
      kind: bigquery
      connection: bq
      query: |
        SELECT id, s, f, num, b, d, dt, ts, t, bin, j, iv
        FROM `{project}.{dataset}.all_types`
        WHERE id >= @min_id
      params: {{ min_id: {{ type: INT64, value: 0 }} }}
      page_size: 2000
    columns: {columns}
    primary_key: [id]
    incremental: {{ column: ts, type: timestamp, lookback: 1h }}
  - name: via_storage
    source:
      kind: bigquery
      connection: bq
      table: all_types
      columns: [id, s, f, num, b, d, dt, ts, t, bin, j, iv]
      filter: "id >= 0"
      read_api: storage
      streams: 3
    columns: {columns}
    primary_key: [id]
    incremental: {{ column: ts, type: timestamp, lookback: 1h }}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn emulator_round_trip_by_both_read_paths_then_an_incremental_run() {
    let Some(emu) = emulator().await else { return };
    let dataset = emu.create_dataset("pf_e2e").await;
    emu.create_table(
        &dataset,
        "all_types",
        &[
            ("id", "INT64"),
            ("s", "STRING"),
            ("f", "FLOAT64"),
            ("num", "NUMERIC"),
            ("b", "BOOL"),
            ("d", "DATE"),
            ("dt", "DATETIME"),
            ("ts", "TIMESTAMP"),
            ("t", "TIME"),
            ("bin", "BYTES"),
            ("j", "JSON"),
            ("iv", "INTERVAL"),
        ],
    )
    .await;
    let rows: Vec<Row> = (0..ROWS).map(make_row).collect();
    emu.insert_rows(&dataset, "all_types", rows.iter().map(bq_json))
        .await;

    let db = TestDb::new("bq_e2e").await;
    let client = db.client().await;
    reference(&client, &rows).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", &pipeline(&dataset, &emu.project));
    let env = vec![
        ("BQ_REST".to_string(), emu.rest.clone()),
        ("BQ_GRPC".to_string(), emu.grpc.clone()),
    ];

    // First run: everything, by both paths, 25 REST pages of 2000 rows.
    let out = run_cli(db.url.clone(), &file, env.clone(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary = summary_json(&out);
    for table in ["via_rest", "via_storage"] {
        assert_eq!(
            counts(&summary, table),
            (ROWS as u64, 0, 0),
            "{table}: {}",
            text(&out)
        );
    }
    let want = checksum(&client, "t.reference").await;
    assert_eq!(want.0, ROWS as i64);
    assert_eq!(
        checksum(&client, "t.via_rest").await,
        want,
        "REST values differ from the source"
    );
    assert_eq!(
        checksum(&client, "t.via_storage").await,
        want,
        "Storage Read values differ from the source"
    );
    for table in ["via_rest", "via_storage"] {
        let wm = watermark(&client, table).await.expect("watermark");
        let wm = chrono::DateTime::parse_from_rfc3339(&wm).expect("RFC 3339 watermark");
        assert_eq!(
            wm.timestamp_micros(),
            rows[ROWS - 1].ts_micros,
            "{table}: watermark = greatest loaded ts"
        );
    }

    // New rows arrive at the source; the next run reads them plus the one-hour lookback.
    let new: Vec<Row> = (ROWS..ROWS + NEW_ROWS).map(make_row).collect();
    emu.insert_rows(&dataset, "all_types", new.iter().map(bq_json))
        .await;
    reference(&client, &new).await;
    let lookback_start = rows[ROWS - 1].ts_micros - 3_600_000_000;
    let in_lookback = rows
        .iter()
        .filter(|r| r.ts_micros >= lookback_start)
        .count() as u64;
    let out = run_cli(db.url.clone(), &file, env.clone(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary = summary_json(&out);
    for table in ["via_rest", "via_storage"] {
        assert_eq!(
            counts(&summary, table),
            (NEW_ROWS as u64, 0, in_lookback),
            "{table}: exactly the new rows plus the lookback window\n{}",
            text(&out)
        );
    }
    let want = checksum(&client, "t.reference").await;
    assert_eq!(want.0, (ROWS + NEW_ROWS) as i64);
    assert_eq!(checksum(&client, "t.via_rest").await, want);
    assert_eq!(checksum(&client, "t.via_storage").await, want);

    // explain reaches the emulator: SQL, parameters, read path, dry run.
    let explain = tokio::task::spawn_blocking({
        let (url, file, env) = (db.url.clone(), file.clone(), env.clone());
        move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            cli(&url, &["explain", &file.display().to_string()], &env)
        }
    })
    .await
    .unwrap();
    let shown = String::from_utf8_lossy(&explain.stdout);
    assert_eq!(explain.status.code(), Some(0), "{}", text(&explain));
    assert!(
        shown.contains("WHERE (`ts` IS NULL OR (`ts` >= @lower AND `ts` < @upper))"),
        "{shown}"
    );
    assert!(shown.contains("@min_id INT64 = \"0\""), "{shown}");
    assert!(shown.contains("@lower TIMESTAMP = "), "{shown}");
    assert!(
        shown.contains("read path: storage: Storage Read API session"),
        "{shown}"
    );
    assert!(
        shown.contains("row restriction: (id >= 0) AND (`ts` IS NULL OR (`ts` >= TIMESTAMP '"),
        "{shown}"
    );
    assert!(
        shown.contains("dry run: ") && shown.contains("processed"),
        "{shown}"
    );
}

/// Issue 9, defect 5: TIMESTAMP microseconds far from 1970 (years 1, 1600, 2500, 9999) survive
/// both read paths into PostgreSQL. (The emulator answers int64 microseconds either way; the
/// REST fake of `operators/tests/it/bigquery_fake.rs` checks that the option is asked for.)
#[tokio::test(flavor = "multi_thread")]
async fn emulator_keeps_timestamp_microseconds_from_year_1_to_9999_on_both_read_paths() {
    let Some(emu) = emulator().await else { return };
    let dataset = emu.create_dataset("pf_far_ts").await;
    emu.create_table(&dataset, "far", &[("id", "INT64"), ("ts", "TIMESTAMP")])
        .await;
    let far = far_timestamps();
    emu.insert_rows(
        &dataset,
        "far",
        far.iter()
            .enumerate()
            .map(|(i, (text, _))| json!({"id": i, "ts": text})),
    )
    .await;
    let project = &emu.project;
    let yaml = format!(
        r#"
connections:
  bq: {{ kind: bigquery, project: {project}, dataset: {dataset}, location: US, endpoint: "${{BQ_REST}}", storage_endpoint: "${{BQ_GRPC}}" }}
defaults: {{ schema: t }}
tables:
  - name: far_rest
    source: {{ kind: bigquery, connection: bq, query: "SELECT id, ts FROM `{project}.{dataset}.far`", page_size: 4 }}
    columns: {{ id: bigint, ts: timestamptz }}
    primary_key: [id]
  - name: far_storage
    source: {{ kind: bigquery, connection: bq, table: far, columns: [id, ts], read_api: storage, streams: 2 }}
    columns: {{ id: bigint, ts: timestamptz }}
    primary_key: [id]
"#
    );
    let db = TestDb::new("bq_far_ts").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", &yaml);
    let env = vec![
        ("BQ_REST".to_string(), emu.rest.clone()),
        ("BQ_GRPC".to_string(), emu.grpc.clone()),
    ];
    let out = run_cli(db.url.clone(), &file, env, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let client = db.client().await;
    let want: Vec<(i64, String)> = far
        .iter()
        .enumerate()
        .map(|(i, (t, _))| (i as i64, t.to_string()))
        .collect();
    for table in ["t.far_rest", "t.far_storage"] {
        let got: Vec<(i64, String)> = client
            .query(
                &format!(
                    "SELECT id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
                       FROM {table} ORDER BY id"
                ),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(got, want, "{table}");
    }
}

/// A run expected to fail: its table's error names the cause, and nothing was committed.
struct FailedRun<'a> {
    db: &'a TestDb,
    file: &'a Path,
    env: &'a [(String, String)],
    /// The target's checksum and the watermark committed before.
    before: (i64, String),
    watermark: Option<String>,
}

impl<'a> FailedRun<'a> {
    /// Records what is committed now, which the failing runs must leave as it is.
    async fn new(db: &'a TestDb, file: &'a Path, env: &'a [(String, String)]) -> Self {
        let client = db.client().await;
        FailedRun {
            db,
            file,
            env,
            before: checksum(&client, "t.fake").await,
            watermark: watermark(&client, "fake").await,
        }
    }

    async fn assert(&self, cause: &str) {
        let out = run_cli(self.db.url.clone(), self.file, self.env.to_vec(), &[]).await;
        assert_ne!(out.status.code(), Some(0), "{}", text(&out));
        let summary = summary_json(&out);
        let node = &summary["nodes"][0];
        assert_eq!(node["status"], "failed", "{summary}");
        let error = node["error"].as_str().unwrap_or_default();
        assert!(error.contains(cause), "{error}");
        let client = self.db.client().await;
        assert_eq!(
            checksum(&client, "t.fake").await,
            self.before,
            "the failed run changed the target"
        );
        assert_eq!(watermark(&client, "fake").await, self.watermark);
    }
}

fn fake_rows(revision: u64) -> Vec<Value> {
    (0..1_000)
        .map(|i: u64| {
            rest_row(vec![
                Some(json!(i.to_string())),
                Some(json!(((BASE_SECONDS as u64 + i) * 1_000_000).to_string())),
                Some(json!(format!("v{revision}-{i}"))),
            ])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_that_fails_past_its_retry_budget_commits_nothing() {
    let fake = FakeBigQuery::start_rest(FakeState {
        fields: json!([{"name": "id", "type": "INTEGER"}, {"name": "ts", "type": "TIMESTAMP"}, {"name": "v", "type": "STRING"}]),
        rows: fake_rows(0),
        ..FakeState::default()
    })
    .await;
    let yaml = r#"
connections:
  bq: { kind: bigquery, project: p, dataset: d, endpoint: "${BQ_REST}", retry: { attempts: 3, initial_backoff_ms: 5 } }
defaults: { schema: t }
tables:
  - name: fake
    source: { kind: bigquery, connection: bq, query: "SELECT id, ts, v FROM `p.d.t`", page_size: 100 }
    columns: { id: bigint, ts: timestamptz, v: text }
    primary_key: [id]
    incremental: { column: ts, type: timestamp, lookback: 1d }
"#;
    let db = TestDb::new("bq_fault").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", yaml);
    let env = vec![("BQ_REST".to_string(), fake.url.clone())];
    let out = run_cli(db.url.clone(), &file, env.clone(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counts(&summary_json(&out), "fake"), (1_000, 0, 0));

    // Every row changes at the source, but page 4 keeps failing: nothing may be committed.
    fake.with(|s| {
        s.rows = fake_rows(1);
        s.faults.push(Fault {
            on: On::Page(4),
            kind: FaultKind::Status(503, "backendError", "The service is currently unavailable."),
            times: u32::MAX,
        });
    });
    let failed = FailedRun::new(&db, &file, &env).await;
    failed
        .assert("failed after 3 attempt(s): The service is currently unavailable. (HTTP 503")
        .await;

    // A short result (totalRows larger than the rows served) is refused the same way.
    fake.with(|s| {
        s.faults.clear();
        s.report_total = Some(1_001);
    });
    failed
        .assert("read 1000 rows but the job reported totalRows = 1001")
        .await;

    // Once BigQuery answers fully again, the changes load.
    fake.with(|s| s.report_total = None);
    let out = run_cli(db.url.clone(), &file, env, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counts(&summary_json(&out), "fake"), (0, 1_000, 0));
}

/// The fake table of the Storage Read test: id, ts, v (revision `revision` of every row).
fn fake_table(revision: u64) -> arrow::record_batch::RecordBatch {
    use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
    use std::sync::Arc;
    let ids: Vec<i64> = (0..1_000).collect();
    let ts = TimestampMicrosecondArray::from(
        ids.iter()
            .map(|i| (BASE_SECONDS + i) * 1_000_000)
            .collect::<Vec<_>>(),
    )
    .with_timezone("UTC");
    let v = StringArray::from(
        ids.iter()
            .map(|i| format!("v{revision}-{i}"))
            .collect::<Vec<_>>(),
    );
    arrow::record_batch::RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
        ("ts", Arc::new(ts) as ArrayRef),
        ("v", Arc::new(v) as ArrayRef),
    ])
    .expect("fake table")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_storage_read_that_fails_or_ends_short_commits_nothing() {
    use bigquery_support::storage::{
        FakeStorageRead, StorageFault, StorageFaultKind, StorageOn, StorageState,
    };
    let rest = FakeBigQuery::start_rest(FakeState {
        fields: json!([{"name": "id", "type": "INTEGER"}, {"name": "ts", "type": "TIMESTAMP"}, {"name": "v", "type": "STRING"}]),
        ..FakeState::default()
    })
    .await;
    let storage = FakeStorageRead::start_grpc(StorageState {
        table: Some(fake_table(0)),
        rows_per_response: 100,
        report_progress: true,
        ..StorageState::default()
    })
    .await;
    let yaml = r#"
connections:
  bq: { kind: bigquery, project: p, dataset: d, endpoint: "${BQ_REST}", storage_endpoint: "${BQ_GRPC}", retry: { attempts: 3, initial_backoff_ms: 5 } }
defaults: { schema: t }
tables:
  - name: fake
    source: { kind: bigquery, connection: bq, table: t, columns: [id, ts, v], read_api: storage, streams: 2 }
    columns: { id: bigint, ts: timestamptz, v: text }
    primary_key: [id]
"#;
    let db = TestDb::new("bq_storage_fault").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", yaml);
    let env = vec![
        ("BQ_REST".to_string(), rest.url.clone()),
        ("BQ_GRPC".to_string(), storage.url.clone()),
    ];
    // A stream broken once in the middle is resumed; every row arrives once.
    storage.with(|s| {
        s.faults.push(StorageFault {
            on: StorageOn::Stream(1),
            kind: StorageFaultKind::StatusAfter(250, tonic::Code::Unavailable, "stream reset"),
            times: 1,
        })
    });
    let out = run_cli(db.url.clone(), &file, env.clone(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counts(&summary_json(&out), "fake"), (1_000, 0, 0));
    assert_eq!(storage.with(|s| s.rows_sent), 1_000);

    // Every row changes, but stream 0 keeps failing after 300 rows: nothing may be committed.
    storage.with(|s| {
        s.table = Some(fake_table(1));
        s.faults = vec![
            StorageFault {
                on: StorageOn::Stream(0),
                kind: StorageFaultKind::StatusAfter(300, tonic::Code::Unavailable, "stream reset"),
                times: 1,
            },
            StorageFault {
                on: StorageOn::Stream(0),
                kind: StorageFaultKind::Status(
                    tonic::Code::Unavailable,
                    "The service is currently unavailable.",
                ),
                times: u32::MAX,
            },
        ];
    });
    let failed = FailedRun::new(&db, &file, &env).await;
    failed
        .assert("at row 300) failed after 3 attempt(s): The service is currently unavailable.")
        .await;

    // A stream that ends cleanly short of its rows (by the server's own progress; the whole
    // table is read, so there is no row restriction and the progress is exact) is refused.
    storage.with(|s| {
        s.faults = vec![
            StorageFault {
                on: StorageOn::Stream(1),
                kind: StorageFaultKind::EndAfter(200),
                times: 1,
            },
            StorageFault {
                on: StorageOn::Stream(1),
                kind: StorageFaultKind::EndAfter(0),
                times: u32::MAX,
            },
        ];
    });
    failed
        .assert("ended after 200 rows with 40.000% of it processed")
        .await;

    // Once the server answers fully again, the changes load.
    storage.with(|s| s.faults.clear());
    let out = run_cli(db.url.clone(), &file, env, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counts(&summary_json(&out), "fake"), (0, 1_000, 0));
}

/// A watermark set past the window's upper bound (`watermarks set --force`) cannot come from a
/// load, and makes every run read nothing new: `run` still succeeds, but says so in its log, its
/// summary and the ledger.
#[tokio::test(flavor = "multi_thread")]
async fn run_warns_when_the_stored_watermark_is_ahead_of_the_window() {
    let fake = FakeBigQuery::start_rest(FakeState {
        fields: json!([{"name": "id", "type": "INTEGER"}, {"name": "ts", "type": "TIMESTAMP"}, {"name": "v", "type": "STRING"}]),
        rows: fake_rows(0),
        ..FakeState::default()
    })
    .await;
    let yaml = r#"
connections:
  bq: { kind: bigquery, project: p, dataset: d, endpoint: "${BQ_REST}" }
defaults: { schema: t }
tables:
  - name: fake
    source: { kind: bigquery, connection: bq, query: "SELECT id, ts, v FROM `p.d.t`", page_size: 500 }
    columns: { id: bigint, ts: timestamptz, v: text }
    primary_key: [id]
    incremental: { column: ts, type: timestamp, lookback: 1d }
"#;
    let db = TestDb::new("bq_ahead").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", yaml);
    let env = vec![("BQ_REST".to_string(), fake.url.clone())];
    let out = run_cli(db.url.clone(), &file, env.clone(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(summary_json(&out)["nodes"][0]["warnings"], json!([]));

    let f = file.display().to_string();
    let set = tokio::task::spawn_blocking({
        let (url, rest) = (db.url.clone(), fake.url.clone());
        move || {
            cli(
                &url,
                &[
                    "watermarks",
                    "set",
                    "fake",
                    "2999-01-01T00:00:00Z",
                    "--force",
                    "--file",
                    &f,
                ],
                &[("BQ_REST", &rest)],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(set.status.code(), Some(0), "{}", text(&set));

    let out = run_cli(db.url.clone(), &file, env, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary = summary_json(&out);
    let warnings = summary["nodes"][0]["warnings"].to_string();
    assert!(
        warnings.contains(
            "stored watermark 2999-01-01T00:00:00.000000Z is not before this run's upper bound"
        ),
        "{summary}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not before this run's upper bound"),
        "the warning is logged: {}",
        text(&out)
    );
    let ledger: Value = db
        .client()
        .await
        .query_one(
            "SELECT details FROM pulso_flow.node_runs WHERE run_id = $1 AND node = 'fake'",
            &[&summary["run_id"].as_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        ledger["warnings"]
            .to_string()
            .contains("not before this run's upper bound"),
        "{ledger}"
    );
}

/// Issue 14 item 5 on the BigQuery path: rows whose incremental column is NULL are in every
/// window (the REST query and the Storage Read row restriction say `ts IS NULL OR (…)`), so a new
/// one is loaded by an incremental run and counted, and an old one is re-read but not re-merged.
#[tokio::test(flavor = "multi_thread")]
async fn emulator_loads_null_incremental_rows_on_incremental_runs_by_both_read_paths() {
    let Some(emu) = emulator().await else { return };
    let dataset = emu.create_dataset("pf_null_inc").await;
    emu.create_table(&dataset, "nulls", &[("id", "INT64"), ("ts", "TIMESTAMP")])
        .await;
    emu.insert_rows(
        &dataset,
        "nulls",
        [
            json!({"id": 1, "ts": "2025-06-01T10:00:00Z"}),
            json!({"id": 2, "ts": null}),
        ]
        .into_iter(),
    )
    .await;
    let project = &emu.project;
    let yaml = format!(
        r#"
connections:
  bq: {{ kind: bigquery, project: {project}, dataset: {dataset}, location: US, endpoint: "${{BQ_REST}}", storage_endpoint: "${{BQ_GRPC}}" }}
defaults: {{ schema: t }}
tables:
  - name: n_rest
    source: {{ kind: bigquery, connection: bq, query: "SELECT id, ts FROM `{project}.{dataset}.nulls`" }}
    columns: {{ id: bigint, ts: timestamptz }}
    primary_key: [id]
    incremental: {{ column: ts, type: timestamp }}
  - name: n_storage
    source: {{ kind: bigquery, connection: bq, table: nulls, columns: [id, ts], read_api: storage, streams: 2 }}
    columns: {{ id: bigint, ts: timestamptz }}
    primary_key: [id]
    incremental: {{ column: ts, type: timestamp }}
"#
    );
    let db = TestDb::new("bq_null_inc").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", &yaml);
    let env = vec![
        ("BQ_REST".to_string(), emu.rest.clone()),
        ("BQ_GRPC".to_string(), emu.grpc.clone()),
    ];
    let out = run_cli(db.url.clone(), &file, env.clone(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary = summary_json(&out);
    for table in ["n_rest", "n_storage"] {
        assert_eq!(counts(&summary, table), (2, 0, 0), "{table}: {summary}");
    }
    emu.insert_rows(
        &dataset,
        "nulls",
        [
            json!({"id": 3, "ts": null}),
            json!({"id": 4, "ts": "2025-06-01T11:00:00Z"}),
        ]
        .into_iter(),
    )
    .await;
    let out = run_cli(db.url.clone(), &file, env, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary = summary_json(&out);
    let client = db.client().await;
    for table in ["n_rest", "n_storage"] {
        // Window [10:00, now) or NULL: 1 (at the watermark), 2, 3, 4; 3 and 4 are new.
        assert_eq!(counts(&summary, table), (2, 0, 2), "{table}: {summary}");
        let node = summary["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == table)
            .unwrap();
        assert_eq!(node["null_incremental"], 2, "{node}");
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM t.{table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 4, "{table}");
        assert_eq!(
            watermark(&client, table).await.as_deref(),
            Some("2025-06-01T11:00:00.000000Z")
        );
    }
}
