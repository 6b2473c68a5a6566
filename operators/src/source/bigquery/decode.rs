//! BigQuery REST results → Arrow: the schema mapping and the decoding of one page of rows.
//!
//! | BigQuery | Arrow |
//! |---|---|
//! | STRING | Utf8 |
//! | BYTES | Binary (the REST API sends base64) |
//! | INT64 / INTEGER | Int64 |
//! | FLOAT64 / FLOAT | Float64 (`NaN`, `Infinity`, `-Infinity` included) |
//! | NUMERIC | Decimal128(38, 9), parsed from the decimal text (never through f64) |
//! | BIGNUMERIC | Decimal256(76, 38), parsed from the decimal text |
//! | BOOL / BOOLEAN | Boolean |
//! | DATE | Date32 |
//! | DATETIME | Timestamp(µs, None): a zone-less wall-clock reading; the sink interprets it in the pipeline's time zone |
//! | TIMESTAMP | Timestamp(µs, "UTC") |
//! | TIME | Time64(µs) |
//! | JSON, GEOGRAPHY, INTERVAL | Utf8 (the text BigQuery sends) |
//! | RECORD / STRUCT, any REPEATED field | Utf8 holding JSON text (objects keyed by field name, arrays) |
//!
//! TIMESTAMP cells come as integer microseconds (`"1704112496123456"`), decimal seconds
//! (`"1704112496.123456"`) or scientific-notation seconds (`"1.704112496123456E9"`) depending on
//! the server and the request; all three are parsed exactly from their digits (rounded to the
//! nearest microsecond when a float rendering carries more digits).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Decimal256Builder,
    Float64Builder, Int64Builder, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, i256};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use base64::Engine as _;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use gcp_bigquery_client::model::field_type::FieldType;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_row::TableRow;
use serde_json::Value;

use super::error::BigQueryError;

/// Precision and scale of BigQuery NUMERIC.
pub const NUMERIC_PRECISION: u8 = 38;
pub const NUMERIC_SCALE: i8 = 9;
/// Precision and scale used for BigQuery BIGNUMERIC (its scale is 38).
pub const BIGNUMERIC_PRECISION: u8 = 76;
pub const BIGNUMERIC_SCALE: i8 = 38;

/// How one column's cells are read.
#[derive(Debug, Clone)]
pub enum ColumnKind {
    String,
    Bytes,
    Int64,
    Float64,
    Numeric,
    BigNumeric,
    Bool,
    Date,
    Datetime,
    Timestamp,
    Time,
    /// Text passed through as is (JSON, GEOGRAPHY, INTERVAL).
    Text,
    /// RECORD or REPEATED: rendered as JSON text using the nested schema.
    Nested(Box<TableFieldSchema>),
}

/// The Arrow schema of a result and how to decode each of its columns.
#[derive(Debug, Clone)]
pub struct ResultSchema {
    pub arrow: SchemaRef,
    pub kinds: Vec<ColumnKind>,
    /// BigQuery type names, for messages.
    pub type_names: Vec<String>,
}

/// The BigQuery name of a field type (canonical spelling).
pub fn type_name(ty: &FieldType) -> &'static str {
    match ty {
        FieldType::String => "STRING",
        FieldType::Bytes => "BYTES",
        FieldType::Integer | FieldType::Int64 => "INT64",
        FieldType::Float | FieldType::Float64 => "FLOAT64",
        FieldType::Numeric => "NUMERIC",
        FieldType::Bignumeric => "BIGNUMERIC",
        FieldType::Boolean | FieldType::Bool => "BOOL",
        FieldType::Timestamp => "TIMESTAMP",
        FieldType::Date => "DATE",
        FieldType::Time => "TIME",
        FieldType::Datetime => "DATETIME",
        FieldType::Record | FieldType::Struct => "RECORD",
        FieldType::Geography => "GEOGRAPHY",
        FieldType::Json => "JSON",
        FieldType::Interval => "INTERVAL",
    }
}

fn is_repeated(field: &TableFieldSchema) -> bool {
    field
        .mode
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("REPEATED"))
}

