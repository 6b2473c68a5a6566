//! File sources: Parquet, CSV and NDJSON read back from files written in a temporary folder.

mod common;

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use common::{collect, ctx, rows, total_rows, yaml_source};
use pulso_operators::OperatorError;
use pulso_operators::source::{CsvSpec, NdjsonSpec, ParquetSpec, SourceSpec};

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
