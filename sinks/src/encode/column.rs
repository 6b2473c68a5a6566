//! Choosing and preparing the conversion of one Arrow column into one PostgreSQL column.
//!
//! Everything that can be checked or converted column-wise is done here, once per batch:
//! integer range checks, text parsing, time-zone and epoch arithmetic, varchar lengths, JSON
//! validation. The result is a [`ColumnWriter`] whose cells only need copying. The first bad
//! value stops the batch with its row number and a reason for the error message.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, BooleanArray, FixedSizeBinaryArray, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, PrimitiveArray,
};
use arrow::buffer::{BooleanBuffer, Buffer, ScalarBuffer};
use arrow::compute::{can_cast_types, cast};
use arrow::datatypes::{
    ArrowNativeType, ArrowPrimitiveType, DataType, Date32Type, Date64Type, Decimal128Type,
    Decimal256Type, Field, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Time32MillisecondType, Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt64Type,
};
use arrow::json::writer::{EncoderOptions, make_encoder};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono_tz::Tz;

use super::numeric::NumericTarget;
use super::temporal::{self, MICROS_PER_DAY};
use super::writer::{ByteCol, Cells, ColumnWriter, NumericCol};
use crate::pgtype::PgType;

/// PostgreSQL refuses fields of 1 GB or more.
const MAX_FIELD_BYTES: usize = (1 << 30) - 1;

/// Why a column could not be prepared.
#[derive(Debug)]
pub(super) enum PlanError {
    /// No conversion from this Arrow type to the target type.
    Unsupported,
    /// The value in `row` cannot be loaded.
    Cell { row: usize, reason: String },
}

type Plan = Result<ColumnWriter, PlanError>;

fn cell(row: usize, reason: String) -> PlanError {
    PlanError::Cell { row, reason }
}

