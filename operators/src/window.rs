//! Incremental windows over Arrow data: the half-open window `lower <= column < upper` a run
//! reads, and how incremental values ([`pulso_types::IncValue`], the one type shared with the sink
//! and the CLI) meet Arrow types and DataFusion literals.
//!
//! The three types mirror BigQuery's: DATE, zone-less DATETIME (a wall-clock reading, in Pulso
//! America/Lima local time) and TIMESTAMP (an instant). They never mix implicitly: comparing a
//! wall-clock column with an instant needs a time zone, and guessing one is how Pulso-Back shifted
//! windows by five hours (weaknesses W-09, W-36). [`crate::transform`] rejects such pairs.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use chrono::{DateTime, Utc};
use datafusion::scalar::ScalarValue;
use pulso_types::{IncType, IncValue, ValueError};

use crate::OperatorError;

/// The Arrow type of `ty`'s values (and of [`scalar`]).
pub fn arrow_type(ty: IncType) -> DataType {
    match ty {
        IncType::Date => DataType::Date32,
        IncType::Datetime => DataType::Timestamp(TimeUnit::Microsecond, None),
        IncType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
    }
}

/// The incremental type that matches an Arrow column type without any time-zone assumption,
/// if there is one (Date32/Date64 → date, zone-less timestamp → datetime, zoned → timestamp).
/// Text columns have no natural type: the pipeline must declare it.
pub fn natural_type(data_type: &DataType) -> Option<IncType> {
    match data_type {
        DataType::Date32 | DataType::Date64 => Some(IncType::Date),
        DataType::Timestamp(_, None) => Some(IncType::Datetime),
        DataType::Timestamp(_, Some(_)) => Some(IncType::Timestamp),
        _ => None,
    }
}

/// The DataFusion literal of a value: Date32, TimestampMicrosecond(None) or
/// TimestampMicrosecond(Some("UTC")).
pub fn scalar(v: &IncValue) -> ScalarValue {
    match v {
        IncValue::Date(d) => ScalarValue::Date32(Some(Date32Type::from_naive_date(*d))),
        IncValue::Datetime(dt) => {
            ScalarValue::TimestampMicrosecond(Some(dt.and_utc().timestamp_micros()), None)
        }
        IncValue::Timestamp(ts) => {
            ScalarValue::TimestampMicrosecond(Some(ts.timestamp_micros()), Some(Arc::from("UTC")))
        }
    }
}

/// Reads a non-null cell of an Arrow array as an incremental value of type `ty`, when the
/// array's type is the natural Arrow type of `ty` (see [`natural_type`]) or text (parsed with
/// [`IncValue::parse`]). Returns `Ok(None)` for a null cell.
pub fn value_at(
    array: &dyn Array,
    row: usize,
    ty: IncType,
) -> Result<Option<IncValue>, OperatorError> {
    if array.is_null(row) {
        return Ok(None);
    }
    let mismatch = || ValueError {
        ty,
        value: format!("<{} cell>", array.data_type()),
        reason: format!(
            "a {} column cannot hold {ty} values without a time-zone assumption",
            array.data_type()
        ),
    };
    let value = match (array.data_type(), ty) {
        (DataType::Date32, IncType::Date) => {
            let days = array.as_primitive::<Date32Type>().value(row);
            IncValue::Date(Date32Type::to_naive_date_opt(days).ok_or_else(mismatch)?)
        }
        (DataType::Date64, IncType::Date) => {
            let ms = array.as_primitive::<Date64Type>().value(row);
            IncValue::Date(Date64Type::to_naive_date_opt(ms).ok_or_else(mismatch)?)
        }
        (DataType::Timestamp(unit, tz), IncType::Datetime | IncType::Timestamp) => {
            if tz.is_some() != (ty == IncType::Timestamp) {
                return Err(mismatch().into());
            }
            let micros = timestamp_micros(array, row, *unit);
            let ts = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(mismatch)?;
            match ty {
                IncType::Timestamp => IncValue::Timestamp(ts),
                _ => IncValue::Datetime(ts.naive_utc()),
            }
        }
        (DataType::Utf8, _) => IncValue::parse(ty, array.as_string::<i32>().value(row))?,
        (DataType::LargeUtf8, _) => IncValue::parse(ty, array.as_string::<i64>().value(row))?,
        (DataType::Utf8View, _) => IncValue::parse(ty, array.as_string_view().value(row))?,
        _ => return Err(mismatch().into()),
    };
    Ok(Some(value))
}

