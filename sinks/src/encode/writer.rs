//! Per-cell writers: each target column of a batch becomes one [`ColumnWriter`] holding an
//! already converted, concretely typed Arrow array, so the row loop only copies bytes.

use arrow::array::{
    Array, BinaryArray, BinaryViewArray, BooleanArray, Decimal128Array, Decimal256Array,
    FixedSizeBinaryArray, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array,
    LargeBinaryArray, LargeStringArray, StringArray, StringViewArray,
};
use arrow::buffer::NullBuffer;
use bytes::{BufMut, BytesMut};
use std::fmt::Write as _;

use super::numeric::{self, NumericError, NumericTarget, ParsedDecimal};

/// Variable-length bytes, in any of Arrow's string/binary layouts.
#[derive(Debug, Clone)]
pub(super) enum ByteCol {
    Utf8(StringArray),
    LargeUtf8(LargeStringArray),
    Utf8View(StringViewArray),
    Binary(BinaryArray),
    LargeBinary(LargeBinaryArray),
    BinaryView(BinaryViewArray),
    Fixed(FixedSizeBinaryArray),
}

impl ByteCol {
    #[inline]
    pub fn value(&self, row: usize) -> &[u8] {
        match self {
            ByteCol::Utf8(a) => a.value(row).as_bytes(),
            ByteCol::LargeUtf8(a) => a.value(row).as_bytes(),
            ByteCol::Utf8View(a) => a.value(row).as_bytes(),
            ByteCol::Binary(a) => a.value(row),
            ByteCol::LargeBinary(a) => a.value(row),
            ByteCol::BinaryView(a) => a.value(row),
            ByteCol::Fixed(a) => a.value(row),
        }
    }

    fn array(&self) -> &dyn Array {
        match self {
            ByteCol::Utf8(a) => a,
            ByteCol::LargeUtf8(a) => a,
            ByteCol::Utf8View(a) => a,
            ByteCol::Binary(a) => a,
            ByteCol::LargeBinary(a) => a,
            ByteCol::BinaryView(a) => a,
            ByteCol::Fixed(a) => a,
        }
    }

    /// Bytes of all values of this (possibly sliced) column.
    pub fn data_len(&self) -> usize {
        fn span<O: arrow::array::OffsetSizeTrait>(offsets: &[O]) -> usize {
            match (offsets.first(), offsets.last()) {
                (Some(first), Some(last)) => (last.as_usize()).saturating_sub(first.as_usize()),
                _ => 0,
            }
        }
        match self {
            ByteCol::Utf8(a) => span(a.value_offsets()),
            ByteCol::LargeUtf8(a) => span(a.value_offsets()),
            ByteCol::Binary(a) => span(a.value_offsets()),
            ByteCol::LargeBinary(a) => span(a.value_offsets()),
            ByteCol::Fixed(a) => a.len() * a.value_length().max(0) as usize,
            ByteCol::Utf8View(a) => a.total_bytes_len(),
            ByteCol::BinaryView(a) => a.total_bytes_len(),
        }
    }
}

/// Sources of `numeric` values; all decoded exactly (see `numeric.rs`).
#[derive(Debug, Clone)]
pub(super) enum NumericCol {
    Decimal128 { array: Decimal128Array, scale: i8 },
    Decimal256 { array: Decimal256Array, scale: i8 },
    Text(ByteCol),
    Float32(Float32Array),
    Float64(Float64Array),
}

/// What to write for each non-null cell of one column.
#[derive(Debug, Clone)]
pub(super) enum Cells {
    /// Every cell is NULL (an Arrow `Null` column).
    AllNull,
    Bool(BooleanArray),
    Int2(Int16Array),
    Int4(Int32Array),
    Int8(Int64Array),
    Float4(Float32Array),
    Float8(Float64Array),
    /// PostgreSQL days since 2000-01-01.
    Date(Int32Array),
    /// PostgreSQL µs (`time`, `timestamp`, `timestamptz`), already converted.
    Micros(Int64Array),
    /// Raw bytes: text, varchar, json, bytea, uuid.
    Bytes(ByteCol),
    /// jsonb: version byte 1, then the JSON text.
    Jsonb(ByteCol),
    Numeric(NumericCol, NumericTarget),
}