/// Prepare `array` for a column of type `ty`; `tz` is the zone of zone-less wall-clock times.
pub(super) fn plan(array: &ArrayRef, ty: &PgType, tz: &Tz) -> Plan {
    match array.data_type() {
        // Dictionary and run-end encodings are unpacked to their values first.
        DataType::Dictionary(_, values) => {
            let unpacked = cast(array, values).map_err(|_| PlanError::Unsupported)?;
            return plan(&unpacked, ty, tz);
        }
        DataType::RunEndEncoded(_, values) => {
            let unpacked = cast(array, values.data_type()).map_err(|_| PlanError::Unsupported)?;
            return plan(&unpacked, ty, tz);
        }
        DataType::Null => return Ok(ColumnWriter::new(None, Cells::AllNull)),
        _ => {}
    }
    match ty {
        PgType::Bool => plan_bool(array),
        PgType::Int2 | PgType::Int4 | PgType::Int8 => plan_int(array, ty),
        PgType::Float4 | PgType::Float8 => plan_float(array, ty),
        PgType::Numeric { precision, scale } => {
            plan_numeric(array, NumericTarget::new(*precision, *scale))
        }
        PgType::Text => plan_text(array, None),
        PgType::Varchar(limit) => plan_text(array, *limit),
        PgType::Date => plan_date(array, tz),
        PgType::Time => plan_time(array),
        PgType::Timestamp => plan_timestamp(array, tz, false),
        PgType::Timestamptz => plan_timestamp(array, tz, true),
        PgType::Json => plan_json(array, false),
        PgType::Jsonb => plan_json(array, true),
        PgType::Bytea => plan_bytea(array),
        PgType::Uuid => plan_uuid(array),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// The value at `row` as Arrow prints it, for error messages. Values Arrow cannot print (a
/// timestamp beyond chrono's range) show as their raw integer.
pub(super) fn display(array: &dyn Array, row: usize) -> String {
    let options = FormatOptions::new().with_null("NULL");
    let printed =
        ArrayFormatter::try_new(array, &options).and_then(|f| f.value(row).try_to_string());
    match printed {
        Ok(text) => text,
        Err(_) => {
            let raw = cast(&array.slice(row, 1), &DataType::Int64).and_then(|a| {
                ArrayFormatter::try_new(a.as_ref(), &options)?
                    .value(0)
                    .try_to_string()
            });
            raw.map_or_else(
                |_| "?".to_string(),
                |v| format!("{v} ({})", array.data_type()),
            )
        }
    }
}

/// A text value quoted for an error message, cut to 80 characters.
fn quote(text: &str) -> String {
    const LIMIT: usize = 80;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

fn quote_bytes(bytes: &[u8]) -> String {
    quote(&String::from_utf8_lossy(bytes))
}

fn primitive<T: ArrowPrimitiveType>(array: &dyn Array) -> Result<PrimitiveArray<T>, PlanError> {
    array
        .as_primitive_opt::<T>()
        .cloned()
        .ok_or(PlanError::Unsupported)
}

/// The column as strings, if it is one of Arrow's string layouts.
fn strings(array: &dyn Array) -> Option<ByteCol> {
    Some(match array.data_type() {
        DataType::Utf8 => ByteCol::Utf8(array.as_string_opt::<i32>()?.clone()),
        DataType::LargeUtf8 => ByteCol::LargeUtf8(array.as_string_opt::<i64>()?.clone()),
        DataType::Utf8View => ByteCol::Utf8View(array.as_string_view_opt()?.clone()),
        _ => return None,
    })
}

/// The column as bytes, if it is one of Arrow's binary layouts.
fn binaries(array: &dyn Array) -> Option<ByteCol> {
    Some(match array.data_type() {
        DataType::Binary => ByteCol::Binary(array.as_binary_opt::<i32>()?.clone()),
        DataType::LargeBinary => ByteCol::LargeBinary(array.as_binary_opt::<i64>()?.clone()),
        DataType::BinaryView => ByteCol::BinaryView(array.as_binary_view_opt()?.clone()),
        DataType::FixedSizeBinary(_) => ByteCol::Fixed(array.as_fixed_size_binary_opt()?.clone()),
        _ => return None,
    })
}

/// Run `f` on every non-null row; null rows get the default value and keep the input's null
/// buffer. Stops at the first error.
fn map_rows<T: ArrowNativeType>(
    array: &dyn Array,
    mut f: impl FnMut(usize) -> Result<T, String>,
) -> Result<ScalarBuffer<T>, PlanError> {
    let nulls = array.logical_nulls();
    let mut values = Vec::with_capacity(array.len());
    for row in 0..array.len() {
        if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
            values.push(T::default());
        } else {
            values.push(f(row).map_err(|reason| cell(row, reason))?);
        }
    }
    Ok(values.into())
}

/// Like [`map_rows`] over a string column, handing `f` the text of each row.
fn map_text<T: ArrowNativeType>(
    array: &dyn Array,
    text: &ByteCol,
    mut f: impl FnMut(&str) -> Result<T, String>,
) -> Result<ScalarBuffer<T>, PlanError> {
    map_text_rows(array, text, |_, s| f(s))
}

fn map_text_rows<T: ArrowNativeType>(
    array: &dyn Array,
    text: &ByteCol,
    mut f: impl FnMut(usize, &str) -> Result<T, String>,
) -> Result<ScalarBuffer<T>, PlanError> {
    map_rows(array, |row| {
        // String layouts hold valid UTF-8; binary layouts never reach here.
        let s = std::str::from_utf8(text.value(row)).map_err(|_| "invalid UTF-8".to_string())?;
        f(row, s)
    })
}

fn writer(array: &dyn Array, cells: Cells) -> ColumnWriter {
    ColumnWriter::new(array.logical_nulls(), cells)
}

/// `array` cast to `to` where Arrow has a lossless cast for the pair.
fn cast_to(array: &dyn Array, to: &DataType) -> Result<ArrayRef, PlanError> {
    if !can_cast_types(array.data_type(), to) {
        return Err(PlanError::Unsupported);
    }
    cast(array, to).map_err(|_| PlanError::Unsupported)
}

fn is_integer(dt: &DataType) -> bool {
    dt.is_integer()
}

fn is_float(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Float16 | DataType::Float32 | DataType::Float64
    )
}

fn is_decimal(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..)
    )
}

// ---------------------------------------------------------------------------------------------
// boolean