/// The Arrow type and decoding of one BigQuery field.
pub fn column_kind(field: &TableFieldSchema) -> (DataType, ColumnKind) {
    if is_repeated(field) {
        return (DataType::Utf8, ColumnKind::Nested(Box::new(field.clone())));
    }
    match field.r#type {
        FieldType::String => (DataType::Utf8, ColumnKind::String),
        FieldType::Bytes => (DataType::Binary, ColumnKind::Bytes),
        FieldType::Integer | FieldType::Int64 => (DataType::Int64, ColumnKind::Int64),
        FieldType::Float | FieldType::Float64 => (DataType::Float64, ColumnKind::Float64),
        FieldType::Numeric => (
            DataType::Decimal128(NUMERIC_PRECISION, NUMERIC_SCALE),
            ColumnKind::Numeric,
        ),
        FieldType::Bignumeric => (
            DataType::Decimal256(BIGNUMERIC_PRECISION, BIGNUMERIC_SCALE),
            ColumnKind::BigNumeric,
        ),
        FieldType::Boolean | FieldType::Bool => (DataType::Boolean, ColumnKind::Bool),
        FieldType::Date => (DataType::Date32, ColumnKind::Date),
        FieldType::Datetime => (
            DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnKind::Datetime,
        ),
        FieldType::Timestamp => (
            DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
            ColumnKind::Timestamp,
        ),
        FieldType::Time => (DataType::Time64(TimeUnit::Microsecond), ColumnKind::Time),
        FieldType::Json | FieldType::Geography | FieldType::Interval => {
            (DataType::Utf8, ColumnKind::Text)
        }
        FieldType::Record | FieldType::Struct => {
            (DataType::Utf8, ColumnKind::Nested(Box::new(field.clone())))
        }
    }
}

