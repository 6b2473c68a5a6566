//! The DataFusion transform: derive, filter, window, errors, streaming and the fast path.

use pulso_testkit as common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::{
    ArrayRef, Date32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    TimestampNanosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use common::{collect, column, ctx, total_rows, yaml_source};
use futures::StreamExt;
use pulso_operators::error::ExprTarget;
use pulso_operators::source::SourceSpec;
use pulso_operators::transform::{self, TransformOptions, TransformSpec};
use pulso_operators::window::Window;
use pulso_operators::{BatchStream, OperatorError};
use pulso_types::{IncType, IncValue};

fn spec(yaml: &str) -> TransformSpec {
    serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("bad transform YAML: {e}"))
}

fn stream_of(batches: Vec<RecordBatch>) -> BatchStream {
    futures::stream::iter(batches.into_iter().map(Ok)).boxed()
}

fn window(column: &str, ty: IncType, lower: Option<&str>, upper: Option<&str>) -> Window {
    Window {
        column: column.to_string(),
        ty,
        lower: lower.map(|v| IncValue::parse(ty, v).unwrap()),
        upper: upper.map(|v| IncValue::parse(ty, v).unwrap()),
    }
}

async fn run(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    spec: &TransformSpec,
    window: Option<&Window>,
) -> Result<(SchemaRef, Vec<RecordBatch>), OperatorError> {
    let (schema, stream) = transform::apply(schema, stream_of(batches), spec, window).await?;
    Ok((schema, collect(stream).await?))
}

/// A small pagos-like batch: text amounts as read from CSV, a UTC instant and a rejection reason.
fn pagos() -> (SchemaRef, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("nro_documento", DataType::Utf8, false),
        Field::new("monto", DataType::Utf8, true),
        Field::new(
            "creado_el",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("motivo_rechazo", DataType::Utf8, true),
    ]));
    let ts = |s: &str| IncValue::parse(IncType::Timestamp, s).unwrap();
    let micros = |s: &str| match ts(s) {
        IncValue::Timestamp(t) => t.timestamp_micros(),
        _ => unreachable!(),
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["F1", "F2", "F3", "F4", "F5"])),
        Arc::new(StringArray::from(vec![
            Some("10.50"),
            Some("0"),
            Some("7.25"),
            None,
            Some("3"),
        ])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![
                Some(micros("2025-06-01T04:59:59Z")), // 2025-05-31 in Lima
                Some(micros("2025-06-01T05:00:00Z")),
                Some(micros("2025-06-02T12:00:00Z")),
                Some(micros("2025-06-03T00:00:00Z")),
                None,
            ])
            .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from(vec![
            None,
            None,
            Some(""),
            Some("DUP"),
            None,
        ])),
    ];
    (
        schema.clone(),
        RecordBatch::try_new(schema, columns).unwrap(),
    )
}

#[tokio::test]
async fn derive_replaces_in_place_appends_new_and_filters() {
    let (schema, batch) = pagos();
    let t = spec(
        r#"
derive:
  monto: "CAST(monto AS DECIMAL(15, 2))"
  fecha_lima: "CAST(creado_el AT TIME ZONE 'America/Lima' AS DATE)"
  fecha_utc: "CAST(creado_el AS DATE)"
filter: "monto > 0 AND (motivo_rechazo IS NULL OR motivo_rechazo = '')"
"#,
    );
    let (out_schema, out) = run(schema, vec![batch], &t, None).await.unwrap();
    let fields: Vec<(String, DataType)> = out_schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("nro_documento".to_string(), DataType::Utf8),
            ("monto".to_string(), DataType::Decimal128(15, 2)),
            (
                "creado_el".to_string(),
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            ),
            ("motivo_rechazo".to_string(), DataType::Utf8),
            ("fecha_lima".to_string(), DataType::Date32),
            ("fecha_utc".to_string(), DataType::Date32),
        ]
    );
    assert_eq!(column(&out, "nro_documento"), vec!["F1", "F3", "F5"]);
    assert_eq!(column(&out, "monto"), vec!["10.50", "7.25", "3.00"]);
    // Business dates in Lima differ from UTC dates for instants before 05:00 UTC.
    assert_eq!(
        column(&out, "fecha_lima"),
        vec!["2025-05-31", "2025-06-02", "NULL"]
    );
    assert_eq!(
        column(&out, "fecha_utc"),
        vec!["2025-06-01", "2025-06-02", "NULL"]
    );
}