fn plan_bool(array: &ArrayRef) -> Plan {
    if let Some(b) = array.as_boolean_opt() {
        return Ok(writer(array, Cells::Bool(b.clone())));
    }
    let text = strings(array).ok_or(PlanError::Unsupported)?;
    let values = map_text(array, &text, parse_bool)?;
    let bits = BooleanBuffer::from_iter(values.iter().map(|&v| v == 1));
    let bools = BooleanArray::new(bits, array.logical_nulls());
    Ok(writer(array, Cells::Bool(bools)))
}

/// PostgreSQL's boolean spellings (without its unique-prefix rule), as 0/1.
fn parse_bool(s: &str) -> Result<u8, String> {
    const TRUE: [&str; 6] = ["t", "true", "y", "yes", "on", "1"];
    const FALSE: [&str; 6] = ["f", "false", "n", "no", "off", "0"];
    let t = s.trim();
    if TRUE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Ok(1)
    } else if FALSE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Ok(0)
    } else {
        Err(format!("{} is not a boolean", quote(s)))
    }
}

// ---------------------------------------------------------------------------------------------
// smallint, integer, bigint

fn plan_int(array: &ArrayRef, ty: &PgType) -> Plan {
    // Same width: no copy.
    match (ty, array.data_type()) {
        (PgType::Int2, DataType::Int16) => {
            return Ok(writer(array, Cells::Int2(primitive::<Int16Type>(array)?)));
        }
        (PgType::Int4, DataType::Int32) => {
            return Ok(writer(array, Cells::Int4(primitive::<Int32Type>(array)?)));
        }
        (PgType::Int8, DataType::Int64) => {
            return Ok(writer(array, Cells::Int8(primitive::<Int64Type>(array)?)));
        }
        _ => {}
    }
    let name = ty.sql();
    let wide = as_i64(array, &name)?;
    let nulls = array.logical_nulls();
    let out_of_range = |v: i64| format!("value {v} out of range for {name}");
    let cells = match ty {
        PgType::Int2 => Cells::Int2(Int16Array::new(
            map_rows(array, |row| {
                i16::try_from(wide[row]).map_err(|_| out_of_range(wide[row]))
            })?,
            nulls,
        )),
        PgType::Int4 => Cells::Int4(Int32Array::new(
            map_rows(array, |row| {
                i32::try_from(wide[row]).map_err(|_| out_of_range(wide[row]))
            })?,
            nulls,
        )),
        _ => Cells::Int8(Int64Array::new(wide, nulls)),
    };
    Ok(writer(array, cells))
}

/// Any integer, decimal with no fractional part, or integer text, as i64 (0 in null rows).
/// `name` is the target type for messages.
fn as_i64(array: &ArrayRef, name: &str) -> Result<ScalarBuffer<i64>, PlanError> {
    let dt = array.data_type();
    if let Some(text) = strings(array) {
        return map_text(array, &text, |s| parse_int(s, name));
    }
    if *dt == DataType::UInt64 {
        let a = primitive::<UInt64Type>(array)?;
        return map_rows(array, |row| {
            let v = a.value(row);
            i64::try_from(v).map_err(|_| format!("value {v} out of range for {name}"))
        });
    }
    if is_integer(dt) {
        // Every other integer type widens to i64 losslessly.
        let wide = cast_to(array, &DataType::Int64)?;
        let a = primitive::<Int64Type>(&wide)?;
        return map_rows(array, |row| Ok(a.value(row)));
    }
    if is_decimal(dt) {
        return decimal_as_i64(array, name);
    }
    Err(PlanError::Unsupported)
}

fn parse_int(s: &str, name: &str) -> Result<i64, String> {
    use std::num::IntErrorKind;
    s.trim().parse::<i64>().map_err(|e| match e.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
            format!("value {} out of range for {name}", quote(s))
        }
        _ => format!("{} is not an integer", quote(s)),
    })
}

fn decimal_as_i64(array: &ArrayRef, name: &str) -> Result<ScalarBuffer<i64>, PlanError> {
    let (precision, scale) = match array.data_type() {
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) => {
            (*p, *s)
        }
        _ => return Err(PlanError::Unsupported),
    };
    let wide = cast_to(array, &DataType::Decimal128(precision.max(1), scale))?;
    let a = primitive::<Decimal128Type>(&wide)?;
    let factor = 10i128
        .checked_pow(u32::from(scale.unsigned_abs()))
        .ok_or(PlanError::Unsupported)?;
    map_rows(array, |row| {
        let v = a.value(row);
        let integral = if scale >= 0 {
            if v % factor != 0 {
                return Err(format!(
                    "value {} has a fractional part; {name} needs an integer",
                    display(array, row)
                ));
            }
            Some(v / factor)
        } else {
            v.checked_mul(factor)
        };
        integral
            .and_then(|i| i64::try_from(i).ok())
            .ok_or_else(|| format!("value {} out of range for {name}", display(array, row)))
    })
}