impl ResultSchema {
    /// Maps a BigQuery result schema to Arrow. Every column is nullable (BigQuery's REQUIRED is
    /// not relied upon; the sink checks NOT NULL keys itself).
    pub fn new(fields: &[TableFieldSchema]) -> Result<Self, BigQueryError> {
        let mut arrow_fields = Vec::with_capacity(fields.len());
        let mut kinds = Vec::with_capacity(fields.len());
        let mut type_names = Vec::with_capacity(fields.len());
        for f in fields {
            let (dt, kind) = column_kind(f);
            arrow_fields.push(Field::new(&f.name, dt, true));
            kinds.push(kind);
            type_names.push(if is_repeated(f) {
                format!("ARRAY<{}>", type_name(&f.r#type))
            } else {
                type_name(&f.r#type).to_string()
            });
        }
        Ok(ResultSchema {
            arrow: Arc::new(Schema::new(arrow_fields)),
            kinds,
            type_names,
        })
    }

    /// Decodes one page of rows into one batch. `page` (0-based) only names the page in errors.
    pub fn decode(&self, rows: &[TableRow], page: u64) -> Result<RecordBatch, BigQueryError> {
        // Every row must have exactly the schema's cells: a short row is a protocol error, not
        // a column of NULLs.
        if let Some((i, r)) = rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.columns.as_ref().map_or(0, Vec::len) != self.kinds.len())
        {
            return Err(BigQueryError::protocol(
                format!("page {page}"),
                format!(
                    "row {i} has {} cells but the schema has {} columns",
                    r.columns.as_ref().map_or(0, Vec::len),
                    self.kinds.len()
                ),
            ));
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.kinds.len());
        for (c, kind) in self.kinds.iter().enumerate() {
            let cells = rows.iter().map(|r| {
                r.columns
                    .as_ref()
                    .and_then(|cells| cells.get(c))
                    .and_then(|cell| cell.value.as_ref())
            });
            let err = |row: usize, value: &Value, reason: String| BigQueryError::Decode {
                column: self.arrow.field(c).name().clone(),
                ty: self.type_names[c].clone(),
                page,
                row,
                value: preview(value),
                reason,
            };
            columns.push(decode_column(kind, cells, rows.len(), &err)?);
        }
        RecordBatch::try_new_with_options(
            self.arrow.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )
        .map_err(|e| BigQueryError::arrow(format!("page {page}"), e))
    }
}

fn preview(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.len() > 80 {
        let mut end = 80;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

type ErrFn<'a> = dyn Fn(usize, &Value, String) -> BigQueryError + 'a;

/// The text of a scalar cell (BigQuery sends every scalar as a JSON string).
fn text<'v>(v: &'v Value, row: usize, err: &ErrFn<'_>) -> Result<&'v str, BigQueryError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(err(row, other, "expected a JSON string".into())),
    }
}

fn decode_column<'v>(
    kind: &ColumnKind,
    cells: impl Iterator<Item = Option<&'v Value>>,
    len: usize,
    err: &ErrFn<'_>,
) -> Result<ArrayRef, BigQueryError> {
    // A JSON null and a missing cell are both NULL.
    let cells = cells.map(|c| c.filter(|v| !v.is_null()));
    macro_rules! scalar {
        ($builder:expr, |$s:ident, $row:ident, $v:ident| $parse:expr) => {{
            let mut b = $builder;
            for ($row, cell) in cells.enumerate() {
                match cell {
                    None => b.append_null(),
                    Some($v) => {
                        let $s = text($v, $row, err)?;
                        b.append_value($parse);
                    }
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    let array = match kind {
        ColumnKind::String | ColumnKind::Text => {
            scalar!(StringBuilder::with_capacity(len, len * 16), |s, _r, _v| s)
        }
        ColumnKind::Bytes => scalar!(BinaryBuilder::with_capacity(len, len * 16), |s, row, v| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| err(row, v, format!("not base64: {e}")))?
        }),
        ColumnKind::Int64 => scalar!(Int64Builder::with_capacity(len), |s, row, v| s
            .parse::<i64>()
            .map_err(|e| err(row, v, e.to_string()))?),
        ColumnKind::Float64 => scalar!(Float64Builder::with_capacity(len), |s, row, v| {
            parse_float(s).ok_or_else(|| err(row, v, "not a FLOAT64".into()))?
        }),
        ColumnKind::Numeric => scalar!(
            Decimal128Builder::with_capacity(len)
                .with_precision_and_scale(NUMERIC_PRECISION, NUMERIC_SCALE)
                .map_err(|e| BigQueryError::arrow("NUMERIC column", e))?,
            |s, row, v| parse_numeric(s).map_err(|reason| err(row, v, reason))?
        ),
        ColumnKind::BigNumeric => scalar!(
            Decimal256Builder::with_capacity(len)
                .with_precision_and_scale(BIGNUMERIC_PRECISION, BIGNUMERIC_SCALE)
                .map_err(|e| BigQueryError::arrow("BIGNUMERIC column", e))?,
            |s, row, v| parse_bignumeric(s).map_err(|reason| err(row, v, reason))?
        ),
        ColumnKind::Bool => scalar!(BooleanBuilder::with_capacity(len), |s, row, v| {
            if s.eq_ignore_ascii_case("true") {
                true
            } else if s.eq_ignore_ascii_case("false") {
                false
            } else {
                return Err(err(row, v, "expected true or false".into()));
            }
        }),
        ColumnKind::Date => scalar!(Date32Builder::with_capacity(len), |s, row, v| {
            parse_date_days(s).ok_or_else(|| err(row, v, "expected YYYY-MM-DD".into()))?
        }),
        ColumnKind::Datetime => scalar!(
            TimestampMicrosecondBuilder::with_capacity(len),
            |s, row, v| parse_datetime_micros(s).ok_or_else(|| err(
                row,
                v,
                "expected YYYY-MM-DD[T ]HH:MM:SS[.ffffff]".into()
            ))?
        ),
        ColumnKind::Timestamp => scalar!(
            TimestampMicrosecondBuilder::with_capacity(len).with_timezone("UTC"),
            |s, row, v| parse_timestamp_micros(s).map_err(|reason| err(row, v, reason))?
        ),
        ColumnKind::Time => scalar!(Time64MicrosecondBuilder::with_capacity(len), |s, row, v| {
            parse_time_micros(s).ok_or_else(|| err(row, v, "expected HH:MM:SS[.ffffff]".into()))?
        }),
        ColumnKind::Nested(field) => {
            let mut b = StringBuilder::with_capacity(len, len * 32);
            for (row, cell) in cells.enumerate() {
                match cell {
                    None => b.append_null(),
                    Some(v) => {
                        let json =
                            nested_to_json(field, v, true).map_err(|reason| err(row, v, reason))?;
                        b.append_value(json.to_string());
                    }
                }
            }
            Arc::new(b.finish())
        }
    };
    Ok(array)
}

/// Converts a REST cell of a RECORD/REPEATED field (`{"f":[{"v":…}]}` / `[{"v":…}]`) to natural
/// JSON: objects keyed by field name, arrays, INT64 and FLOAT64 as numbers, BOOL as booleans,
/// TIMESTAMP as RFC 3339 text, NUMERIC/BIGNUMERIC and everything else as their text.
fn nested_to_json(field: &TableFieldSchema, v: &Value, top_level: bool) -> Result<Value, String> {
    if top_level && is_repeated(field) {
        let items = match v {
            Value::Array(items) => items,
            other => return Err(format!("expected an array, got {other}")),
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let inner = item.get("v").unwrap_or(&Value::Null);
            out.push(nested_to_json(field, inner, false)?);
        }
        return Ok(Value::Array(out));
    }
    if v.is_null() {
        return Ok(Value::Null);
    }
    match field.r#type {
        FieldType::Record | FieldType::Struct => {
            let cells = v
                .get("f")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("expected a RECORD {{\"f\": […]}}, got {v}"))?;
            let sub = field.fields.as_deref().unwrap_or(&[]);
            if sub.len() != cells.len() {
                return Err(format!(
                    "RECORD has {} values but {} fields",
                    cells.len(),
                    sub.len()
                ));
            }
            let mut map = serde_json::Map::with_capacity(sub.len());
            for (f, cell) in sub.iter().zip(cells) {
                let inner = cell.get("v").unwrap_or(&Value::Null);
                map.insert(f.name.clone(), nested_to_json(f, inner, true)?);
            }
            Ok(Value::Object(map))
        }
        _ => {
            let s = match v {
                Value::String(s) => s.as_str(),
                other => return Err(format!("expected a JSON string, got {other}")),
            };
            Ok(match field.r#type {
                FieldType::Integer | FieldType::Int64 => s
                    .parse::<i64>()
                    .map(Value::from)
                    .map_err(|e| format!("{s:?}: {e}"))?,
                FieldType::Float | FieldType::Float64 => match parse_float(s) {
                    Some(x) if x.is_finite() => Value::from(x),
                    _ => Value::String(s.to_string()),
                },
                FieldType::Boolean | FieldType::Bool => Value::Bool(s.eq_ignore_ascii_case("true")),
                FieldType::Timestamp => {
                    let micros = parse_timestamp_micros(s)?;
                    let ts = chrono::DateTime::from_timestamp_micros(micros)
                        .ok_or_else(|| format!("{s:?} is out of range"))?;
                    Value::String(ts.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                }
                _ => Value::String(s.to_string()),
            })
        }
    }
}

/// FLOAT64 text: decimal or scientific, `NaN`, `Infinity`, `-Infinity`.
pub fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => s.parse::<f64>().ok(),
    }
}