/// The largest non-null value of a column, read as type `ty` (see [`value_at`]).
pub fn max_value(array: &ArrayRef, ty: IncType) -> Result<Option<IncValue>, OperatorError> {
    let mut best: Option<IncValue> = None;
    // Text has to be parsed anyway; for typed columns let Arrow find the position of the max.
    if matches!(
        array.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        for row in 0..array.len() {
            if let Some(v) = value_at(array.as_ref(), row, ty)?
                && best.as_ref().is_none_or(|b| v > *b)
            {
                best = Some(v);
            }
        }
        return Ok(best);
    }
    let as_i64 = arrow::compute::cast(array, &DataType::Int64)?;
    let ints = as_i64.as_primitive::<arrow::datatypes::Int64Type>();
    let Some(max) = arrow::compute::max(ints) else {
        return Ok(None);
    };
    let row = ints
        .iter()
        .position(|v| v == Some(max))
        .ok_or_else(|| OperatorError::spec("watermark", "maximum not found"))?;
    value_at(array.as_ref(), row, ty)
}

fn timestamp_micros(array: &dyn Array, row: usize, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => array
            .as_primitive::<TimestampSecondType>()
            .value(row)
            .saturating_mul(1_000_000),
        TimeUnit::Millisecond => array
            .as_primitive::<TimestampMillisecondType>()
            .value(row)
            .saturating_mul(1_000),
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
        // Floor, not truncation toward zero, so that pre-1970 values stay ordered.
        TimeUnit::Nanosecond => array
            .as_primitive::<TimestampNanosecondType>()
            .value(row)
            .div_euclid(1_000),
    }
}

/// The window a run reads: rows with `lower <= column` (inclusive) and `column < upper`
/// (exclusive), and rows whose column is NULL (no value says they were read before); `None`
/// leaves that side unbounded.
///
/// The column is the *output* column of the transform (after `derive`), i.e. the same column the
/// sink derives the new watermark from.
#[derive(Debug, Clone)]
pub struct Window {
    pub column: String,
    pub ty: IncType,
    pub lower: Option<IncValue>,
    pub upper: Option<IncValue>,
}

impl Window {
    /// Checks that the bounds have the window's type.
    pub fn validate(&self) -> Result<(), OperatorError> {
        for bound in [&self.lower, &self.upper].into_iter().flatten() {
            if bound.ty() != self.ty {
                return Err(OperatorError::Window {
                    column: self.column.clone(),
                    message: format!(
                        "bound {bound} is a {} but the window is of type {}",
                        bound.ty(),
                        self.ty
                    ),
                });
            }
        }
        Ok(())
    }

    /// One line for `explain`, e.g.
    /// `creado_el (timestamp) in [2025-06-01T00:00:00Z, 2025-06-08T00:00:00Z) or NULL`.
    pub fn describe(&self) -> String {
        let lower = self
            .lower
            .as_ref()
            .map_or("-inf".to_string(), IncValue::to_iso);
        let upper = self
            .upper
            .as_ref()
            .map_or("+inf".to_string(), IncValue::to_iso);
        format!(
            "{} ({}) in [{lower}, {upper}) or NULL",
            self.column, self.ty
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_have_the_arrow_type_of_their_incremental_type() {
        let ts = IncValue::parse(IncType::Timestamp, "2025-06-08T00:00:00Z").unwrap();
        assert_eq!(
            scalar(&ts),
            ScalarValue::TimestampMicrosecond(Some(1_749_340_800_000_000), Some(Arc::from("UTC")))
        );
        let d = IncValue::parse(IncType::Date, "2025-06-08").unwrap();
        assert_eq!(scalar(&d), ScalarValue::Date32(Some(20247)));
        let dt = IncValue::parse(IncType::Datetime, "1970-01-01T00:00:01").unwrap();
        assert_eq!(
            scalar(&dt),
            ScalarValue::TimestampMicrosecond(Some(1_000_000), None)
        );
        for v in [ts, d, dt] {
            assert_eq!(scalar(&v).data_type(), arrow_type(v.ty()));
            assert_eq!(natural_type(&arrow_type(v.ty())), Some(v.ty()));
        }
    }

    #[test]
    fn max_of_typed_and_text_columns() {
        use arrow::array::{StringArray, TimestampNanosecondArray};
        let ts: ArrayRef = Arc::new(
            TimestampNanosecondArray::from(vec![Some(5_000), None, Some(9_000_123)])
                .with_timezone("UTC"),
        );
        assert_eq!(
            max_value(&ts, IncType::Timestamp)
                .unwrap()
                .unwrap()
                .to_iso(),
            "1970-01-01T00:00:00.009000Z"
        );
        assert!(max_value(&ts, IncType::Datetime).is_err());
        let text: ArrayRef = Arc::new(StringArray::from(vec![
            Some("2025-01-02"),
            None,
            Some("2025-01-10"),
        ]));
        assert_eq!(
            max_value(&text, IncType::Date).unwrap(),
            Some(IncValue::parse(IncType::Date, "2025-01-10").unwrap())
        );
        let empty: ArrayRef = Arc::new(StringArray::from(Vec::<Option<&str>>::new()));
        assert_eq!(max_value(&empty, IncType::Date).unwrap(), None);
    }
}