// ---------------------------------------------------------------------------------------------
// real, double precision

fn plan_float(array: &ArrayRef, ty: &PgType) -> Plan {
    let single = *ty == PgType::Float4;
    match array.data_type() {
        DataType::Float32 if single => {
            return Ok(writer(
                array,
                Cells::Float4(primitive::<Float32Type>(array)?),
            ));
        }
        DataType::Float64 if !single => {
            return Ok(writer(
                array,
                Cells::Float8(primitive::<Float64Type>(array)?),
            ));
        }
        _ => {}
    }
    let doubles = as_f64(array)?;
    let nulls = array.logical_nulls();
    if !single {
        return Ok(writer(
            array,
            Cells::Float8(Float64Array::new(doubles, nulls)),
        ));
    }
    let singles = map_rows(array, |row| {
        let v = doubles[row];
        let f = v as f32;
        // Like PostgreSQL's float8 → float4, a finite value that does not fit is an error.
        if f.is_infinite() && v.is_finite() {
            Err(format!("value {v} out of range for real"))
        } else {
            Ok(f)
        }
    })?;
    Ok(writer(
        array,
        Cells::Float4(Float32Array::new(singles, nulls)),
    ))
}

/// Any float, integer, decimal or number text as f64.
fn as_f64(array: &ArrayRef) -> Result<ScalarBuffer<f64>, PlanError> {
    if let Some(text) = strings(array) {
        return map_text(array, &text, |s| {
            s.trim()
                .parse::<f64>()
                .map_err(|_| format!("{} is not a number", quote(s)))
        });
    }
    let dt = array.data_type();
    if !(is_float(dt) || is_integer(dt) || is_decimal(dt) || matches!(dt, DataType::Decimal256(..)))
    {
        return Err(PlanError::Unsupported);
    }
    let doubles = cast_to(array, &DataType::Float64)?;
    Ok(primitive::<Float64Type>(&doubles)?.values().clone())
}

// ---------------------------------------------------------------------------------------------
// numeric

fn plan_numeric(array: &ArrayRef, target: NumericTarget) -> Plan {
    let dt = array.data_type();
    let col = match dt {
        DataType::Decimal128(_, scale) => NumericCol::Decimal128 {
            array: primitive::<Decimal128Type>(array)?,
            scale: *scale,
        },
        DataType::Decimal32(p, scale) | DataType::Decimal64(p, scale) => {
            let wide = cast_to(array, &DataType::Decimal128(*p, *scale))?;
            NumericCol::Decimal128 {
                array: primitive::<Decimal128Type>(&wide)?,
                scale: *scale,
            }
        }
        DataType::Decimal256(_, scale) => NumericCol::Decimal256 {
            array: primitive::<Decimal256Type>(array)?,
            scale: *scale,
        },
        DataType::Float16 | DataType::Float32 => {
            let singles = cast_to(array, &DataType::Float32)?;
            NumericCol::Float32(primitive::<Float32Type>(&singles)?)
        }
        DataType::Float64 => NumericCol::Float64(primitive::<Float64Type>(array)?),
        dt if is_integer(dt) => {
            // u64::MAX has 20 digits: every integer fits Decimal128(38, 0).
            let wide = cast_to(array, &DataType::Decimal128(38, 0))?;
            NumericCol::Decimal128 {
                array: primitive::<Decimal128Type>(&wide)?,
                scale: 0,
            }
        }
        _ => NumericCol::Text(strings(array).ok_or(PlanError::Unsupported)?),
    };
    Ok(writer(array, Cells::Numeric(col, target)))
}

// ---------------------------------------------------------------------------------------------
// text, character varying