/// One target column, ready to write.
#[derive(Debug, Clone)]
pub(super) struct ColumnWriter {
    nulls: Option<NullBuffer>,
    cells: Cells,
}

/// Reusable buffers for the few conversions that need text (decimal strings, floats, wide
/// decimals), so no cell allocates once they have grown.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    digits: Vec<u8>,
    text: String,
}

impl ColumnWriter {
    pub fn new(nulls: Option<NullBuffer>, cells: Cells) -> Self {
        // A null buffer without nulls costs a bit test per cell for nothing.
        let nulls = nulls.filter(|n| n.null_count() > 0);
        ColumnWriter { nulls, cells }
    }

    /// Visit `rows` cells of a date or timestamp column as PostgreSQL stores them (days, or µs,
    /// since 2000-01-01; `None` for NULL). Returns false, visiting nothing, for other columns.
    pub fn visit_temporal(&self, rows: usize, mut visit: impl FnMut(Option<i64>)) -> bool {
        let (days, micros) = match &self.cells {
            Cells::Date(a) => (Some(a.values()), None),
            Cells::Micros(a) => (None, Some(a.values())),
            Cells::AllNull => (None, None),
            _ => return false,
        };
        for row in 0..rows {
            let null = self.nulls.as_ref().is_some_and(|n| n.is_null(row));
            visit(match (null, days, micros) {
                (false, Some(d), _) => Some(i64::from(d[row])),
                (false, _, Some(m)) => Some(m[row]),
                _ => None,
            });
        }
        true
    }

    /// Bytes this column adds to the output for `rows` rows (a lower bound for numerics).
    pub fn size_hint(&self, rows: usize) -> usize {
        let per_row = match &self.cells {
            Cells::AllNull => 0,
            Cells::Bool(_) => 1,
            Cells::Int2(_) => 2,
            Cells::Int4(_) | Cells::Float4(_) | Cells::Date(_) => 4,
            Cells::Int8(_) | Cells::Float8(_) | Cells::Micros(_) => 8,
            Cells::Numeric(..) => 16,
            Cells::Bytes(b) => return rows * 4 + b.data_len(),
            Cells::Jsonb(b) => return rows * 5 + b.data_len(),
        };
        rows * (4 + per_row)
    }

    /// Append the field for `row` (length prefix included). The only failures are values a
    /// `numeric` column cannot take (checking them column-wise first would mean decoding every
    /// decimal twice).
    #[inline]
    pub fn write(
        &self,
        row: usize,
        out: &mut BytesMut,
        scratch: &mut Scratch,
    ) -> Result<(), NumericError> {
        if self.nulls.as_ref().is_some_and(|n| n.is_null(row)) {
            out.put_i32(-1);
            return Ok(());
        }
        match &self.cells {
            Cells::AllNull => out.put_i32(-1),
            Cells::Bool(a) => {
                out.put_i32(1);
                out.put_u8(u8::from(a.value(row)));
            }
            Cells::Int2(a) => {
                out.put_i32(2);
                out.put_i16(a.values()[row]);
            }
            Cells::Int4(a) => {
                out.put_i32(4);
                out.put_i32(a.values()[row]);
            }
            Cells::Int8(a) => {
                out.put_i32(8);
                out.put_i64(a.values()[row]);
            }
            Cells::Float4(a) => {
                out.put_i32(4);
                out.put_f32(a.values()[row]);
            }
            Cells::Float8(a) => {
                out.put_i32(8);
                out.put_f64(a.values()[row]);
            }
            Cells::Date(a) => {
                out.put_i32(4);
                out.put_i32(a.values()[row]);
            }
            Cells::Micros(a) => {
                out.put_i32(8);
                out.put_i64(a.values()[row]);
            }
            Cells::Bytes(b) => put_bytes(out, b.value(row)),
            Cells::Jsonb(b) => {
                let text = b.value(row);
                // Lengths were checked to fit an i32 when the column was prepared.
                out.put_i32(text.len() as i32 + 1);
                out.put_u8(1);
                out.put_slice(text);
            }
            Cells::Numeric(col, target) => write_numeric(col, *target, row, out, scratch)?,
        }
        Ok(())
    }

