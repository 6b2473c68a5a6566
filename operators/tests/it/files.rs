//! File sources: Parquet, CSV and NDJSON read back from files written in a temporary folder.

use pulso_testkit as common;

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use common::{collect, ctx, rows, total_rows, yaml_source};
use pulso_operators::OperatorError;
use pulso_operators::source::{CsvSpec, NdjsonSpec, ParquetSpec, SourceSpec};
use pulso_operators::transform::{self, TransformOptions, TransformSpec};
use pulso_operators::window::Window;
use pulso_types::{IncType, IncValue};

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write test file");
}

async fn read(
    spec: &SourceSpec,
    dir: &std::path::Path,
    batch_size: usize,
) -> Result<Vec<RecordBatch>, OperatorError> {
    let (schema, stream) = spec.open(&ctx(batch_size, dir)).await?;
    let batches = collect(stream).await?;
    assert!(
        batches.iter().all(|b| b.schema() == schema),
        "batches carry the announced schema"
    );
    assert!(batches.iter().all(|b| b.num_rows() <= batch_size));
    Ok(batches)
}

fn utf8_names(batches_or_schema: &Schema) -> Vec<(String, DataType)> {
    batches_or_schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect()
}

#[tokio::test]
async fn parquet_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("nro_documento", DataType::Utf8, false),
        Field::new("monto_cancelado", DataType::Decimal128(15, 2), false),
        Field::new("n", DataType::Int64, true),
        Field::new(
            "creado_el",
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]));
    let n = 2500;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("F{i}")),
        )),
        Arc::new(
            Decimal128Array::from_iter_values((0..n).map(|i| i as i128 * 101))
                .with_precision_and_scale(15, 2)
                .unwrap(),
        ),
        Arc::new(Int64Array::from_iter(
            (0..n).map(|i| (i % 7 != 0).then_some(i as i64)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values((0..n).map(|i| i as i64 * 1_000_000))
                .with_timezone("UTC"),
        ),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let file = std::fs::File::create(dir.path().join("pagos.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    // A relative path resolves against the pipeline folder (ctx.base_dir).
    let spec = yaml_source("kind: parquet\npath: pagos.parquet\n");
    assert_eq!(spec.describe(), "parquet pagos.parquet");
    let batches = read(&spec, dir.path(), 1000).await.unwrap();
    assert_eq!(batches.len(), 3);
    assert_eq!(total_rows(&batches), n);
    let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    assert_eq!(all.columns(), batch.columns());
    assert_eq!(utf8_names(&all.schema()), utf8_names(&schema));

    let offline = spec.schema(&ctx(10, dir.path())).await.unwrap();
    assert_eq!(utf8_names(&offline), utf8_names(&schema));
}

#[tokio::test]
async fn missing_files_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let specs = [
        SourceSpec::Parquet(ParquetSpec {
            path: "nope.parquet".into(),
        }),
        SourceSpec::Csv(CsvSpec::new("nope.csv")),
        SourceSpec::Ndjson(NdjsonSpec::new("nope.ndjson")),
    ];
    for spec in &specs {
        let err = match spec.open(&ctx(10, dir.path())).await {
            Ok(_) => panic!("opened a missing file"),
            Err(e) => e,
        };
        assert!(err.is_not_found(), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&dir.path().join("nope.").display().to_string()),
            "{text}"
        );
        assert!(text.contains("No such file"), "{text}");
        let err = spec.schema(&ctx(10, dir.path())).await.unwrap_err();
        assert!(err.is_not_found());
    }
}

#[tokio::test]
async fn parquet_garbage_is_a_file_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.parquet", "this is not parquet");
    let spec = yaml_source("kind: parquet\npath: bad.parquet\n");
    let err = read(&spec, dir.path(), 10).await.unwrap_err();
    assert!(
        matches!(
            err,
            OperatorError::File {
                format: "parquet",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("bad.parquet"), "{err}");
}

#[tokio::test]
async fn csv_reads_every_column_as_text() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "pagos.csv",
        "\u{feff}cod_sistema;nro_documento;monto_cancelado;fecha_pago\n\
         001;F1;12.30;2025-06-01\n\
         ;\"F;2\";0100;\n\
         NA;\"F \"\"3\"\"\";1e3;2025-06-03\n",
    );
    let spec = yaml_source("kind: csv\npath: pagos.csv\ndelimiter: \";\"\n");
    let batches = read(&spec, dir.path(), 2).await.unwrap();
    assert_eq!(batches.len(), 2);
    let schema = batches[0].schema();
    assert_eq!(
        utf8_names(&schema),
        [
            "cod_sistema",
            "nro_documento",
            "monto_cancelado",
            "fecha_pago"
        ]
        .iter()
        .map(|n| (n.to_string(), DataType::Utf8))
        .collect::<Vec<_>>(),
        "names from the header (byte-order mark dropped), all text"
    );
    assert_eq!(
        rows(&batches),
        vec![
            vec!["001", "F1", "12.30", "2025-06-01"],
            vec!["NULL", "F;2", "0100", "NULL"],
            vec!["NA", "F \"3\"", "1e3", "2025-06-03"],
        ],
        "no inference: leading zeros and exact decimals survive"
    );
    assert_eq!(spec.schema(&ctx(1, dir.path())).await.unwrap(), schema);

    // A configured NULL text; the empty field is then an empty string.
    let spec = yaml_source("kind: csv\npath: pagos.csv\ndelimiter: \";\"\nnull_text: NA\n");
    let cells = rows(&read(&spec, dir.path(), 10).await.unwrap());
    assert_eq!(cells[1][0], "");
    assert_eq!(cells[2][0], "NULL");
    // Nothing is NULL.
    let spec = yaml_source("kind: csv\npath: pagos.csv\ndelimiter: \";\"\nnull_text: ~\n");
    let cells = rows(&read(&spec, dir.path(), 10).await.unwrap());
    assert!(cells.iter().flatten().all(|c| c != "NULL"), "{cells:?}");

    // Without a header the columns are numbered and the first line is data.
    write(dir.path(), "plain.csv", "a,b\nc,d\n");
    let spec = yaml_source("kind: csv\npath: plain.csv\nheader: false\n");
    let batches = read(&spec, dir.path(), 10).await.unwrap();
    assert_eq!(batches[0].schema().field(1).name(), "column_2");
    assert_eq!(rows(&batches), vec![vec!["a", "b"], vec!["c", "d"]]);
}