/// A decimal number in text, as digits and a power of ten: value = ±digits × 10^exp.
struct DecimalText {
    negative: bool,
    /// Significant digits without leading zeros (empty for zero).
    digits: String,
    exp: i64,
}

fn split_decimal(s: &str) -> Result<DecimalText, String> {
    let t = s.trim();
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exp_part) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err("not a decimal number".into());
    }
    let exp: i64 = match exp_part {
        None => 0,
        Some(e) => e.parse::<i64>().map_err(|_| "bad exponent".to_string())?,
    };
    if exp.abs() > 1_000 {
        return Err("exponent out of range".into());
    }
    let mut digits = String::with_capacity(int_part.len() + frac_part.len());
    digits.push_str(int_part);
    digits.push_str(frac_part);
    let digits = digits.trim_start_matches('0').to_string();
    Ok(DecimalText {
        negative,
        digits,
        exp: exp - frac_part.len() as i64,
    })
}

/// Rescales a decimal text to an integer count of 10^-scale units, exactly or with rounding
/// (half away from zero) of the dropped digits. Returns the decimal digit string (no sign).
fn scaled_digits(d: &DecimalText, scale: i64, round: bool) -> Result<String, String> {
    let shift = d.exp + scale;
    if d.digits.is_empty() {
        return Ok("0".into());
    }
    if shift >= 0 {
        let mut out = d.digits.clone();
        out.extend(std::iter::repeat_n('0', shift as usize));
        return Ok(out);
    }
    let drop = (-shift) as usize;
    if drop > d.digits.len() {
        // |value| < 10^-scale: rounds to zero (or to one unit when ≥ half a unit).
        if !round {
            return Err(format!("more than {scale} decimal places"));
        }
        return Ok("0".into());
    }
    let (keep, dropped) = d.digits.split_at(d.digits.len() - drop);
    if dropped.bytes().all(|b| b == b'0') {
        return Ok(if keep.is_empty() {
            "0".into()
        } else {
            keep.into()
        });
    }
    if !round {
        return Err(format!("more than {scale} decimal places"));
    }
    let up = dropped.as_bytes()[0] >= b'5';
    let mut out = if keep.is_empty() {
        "0".to_string()
    } else {
        keep.to_string()
    };
    if up {
        out = increment(&out);
    }
    Ok(out)
}