    /// The array a `numeric` cell came from, for error messages.
    pub fn numeric_source(&self) -> Option<&dyn Array> {
        match &self.cells {
            Cells::Numeric(NumericCol::Decimal128 { array, .. }, _) => Some(array),
            Cells::Numeric(NumericCol::Decimal256 { array, .. }, _) => Some(array),
            Cells::Numeric(NumericCol::Float32(a), _) => Some(a),
            Cells::Numeric(NumericCol::Float64(a), _) => Some(a),
            Cells::Numeric(NumericCol::Text(b), _) => Some(b.array()),
            _ => None,
        }
    }
}

#[inline]
fn put_bytes(out: &mut BytesMut, bytes: &[u8]) {
    // Lengths were checked to fit an i32 when the column was prepared.
    out.put_i32(bytes.len() as i32);
    out.put_slice(bytes);
}

fn write_numeric(
    col: &NumericCol,
    target: NumericTarget,
    row: usize,
    out: &mut BytesMut,
    scratch: &mut Scratch,
) -> Result<(), NumericError> {
    match col {
        NumericCol::Decimal128 { array, scale } => {
            let v = array.values()[row];
            numeric::write_u128(out, v < 0, v.unsigned_abs(), i64::from(*scale), target)
        }
        NumericCol::Decimal256 { array, scale } => {
            let v = array.values()[row];
            match v.to_i128() {
                Some(small) => numeric::write_u128(
                    out,
                    small < 0,
                    small.unsigned_abs(),
                    i64::from(*scale),
                    target,
                ),
                None => {
                    scratch.text.clear();
                    // Writing to a String cannot fail.
                    let _ = write!(scratch.text, "{v}e{}", -i64::from(*scale));
                    write_decimal_text(scratch.text.as_bytes(), target, out, &mut scratch.digits)
                }
            }
        }
        NumericCol::Float32(a) => write_float(a.values()[row], target, out, scratch),
        NumericCol::Float64(a) => write_float(a.values()[row], target, out, scratch),
        NumericCol::Text(b) => write_decimal_text(b.value(row), target, out, &mut scratch.digits),
    }
}

/// A float goes through its shortest round-trip decimal text (Rust's `Display` never uses an
/// exponent), i.e. the decimal the float was written from, not its binary expansion.
fn write_float<F: std::fmt::Display>(
    value: F,
    target: NumericTarget,
    out: &mut BytesMut,
    scratch: &mut Scratch,
) -> Result<(), NumericError> {
    scratch.text.clear();
    let _ = write!(scratch.text, "{value}");
    write_decimal_text(scratch.text.as_bytes(), target, out, &mut scratch.digits)
}

fn write_decimal_text(
    text: &[u8],
    target: NumericTarget,
    out: &mut BytesMut,
    digits: &mut Vec<u8>,
) -> Result<(), NumericError> {
    match numeric::parse_decimal(text, digits) {
        Some(ParsedDecimal::Finite { negative, scale }) => {
            numeric::write_numeric(out, negative, digits, scale, target)
        }
        Some(ParsedDecimal::NaN | ParsedDecimal::PosInf | ParsedDecimal::NegInf) => {
            Err(NumericError::NotFinite)
        }
        None => Err(NumericError::Invalid),
    }
}
