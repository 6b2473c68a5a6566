//! Arrow → binary COPY → PostgreSQL → `::text`, against a real PostgreSQL.
//!
//! PostgreSQL at `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`). Each
//! test works in its own schema `enc_<pid>_<n>_<nanos>`, dropped when the test ends (even when
//! it fails). Sessions run with `TimeZone = UTC` so `timestamptz::text` is predictable; the
//! encoder's zone is America/Lima (UTC−5, no DST since 1994).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Date64Array, Decimal64Array, Decimal128Array,
    Decimal256Array, DictionaryArray, FixedSizeBinaryArray, Float32Array, Float64Array, Int8Array,
    Int16Array, Int32Array, Int64Array, LargeBinaryArray, LargeStringArray, ListArray, NullArray,
    StringArray, StringViewArray, StructArray, Time32SecondArray, Time64MicrosecondArray,
    Time64NanosecondArray, TimestampMicrosecondArray, TimestampNanosecondArray,
    TimestampSecondArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, i256};
use arrow::record_batch::RecordBatch;
use bytes::BytesMut;
use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use futures::SinkExt;
use pulso_sinks::encode::{CopyEncoder, EncodeError};
use pulso_sinks::pgtype::{PgColumn, PgType};
use pulso_testkit::TestSchema;

const LIMA: Tz = chrono_tz::America::Lima;

// ---------------------------------------------------------------------------------------------
// Test database

/// A private schema (the test kit's) and a counter for table names.
struct TestDb {
    kit: TestSchema,
    tables: AtomicUsize,
}

async fn test_db() -> TestDb {
    TestDb {
        kit: TestSchema::new("enc").await,
        tables: AtomicUsize::new(0),
    }
}

impl std::ops::Deref for TestDb {
    type Target = TestSchema;
    fn deref(&self) -> &TestSchema {
        &self.kit
    }
}

impl TestDb {
    fn new_table(&self) -> String {
        format!("t{}", self.tables.fetch_add(1, Ordering::Relaxed))
    }

    async fn create_table(&self, table: &str, columns: &[PgColumn], keys: &[&str]) {
        let mut defs: Vec<String> = columns
            .iter()
            .map(|c| {
                let null = if c.nullable { "" } else { " NOT NULL" };
                format!("{} {}{null}", c.name, c.ty.sql())
            })
            .collect();
        if !keys.is_empty() {
            defs.push(format!("PRIMARY KEY ({})", keys.join(", ")));
        }
        let ddl = format!("CREATE TABLE {}.{table} ({})", self.name, defs.join(", "));
        self.client.batch_execute(&ddl).await.unwrap();
    }

    /// Encode `batches` as one COPY (header, rows, trailer) and send it.
    async fn copy(
        &self,
        table: &str,
        columns: &[PgColumn],
        keys: &[&str],
        batches: &[RecordBatch],
    ) -> Result<usize, EncodeError> {
        let keys = keys.iter().map(|k| k.to_string()).collect();
        let mut encoder = CopyEncoder::new(table, columns.to_vec(), keys, LIMA)?;
        let mut out = BytesMut::new();
        CopyEncoder::write_header(&mut out);
        let mut rows = 0;
        for batch in batches {
            rows += encoder.encode_batch(batch, &mut out)?;
        }
        CopyEncoder::write_trailer(&mut out);
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let statement = format!(
            "COPY {}.{table} ({}) FROM STDIN (FORMAT binary)",
            self.name,
            names.join(", ")
        );
        let sink = self.client.copy_in(&statement).await.unwrap();
        let mut sink = Box::pin(sink);
        sink.send(out.freeze()).await.unwrap();
        let copied = sink.as_mut().finish().await.unwrap();
        assert_eq!(copied as usize, rows);
        Ok(rows)
    }

    async fn texts(&self, table: &str, column: &str, order_by: &str) -> Vec<Option<String>> {
        let query = format!(
            "SELECT {column}::text FROM {}.{table} ORDER BY {order_by}",
            self.name
        );
        let rows = self.client.query(&query, &[]).await.unwrap();
        rows.iter().map(|r| r.get::<_, Option<String>>(0)).collect()
    }

    /// Load `values` into column `v` of type `ty` of a fresh table keyed by `id` (the row
    /// number) and read them back as text.
    async fn roundtrip(&self, ty: &str, values: ArrayRef) -> Vec<Option<String>> {
        let table = self.new_table();
        let columns = vec![
            PgColumn::new("id", PgType::Int4, false),
            PgColumn::new("v", PgType::parse(ty).unwrap(), true),
        ];
        self.create_table(&table, &columns, &["id"]).await;
        let batch = batch(vec![("id", row_ids(values.len())), ("v", values)]);
        self.copy(&table, &columns, &["id"], &[batch])
            .await
            .unwrap_or_else(|e| panic!("{ty}: {e}"));
        self.texts(&table, "v", "id").await
    }

    /// Assert that `values` read back from a `ty` column as `want`.
    async fn check(&self, ty: &str, values: ArrayRef, want: &[Option<&str>]) {
        let got = self.roundtrip(ty, values).await;
        let want: Vec<Option<String>> = want.iter().map(|w| w.map(str::to_string)).collect();
        assert_eq!(got, want, "column type {ty}");
    }

    async fn query_text(&self, sql: &str) -> String {
        self.client.query_one(sql, &[]).await.unwrap().get(0)
    }
}

// ---------------------------------------------------------------------------------------------
// Arrow helpers

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

fn row_ids(n: usize) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(0..n as i32))
}

fn arc<A: arrow::array::Array + 'static>(a: A) -> ArrayRef {
    Arc::new(a)
}

fn utf8(values: &[Option<&str>]) -> ArrayRef {
    arc(StringArray::from(values.to_vec()))
}

fn days(date: &str) -> i32 {
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    d.signed_duration_since(epoch).num_days() as i32
}