fn increment(digits: &str) -> String {
    let mut bytes = digits.as_bytes().to_vec();
    let mut i = bytes.len();
    loop {
        if i == 0 {
            bytes.insert(0, b'1');
            break;
        }
        i -= 1;
        if bytes[i] == b'9' {
            bytes[i] = b'0';
        } else {
            bytes[i] += 1;
            break;
        }
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// NUMERIC text → Decimal128(38, 9) units, exactly. More than 9 significant decimals or more
/// than 38 digits is an error (BigQuery never sends either).
pub fn parse_numeric(s: &str) -> Result<i128, String> {
    let d = split_decimal(s)?;
    let digits = scaled_digits(&d, NUMERIC_SCALE as i64, false)?;
    if digits.len() > NUMERIC_PRECISION as usize {
        return Err("more than 38 digits".into());
    }
    let v: i128 = digits.parse().map_err(|e| format!("{e}"))?;
    Ok(if d.negative { -v } else { v })
}

/// BIGNUMERIC text → Decimal256(76, 38) units, exactly.
pub fn parse_bignumeric(s: &str) -> Result<i256, String> {
    let d = split_decimal(s)?;
    let digits = scaled_digits(&d, BIGNUMERIC_SCALE as i64, false)?;
    if digits.len() > BIGNUMERIC_PRECISION as usize {
        return Err(
            "more than 76 digits: does not fit Decimal256(76, 38); CAST it to STRING in the query"
                .into(),
        );
    }
    let v = i256::from_string(&digits).ok_or_else(|| "not a BIGNUMERIC".to_string())?;
    Ok(if d.negative { v.wrapping_neg() } else { v })
}

/// TIMESTAMP cell → microseconds since the epoch (UTC).
///
/// An integer is microseconds (`useInt64Timestamp`); a number with a fraction or an exponent is
/// seconds (`"1704112496.123456"`, `"1.704112496123456E9"`), computed from its digits, never via
/// f64. RFC 3339-like text (`2024-01-01 12:34:56.123456 UTC`) is accepted too.
pub fn parse_timestamp_micros(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let numeric = t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    if !numeric || t.bytes().skip(1).any(|b| b == b'-') && !t.contains(['e', 'E']) {
        return parse_timestamp_text(t);
    }
    let d = split_decimal(t)?;
    let is_seconds = t.contains(['.', 'e', 'E']);
    let scale = if is_seconds { 6 } else { 0 };
    let digits = scaled_digits(&d, scale, true)?;
    let v: i64 = digits
        .parse()
        .map_err(|_| "timestamp out of range".to_string())?;
    let v = if d.negative { -v } else { v };
    chrono::DateTime::from_timestamp_micros(v)
        .map(|_| v)
        .ok_or_else(|| "timestamp out of range".to_string())
}

fn parse_timestamp_text(t: &str) -> Result<i64, String> {
    let normalized = t.replacen(' ', "T", 1);
    let normalized = normalized
        .strip_suffix(" UTC")
        .or_else(|| normalized.strip_suffix("TUTC"))
        .map(|x| format!("{x}Z"))
        .unwrap_or(normalized);
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(&normalized) {
        return Ok(dt.timestamp_micros());
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M:%S%.f%#z") {
        return Ok(dt.and_utc().timestamp_micros());
    }
    Err("expected integer microseconds, seconds (decimal or scientific) or RFC 3339".into())
}

/// DATE text → days since 1970-01-01.
pub fn parse_date_days(s: &str) -> Option<i32> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

/// DATETIME text (`T` or space separator) → microseconds of the wall-clock reading.
pub fn parse_datetime_micros(s: &str) -> Option<i64> {
    let t = s.trim();
    let dt = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(NaiveTime::MIN))
        })?;
    let micros = dt.and_utc().timestamp_micros();
    // Truncate nanoseconds beyond the microsecond (BigQuery has none).
    Some(micros)
}