#[tokio::test]
async fn csv_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ragged.csv", "a,b\n1,2\n3\n");
    let spec = yaml_source("kind: csv\npath: ragged.csv\n");
    let err = read(&spec, dir.path(), 10).await.unwrap_err().to_string();
    assert!(
        err.contains("ragged.csv") && err.contains("line 3"),
        "{err}"
    );

    write(dir.path(), "dup.csv", "a,b,a\n1,2,3\n");
    let spec = yaml_source("kind: csv\npath: dup.csv\n");
    let err = spec
        .schema(&ctx(10, dir.path()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dup.csv line 1") && err.contains("\"a\" appears more than once"),
        "{err}"
    );

    write(dir.path(), "empty.csv", "");
    let spec = yaml_source("kind: csv\npath: empty.csv\n");
    let err = spec
        .schema(&ctx(10, dir.path()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no columns"), "{err}");

    let spec = yaml_source("kind: csv\npath: dup.csv\ndelimiter: \"→\"\n");
    let err = spec
        .schema(&ctx(10, dir.path()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not one ASCII character"), "{err}");
}

#[tokio::test]
async fn ndjson_reads_scalars_as_exact_text_and_nested_as_json() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "gestiones.ndjson",
        r#"{"uid": "a1", "monto": 12.30, "ok": true, "n": 7, "tags": ["x", "y"]}

{"uid": "a2", "monto": null, "meta": {"canal": "BOT", "peso": 2}, "ok": false}
{"n": 123456789012345678901234567890, "uid": "a3"}
"#,
    );
    let spec = yaml_source("kind: ndjson\npath: gestiones.ndjson\n");
    let batches = read(&spec, dir.path(), 2).await.unwrap();
    let schema = batches[0].schema();
    assert_eq!(
        utf8_names(&schema),
        ["uid", "monto", "ok", "n", "tags", "meta"]
            .iter()
            .map(|n| (n.to_string(), DataType::Utf8))
            .collect::<Vec<_>>(),
        "columns in order of first appearance, all text"
    );
    assert_eq!(
        rows(&batches),
        vec![
            vec!["a1", "12.30", "true", "7", r#"["x","y"]"#, "NULL"],
            vec![
                "a2",
                "NULL",
                "false",
                "NULL",
                "NULL",
                r#"{"canal":"BOT","peso":2}"#
            ],
            vec![
                "a3",
                "NULL",
                "NULL",
                "123456789012345678901234567890",
                "NULL",
                "NULL"
            ],
        ]
    );
    assert_eq!(spec.schema(&ctx(1, dir.path())).await.unwrap(), schema);
}

#[tokio::test]
async fn ndjson_errors_name_file_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.ndjson", "{\"a\": 1}\n{\"a\": 2,}\n");
    let spec = yaml_source("kind: ndjson\npath: bad.ndjson\n");
    let err = read(&spec, dir.path(), 10).await.unwrap_err().to_string();
    assert!(err.contains("bad.ndjson line 2"), "{err}");

    write(dir.path(), "array.ndjson", "[1, 2]\n");
    let spec = yaml_source("kind: ndjson\npath: array.ndjson\n");
    let err = read(&spec, dir.path(), 10).await.unwrap_err().to_string();
    assert!(
        err.contains("array.ndjson line 1") && err.contains("JSON object"),
        "{err}"
    );

    write(
        dir.path(),
        "two.ndjson",
        "{\"a\": 1}\n{\"a\": 2} {\"a\": 3}\n",
    );
    let spec = yaml_source("kind: ndjson\npath: two.ndjson\n");
    let err = read(&spec, dir.path(), 10).await.unwrap_err().to_string();
    assert!(
        err.ends_with("two.ndjson line 2: trailing characters (column 10)"),
        "{err}"
    );
    // The same line met by the reader rather than by the column scan.
    let spec = yaml_source("kind: ndjson\npath: two.ndjson\ninfer_rows: 1\n");
    let err = read(&spec, dir.path(), 10).await.unwrap_err().to_string();
    assert!(
        err.contains("two.ndjson line 2: more than one JSON value"),
        "{err}"
    );

    write(dir.path(), "pretty.ndjson", "{\"a\": 1}\n{\"a\":\n 2}\n");
    let spec = yaml_source("kind: ndjson\npath: pretty.ndjson\ninfer_rows: 1\n");
    let err = read(&spec, dir.path(), 10).await.unwrap_err().to_string();
    assert!(
        err.contains("pretty.ndjson line 2: incomplete JSON value"),
        "{err}"
    );

    // A value of the wrong shape in a later batch: the failing line is found and named.
    let mut text = String::new();
    for i in 0..20 {
        text.push_str(&format!("{{\"a\": \"v{i}\"}}\n"));
    }
    text.push_str("{\"a\": {\"nested\": true}}\n{\"a\": \"w\"}\n");
    write(dir.path(), "shape.ndjson", &text);
    let spec = yaml_source("kind: ndjson\npath: shape.ndjson\ninfer_rows: 5\n");
    let err = read(&spec, dir.path(), 8).await.unwrap_err().to_string();
    assert!(err.contains("shape.ndjson line 21:"), "{err}");

    let mut text = String::new();
    for i in 0..10 {
        text.push_str(&format!("{{\"a\": {i}}}\n"));
    }
    text.push_str("{\"a\": 10, \"late\": \"x\"}\n");
    write(dir.path(), "late.ndjson", &text);
    let spec = yaml_source("kind: ndjson\npath: late.ndjson\ninfer_rows: 5\n");
    let err = read(&spec, dir.path(), 4).await.unwrap_err().to_string();
    assert!(
        err.contains("late.ndjson line 11") && err.contains("late"),
        "{err}"
    );
    // Scanning further finds it.
    let spec = yaml_source("kind: ndjson\npath: late.ndjson\ninfer_rows: 50\n");
    let batches = read(&spec, dir.path(), 4).await.unwrap();
    assert_eq!(total_rows(&batches), 11);
}

#[tokio::test]
async fn source_specs_deserialise_strictly() {
    let err = serde_saphyr::from_str::<SourceSpec>("kind: csv\npath: x.csv\nseparator: \";\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("separator"), "{err}");
    let err = serde_saphyr::from_str::<SourceSpec>("kind: excel\npath: x.xlsx\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("excel"), "{err}");
    let spec = yaml_source("kind: csv\npath: x.csv\n");
    assert_eq!(spec.describe(), "csv x.csv (delimiter ',', header true)");
}

/// Reads `spec` through the transform with an incremental window on `creado_el` (and `derive`),
/// as a table node does, and returns the first error's message.
async fn bad_row_error(
    spec: &SourceSpec,
    dir: &std::path::Path,
    derive: &[(&str, &str)],
    batch_size: usize,
) -> String {
    let ctx = ctx(batch_size, dir);
    let (schema, stream) = spec.open(&ctx).await.expect("open");
    let transform = TransformSpec {
        derive: derive
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        filter: None,
    };
    let window = Window {
        column: "creado_el".into(),
        ty: IncType::Timestamp,
        lower: Some(IncValue::parse(IncType::Timestamp, "2025-01-01T00:00:00Z").unwrap()),
        upper: None,
    };
    let options = TransformOptions {
        batch_size,
        key_columns: vec!["id".into(), "doc".into()],
        rows: spec.locator(&ctx),
    };
    let (_, out) = transform::apply_with(schema, stream, &transform, Some(&window), &options)
        .await
        .expect("plans");
    match collect(out).await {
        Ok(batches) => panic!("read {} rows without an error", total_rows(&batches)),
        Err(e) => e.to_string(),
    }
}

/// A value the transform cannot convert (a timestamp the window cannot read, a failing CAST in
/// `derive`) names the file, the line where its record starts, the column and the row's key
/// — not just Arrow's "Parser error" (issue 14, item 15).
#[tokio::test]
async fn a_bad_value_names_its_file_line_column_and_key() {
    let dir = tempfile::tempdir().unwrap();
    // A quoted field over two lines and a blank line before the bad record, which is in the
    // second batch of two rows and not its first row.
    write(
        dir.path(),
        "pagos.csv",
        "\u{feff}id,doc,nota,creado_el\n\
         A,1,\"dos\nlíneas\",2025-06-01T00:00:00Z\n\
         \n\
         B,2,ñandú,2025-06-01T01:00:00Z\n\
         E,5,z,2025-06-01T01:30:00Z\n\
         C,3,x,2025-13-45T99:00:00Z\n\
         D,4,y,2025-06-01T02:00:00Z\n",
    );
    let path = dir.path().join("pagos.csv").display().to_string();
    let csv = yaml_source("kind: csv\npath: pagos.csv\n");
    let err = bad_row_error(&csv, dir.path(), &[], 2).await;
    assert_eq!(
        err,
        format!(
            "csv file {path} line 7, column creado_el, row key (id=C, doc=3): \
             \"2025-13-45T99:00:00Z\" is not a timestamp (the incremental window compares it \
             as one): Parser error: Error parsing timestamp from '2025-13-45T99:00:00Z': \
             error parsing date"
        )
    );
    // The same file with other delimiters and quotes keeps the same lines.
    write(
        dir.path(),
        "pagos.tsv",
        "id\tdoc\tnota\tcreado_el\n'A'\t1\t'dos\n\nlíneas'\t2025-06-01T00:00:00Z\nB\t2\tx\tjunio\n",
    );
    let tsv = yaml_source("kind: csv\npath: pagos.tsv\ndelimiter: \"\\t\"\nquote: \"'\"\n");
    let err = bad_row_error(&tsv, dir.path(), &[], 8).await;
    assert!(
        err.starts_with(&format!(
            "csv file {} line 5, column creado_el, row key (id=B, doc=2): \"junio\" is not a timestamp",
            dir.path().join("pagos.tsv").display()
        )),
        "{err}"
    );
    // Windows line ends.
    write(
        dir.path(),
        "crlf.csv",
        "id,doc,creado_el\r\nA,1,2025-06-01T00:00:00Z\r\n\r\nB,2,\"2025-06-01\r\nT00\"\r\n",
    );
    let crlf = yaml_source("kind: csv\npath: crlf.csv\n");
    let err = bad_row_error(&crlf, dir.path(), &[], 8).await;
    assert!(
        err.starts_with(&format!(
            "csv file {} line 4, column creado_el, row key (id=B, doc=2): \"2025-06-01\\r\\nT00\" is not a timestamp",
            dir.path().join("crlf.csv").display()
        )),
        "{err}"
    );
    // A CAST in `derive` that fails names the derived column.
    let err = bad_row_error(
        &csv,
        dir.path(),
        &[("monto", "CAST(doc || 'x' AS DECIMAL(10, 2))")],
        2,
    )
    .await;
    assert!(
        err.starts_with(&format!(
            "csv file {path} line 2, column monto, row key (id=A, doc=1): derived as \
             \"CAST(doc || 'x' AS DECIMAL(10, 2))\", which failed:"
        )),
        "{err}"
    );

    // NDJSON: blank lines do not count as records.
    write(
        dir.path(),
        "pagos.ndjson",
        "{\"id\": \"A\", \"doc\": 1, \"creado_el\": \"2025-06-01T00:00:00Z\"}\n\n\n\
         {\"id\": \"B\", \"doc\": 2, \"creado_el\": \"2025-06-01T00:00:00Z\"}\n\
         {\"id\": \"Ñ\", \"doc\": 3, \"creado_el\": \"ayer\"}\n",
    );
    let ndjson = yaml_source("kind: ndjson\npath: pagos.ndjson\n");
    let err = bad_row_error(&ndjson, dir.path(), &[], 2).await;
    assert!(
        err.starts_with(&format!(
            "ndjson file {} line 5, column creado_el, row key (id=Ñ, doc=3): \"ayer\" is not a timestamp",
            dir.path().join("pagos.ndjson").display()
        )),
        "{err}"
    );

    // Parquet has no lines: the row number in the file.
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("doc", DataType::Int64, false),
        Field::new("creado_el", DataType::Utf8, true),
    ]));
    let n = 10;
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("P{i}")),
            )),
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            Arc::new(StringArray::from_iter((0..n).map(|i| match i {
                3 => None,
                7 => Some("0000-00-00 00:00:00".to_string()),
                _ => Some(format!("2025-06-0{}T00:00:00Z", i % 9 + 1)),
            }))),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(dir.path().join("pagos.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let parquet = yaml_source("kind: parquet\npath: pagos.parquet\n");
    let err = bad_row_error(&parquet, dir.path(), &[], 3).await;
    assert!(
        err.starts_with(&format!(
            "parquet file {} row 8, column creado_el, row key (id=P7, doc=7): \"0000-00-00 00:00:00\" is not a timestamp",
            dir.path().join("pagos.parquet").display()
        )),
        "{err}"
    );
}