fn wall(ts: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

fn micros(ts: &str) -> i64 {
    wall(ts).and_utc().timestamp_micros()
}

fn seconds(ts: &str) -> i64 {
    wall(ts).and_utc().timestamp()
}

fn dec128(values: &[Option<i128>], precision: u8, scale: i8) -> ArrayRef {
    arc(Decimal128Array::from(values.to_vec())
        .with_precision_and_scale(precision, scale)
        .unwrap())
}

fn expect_value_error(result: Result<usize, EncodeError>) -> (String, String, String, String) {
    match result {
        Err(EncodeError::Value {
            table,
            column,
            key,
            reason,
        }) => (table, column, key, reason),
        other => panic!("expected a value error, got {other:?}"),
    }
}

/// Encode (no database) one batch for a table `t` with key `id` and return the result.
fn encode_only(
    columns: Vec<PgColumn>,
    keys: &[&str],
    batch: &RecordBatch,
) -> Result<usize, EncodeError> {
    let keys = keys.iter().map(|k| k.to_string()).collect();
    let mut encoder = CopyEncoder::new("t", columns, keys, LIMA)?;
    let mut out = BytesMut::new();
    let result = encoder.encode_batch(batch, &mut out);
    if result.is_err() {
        assert!(out.is_empty(), "a failed batch leaves the buffer as it was");
    }
    result
}

/// The reason of the value error from loading `values` into a `ty` column keyed by `id`.
fn value_error(ty: &str, values: ArrayRef) -> String {
    let columns = vec![
        PgColumn::new("id", PgType::Int4, false),
        PgColumn::new("v", PgType::parse(ty).unwrap(), true),
    ];
    let b = batch(vec![("id", row_ids(values.len())), ("v", values)]);
    let (table, column, _, reason) = expect_value_error(encode_only(columns, &["id"], &b));
    assert_eq!((table.as_str(), column.as_str()), ("t", "v"));
    reason
}

// ---------------------------------------------------------------------------------------------
// Round trips, one PostgreSQL type at a time

#[tokio::test]
async fn boolean() {
    let db = test_db().await;
    db.check(
        "boolean",
        arc(BooleanArray::from(vec![Some(true), Some(false), None])),
        &[Some("true"), Some("false"), None],
    )
    .await;
    db.check(
        "bool",
        utf8(&[
            Some("t"),
            Some("no"),
            Some(" 1 "),
            Some("OFF"),
            Some("Yes"),
            None,
        ]),
        &[
            Some("true"),
            Some("false"),
            Some("true"),
            Some("false"),
            Some("true"),
            None,
        ],
    )
    .await;
}

#[tokio::test]
async fn integers() {
    let db = test_db().await;
    db.check(
        "smallint",
        arc(Int16Array::from(vec![
            Some(i16::MIN),
            Some(i16::MAX),
            Some(0),
            None,
        ])),
        &[Some("-32768"), Some("32767"), Some("0"), None],
    )
    .await;
    db.check(
        "int2",
        arc(Int64Array::from(vec![Some(-32768), Some(32767), None])),
        &[Some("-32768"), Some("32767"), None],
    )
    .await;
    db.check(
        "integer",
        arc(Int32Array::from(vec![
            Some(i32::MIN),
            Some(i32::MAX),
            Some(-1),
            None,
        ])),
        &[Some("-2147483648"), Some("2147483647"), Some("-1"), None],
    )
    .await;
    db.check(
        "int",
        arc(Int8Array::from(vec![Some(i8::MIN), Some(i8::MAX), None])),
        &[Some("-128"), Some("127"), None],
    )
    .await;
    db.check(
        "bigint",
        arc(Int64Array::from(vec![
            Some(i64::MIN),
            Some(i64::MAX),
            Some(0),
            None,
        ])),
        &[
            Some("-9223372036854775808"),
            Some("9223372036854775807"),
            Some("0"),
            None,
        ],
    )
    .await;
    db.check(
        "int8",
        arc(UInt32Array::from(vec![Some(u32::MAX), None])),
        &[Some("4294967295"), None],
    )
    .await;
    db.check(
        "int8",
        arc(UInt64Array::from(vec![
            Some(i64::MAX as u64),
            Some(0),
            None,
        ])),
        &[Some("9223372036854775807"), Some("0"), None],
    )
    .await;
    db.check(
        "int4",
        utf8(&[
            Some(" 12 "),
            Some("-5"),
            Some("+7"),
            Some("-2147483648"),
            None,
        ]),
        &[Some("12"), Some("-5"), Some("7"), Some("-2147483648"), None],
    )
    .await;
    db.check(
        "bigint",
        arc(LargeStringArray::from(vec![
            Some("9223372036854775807"),
            None,
        ])),
        &[Some("9223372036854775807"), None],
    )
    .await;
    db.check(
        "integer",
        dec128(&[Some(1200), Some(-500), Some(0), None], 10, 2),
        &[Some("12"), Some("-5"), Some("0"), None],
    )
    .await;
}

#[tokio::test]
async fn floats() {
    let db = test_db().await;
    db.check(
        "real",
        arc(Float32Array::from(vec![
            Some(f32::INFINITY),
            Some(f32::NEG_INFINITY),
            Some(f32::NAN),
            Some(-0.0),
            Some(1.5),
            Some(f32::MAX),
            Some(f32::MIN_POSITIVE),
            None,
        ])),
        &[
            Some("Infinity"),
            Some("-Infinity"),
            Some("NaN"),
            Some("-0"),
            Some("1.5"),
            Some("3.4028235e+38"),
            Some("1.1754944e-38"),
            None,
        ],
    )
    .await;
    db.check(
        "double precision",
        arc(Float64Array::from(vec![
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            Some(f64::NAN),
            Some(-0.0),
            Some(0.1),
            Some(f64::MAX),
            Some(5e-324),
            None,
        ])),
        &[
            Some("Infinity"),
            Some("-Infinity"),
            Some("NaN"),
            Some("-0"),
            Some("0.1"),
            Some("1.7976931348623157e+308"),
            Some("5e-324"),
            None,
        ],
    )
    .await;
    db.check(
        "float8",
        arc(Int64Array::from(vec![Some(123), Some(-4), None])),
        &[Some("123"), Some("-4"), None],
    )
    .await;
    db.check(
        "float4",
        arc(Float64Array::from(vec![Some(0.25), None])),
        &[Some("0.25"), None],
    )
    .await;
    db.check(
        "float8",
        utf8(&[Some("1e3"), Some(" -2.5 "), Some("inf"), Some("NaN"), None]),
        &[
            Some("1000"),
            Some("-2.5"),
            Some("Infinity"),
            Some("NaN"),
            None,
        ],
    )
    .await;
}

#[tokio::test]
async fn numeric_from_decimals() {
    let db = test_db().await;
    // At the limits of numeric(15,2), same scale: no rounding.
    db.check(
        "numeric(15,2)",
        dec128(
            &[
                Some(999_999_999_999_999),
                Some(-999_999_999_999_999),
                Some(0),
                Some(1),
                Some(-1),
                Some(1250),
                Some(100_000_000),
                None,
            ],
            15,
            2,
        ),
        &[
            Some("9999999999999.99"),
            Some("-9999999999999.99"),
            Some("0.00"),
            Some("0.01"),
            Some("-0.01"),
            Some("12.50"),
            Some("1000000.00"),
            None,
        ],
    )
    .await;
    // A smaller target scale takes values whose extra digits are zeros (others are refused,
    // see numeric_takes_only_exact_finite_values).
    db.check(
        "numeric(10,2)",
        dec128(
            &[
                Some(0),
                Some(-10),
                Some(1000),
                Some(-2670),
                Some(9_999_990),
                Some(99_999_999_990),
            ],
            12,
            3,
        ),
        &[
            Some("0.00"),
            Some("-0.01"),
            Some("1.00"),
            Some("-2.67"),
            Some("9999.99"),
            Some("99999999.99"),
        ],
    )
    .await;
    // Unconstrained numeric keeps the input scale; full Decimal128 range.
    let max38 = 10i128.pow(38) - 1;
    db.check(
        "numeric",
        dec128(
            &[
                Some(max38),
                Some(-max38),
                Some(0),
                Some(-12_345_678_901_234_567_890_123_456_789),
            ],
            38,
            10,
        ),
        &[
            Some("9999999999999999999999999999.9999999999"),
            Some("-9999999999999999999999999999.9999999999"),
            Some("0.0000000000"),
            Some("-1234567890123456789.0123456789"),
        ],
    )
    .await;
    // Scaling up to a larger target scale.
    db.check(
        "numeric(20,6)",
        dec128(&[Some(12), Some(-123_456)], 9, 0),
        &[Some("12.000000"), Some("-123456.000000")],
    )
    .await;
    // Negative Arrow scale: 12 × 10^3.
    db.check("numeric", dec128(&[Some(12)], 5, -3), &[Some("12000")])
        .await;
    db.check(
        "numeric(20,4)",
        arc(
            Decimal64Array::from(vec![Some(123_456_789_012_345_678), None])
                .with_precision_and_scale(18, 4)
                .unwrap(),
        ),
        &[Some("12345678901234.5678"), None],
    )
    .await;
    let wide = i256::from_string(
        "-1234567890123456789012345678901234567890123456789012345678901234567890",
    )
    .unwrap();
    db.check(
        "numeric",
        arc(
            Decimal256Array::from(vec![Some(wide), Some(i256::from_i128(-5)), None])
                .with_precision_and_scale(76, 20)
                .unwrap(),
        ),
        &[
            Some("-12345678901234567890123456789012345678901234567890.12345678901234567890"),
            Some("-0.00000000000000000005"),
            None,
        ],
    )
    .await;
}

#[tokio::test]
async fn numeric_from_text_ints_and_floats() {
    let db = test_db().await;
    db.check(
        "numeric(20,5)",
        utf8(&[
            Some("-12.345"),
            Some("1e3"),
            Some(" 0.00001 "),
            Some("0.0000400"),
            Some("-0"),
            Some("4e-5"),
            Some("+.5"),
            None,
        ]),
        &[
            Some("-12.34500"),
            Some("1000.00000"),
            Some("0.00001"),
            Some("0.00004"),
            Some("0.00000"),
            Some("0.00004"),
            Some("0.50000"),
            None,
        ],
    )
    .await;
    let big = "123456789012345678901234567890.123456789012345678901234567890";
    db.check(
        "numeric",
        utf8(&[Some(big), Some("1e-20"), Some("-1.5e2"), Some("0000.0100")]),
        &[
            Some(big),
            Some("0.00000000000000000001"),
            Some("-150"),
            Some("0.0100"),
        ],
    )
    .await;
    // Precision and scale limits.
    let nines = "9".repeat(1000);
    db.check("numeric(1000,0)", utf8(&[Some(&nines)]), &[Some(&nines)])
        .await;
    let tiny = format!("0.{}1", "0".repeat(998));
    let neg_tiny = format!("-{tiny}");
    db.check(
        "numeric(1000,999)",
        utf8(&[Some(&tiny), Some(&neg_tiny)]),
        &[Some(&tiny), Some(&neg_tiny)],
    )
    .await;
    db.check(
        "numeric",
        arc(Int64Array::from(vec![Some(i64::MIN), Some(i64::MAX), None])),
        &[
            Some("-9223372036854775808"),
            Some("9223372036854775807"),
            None,
        ],
    )
    .await;
    db.check(
        "numeric(25,2)",
        arc(UInt64Array::from(vec![Some(u64::MAX)])),
        &[Some("18446744073709551615.00")],
    )
    .await;
    db.check(
        "numeric",
        arc(Float64Array::from(vec![
            Some(0.1),
            Some(-2.5),
            Some(1e20),
            Some(-0.0),
            Some(1.7976931348623157e308),
        ])),
        &[
            Some("0.1"),
            Some("-2.5"),
            Some("100000000000000000000"),
            Some("0"),
            Some(&format!("17976931348623157{}", "0".repeat(292))),
        ],
    )
    .await;
    db.check(
        "numeric(10,2)",
        arc(Float32Array::from(vec![Some(0.1), Some(2.5), None])),
        &[Some("0.10"), Some("2.50"), None],
    )
    .await;
}

/// NUMERIC is exact (README, "Exact values"): a value that is not a finite number or that needs
/// rounding to fit the column's scale is refused with the table, column and key, whatever the
/// Arrow type it comes in; extra fractional zeros are not rounding and load.
#[tokio::test]
async fn numeric_takes_only_exact_finite_values() {
    let refused: Vec<(&str, ArrayRef, &str)> = vec![
        (
            "numeric(5,2)",
            utf8(&[Some("1.00"), Some("NaN")]),
            "value NaN is not a finite number",
        ),
        (
            "numeric",
            utf8(&[Some("nan")]),
            "value nan is not a finite number",
        ),
        (
            "numeric(5,2)",
            utf8(&[Some("Infinity")]),
            "value Infinity is not a finite number",
        ),
        (
            "numeric",
            utf8(&[Some("-inf")]),
            "value -inf is not a finite number",
        ),
        (
            "numeric",
            arc(Float64Array::from(vec![f64::NAN])),
            "value NaN is not a finite number",
        ),
        (
            "numeric(15,2)",
            arc(Float64Array::from(vec![f64::INFINITY])),
            "value inf is not a finite number",
        ),
        (
            "numeric(15,2)",
            arc(Float32Array::from(vec![f32::NEG_INFINITY])),
            "value -inf is not a finite number",
        ),
        (
            "numeric(5,2)",
            utf8(&[Some("1.239")]),
            "value 1.239 has more decimal places than numeric(5,2) keeps (2); values are never rounded",
        ),
        (
            "numeric(5,2)",
            utf8(&[Some("-0.001")]),
            "value -0.001 has more decimal places",
        ),
        (
            "numeric(5)",
            utf8(&[Some("1.5")]),
            "value 1.5 has more decimal places than numeric(5,0) keeps (0)",
        ),
        (
            "numeric(10,2)",
            dec128(&[Some(1005)], 12, 3),
            "value 1.005 has more decimal places",
        ),
        (
            "numeric(10,2)",
            arc(Float64Array::from(vec![0.1 + 0.2])),
            "value 0.30000000000000004 has more decimal places",
        ),
        (
            "numeric(10,2)",
            arc(Float32Array::from(vec![2.675f32])),
            "value 2.675 has more decimal places",
        ),
    ];
    for (ty, values, want) in refused {
        let columns = vec![
            PgColumn::new("id", PgType::Int4, false),
            PgColumn::new("monto", PgType::parse(ty).unwrap(), true),
        ];
        let n = values.len();
        let b = batch(vec![("id", row_ids(n)), ("monto", values)]);
        let err = encode_only(columns, &["id"], &b).unwrap_err().to_string();
        let head = format!("table t, column monto, row key (id={}): ", n - 1);
        assert!(
            err.starts_with(&head) && err.contains(want),
            "{ty}: got {err:?}, want {head}…{want}…"
        );
    }

    // Trailing fractional zeros fit exactly, from text, decimals and floats alike.
    let db = test_db().await;
    db.check(
        "numeric(5,2)",
        utf8(&[
            Some("1.2300"),
            Some("-0.000"),
            Some("12e-1"),
            Some("999.990000"),
        ]),
        &[Some("1.23"), Some("0.00"), Some("1.20"), Some("999.99")],
    )
    .await;
    db.check(
        "numeric(5,2)",
        dec128(&[Some(12_300), Some(-5_000)], 10, 4),
        &[Some("1.23"), Some("-0.50")],
    )
    .await;
    db.check(
        "numeric(5,2)",
        arc(Float64Array::from(vec![0.1, 2.5, 1.23])),
        &[Some("0.10"), Some("2.50"), Some("1.23")],
    )
    .await;
}

#[tokio::test]
async fn text_and_varchar() {
    let db = test_db().await;
    let values = [
        Some(""),
        Some("ñandú 漢字 🎉"),
        Some("plain"),
        Some("tab\tand \"quotes\" and \\"),
        None,
    ];
    db.check("text", utf8(&values), &values).await;
    db.check(
        "text",
        arc(LargeStringArray::from(values.to_vec())),
        &values,
    )
    .await;
    db.check("text", arc(StringViewArray::from(values.to_vec())), &values)
        .await;
    let dict: DictionaryArray<Int32Type> = values.iter().copied().collect();
    db.check("text", arc(dict), &values).await;
    // Five characters in seven bytes fit varchar(5); trailing spaces past the limit are
    // dropped, as PostgreSQL does.
    db.check(
        "varchar(5)",
        utf8(&[Some("ñandú"), Some("abcde   "), Some(""), None]),
        &[Some("ñandú"), Some("abcde"), Some(""), None],
    )
    .await;
    db.check(
        "character varying",
        utf8(&[Some("unbounded")]),
        &[Some("unbounded")],
    )
    .await;
    // Other Arrow types load as their canonical text.
    db.check(
        "text",
        arc(Date32Array::from(vec![Some(days("2025-06-27")), None])),
        &[Some("2025-06-27"), None],
    )
    .await;
    db.check(
        "text",
        arc(Int64Array::from(vec![Some(-42)])),
        &[Some("-42")],
    )
    .await;
    db.check("text", dec128(&[Some(-123)], 5, 2), &[Some("-1.23")])
        .await;
    db.check(
        "text",
        arc(BooleanArray::from(vec![Some(true), Some(false)])),
        &[Some("true"), Some("false")],
    )
    .await;
}

#[tokio::test]
async fn dates() {
    let db = test_db().await;
    db.check(
        "date",
        arc(Date32Array::from(vec![
            Some(0),
            Some(-1),
            Some(days("0001-01-01")),
            Some(days("9999-12-31")),
            Some(days("2000-02-29")),
            Some(days("1900-01-01")),
            None,
        ])),
        &[
            Some("1970-01-01"),
            Some("1969-12-31"),
            Some("0001-01-01"),
            Some("9999-12-31"),
            Some("2000-02-29"),
            Some("1900-01-01"),
            None,
        ],
    )
    .await;
    db.check(
        "date",
        arc(Date64Array::from(vec![
            Some(-1),
            Some(i64::from(days("2038-01-19")) * 86_400_000 + 1),
        ])),
        &[Some("1969-12-31"), Some("2038-01-19")],
    )
    .await;
    db.check(
        "date",
        arc(TimestampMicrosecondArray::from(vec![Some(micros(
            "1969-12-31 23:59:59.999999",
        ))])),
        &[Some("1969-12-31")],
    )
    .await;
    // A zoned timestamp is an instant; its date is the Lima date (03:00Z is 22:00 the day before).
    db.check(
        "date",
        arc(
            TimestampMicrosecondArray::from(vec![Some(micros("2025-06-27 03:00:00"))])
                .with_timezone("UTC"),
        ),
        &[Some("2025-06-26")],
    )
    .await;
    db.check(
        "date",
        utf8(&[Some("2025-06-27"), Some(" 0001-01-01 "), None]),
        &[Some("2025-06-27"), Some("0001-01-01"), None],
    )
    .await;
}

#[tokio::test]
async fn times() {
    let db = test_db().await;
    db.check(
        "time",
        arc(Time64MicrosecondArray::from(vec![
            Some(0),
            Some(86_399_999_999),
            Some(86_400_000_000),
            Some(45_296_789_000),
            None,
        ])),
        &[
            Some("00:00:00"),
            Some("23:59:59.999999"),
            Some("24:00:00"),
            Some("12:34:56.789"),
            None,
        ],
    )
    .await;
    db.check(
        "time without time zone",
        arc(Time32SecondArray::from(vec![Some(3600), None])),
        &[Some("01:00:00"), None],
    )
    .await;
    db.check(
        "time",
        arc(Time64NanosecondArray::from(vec![Some(1_999), Some(999)])),
        &[Some("00:00:00.000001"), Some("00:00:00")],
    )
    .await;
    db.check(
        "time",
        utf8(&[
            Some("12:34:56.789"),
            Some("07:05"),
            Some("23:59:59.9999999"),
            None,
        ]),
        &[
            Some("12:34:56.789"),
            Some("07:05:00"),
            Some("23:59:59.999999"),
            None,
        ],
    )
    .await;
}

#[tokio::test]
async fn timestamps_without_time_zone() {
    let db = test_db().await;
    let texts = [
        "1900-01-01 00:00:00",
        "1969-12-31 23:59:59.999999",
        "1970-01-01 00:00:00",
        "2038-01-19 03:14:08",
        "2200-06-15 12:00:00.5",
        "0001-01-01 00:00:00",
        "9999-12-31 23:59:59.999999",
    ];
    let mut want: Vec<Option<&str>> = texts.iter().map(|t| Some(*t)).collect();
    want.push(None);
    let mut values: Vec<Option<i64>> = texts.iter().map(|t| Some(micros(t))).collect();
    values.push(None);
    db.check(
        "timestamp",
        arc(TimestampMicrosecondArray::from(values)),
        &want,
    )
    .await;
    // Seconds reach year 1 and 9999 too; nanoseconds floor to the microsecond.
    db.check(
        "timestamp without time zone",
        arc(TimestampSecondArray::from(vec![
            Some(seconds("0001-01-01 00:00:00")),
            Some(seconds("9999-12-31 23:59:59")),
        ])),
        &[Some("0001-01-01 00:00:00"), Some("9999-12-31 23:59:59")],
    )
    .await;
    db.check(
        "timestamp",
        arc(TimestampNanosecondArray::from(vec![
            Some(-1),
            Some(micros("1900-01-01 00:00:00") * 1000 + 1_999),
            Some(micros("2200-01-01 00:00:00") * 1000),
        ])),
        &[
            Some("1969-12-31 23:59:59.999999"),
            Some("1900-01-01 00:00:00.000001"),
            Some("2200-01-01 00:00:00"),
        ],
    )
    .await;
    // Instants are shown on the Lima wall clock.
    db.check(
        "timestamp",
        arc(
            TimestampMicrosecondArray::from(vec![Some(micros("2025-06-27 05:00:00"))])
                .with_timezone("UTC"),
        ),
        &[Some("2025-06-27 00:00:00")],
    )
    .await;
    db.check(
        "timestamp",
        utf8(&[
            Some("2025-06-27 10:11:12.123456"),
            Some("2025-06-27T10:11:12Z"),
            Some("2025-06-27"),
            None,
        ]),
        &[
            Some("2025-06-27 10:11:12.123456"),
            Some("2025-06-27 05:11:12"),
            Some("2025-06-27 00:00:00"),
            None,
        ],
    )
    .await;
}

#[tokio::test]
async fn timestamps_with_time_zone() {
    let db = test_db().await;
    let instants = [
        ("1900-01-01 00:00:00", "1900-01-01 00:00:00+00"),
        (
            "1969-12-31 23:59:59.999999",
            "1969-12-31 23:59:59.999999+00",
        ),
        ("2038-01-19 03:14:08", "2038-01-19 03:14:08+00"),
        ("2200-01-01 00:00:00", "2200-01-01 00:00:00+00"),
        ("0001-01-01 00:00:00", "0001-01-01 00:00:00+00"),
        (
            "9999-12-31 23:59:59.999999",
            "9999-12-31 23:59:59.999999+00",
        ),
    ];
    let mut values: Vec<Option<i64>> = instants.iter().map(|(t, _)| Some(micros(t))).collect();
    values.push(None);
    let mut want: Vec<Option<&str>> = instants.iter().map(|(_, w)| Some(*w)).collect();
    want.push(None);
    db.check(
        "timestamptz",
        arc(TimestampMicrosecondArray::from(values).with_timezone("UTC")),
        &want,
    )
    .await;
    // The zone attached to an Arrow timestamp does not change the instant.
    db.check(
        "timestamp with time zone",
        arc(
            TimestampSecondArray::from(vec![Some(seconds("2025-06-27 05:00:00"))])
                .with_timezone("America/Lima"),
        ),
        &[Some("2025-06-27 05:00:00+00")],
    )
    .await;
    // Zone-less timestamps, dates and texts are Lima wall-clock times.
    db.check(
        "timestamptz",
        arc(TimestampMicrosecondArray::from(vec![
            Some(micros("2025-06-27 00:00:00")),
            Some(micros("1969-12-31 19:00:00")),
        ])),
        &[
            Some("2025-06-27 05:00:00+00"),
            Some("1970-01-01 00:00:00+00"),
        ],
    )
    .await;
    db.check(
        "timestamptz",
        arc(Date32Array::from(vec![Some(days("2025-06-27"))])),
        &[Some("2025-06-27 05:00:00+00")],
    )
    .await;
    db.check(
        "timestamptz",
        utf8(&[
            Some("2025-06-27 10:00:00-05:00"),
            Some("2025-06-27T10:00:00Z"),
            Some("2025-06-27 10:00:00"),
            Some("2025-06-27 10:00:00.25+0530"),
            None,
        ]),
        &[
            Some("2025-06-27 15:00:00+00"),
            Some("2025-06-27 10:00:00+00"),
            Some("2025-06-27 15:00:00+00"),
            Some("2025-06-27 04:30:00.25+00"),
            None,
        ],
    )
    .await;
    // Before 1908 Lima kept local mean time; chrono-tz and PostgreSQL's tzdata must agree.
    let old = micros("1900-01-01 00:00:00");
    let got = db
        .roundtrip(
            "timestamptz",
            arc(TimestampMicrosecondArray::from(vec![Some(old)])),
        )
        .await;
    let want = db
        .query_text("SELECT ('1900-01-01 00:00:00'::timestamp AT TIME ZONE 'America/Lima')::text")
        .await;
    assert_eq!(got, vec![Some(want)]);
}

#[tokio::test]
async fn json_and_jsonb() {
    let db = test_db().await;
    let texts = [
        Some(r#"{"a": 1, "b": [true, null]}"#),
        Some(r#""ñandú 漢字 🎉""#),
        Some("[]"),
        Some("null"),
        Some(" 12.50 "),
        Some(r#"{"big": 1e400}"#),
        None,
    ];
    db.check("json", utf8(&texts), &texts).await;
    db.check(
        "jsonb",
        utf8(&texts),
        &[
            Some(r#"{"a": 1, "b": [true, null]}"#),
            Some(r#""ñandú 漢字 🎉""#),
            Some("[]"),
            Some("null"),
            Some("12.50"),
            Some(&format!(r#"{{"big": 1{}}}"#, "0".repeat(400))),
            None,
        ],
    )
    .await;
    // An escaped backslash before "u0000" is not the NUL escape jsonb refuses.
    let escaped = r#"{"a": "\\u0000"}"#;
    db.check("jsonb", utf8(&[Some(escaped)]), &[Some(escaped)])
        .await;
    let structs = StructArray::from(vec![
        (
            Arc::new(Field::new("x", DataType::Int32, true)),
            arc(Int32Array::from(vec![Some(1), None])),
        ),
        (
            Arc::new(Field::new("y", DataType::Utf8, true)),
            utf8(&[Some("ñ"), Some("b")]),
        ),
    ]);
    let structs = arc(structs);
    db.check(
        "json",
        structs.clone(),
        &[Some(r#"{"x":1,"y":"ñ"}"#), Some(r#"{"x":null,"y":"b"}"#)],
    )
    .await;
    db.check(
        "jsonb",
        structs,
        &[
            Some(r#"{"x": 1, "y": "ñ"}"#),
            Some(r#"{"x": null, "y": "b"}"#),
        ],
    )
    .await;
    let lists = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1), Some(2)]),
        Some(vec![]),
        None,
    ]);
    db.check("jsonb", arc(lists), &[Some("[1, 2]"), Some("[]"), None])
        .await;
}

#[tokio::test]
async fn bytea_and_uuid() {
    let db = test_db().await;
    let bytes: Vec<Option<&[u8]>> = vec![Some(b""), Some(&[0, 1, 255]), None];
    db.check(
        "bytea",
        arc(BinaryArray::from(bytes.clone())),
        &[Some("\\x"), Some("\\x0001ff"), None],
    )
    .await;
    db.check(
        "bytea",
        arc(LargeBinaryArray::from(bytes)),
        &[Some("\\x"), Some("\\x0001ff"), None],
    )
    .await;
    let fixed = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
        vec![Some([0xde, 0xad, 0x00]), None].into_iter(),
        3,
    )
    .unwrap();
    db.check("bytea", arc(fixed), &[Some("\\xdead00"), None])
        .await;
    db.check("bytea", utf8(&[Some("ñ")]), &[Some("\\xc3b1")])
        .await;

    let uuid = "123e4567-e89b-12d3-a456-426614174000";
    let raw: [u8; 16] = [
        0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40,
        0x00,
    ];
    let fixed =
        FixedSizeBinaryArray::try_from_sparse_iter_with_size(vec![Some(raw), None].into_iter(), 16)
            .unwrap();
    db.check("uuid", arc(fixed), &[Some(uuid), None]).await;
    db.check(
        "uuid",
        utf8(&[
            Some("123E4567-E89B-12D3-A456-426614174000"),
            Some("{123e4567e89b12d3a456426614174000}"),
            None,
        ]),
        &[Some(uuid), Some(uuid), None],
    )
    .await;
}

#[tokio::test]
async fn all_null_column_of_every_type() {
    let db = test_db().await;
    for ty in [
        "boolean",
        "smallint",
        "integer",
        "bigint",
        "real",
        "double precision",
        "numeric(15,2)",
        "text",
        "varchar(3)",
        "date",
        "time",
        "timestamp",
        "timestamptz",
        "json",
        "jsonb",
        "bytea",
        "uuid",
    ] {
        db.check(ty, arc(NullArray::new(2)), &[None, None]).await;
    }
}

// ---------------------------------------------------------------------------------------------
// A trandeuda-shaped table: several batches in one COPY, name matching, extra columns

fn trandeuda_columns() -> Vec<PgColumn> {
    let col =
        |name: &str, ty: &str, nullable| PgColumn::new(name, PgType::parse(ty).unwrap(), nullable);
    vec![
        col("cod_cuenta", "text", false),
        col("nro_documento", "text", false),
        col("archivo", "text", false),
        col("fecha_vencimiento", "date", true),
        col("monto_exigible", "numeric(15,2)", true),
        col("creado_el", "timestamptz", true),
        col("fecha_proceso", "date", false),
        col("motivo_rechazo", "text", true),
    ]
}

const TRANDEUDA_KEY: [&str; 4] = ["cod_cuenta", "nro_documento", "archivo", "fecha_proceso"];

/// `rows` trandeuda rows starting at `first`; `monto` overrides the amount of every row.
fn trandeuda_batch(first: usize, rows: usize, monto: Option<(i128, u8)>) -> RecordBatch {
    let ids = first..first + rows;
    let cuentas: Vec<String> = ids
        .clone()
        .map(|i| format!("{}", 5_000_000_000 + i))
        .collect();
    let docs: Vec<String> = ids
        .clone()
        .map(|i| format!("F{}", 100_000_000_000 + i))
        .collect();
    let (amounts, precision): (Vec<i128>, u8) = match monto {
        Some((v, p)) => (vec![v; rows], p),
        None => (
            ids.clone()
                .map(|i| (i as i128 * 12_345) % 1_000_000_000)
                .collect(),
            15,
        ),
    };
    let proceso = days("2025-06-27");
    batch(vec![
        // Upper-case name: matched case-insensitively.
        ("COD_CUENTA", arc(StringArray::from(cuentas))),
        ("nro_documento", arc(StringArray::from(docs))),
        ("archivo", arc(StringArray::from(vec!["X"; rows]))),
        (
            "fecha_vencimiento",
            arc(Date32Array::from_iter_values(
                ids.clone().map(|i| proceso + (i % 90) as i32),
            )),
        ),
        (
            "monto_exigible",
            arc(Decimal128Array::from(amounts)
                .with_precision_and_scale(precision, 2)
                .unwrap()),
        ),
        (
            "creado_el",
            arc(TimestampMicrosecondArray::from_iter_values(
                ids.clone()
                    .map(|i| micros("2025-06-27 12:00:00") + i as i64),
            )
            .with_timezone("UTC")),
        ),
        ("fecha_proceso", arc(Date32Array::from(vec![proceso; rows]))),
        (
            "motivo_rechazo",
            arc(StringArray::from_iter(
                ids.clone()
                    .map(|i| (i % 100 == 0).then(|| format!("rechazo {i}"))),
            )),
        ),
        // Not a target column: ignored.
        (
            "extra",
            arc(Int64Array::from_iter_values(ids.map(|i| i as i64))),
        ),
    ])
}

#[tokio::test]
async fn trandeuda_batches_in_one_copy() {
    let db = test_db().await;
    let columns = trandeuda_columns();
    db.create_table("trandeuda", &columns, &TRANDEUDA_KEY).await;
    // Slices of a larger batch (as an upstream stage may hand them over) encode like batches.
    let big = trandeuda_batch(1000, 3000, None);
    let batches = [
        trandeuda_batch(0, 1000, None),
        trandeuda_batch(1000, 0, None),
        big.slice(0, 1000),
        big.slice(1000, 1345),
    ];
    let rows = db
        .copy("trandeuda", &columns, &TRANDEUDA_KEY, &batches)
        .await
        .unwrap();
    assert_eq!(rows, 3345);
    let summary = db
        .query_text(&format!(
            "SELECT count(*) || ' ' || sum(monto_exigible) || ' ' || count(motivo_rechazo) || ' ' \
             || min(creado_el) || ' ' || max(fecha_vencimiento) || ' ' || min(cod_cuenta) \
             FROM {}.trandeuda",
            db.name
        ))
        .await;
    let sum: i128 = (0..3345i128).map(|i| (i * 12_345) % 1_000_000_000).sum();
    let want = format!(
        "3345 {}.{:02} 34 2025-06-27 12:00:00+00 2025-09-24 5000000000",
        sum / 100,
        sum % 100
    );
    assert_eq!(summary, want);
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn null_key_names_the_row() {
    let mut b = trandeuda_batch(0, 3, None);
    let mut cuentas: Vec<Option<String>> = (0..3)
        .map(|i| Some(format!("{}", 5_000_000_000u64 + i)))
        .collect();
    cuentas[1] = None;
    let docs = arc(StringArray::from(vec!["F0", "F1", "F2"]));
    let mut arrays = b.columns().to_vec();
    arrays[0] = arc(StringArray::from(cuentas));
    arrays[1] = docs;
    b = RecordBatch::try_new(b.schema(), arrays).unwrap();
    let err = encode_trandeuda(&b).unwrap_err();
    assert_eq!(
        err.to_string(),
        "table trandeuda, column cod_cuenta, row key (cod_cuenta=NULL, nro_documento=F1, \
         archivo=X, fecha_proceso=2025-06-27): NULL in primary-key column"
    );
}

fn encode_trandeuda(batch: &RecordBatch) -> Result<usize, EncodeError> {
    let keys = TRANDEUDA_KEY.iter().map(|k| k.to_string()).collect();
    let mut encoder = CopyEncoder::new("trandeuda", trandeuda_columns(), keys, LIMA)?;
    let mut out = BytesMut::new();
    encoder.encode_batch(batch, &mut out)
}

#[test]
fn numeric_overflow_names_the_row() {
    let good = trandeuda_batch(0, 2, None);
    let bad = trandeuda_batch(2, 1, Some((12_345_678_901_234_567, 17)));
    assert_eq!(encode_trandeuda(&good), Ok(2));
    let err = encode_trandeuda(&bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "table trandeuda, column monto_exigible, row key (cod_cuenta=5000000002, \
         nro_documento=F100000000002, archivo=X, fecha_proceso=2025-06-27): \
         value 123456789012345.67 overflows numeric(15,2)"
    );
}

#[test]
fn value_errors_say_what_is_wrong() {
    let cases: Vec<(&str, ArrayRef, &str)> = vec![
        (
            "int4",
            utf8(&[Some("1"), Some("12a")]),
            "\"12a\" is not an integer",
        ),
        ("int4", utf8(&[Some("")]), "\"\" is not an integer"),
        (
            "int4",
            utf8(&[Some("99999999999999999999")]),
            "value \"99999999999999999999\" out of range for integer",
        ),
        (
            "smallint",
            arc(Int32Array::from(vec![40_000])),
            "value 40000 out of range for smallint",
        ),
        (
            "integer",
            arc(Int64Array::from(vec![i64::MAX])),
            "value 9223372036854775807 out of range for integer",
        ),
        (
            "bigint",
            arc(UInt64Array::from(vec![u64::MAX])),
            "value 18446744073709551615 out of range for bigint",
        ),
        (
            "integer",
            dec128(&[Some(1250)], 10, 2),
            "value 12.50 has a fractional part; integer needs an integer",
        ),
        (
            "real",
            arc(Float64Array::from(vec![1e300])),
            "out of range for real",
        ),
        ("float8", utf8(&[Some("x1")]), "\"x1\" is not a number"),
        (
            "numeric(15,2)",
            utf8(&[Some("1,5")]),
            "\"1,5\" is not a number",
        ),
        (
            "numeric(15,2)",
            arc(Float64Array::from(vec![f64::INFINITY])),
            "value inf is not a finite number",
        ),
        (
            "numeric(3,1)",
            utf8(&[Some("100.5")]),
            "value 100.5 overflows numeric(3,1)",
        ),
        (
            "numeric(3,1)",
            utf8(&[Some("99.95")]),
            "value 99.95 has more decimal places than numeric(3,1) keeps (1)",
        ),
        (
            "numeric",
            utf8(&[Some("1e-20000")]),
            "value 1e-20000 is out of the range PostgreSQL numeric can represent",
        ),
        (
            "varchar(3)",
            utf8(&[Some("ñandú")]),
            "value \"ñandú\" is 5 characters, longer than character varying(3)",
        ),
        (
            "text",
            utf8(&[Some("a\0b")]),
            "text \"a\\0b\" contains a NUL byte, which PostgreSQL text cannot store",
        ),
        (
            "jsonb",
            utf8(&[Some("{\"a\": 1"), Some("{bad")]),
            "invalid JSON \"{\\\"a\\\": 1\" (EOF while parsing an object at line 1 column 7)",
        ),
        ("bool", utf8(&[Some("maybe")]), "\"maybe\" is not a boolean"),
        ("uuid", utf8(&[Some("123")]), "\"123\" is not a UUID"),
        (
            "date",
            utf8(&[Some("2025-02-30")]),
            "\"2025-02-30\" is not a date (expected YYYY-MM-DD)",
        ),
        (
            "time",
            utf8(&[Some("25:00")]),
            "\"25:00\" is not a time (expected HH:MM[:SS[.ffffff]])",
        ),
        (
            "timestamp",
            utf8(&[Some("2025-06-27 10:00:00 Lima")]),
            "\"2025-06-27 10:00:00 Lima\" is not a timestamp (expected YYYY-MM-DD[ HH:MM:SS[.ffffff]][Z|±HH[:MM]])",
        ),
        (
            "timestamp",
            arc(TimestampSecondArray::from(vec![i64::MAX])),
            "value 9223372036854775807 (Timestamp(s)) out of range for timestamp without time zone",
        ),
        (
            "jsonb",
            utf8(&[Some(r#"{"a": "\u0000"}"#)]),
            r#"contains \u0000, which jsonb cannot store"#,
        ),
        (
            "timestamptz",
            arc(TimestampSecondArray::from(vec![i64::MIN]).with_timezone("UTC")),
            "out of range for timestamp with time zone",
        ),
        (
            "date",
            arc(Date32Array::from(vec![i32::MIN])),
            "out of range for date",
        ),
        (
            "time",
            arc(Time64MicrosecondArray::from(vec![86_400_000_001])),
            "out of range for time",
        ),
    ];
    for (ty, values, want) in cases {
        let reason = value_error(ty, values);
        assert!(reason.contains(want), "{ty}: got {reason:?}, want {want:?}");
    }
}

#[test]
fn value_error_key_is_the_key_of_the_bad_row() {
    let columns = vec![
        PgColumn::new("id", PgType::Int4, false),
        PgColumn::new("v", PgType::Int4, true),
    ];
    let b = batch(vec![
        ("id", arc(Int32Array::from(vec![10, 20, 30]))),
        ("v", utf8(&[Some("1"), None, Some("3x")])),
    ]);
    let err = encode_only(columns.clone(), &["id"], &b).unwrap_err();
    assert_eq!(
        err.to_string(),
        "table t, column v, row key (id=30): \"3x\" is not an integer"
    );
    // Without a key the row is named by its position.
    let err = encode_only(columns, &[], &b).unwrap_err();
    assert_eq!(
        err.to_string(),
        "table t, column v, row key (batch row 2): \"3x\" is not an integer"
    );
}

#[test]
fn missing_and_unsupported_columns() {
    let columns = vec![
        PgColumn::new("id", PgType::Int4, false),
        PgColumn::new("v", PgType::Date, true),
    ];
    let only_id = batch(vec![("id", row_ids(1))]);
    assert_eq!(
        encode_only(columns.clone(), &["id"], &only_id),
        Err(EncodeError::MissingColumn {
            table: "t".into(),
            column: "v".into()
        })
    );
    let wrong = batch(vec![
        ("id", row_ids(1)),
        ("v", arc(BooleanArray::from(vec![true]))),
    ]);
    let err = encode_only(columns, &["id"], &wrong).unwrap_err();
    assert_eq!(
        err.to_string(),
        "table t, column v: cannot load Arrow type Boolean into PostgreSQL type date"
    );
    // Ambiguous case-insensitive names match nothing.
    let ambiguous = batch(vec![
        ("ID", row_ids(1)),
        ("Id", row_ids(1)),
        ("v", arc(Date32Array::from(vec![0]))),
    ]);
    assert!(matches!(
        encode_only(
            vec![PgColumn::new("id", PgType::Int4, false)],
            &["id"],
            &ambiguous
        ),
        Err(EncodeError::MissingColumn { .. })
    ));
}

#[test]
fn bad_configuration_is_rejected() {
    let columns = vec![PgColumn::new("id", PgType::Int4, false)];
    let err = CopyEncoder::new("t", columns.clone(), vec!["nope".into()], LIMA).unwrap_err();
    assert_eq!(
        err.to_string(),
        "table t: key column nope is not one of the table's columns"
    );
    let twice = vec![columns[0].clone(), columns[0].clone()];
    assert!(CopyEncoder::new("t", twice, vec![], LIMA).is_err());
    assert!(CopyEncoder::new("t", vec![], vec![], LIMA).is_err());
}