#[tokio::test]
async fn identifiers_are_case_sensitive_as_written() {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "FECHA_APERTURA",
        DataType::Utf8,
        true,
    )]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(vec!["2025-01-02"])) as ArrayRef],
    )
    .unwrap();
    let t = spec(
        "derive:\n  fecha_apertura: \"CAST(FECHA_APERTURA AS DATE)\"\n  \
         tag: \"UPPER(COALESCE(FECHA_APERTURA, 'x')) || '.TXT'\"\n",
    );
    let (out_schema, out) = run(schema.clone(), vec![batch.clone()], &t, None)
        .await
        .unwrap();
    assert_eq!(out_schema.field(1).name(), "fecha_apertura");
    assert_eq!(column(&out, "fecha_apertura"), vec!["2025-01-02"]);
    // Function names are still case-insensitive.
    assert_eq!(column(&out, "tag"), vec!["2025-01-02.TXT"]);
    // The lower-case spelling of an upper-case column does not exist.
    let err = run(
        schema,
        vec![batch],
        &spec("filter: \"fecha_apertura IS NULL\"\n"),
        None,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("No field named fecha_apertura"), "{err}");
}

#[tokio::test]
async fn window_on_a_utc_timestamp_is_half_open() {
    let (schema, batch) = pagos();
    let w = window(
        "creado_el",
        IncType::Timestamp,
        Some("2025-06-01T00:00:00-05:00"),
        Some("2025-06-03T00:00:00Z"),
    );
    let (_, out) = run(
        schema.clone(),
        vec![batch.clone()],
        &TransformSpec::default(),
        Some(&w),
    )
    .await
    .unwrap();
    assert_eq!(
        column(&out, "nro_documento"),
        vec!["F2", "F3", "F5"],
        "lower inclusive, upper exclusive; a NULL incremental value is in every window (F5)"
    );

    // Only a lower bound.
    let w = window(
        "creado_el",
        IncType::Timestamp,
        Some("2025-06-02T00:00:00Z"),
        None,
    );
    let (_, out) = run(schema, vec![batch], &TransformSpec::default(), Some(&w))
        .await
        .unwrap();
    assert_eq!(column(&out, "nro_documento"), vec!["F3", "F4", "F5"]);
}