fn plan_text(array: &ArrayRef, limit: Option<u32>) -> Plan {
    let text = match strings(array) {
        Some(text) => text,
        None => strings(&*to_text(array)?).ok_or(PlanError::Unsupported)?,
    };
    check_text(array, &text)?;
    if let Some(limit) = limit {
        check_length(array, &text, limit)?;
    }
    Ok(writer(array, Cells::Bytes(text)))
}

/// Any other Arrow type as its canonical text (dates `YYYY-MM-DD`, timestamps ISO 8601,
/// decimals at their scale). Binary must be valid UTF-8.
fn to_text(array: &ArrayRef) -> Result<ArrayRef, PlanError> {
    let text = cast_to(array, &DataType::Utf8)?;
    // A safe cast turns unconvertible values (invalid UTF-8) into NULL: find the first one.
    let lost = (0..array.len()).find(|&row| array.is_valid(row) && text.is_null(row));
    match lost {
        Some(row) => Err(cell(
            row,
            format!(
                "value {} is not valid UTF-8 text",
                display(array.as_ref(), row)
            ),
        )),
        None => Ok(text),
    }
}

/// PostgreSQL text can hold neither NUL bytes nor fields of 1 GB.
fn check_text(array: &dyn Array, text: &ByteCol) -> Result<(), PlanError> {
    check_field_sizes(array, text)?;
    let may_have_nul = match text {
        // One memchr over the whole value buffer clears the common case.
        ByteCol::Utf8(a) => a.value_data().contains(&0),
        ByteCol::LargeUtf8(a) => a.value_data().contains(&0),
        _ => true,
    };
    if !may_have_nul {
        return Ok(());
    }
    map_rows(array, |row| {
        if text.value(row).contains(&0) {
            Err(format!(
                "text {} contains a NUL byte, which PostgreSQL text cannot store",
                quote_bytes(text.value(row))
            ))
        } else {
            Ok(0u8)
        }
    })
    .map(|_| ())
}

fn check_field_sizes(array: &dyn Array, bytes: &ByteCol) -> Result<(), PlanError> {
    // No single value can be longer than all of them together.
    if bytes.data_len() <= MAX_FIELD_BYTES {
        return Ok(());
    }
    map_rows(array, |row| {
        let len = bytes.value(row).len();
        if len > MAX_FIELD_BYTES {
            Err(format!(
                "value of {len} bytes exceeds PostgreSQL's 1 GB field limit"
            ))
        } else {
            Ok(0u8)
        }
    })
    .map(|_| ())
}

/// `character varying(n)` counts characters. Like PostgreSQL, a longer value is accepted when
/// everything past the limit is spaces (PostgreSQL then drops them).
fn check_length(array: &dyn Array, text: &ByteCol, limit: u32) -> Result<(), PlanError> {
    let limit = limit as usize;
    map_rows(array, |row| {
        let bytes = text.value(row);
        // A character is at least one byte: short values need no counting.
        if bytes.len() <= limit {
            return Ok(0u8);
        }
        let s = String::from_utf8_lossy(bytes);
        let chars = s.chars().count();
        if chars <= limit || s.chars().skip(limit).all(|c| c == ' ') {
            return Ok(0u8);
        }
        Err(format!(
            "value {} is {chars} characters, longer than character varying({limit})",
            quote(&s)
        ))
    })
    .map(|_| ())
}

// ---------------------------------------------------------------------------------------------
// json, jsonb

fn plan_json(array: &ArrayRef, binary: bool) -> Plan {
    let text = match strings(array).or_else(|| binaries(array)) {
        Some(text) => {
            validate_json(array, &text, binary)?;
            text
        }
        None => encode_json(array)?,
    };
    check_text(array, &text)?;
    let cells = if binary {
        Cells::Jsonb(text)
    } else {
        Cells::Bytes(text)
    };
    Ok(writer(array, cells))
}

/// Syntax check with serde_json (which skips over numbers without converting them, so
/// `1e400` passes as it does in PostgreSQL). jsonb also refuses the escape `\u0000`.
fn validate_json(array: &dyn Array, text: &ByteCol, binary: bool) -> Result<(), PlanError> {
    map_rows(array, |row| {
        let bytes = text.value(row);
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            return Err(format!("invalid JSON {} ({e})", quote_bytes(bytes)));
        }
        if binary && has_nul_escape(bytes) {
            return Err(format!(
                "JSON {} contains \\u0000, which jsonb cannot store",
                quote_bytes(bytes)
            ));
        }
        Ok(0u8)
    })
    .map(|_| ())
}