/// TIME text → microseconds since midnight.
pub fn parse_time_micros(s: &str) -> Option<i64> {
    let t = NaiveTime::parse_from_str(s.trim(), "%H:%M:%S%.f").ok()?;
    Some(t.num_seconds_from_midnight() as i64 * 1_000_000 + (t.nanosecond() / 1_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        Array, AsArray, Decimal128Array, Decimal256Array, StringArray, TimestampMicrosecondArray,
    };
    use gcp_bigquery_client::model::table_cell::TableCell;

    #[test]
    fn timestamps_in_all_three_encodings_are_exact() {
        let want = 1_704_112_496_123_456;
        for s in [
            "1704112496123456",
            "1704112496.123456",
            "1.704112496123456E9",
            "1.704112496123456e+09",
            "2024-01-01 12:34:56.123456 UTC",
            "2024-01-01T12:34:56.123456Z",
        ] {
            assert_eq!(parse_timestamp_micros(s), Ok(want), "{s}");
        }
        // A float rendering with noise rounds to the nearest microsecond.
        assert_eq!(parse_timestamp_micros("1.7041124961234559E9"), Ok(want));
        assert_eq!(
            parse_timestamp_micros("1.704112496E9"),
            Ok(1_704_112_496_000_000)
        );
        assert_eq!(parse_timestamp_micros("0"), Ok(0));
        assert_eq!(parse_timestamp_micros("0.0"), Ok(0));
        assert_eq!(parse_timestamp_micros("-1.5"), Ok(-1_500_000));
        assert_eq!(parse_timestamp_micros("-1500000"), Ok(-1_500_000));
        // Far beyond the f64 mantissa: still exact.
        assert_eq!(
            parse_timestamp_micros("253402300799.999999"),
            Ok(253_402_300_799_999_999)
        );
        assert!(parse_timestamp_micros("soon").is_err());
        assert!(parse_timestamp_micros("1e400").is_err());
    }

    #[test]
    fn numerics_are_exact() {
        assert_eq!(parse_numeric("123.45"), Ok(123_450_000_000));
        assert_eq!(parse_numeric("-0.000000001"), Ok(-1));
        assert_eq!(
            parse_numeric("99999999999999999999999999999.999999999"),
            Ok(99_999_999_999_999_999_999_999_999_999_999_999_999)
        );
        assert_eq!(parse_numeric("1E+2"), Ok(100_000_000_000));
        assert_eq!(parse_numeric("0"), Ok(0));
        assert!(parse_numeric("0.0000000001").is_err());
        assert!(parse_numeric("1e40").is_err());
        assert!(parse_numeric("abc").is_err());
        assert!(parse_numeric("").is_err());
        let big = parse_bignumeric("-1234567890123456789012345678.12345678901234567890123456789")
            .unwrap();
        assert_eq!(
            big.to_string(),
            "-123456789012345678901234567812345678901234567890123456789000000000"
        );
        assert!(parse_bignumeric("1e39").is_err());
    }

    #[test]
    fn scalars() {
        assert_eq!(parse_float("NaN").map(f64::is_nan), Some(true));
        assert_eq!(parse_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float("1.5E-3"), Some(0.0015));
        assert_eq!(parse_date_days("1970-01-02"), Some(1));
        assert_eq!(
            parse_datetime_micros("1970-01-01T00:00:01.5"),
            Some(1_500_000)
        );
        assert_eq!(
            parse_datetime_micros("1970-01-01 00:00:01.000001"),
            Some(1_000_001)
        );
        assert_eq!(parse_time_micros("00:01:00.25"), Some(60_250_000));
    }

    fn row(values: Vec<Value>) -> TableRow {
        TableRow {
            columns: Some(
                values
                    .into_iter()
                    .map(|v| TableCell { value: Some(v) })
                    .collect(),
            ),
        }
    }

    #[test]
    fn a_page_decodes_every_type() {
        let schema: Vec<TableFieldSchema> = serde_json::from_value(serde_json::json!([
            {"name": "s", "type": "STRING"},
            {"name": "n", "type": "NUMERIC"},
            {"name": "bn", "type": "BIGNUMERIC"},
            {"name": "ts", "type": "TIMESTAMP"},
            {"name": "dt", "type": "DATETIME"},
            {"name": "by", "type": "BYTES"},
            {"name": "rec", "type": "RECORD", "fields": [
                {"name": "a", "type": "INTEGER"}, {"name": "b", "type": "STRING"},
                {"name": "c", "type": "BOOLEAN", "mode": "REPEATED"}]},
            {"name": "arr", "type": "INTEGER", "mode": "REPEATED"}
        ]))
        .unwrap();
        let rs = ResultSchema::new(&schema).unwrap();
        let rows = vec![
            row(vec![
                Value::from("it's"),
                Value::from("1.5"),
                Value::from("2.5"),
                Value::from("1.704112496123456E9"),
                Value::from("2024-01-02T03:04:05.123456"),
                Value::from("AAEC/w=="),
                serde_json::json!({"f": [{"v": "5"}, {"v": null}, {"v": [{"v": "true"}]}]}),
                serde_json::json!([{"v": "1"}, {"v": "2"}]),
            ]),
            row(vec![Value::Null; 8]),
        ];
        let batch = rs.decode(&rows, 0).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(0).as_string::<i32>().value(0), "it's");
        let n = batch
            .column(1)
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .unwrap();
        assert_eq!(n.value_as_string(0), "1.500000000");
        let bn = batch
            .column(2)
            .as_any()
            .downcast_ref::<Decimal256Array>()
            .unwrap();
        assert_eq!(bn.value_as_string(0), format!("2.5{}", "0".repeat(37)));
        let ts = batch
            .column(3)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(ts.value(0), 1_704_112_496_123_456);
        assert_eq!(
            batch
                .column(4)
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .value(0),
            1_704_164_645_123_456
        );
        assert_eq!(batch.column(5).as_binary::<i32>().value(0), &[0, 1, 2, 255]);
        let rec = batch
            .column(6)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(rec.value(0), r#"{"a":5,"b":null,"c":[true]}"#);
        assert_eq!(batch.column(7).as_string::<i32>().value(0), "[1,2]");
        for c in 0..8 {
            assert!(batch.column(c).is_null(1), "column {c}");
        }
    }

    #[test]
    fn a_bad_cell_names_column_row_and_page() {
        let schema: Vec<TableFieldSchema> =
            serde_json::from_value(serde_json::json!([{"name": "monto", "type": "NUMERIC"}]))
                .unwrap();
        let rs = ResultSchema::new(&schema).unwrap();
        let e = rs
            .decode(
                &[row(vec![Value::from("1")]), row(vec![Value::from("x1")])],
                3,
            )
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "column \"monto\", row 1 of page 3: cannot read \"x1\" as NUMERIC: not a decimal number"
        );
        let e = rs.decode(&[row(vec![])], 0).unwrap_err().to_string();
        assert!(e.contains("row 0 has 0 cells"), "{e}");
    }
}