#[tokio::test]
async fn window_on_other_zones_units_dates_and_text() {
    // A Lima-zoned nanosecond column compares as the same instant.
    let lima = Arc::new(Schema::new(vec![Field::new(
        "ts",
        DataType::Timestamp(TimeUnit::Nanosecond, Some("America/Lima".into())),
        true,
    )]));
    let nanos = [0i64, 3_600_000_000_000, 7_200_000_000_000];
    let batch = RecordBatch::try_new(
        lima.clone(),
        vec![
            Arc::new(TimestampNanosecondArray::from(nanos.to_vec()).with_timezone("America/Lima"))
                as ArrayRef,
        ],
    )
    .unwrap();
    let w = window(
        "ts",
        IncType::Timestamp,
        Some("1969-12-31T19:00:00-05:00"),
        Some("1970-01-01T02:00:00Z"),
    );
    let (_, out) = run(lima, vec![batch], &TransformSpec::default(), Some(&w))
        .await
        .unwrap();
    assert_eq!(total_rows(&out), 2);

    // Zone-less (wall-clock) column with a datetime window.
    let naive = Arc::new(Schema::new(vec![Field::new(
        "date",
        DataType::Timestamp(TimeUnit::Microsecond, None),
        true,
    )]));
    let batch = RecordBatch::try_new(
        naive.clone(),
        vec![Arc::new(TimestampMicrosecondArray::from(vec![
            0i64,
            86_400_000_000,
            172_800_000_000,
        ])) as ArrayRef],
    )
    .unwrap();
    let w = window("date", IncType::Datetime, Some("1970-01-02T00:00:00"), None);
    let (_, out) = run(
        naive.clone(),
        vec![batch.clone()],
        &TransformSpec::default(),
        Some(&w),
    )
    .await
    .unwrap();
    assert_eq!(total_rows(&out), 2);
    // ...and with a date window (its calendar date).
    let w = window("date", IncType::Date, None, Some("1970-01-03"));
    let (_, out) = run(
        naive.clone(),
        vec![batch.clone()],
        &TransformSpec::default(),
        Some(&w),
    )
    .await
    .unwrap();
    assert_eq!(total_rows(&out), 2);

    // Date32 column with a date window.
    let dates = Arc::new(Schema::new(vec![Field::new(
        "fecha_apertura",
        DataType::Date32,
        true,
    )]));
    let batch = RecordBatch::try_new(
        dates.clone(),
        vec![Arc::new(Date32Array::from(vec![
            Some(20_000),
            Some(20_001),
            None,
            Some(20_002),
        ])) as ArrayRef],
    )
    .unwrap();
    let w = Window {
        column: "fecha_apertura".into(),
        ty: IncType::Date,
        lower: Some(IncValue::Date(
            chrono::NaiveDate::from_ymd_opt(2024, 10, 5).unwrap(),
        )), // day 20001
        upper: None,
    };
    let (_, out) = run(dates, vec![batch], &TransformSpec::default(), Some(&w))
        .await
        .unwrap();
    // The NULL date is in the window too (never silently dropped: docs/pipeline.md).
    assert_eq!(
        column(&out, "fecha_apertura"),
        vec!["2024-10-05", "NULL", "2024-10-06"]
    );
}

#[tokio::test]
async fn window_on_a_text_column_from_csv() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("asignaciones.csv"),
        "cuenta,creado_el\n1,2025-06-01T04:00:00Z\n2,2025-06-01 00:30:00-05:00\n3,2025-06-02T00:00:00Z\n4,\n",
    )
    .unwrap();
    let source = yaml_source("kind: csv\npath: asignaciones.csv\n");
    let (schema, stream) = source.open(&ctx(2, dir.path())).await.unwrap();
    let w = window(
        "creado_el",
        IncType::Timestamp,
        Some("2025-06-01T05:00:00Z"),
        Some("2025-06-02T00:00:00Z"),
    );
    let (out_schema, out) = transform::apply(schema, stream, &TransformSpec::default(), Some(&w))
        .await
        .unwrap();
    let out = collect(out).await.unwrap();
    assert_eq!(
        out_schema.field(1).data_type(),
        &DataType::Utf8,
        "the column itself stays text"
    );
    // Row 4 has no creado_el: a NULL incremental value is in every window.
    assert_eq!(column(&out, "cuenta"), vec!["2", "4"]);

    // A text value that is not a timestamp fails loudly (never silently dropped).
    std::fs::write(
        dir.path().join("bad.csv"),
        "cuenta,creado_el\n1,yesterday\n",
    )
    .unwrap();
    let source = yaml_source("kind: csv\npath: bad.csv\n");
    let (schema, stream) = source.open(&ctx(2, dir.path())).await.unwrap();
    let (_, out) = transform::apply(schema, stream, &TransformSpec::default(), Some(&w))
        .await
        .unwrap();
    let err = collect(out).await.unwrap_err().to_string();
    assert!(err.contains("yesterday"), "{err}");
}