/// Whether JSON text contains the escape `\u0000` (not an escaped backslash followed by
/// `u0000`).
fn has_nul_escape(json: &[u8]) -> bool {
    let mut i = 0;
    while let Some(offset) = json[i..].iter().position(|&b| b == b'\\') {
        let at = i + offset;
        if json.get(at + 1..at + 6) == Some(&b"u0000"[..]) {
            return true;
        }
        // Skip the escaped character, which may itself be a backslash.
        i = at + 2;
        if i >= json.len() {
            return false;
        }
    }
    false
}

/// Structs, lists, maps, numbers… written as JSON by arrow's JSON writer.
fn encode_json(array: &ArrayRef) -> Result<ByteCol, PlanError> {
    let field = Arc::new(Field::new("value", array.data_type().clone(), true));
    let options = EncoderOptions::default().with_explicit_nulls(true);
    let mut encoder =
        make_encoder(&field, array.as_ref(), &options).map_err(|_| PlanError::Unsupported)?;
    let mut builder = BinaryBuilder::with_capacity(array.len(), array.len() * 16);
    let mut buf = Vec::new();
    for row in 0..array.len() {
        if encoder.is_null(row) {
            builder.append_null();
        } else {
            buf.clear();
            encoder.encode(row, &mut buf);
            builder.append_value(&buf);
        }
    }
    Ok(ByteCol::Binary(builder.finish()))
}

// ---------------------------------------------------------------------------------------------
// bytea, uuid

fn plan_bytea(array: &ArrayRef) -> Plan {
    let bytes = binaries(array)
        .or_else(|| strings(array))
        .ok_or(PlanError::Unsupported)?;
    check_field_sizes(array.as_ref(), &bytes)?;
    Ok(writer(array, Cells::Bytes(bytes)))
}

