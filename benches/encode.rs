//! Arrow → PostgreSQL binary COPY encoding throughput on one core (target: ≥ 2M rows/s).
//!
//! A trandeuda-shaped batch (3 key texts, 2 dates, a numeric(15,2) amount, a UTC timestamp and
//! a 1%-filled text) is built in memory once; each iteration encodes it into a reused buffer.
//! Criterion reports rows/s (`Throughput::Elements`).
//!
//! `cargo bench --bench encode` (add `-- --quick` for a fast estimate).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pulso_sinks::encode::CopyEncoder;
use pulso_sinks::pgtype::{PgColumn, PgType};

/// Rows per batch: the order of a BigQuery Storage Read batch after a transform.
const ROWS: usize = 100_000;

/// 2025-06-27 as days since 1970.
const FECHA_PROCESO: i32 = 20_266;

fn trandeuda_batch(rows: usize) -> RecordBatch {
    let ids = 0..rows;
    let utf8 = |values: Vec<Option<String>>| -> ArrayRef { Arc::new(StringArray::from(values)) };
    let columns: Vec<ArrayRef> = vec![
        utf8(
            ids.clone()
                .map(|i| Some(format!("{}", 5_000_000_000 + i)))
                .collect(),
        ),
        utf8(
            ids.clone()
                .map(|i| Some(format!("F{}", 100_000_000_000 + i)))
                .collect(),
        ),
        utf8(
            ids.clone()
                .map(|i| Some(format!("TRANDEUDA_{}.csv", i / 10_000)))
                .collect(),
        ),
        Arc::new(Date32Array::from_iter_values(
            ids.clone().map(|i| FECHA_PROCESO + (i % 120) as i32),
        )),
        Arc::new(
            Decimal128Array::from_iter_values(
                ids.clone().map(|i| (i as i128 * 7_919) % 10_000_000_000),
            )
            .with_precision_and_scale(15, 2)
            .expect("valid decimal type"),
        ),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                ids.clone()
                    .map(|i| 1_751_025_600_000_000 + i as i64 * 1_000),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(Date32Array::from_iter_values(
            ids.clone().map(|_| FECHA_PROCESO),
        )),
        utf8(
            ids.map(|i| (i % 100 == 0).then(|| format!("cuenta bloqueada {i}")))
                .collect(),
        ),
    ];
    let fields = vec![
        Field::new("cod_cuenta", DataType::Utf8, false),
        Field::new("nro_documento", DataType::Utf8, false),
        Field::new("archivo", DataType::Utf8, false),
        Field::new("fecha_vencimiento", DataType::Date32, true),
        Field::new("monto_exigible", DataType::Decimal128(15, 2), true),
        Field::new(
            "creado_el",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("fecha_proceso", DataType::Date32, false),
        Field::new("motivo_rechazo", DataType::Utf8, true),
    ];
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("valid batch")
}

fn trandeuda_encoder() -> CopyEncoder {
    let col = |name: &str, ty: &str, nullable| {
        PgColumn::new(name, PgType::parse(ty).expect("known type"), nullable)
    };
    let columns = vec![
        col("cod_cuenta", "text", false),
        col("nro_documento", "text", false),
        col("archivo", "text", false),
        col("fecha_vencimiento", "date", true),
        col("monto_exigible", "numeric(15,2)", true),
        col("creado_el", "timestamptz", true),
        col("fecha_proceso", "date", false),
        col("motivo_rechazo", "text", true),
    ];
    let keys = ["cod_cuenta", "nro_documento", "archivo", "fecha_proceso"]
        .map(String::from)
        .to_vec();
    CopyEncoder::new("trandeuda", columns, keys, chrono_tz::America::Lima).expect("valid encoder")
}

fn encode(c: &mut Criterion) {
    let batch = trandeuda_batch(ROWS);
    let mut encoder = trandeuda_encoder();
    let mut out = BytesMut::new();
    let mut group = c.benchmark_group("encode");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("trandeuda_8_columns", |b| {
        b.iter(|| {
            out.clear();
            let rows = encoder
                .encode_batch(black_box(&batch), &mut out)
                .expect("encodes");
            black_box((rows, out.len()))
        })
    });
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
