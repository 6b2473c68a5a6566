mod common;
use arrow::datatypes::*;
use common::*;
use futures::StreamExt;
use pulso_operators::transform::{self, TransformSpec};
use pulso_operators::window::{IncType, IncValue, Window};
use std::sync::Arc;

#[tokio::test]
async fn show() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("nro_documento", DataType::Utf8, false),
        Field::new("monto", DataType::Utf8, true),
        Field::new(
            "creado_el",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]));
    for yaml in [
        "derive:\n  x: \"no_such_column + 1\"\n",
        "derive:\n  x: \"CAST(monto AS\"\n",
        "derive:\n  y: \"nro_documento\"\n  x: \"creado_el - 'abc'\"\n",
        "filter: \"monto >\"\n",
        "filter: \"nro_documento\"\n",
        "filter: \"nope = 1\"\n",
        "derive:\n  x: \"unknown_fn(monto)\"\n",
    ] {
        let t: TransformSpec = serde_saphyr::from_str(yaml).unwrap();
        let e = transform::explain(schema.clone(), &t, None)
            .await
            .unwrap_err();
        println!("{yaml:?} => {e}");
    }
    let t: TransformSpec = serde_saphyr::from_str(
        "derive:\n  fecha: \"CAST(creado_el AS DATE)\"\nfilter: \"monto IS NOT NULL\"\n",
    )
    .unwrap();
    let w = Window {
        column: "creado_el".into(),
        ty: IncType::Timestamp,
        lower: Some(IncValue::parse(IncType::Timestamp, "2025-06-01T00:00:00Z").unwrap()),
        upper: None,
    };
    println!(
        "{}",
        transform::explain(schema.clone(), &t, Some(&w))
            .await
            .unwrap()
    );
    let e = serde_saphyr::from_str::<pulso_operators::source::SourceSpec>(
        "kind: generate\nrows: 10\ncolumns:\n  a: { decimal: [1.00, 2.50] }\n",
    )
    .unwrap_err();
    println!("{e}");
    let e = serde_saphyr::from_str::<pulso_operators::source::SourceSpec>(
        "kind: generate\nrows: 10\ncolumns:\n  a: { int: [5, 1] }\n",
    )
    .unwrap_err();
    println!("{e}");
    let e = serde_saphyr::from_str::<pulso_operators::source::SourceSpec>(
        "kind: csv\npath: x.csv\nseparator: x\n",
    )
    .unwrap_err();
    println!("{e}");

    let spec = yaml_source(
        r#"
kind: generate
rows: 1000000
seed: 42
columns:
  cod_cuenta:    { from_id: "{}", offset: 5000000000, div: 2 }
  nro_documento: { from_id: "F{}", offset: 100000000000 }
  archivo:       { choice: ["TRAN_DEUDA_0106", "TRAN_DEUDA_0206", "TRAN_DEUDA_0306"] }
  fecha_vencimiento: { date: ["2024-01-01", "2025-12-31"] }
  monto_exigible: { decimal: ["1.00", "99999.99"] }
  creado_el:     { incremental: { start: "2025-06-01T05:00:00Z", step: "1s", type: timestamp } }
  motivo_rechazo: { choice: ["X", "Y"], null_share: 0.99 }
"#,
    );
    let t0 = std::time::Instant::now();
    let (_, mut s) = spec
        .open(&ctx(100_000, &std::env::temp_dir()))
        .await
        .unwrap();
    let mut n = 0;
    while let Some(b) = s.next().await {
        n += b.unwrap().num_rows();
    }
    println!("generated {n} rows in {:?} (debug build)", t0.elapsed());
    println!("{:?}", rows(&read_all(&spec, 3).await[..1]));
}