#[tokio::test]
async fn window_refuses_to_guess_a_time_zone() {
    let (schema, batch) = pagos();
    let w = window(
        "creado_el",
        IncType::Datetime,
        Some("2025-06-01T00:00:00"),
        None,
    );
    let err = run(
        schema.clone(),
        vec![batch.clone()],
        &TransformSpec::default(),
        Some(&w),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, OperatorError::Window { .. }), "{err:?}");
    assert!(
        text.contains("declare the window type as timestamp"),
        "{text}"
    );

    let w = window(
        "missing",
        IncType::Timestamp,
        Some("2025-06-01T00:00:00Z"),
        None,
    );
    let err = run(
        schema.clone(),
        vec![batch.clone()],
        &TransformSpec::default(),
        Some(&w),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("window on column \"missing\": no such column"),
        "{err}"
    );

    // A bound of the wrong type.
    let w = Window {
        column: "creado_el".into(),
        ty: IncType::Timestamp,
        lower: Some(IncValue::parse(IncType::Date, "2025-06-01").unwrap()),
        upper: None,
    };
    let err = run(schema, vec![batch], &TransformSpec::default(), Some(&w))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is a date but the window is of type timestamp"),
        "{err}"
    );
}

#[tokio::test]
async fn window_values_are_typed_literals_not_sql() {
    // Injection attempts never become a value...
    for text in [
        "2025-06-01' OR '1'='1",
        "2025-06-01T00:00:00Z; DROP TABLE x",
        "now()",
    ] {
        assert!(IncValue::parse(IncType::Timestamp, text).is_err(), "{text}");
    }
    // ...and odd column names are identifiers, not SQL.
    let name = "creado el'\"; --";
    let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Date32, true)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Date32Array::from(vec![1, 2, 3])) as ArrayRef],
    )
    .unwrap();
    let w = window(name, IncType::Date, Some("1970-01-03"), None);
    let (_, out) = run(
        schema.clone(),
        vec![batch],
        &TransformSpec::default(),
        Some(&w),
    )
    .await
    .unwrap();
    assert_eq!(column(&out, name), vec!["1970-01-03", "1970-01-04"]);
    let plan = transform::explain(schema, &TransformSpec::default(), Some(&w))
        .await
        .unwrap();
    assert!(plan.contains("1970-01-03"), "{plan}");
}