fn plan_uuid(array: &ArrayRef) -> Plan {
    if let DataType::FixedSizeBinary(16) = array.data_type() {
        let bytes = binaries(array).ok_or(PlanError::Unsupported)?;
        return Ok(writer(array, Cells::Bytes(bytes)));
    }
    let text = strings(array).ok_or(PlanError::Unsupported)?;
    let mut raw = vec![0u8; array.len() * 16];
    map_text_rows(array, &text, |row, s| {
        let uuid = parse_uuid(s).ok_or_else(|| format!("{} is not a UUID", quote(s)))?;
        raw[row * 16..(row + 1) * 16].copy_from_slice(&uuid.to_be_bytes());
        Ok(0u8)
    })?;
    let fixed = FixedSizeBinaryArray::new(16, Buffer::from_vec(raw), array.logical_nulls());
    Ok(writer(array, Cells::Bytes(ByteCol::Fixed(fixed))))
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, 32 bare hex digits, optionally in braces.
fn parse_uuid(s: &str) -> Option<u128> {
    let t = s.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(t);
    let hyphens_ok = match t.len() {
        36 => t
            .char_indices()
            .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-')),
        32 => true,
        _ => false,
    };
    if !hyphens_ok {
        return None;
    }
    let mut v: u128 = 0;
    for c in t.chars().filter(|&c| c != '-') {
        v = (v << 4) | u128::from(c.to_digit(16)?);
    }
    Some(v)
}

// ---------------------------------------------------------------------------------------------
// date, time, timestamp, timestamptz

fn plan_date(array: &ArrayRef, tz: &Tz) -> Plan {
    let out_of_range = |row| {
        format!(
            "value {} out of range for date",
            display(array.as_ref(), row)
        )
    };
    let to_pg = |row, days: Option<i64>| {
        days.and_then(temporal::unix_days_to_pg)
            .ok_or_else(|| out_of_range(row))
    };
    let days = match array.data_type() {
        DataType::Date32 => {
            let a = primitive::<Date32Type>(array)?;
            map_rows(array, |row| to_pg(row, Some(i64::from(a.value(row)))))?
        }
        DataType::Date64 => {
            let a = primitive::<Date64Type>(array)?;
            map_rows(array, |row| {
                to_pg(row, Some(a.value(row).div_euclid(86_400_000)))
            })?
        }
        DataType::Timestamp(unit, zone) => {
            // A zoned timestamp is an instant: its date is the date on the `tz` wall clock,
            // the same date the `timestamp` conversion below would show.
            let micros = timestamp_micros(array, *unit)?;
            let zoned = zone.is_some();
            map_rows(array, |row| {
                let wall = if zoned {
                    micros[row].and_then(|m| temporal::instant_to_wall(m, tz))
                } else {
                    micros[row]
                };
                to_pg(row, wall.map(|m| m.div_euclid(MICROS_PER_DAY)))
            })?
        }
        _ => {
            let text = strings(array).ok_or(PlanError::Unsupported)?;
            map_text(array, &text, |s| {
                temporal::parse_date(s)
                    .and_then(temporal::unix_days_to_pg)
                    .ok_or_else(|| format!("{} is not a date (expected YYYY-MM-DD)", quote(s)))
            })?
        }
    };
    Ok(writer(
        array,
        Cells::Date(Int32Array::new(days, array.logical_nulls())),
    ))
}

fn plan_time(array: &ArrayRef) -> Plan {
    let raw: Vec<Option<i64>> = match array.data_type() {
        DataType::Time32(TimeUnit::Second) => {
            let a = primitive::<Time32SecondType>(array)?;
            a.values()
                .iter()
                .map(|&v| Some(i64::from(v) * 1_000_000))
                .collect()
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            let a = primitive::<Time32MillisecondType>(array)?;
            a.values()
                .iter()
                .map(|&v| Some(i64::from(v) * 1_000))
                .collect()
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            let a = primitive::<Time64MicrosecondType>(array)?;
            a.values().iter().map(|&v| Some(v)).collect()
        }
        DataType::Time64(TimeUnit::Nanosecond) => {
            let a = primitive::<Time64NanosecondType>(array)?;
            a.values()
                .iter()
                .map(|&v| temporal::to_micros(v, TimeUnit::Nanosecond))
                .collect()
        }
        _ => {
            let text = strings(array).ok_or(PlanError::Unsupported)?;
            let micros = map_text(array, &text, |s| {
                temporal::parse_time(s).ok_or_else(|| {
                    format!("{} is not a time (expected HH:MM[:SS[.ffffff]])", quote(s))
                })
            })?;
            return Ok(writer(
                array,
                Cells::Micros(Int64Array::new(micros, array.logical_nulls())),
            ));
        }
    };
    let micros = map_rows(array, |row| {
        raw[row]
            .filter(|m| (0..=MICROS_PER_DAY).contains(m))
            .ok_or_else(|| {
                format!(
                    "value {} out of range for time",
                    display(array.as_ref(), row)
                )
            })
    })?;
    Ok(writer(
        array,
        Cells::Micros(Int64Array::new(micros, array.logical_nulls())),
    ))
}

/// A timestamp column's values as µs since 1970 (`None` where the unit conversion overflows).
fn timestamp_micros(array: &dyn Array, unit: TimeUnit) -> Result<Vec<Option<i64>>, PlanError> {
    fn convert<T: ArrowPrimitiveType<Native = i64>>(
        array: &dyn Array,
        unit: TimeUnit,
    ) -> Result<Vec<Option<i64>>, PlanError> {
        let a = primitive::<T>(array)?;
        Ok(a.values()
            .iter()
            .map(|&v| temporal::to_micros(v, unit))
            .collect())
    }
    match unit {
        TimeUnit::Second => convert::<TimestampSecondType>(array, unit),
        TimeUnit::Millisecond => convert::<TimestampMillisecondType>(array, unit),
        TimeUnit::Microsecond => convert::<TimestampMicrosecondType>(array, unit),
        TimeUnit::Nanosecond => convert::<TimestampNanosecondType>(array, unit),
    }
}

/// `timestamp` (`zoned_target` false) keeps wall-clock times and shows instants on the `tz`
/// wall clock; `timestamptz` keeps instants and reads wall-clock times in `tz`.
fn plan_timestamp(array: &ArrayRef, tz: &Tz, zoned_target: bool) -> Plan {
    let target = if zoned_target {
        "timestamp with time zone"
    } else {
        "timestamp without time zone"
    };
    // (µs since 1970, whether that is an instant rather than a wall-clock time)
    let resolve = |micros: Option<i64>, instant: bool| -> Option<i64> {
        let micros = micros?;
        let unix = match (instant, zoned_target) {
            (true, true) | (false, false) => micros,
            (true, false) => temporal::instant_to_wall(micros, tz)?,
            (false, true) => temporal::wall_to_instant(micros, tz)?,
        };
        temporal::unix_micros_to_pg(unix)
    };
    let out_of_range = |row| {
        format!(
            "value {} out of range for {target}",
            display(array.as_ref(), row)
        )
    };
    let micros = match array.data_type() {
        DataType::Timestamp(unit, zone) => {
            let raw = timestamp_micros(array, *unit)?;
            let instant = zone.is_some();
            map_rows(array, |row| {
                resolve(raw[row], instant).ok_or_else(|| out_of_range(row))
            })?
        }
        DataType::Date32 => {
            let a = primitive::<Date32Type>(array)?;
            map_rows(array, |row| {
                let wall = i64::from(a.value(row)).checked_mul(MICROS_PER_DAY);
                resolve(wall, false).ok_or_else(|| out_of_range(row))
            })?
        }
        DataType::Date64 => {
            let a = primitive::<Date64Type>(array)?;
            map_rows(array, |row| {
                let wall = temporal::to_micros(a.value(row), TimeUnit::Millisecond);
                resolve(wall, false).ok_or_else(|| out_of_range(row))
            })?
        }
        _ => {
            let text = strings(array).ok_or(PlanError::Unsupported)?;
            map_text(array, &text, |s| {
                let parsed = temporal::parse_timestamp(s).ok_or_else(|| {
                    format!(
                        "{} is not a timestamp (expected YYYY-MM-DD[ HH:MM:SS[.ffffff]][Z|±HH[:MM]])",
                        quote(s)
                    )
                })?;
                let value = match parsed.offset_seconds {
                    Some(_) => resolve(parsed.instant(), true),
                    None => resolve(Some(parsed.wall_micros), false),
                };
                value.ok_or_else(|| format!("value {} out of range for {target}", quote(s)))
            })?
        }
    };
    Ok(writer(
        array,
        Cells::Micros(Int64Array::new(micros, array.logical_nulls())),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text() {
        let want = 0x123e4567_e89b_12d3_a456_426614174000u128;
        assert_eq!(
            parse_uuid("123e4567-e89b-12d3-a456-426614174000"),
            Some(want)
        );
        assert_eq!(
            parse_uuid("{123E4567-E89B-12D3-A456-426614174000}"),
            Some(want)
        );
        assert_eq!(parse_uuid("123e4567e89b12d3a456426614174000"), Some(want));
        assert_eq!(parse_uuid("123e4567-e89b-12d3-a456-42661417400"), None);
        assert_eq!(parse_uuid("123e4567-e89b-12d3-a456_426614174000"), None);
        assert_eq!(parse_uuid("123e4567-e89b-12d3-a456-42661417400g"), None);
        assert_eq!(parse_uuid("ñ23e4567-e89b-12d3-a456-42661417400"), None);
    }

    #[test]
    fn bool_text() {
        for (s, want) in [
            ("t", 1),
            (" TRUE ", 1),
            ("yes", 1),
            ("1", 1),
            ("off", 0),
            ("F", 0),
        ] {
            assert_eq!(parse_bool(s), Ok(want), "{s}");
        }
        assert_eq!(
            parse_bool("maybe"),
            Err("\"maybe\" is not a boolean".into())
        );
    }

    #[test]
    fn finds_nul_escapes_only() {
        assert!(has_nul_escape(br#""\u0000""#));
        assert!(has_nul_escape(br#""a\\\u0000""#));
        assert!(!has_nul_escape(br#""\\u0000""#));
        assert!(!has_nul_escape(br#""\u0001\\""#));
        assert!(!has_nul_escape(b"\\"));
    }

    #[test]
    fn quotes_cut_long_text() {
        assert_eq!(quote("12a"), "\"12a\"");
        let long = "ñ".repeat(100);
        assert_eq!(quote(&long), format!("\"{}\"…", "ñ".repeat(80)));
    }
}