#[tokio::test]
async fn bad_expressions_name_the_column_or_the_filter() {
    let (schema, batch) = pagos();
    let cases: Vec<(&str, ExprTarget, &str)> = vec![
        (
            "derive:\n  x: \"no_such_column + 1\"\n",
            ExprTarget::Derive("x".into()),
            "no_such_column",
        ),
        (
            "derive:\n  x: \"CAST(monto AS\"\n",
            ExprTarget::Derive("x".into()),
            "",
        ),
        (
            "derive:\n  y: \"nro_documento\"\n  x: \"creado_el - 'abc'\"\n",
            ExprTarget::Derive("x".into()),
            "",
        ),
        ("filter: \"monto >\"\n", ExprTarget::Filter, ""),
        ("filter: \"nro_documento\"\n", ExprTarget::Filter, ""),
        ("filter: \"nope = 1\"\n", ExprTarget::Filter, "nope"),
    ];
    for (yaml, target, mentions) in cases {
        let err = run(schema.clone(), vec![batch.clone()], &spec(yaml), None)
            .await
            .unwrap_err();
        match &err {
            OperatorError::Expression { target: t, message } => {
                assert_eq!(t, &target, "{yaml}: {err}");
                assert!(message.contains(mentions), "{yaml}: {message}");
            }
            other => panic!("{yaml}: expected an expression error, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.starts_with("bad expression for "), "{text}");
        // explain reports the same error without data.
        assert!(
            transform::explain(schema.clone(), &spec(yaml), None)
                .await
                .is_err()
        );
    }
    let err = run(
        schema,
        vec![batch],
        &spec("derive:\n  x: \"no_such_column + 1\"\n"),
        None,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("bad expression for derived column \"x\":"),
        "{err}"
    );
}

#[tokio::test]
async fn transform_spec_yaml_is_strict() {
    let err = serde_saphyr::from_str::<TransformSpec>("where: \"x > 1\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("where"), "{err}");
    let t = spec("derive:\n  b: \"a + 1\"\n  a: \"a * 2\"\n");
    assert_eq!(t.derive.keys().collect::<Vec<_>>(), vec!["b", "a"]);
    assert!(t.filter.is_none());
    assert!(TransformSpec::default().is_empty());
}

#[tokio::test]
async fn empty_spec_without_window_passes_batches_through() {
    let (schema, batch) = pagos();
    let (out_schema, stream) = transform::apply(
        schema.clone(),
        stream_of(vec![batch.clone(), batch.clone()]),
        &TransformSpec::default(),
        None,
    )
    .await
    .unwrap();
    assert!(Arc::ptr_eq(&out_schema, &schema));
    let out = collect(stream).await.unwrap();
    assert_eq!(out.len(), 2);
    for b in &out {
        for (a, c) in b.columns().iter().zip(batch.columns()) {
            assert!(Arc::ptr_eq(a, c), "pass-through must not copy");
        }
    }
    assert_eq!(
        transform::explain(schema, &TransformSpec::default(), None)
            .await
            .unwrap(),
        "pass-through (no derive, filter or window)"
    );
}

#[tokio::test]
async fn source_errors_come_out_unchanged() {
    let (schema, batch) = pagos();
    let failing: BatchStream = futures::stream::iter(vec![
        Ok(batch),
        Err(OperatorError::File {
            format: "csv",
            path: "/data/pagos.csv".into(),
            lines: Some((7, 7)),
            message: "incorrect number of fields".into(),
        }),
    ])
    .boxed();
    let (_, stream) = transform::apply(
        schema,
        failing,
        &spec("filter: \"monto IS NOT NULL\"\n"),
        None,
    )
    .await
    .unwrap();
    let items: Vec<_> = stream.collect().await;
    let err = items
        .into_iter()
        .find_map(Result::err)
        .expect("the error comes through");
    assert!(
        matches!(
            &err,
            OperatorError::File {
                lines: Some((7, 7)),
                ..
            }
        ),
        "the original typed error, not a DataFusion wrapper: {err:?}"
    );
    assert_eq!(
        err.to_string(),
        "csv file /data/pagos.csv line 7: incorrect number of fields"
    );
}

#[tokio::test]
async fn large_input_streams_with_bounded_memory() {
    let source = yaml_source(
        r#"
kind: generate
rows: 2000000
seed: 1
columns:
  cod_cuenta:     { from_id: "{}" }
  monto_exigible: { decimal: ["-100.00", "99999.99"] }
  motivo_rechazo: { choice: ["", "X"], null_share: 0.5 }
  creado_el:      { incremental: { start: "2025-06-01T00:00:00Z", step: "1s", type: timestamp } }
"#,
    );
    let batch_size = 8192;
    let total_batches = 2_000_000usize.div_ceil(batch_size);
    let (schema, input) = source
        .open(&ctx(batch_size, &std::env::temp_dir()))
        .await
        .unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let input = input
        .inspect(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .boxed();
    let t = spec(
        r#"
derive:
  fecha_proceso: "CAST(creado_el AS DATE)"
filter: "monto_exigible > 0 AND (motivo_rechazo IS NULL OR motivo_rechazo = '')"
"#,
    );
    let w = window(
        "creado_el",
        IncType::Timestamp,
        Some("2025-06-02T00:00:00Z"),
        None,
    );
    let (_, mut out) = transform::apply_with(
        schema,
        input,
        &t,
        Some(&w),
        &TransformOptions {
            batch_size,
            ..TransformOptions::default()
        },
    )
    .await
    .unwrap();

    let first = out.next().await.expect("a first batch").unwrap();
    let pulled_at_first = pulled.load(Ordering::SeqCst);
    assert!(first.num_rows() > 0 && first.num_rows() <= batch_size);
    assert!(
        pulled_at_first < 40,
        "first output after {pulled_at_first} of {total_batches} input batches: the transform must stream"
    );

    let (mut rows_out, mut batches_out, mut max_batch) =
        (first.num_rows(), 1usize, first.num_rows());
    while let Some(batch) = out.next().await {
        let batch = batch.unwrap();
        rows_out += batch.num_rows();
        batches_out += 1;
        max_batch = max_batch.max(batch.num_rows());
    }
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        total_batches,
        "every input batch was read"
    );
    assert!(
        max_batch <= batch_size,
        "DataFusion does not coalesce beyond the batch size"
    );
    assert!(batches_out > 50, "{batches_out} output batches");
    // ~1.91M rows after the window (first 86400 s excluded), ~100/100100 negative amounts,
    // ~3/4 with a null or empty rejection reason.
    assert!(
        (1_300_000..1_560_000).contains(&rows_out),
        "{rows_out} rows"
    );
}

#[tokio::test]
async fn explain_shows_logical_and_physical_plans() {
    let (schema, _) = pagos();
    let t = spec("derive:\n  fecha: \"CAST(creado_el AS DATE)\"\nfilter: \"monto IS NOT NULL\"\n");
    let w = window(
        "creado_el",
        IncType::Timestamp,
        Some("2025-06-01T00:00:00Z"),
        Some("2025-06-08T00:00:00Z"),
    );
    let text = transform::explain(schema.clone(), &t, Some(&w))
        .await
        .unwrap();
    assert!(text.starts_with("logical plan:\n"), "{text}");
    assert!(text.contains("physical plan:\n"), "{text}");
    assert!(text.contains("Filter"), "{text}");
    assert!(text.contains("Projection"), "{text}");
    assert!(text.contains("StreamingTableExec"), "{text}");
    assert!(!text.contains("RepartitionExec"), "one partition: {text}");

    let out = transform::output_schema(schema, &t, Some(&w))
        .await
        .unwrap();
    assert_eq!(out.field(4).name(), "fecha");
    assert_eq!(out.field(4).data_type(), &DataType::Date32);
}

#[tokio::test]
async fn window_works_on_generated_revisions() {
    // The watermark of revision 1 (max creado_el) is below every row changed at revision 2.
    let make = |revision: u64| -> SourceSpec {
        yaml_source(&format!(
            r#"
kind: generate
rows: 5000
seed: 3
revision: {revision}
change_share: 0.02
grow: 100
columns:
  id:        {{ from_id: "{{}}" }}
  creado_el: {{ incremental: {{ start: "2025-06-01T00:00:00Z", step: "1s", type: timestamp }} }}
"#
        ))
    };
    let (schema, stream) = make(1)
        .open(&ctx(1000, &std::env::temp_dir()))
        .await
        .unwrap();
    let batches = collect(stream).await.unwrap();
    let mut watermark = None;
    for b in &batches {
        let m = pulso_operators::window::max_value(
            b.column_by_name("creado_el").unwrap(),
            IncType::Timestamp,
        )
        .unwrap();
        watermark = watermark.max(m);
    }
    let watermark = watermark.unwrap();
    let (_, stream) = make(2)
        .open(&ctx(1000, &std::env::temp_dir()))
        .await
        .unwrap();
    let w = Window {
        column: "creado_el".into(),
        ty: IncType::Timestamp,
        // Strictly above the old watermark: exactly the rows changed or born at revision 2.
        lower: Some(watermark.minus(chrono::Duration::microseconds(-1))),
        upper: None,
    };
    let (_, out) = transform::apply(schema, stream, &TransformSpec::default(), Some(&w))
        .await
        .unwrap();
    let out = collect(out).await.unwrap();
    let source = match make(2) {
        SourceSpec::Generate(g) => g,
        _ => unreachable!(),
    };
    let (changed, new) = pulso_operators::source::changed_rows(&source, 2);
    assert!(changed > 0);
    assert_eq!(total_rows(&out) as u64, changed + new);
}
