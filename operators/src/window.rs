//! Incremental windows: the typed value of an incremental column (watermarks, window bounds) and
//! the half-open window `lower <= column < upper` that a run reads.
//!
//! The three types mirror BigQuery's: DATE, zone-less DATETIME (a wall-clock reading, in Pulso
//! America/Lima local time) and TIMESTAMP (an instant). They never mix implicitly: comparing a
//! wall-clock column with an instant needs a time zone, and guessing one is how Pulso-Back shifted
//! windows by five hours (weaknesses W-09, W-36). [`crate::transform`] rejects such pairs.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use datafusion::scalar::ScalarValue;

use crate::OperatorError;

/// Type of an incremental column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncType {
    /// Calendar date (Arrow Date32).
    Date,
    /// Zone-less date and time, a wall-clock reading (Arrow Timestamp(µs, None)).
    Datetime,
    /// An instant (Arrow Timestamp(µs, "UTC")).
    Timestamp,
}

impl IncType {
    /// The Arrow type of this incremental type's values (and of [`IncValue::to_scalar`]).
    pub fn arrow_type(self) -> DataType {
        match self {
            IncType::Date => DataType::Date32,
            IncType::Datetime => DataType::Timestamp(TimeUnit::Microsecond, None),
            IncType::Timestamp => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
            }
        }
    }

    /// The incremental type that matches an Arrow column type without any time-zone assumption,
    /// if there is one (Date32/Date64 → date, zone-less timestamp → datetime, zoned → timestamp).
    /// Text columns have no natural type: the pipeline must declare it.
    pub fn natural_for(data_type: &DataType) -> Option<IncType> {
        match data_type {
            DataType::Date32 | DataType::Date64 => Some(IncType::Date),
            DataType::Timestamp(_, None) => Some(IncType::Datetime),
            DataType::Timestamp(_, Some(_)) => Some(IncType::Timestamp),
            _ => None,
        }
    }
}

impl fmt::Display for IncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IncType::Date => "date",
            IncType::Datetime => "datetime",
            IncType::Timestamp => "timestamp",
        })
    }
}

/// A value of an incremental column: a watermark or a window bound.
///
/// Precision is the microsecond (BigQuery's and Postgres's); finer input is truncated when parsed.
/// The derived order only makes sense between values of the same variant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IncValue {
    Date(NaiveDate),
    Datetime(NaiveDateTime),
    Timestamp(DateTime<Utc>),
}

impl IncValue {
    /// Parses canonical ISO text (what [`IncValue::to_iso`] writes), plus a few lenient forms:
    ///
    /// - date: `2025-06-01`;
    /// - datetime: `2025-06-01T05:00:00[.ffffff]` (a space instead of `T` is accepted) or a bare
    ///   date meaning midnight; an offset or `Z` is rejected (a wall-clock reading has no zone);
    /// - timestamp: RFC 3339 with `Z` or an offset (`2025-06-01T05:00:00Z`,
    ///   `2025-06-01 00:00:00-05:00`); zone-less text is rejected rather than guessed.
    pub fn parse(ty: IncType, s: &str) -> Result<Self, OperatorError> {
        let text = s.trim();
        let invalid = |reason: &str| OperatorError::InvalidValue {
            ty,
            value: s.to_string(),
            reason: reason.to_string(),
        };
        match ty {
            IncType::Date => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(IncValue::Date)
                .map_err(|e| invalid(&format!("{e}; expected YYYY-MM-DD"))),
            IncType::Datetime => {
                if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                    return Ok(IncValue::Datetime(d.and_time(NaiveTime::MIN)));
                }
                if text.parse::<DateTime<chrono::FixedOffset>>().is_ok() {
                    return Err(invalid(
                        "a datetime is a zone-less wall-clock reading; remove the offset/`Z` or \
                         declare the column as timestamp",
                    ));
                }
                NaiveDateTime::parse_from_str(&text.replacen(' ', "T", 1), "%Y-%m-%dT%H:%M:%S%.f")
                    .map(|dt| IncValue::Datetime(truncate_naive(dt)))
                    .map_err(|e| invalid(&format!("{e}; expected YYYY-MM-DDTHH:MM:SS[.ffffff]")))
            }
            IncType::Timestamp => match text.parse::<DateTime<chrono::FixedOffset>>() {
                Ok(dt) => Ok(IncValue::Timestamp(truncate_utc(dt.with_timezone(&Utc)))),
                Err(e) => {
                    if NaiveDateTime::parse_from_str(
                        &text.replacen(' ', "T", 1),
                        "%Y-%m-%dT%H:%M:%S%.f",
                    )
                    .is_ok()
                        || NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
                    {
                        Err(invalid(
                            "a timestamp is an instant and needs `Z` or an offset \
                             (e.g. 2025-06-01T05:00:00Z)",
                        ))
                    } else {
                        Err(invalid(&format!(
                            "{e}; expected RFC 3339, e.g. 2025-06-01T05:00:00Z"
                        )))
                    }
                }
            },
        }
    }

    /// The type of this value.
    pub fn ty(&self) -> IncType {
        match self {
            IncValue::Date(_) => IncType::Date,
            IncValue::Datetime(_) => IncType::Datetime,
            IncValue::Timestamp(_) => IncType::Timestamp,
        }
    }

    /// Canonical ISO text, parsed back by [`IncValue::parse`]: `2025-06-01`,
    /// `2025-06-01T05:00:00[.ffffff]`, `2025-06-01T05:00:00[.ffffff]Z` (fraction only when non-zero).
    pub fn to_iso(&self) -> String {
        match self {
            IncValue::Date(d) => d.format("%Y-%m-%d").to_string(),
            IncValue::Datetime(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
            IncValue::Timestamp(ts) => ts.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        }
    }

    /// This value moved back by `d` (the lookback). A date moves by the whole days of `d`.
    /// Saturates at the smallest representable value instead of overflowing.
    pub fn minus(&self, d: Duration) -> Self {
        match self {
            IncValue::Date(x) => IncValue::Date(x.checked_sub_signed(d).unwrap_or(NaiveDate::MIN)),
            IncValue::Datetime(x) => {
                IncValue::Datetime(x.checked_sub_signed(d).unwrap_or(NaiveDateTime::MIN))
            }
            IncValue::Timestamp(x) => {
                IncValue::Timestamp(x.checked_sub_signed(d).unwrap_or(DateTime::<Utc>::MIN_UTC))
            }
        }
    }

    /// The DataFusion literal of this value: Date32, TimestampMicrosecond(None) or
    /// TimestampMicrosecond(Some("UTC")).
    pub fn to_scalar(&self) -> ScalarValue {
        match self {
            IncValue::Date(d) => ScalarValue::Date32(Some(Date32Type::from_naive_date(*d))),
            IncValue::Datetime(dt) => {
                ScalarValue::TimestampMicrosecond(Some(dt.and_utc().timestamp_micros()), None)
            }
            IncValue::Timestamp(ts) => ScalarValue::TimestampMicrosecond(
                Some(ts.timestamp_micros()),
                Some(Arc::from("UTC")),
            ),
        }
    }

    /// Reads a non-null value of an Arrow array as an incremental value of type `ty`, when the
    /// array's type is the natural Arrow type of `ty` (see [`IncType::natural_for`]) or text.
    /// Returns `Ok(None)` for a null cell.
    pub fn from_array(
        array: &dyn Array,
        row: usize,
        ty: IncType,
    ) -> Result<Option<Self>, OperatorError> {
        if array.is_null(row) {
            return Ok(None);
        }
        let mismatch = || OperatorError::InvalidValue {
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
                    return Err(mismatch());
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
            _ => return Err(mismatch()),
        };
        Ok(Some(value))
    }

    /// The largest non-null value of a column, read as type `ty` (see [`IncValue::from_array`]).
    /// Useful to derive a watermark from the batches actually loaded.
    pub fn max_of(array: &ArrayRef, ty: IncType) -> Result<Option<Self>, OperatorError> {
        let mut best: Option<IncValue> = None;
        // Text has to be parsed anyway; for typed columns let Arrow find the position of the max.
        if matches!(
            array.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            for row in 0..array.len() {
                if let Some(v) = IncValue::from_array(array.as_ref(), row, ty)?
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
        IncValue::from_array(array.as_ref(), row, ty)
    }
}

impl fmt::Display for IncValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso())
    }
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

fn truncate_naive(dt: NaiveDateTime) -> NaiveDateTime {
    let micros = dt.and_utc().timestamp_micros();
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|t| t.naive_utc())
        .unwrap_or(dt)
}

fn truncate_utc(ts: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(ts.timestamp_micros()).unwrap_or(ts)
}

/// The window a run reads: rows with `lower <= column` (inclusive) and `column < upper`
/// (exclusive); `None` leaves that side unbounded.
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

    /// One line for `explain`, e.g. `creado_el in [2025-06-01T00:00:00Z, 2025-06-08T00:00:00Z)`.
    pub fn describe(&self) -> String {
        let lower = self
            .lower
            .as_ref()
            .map_or("-inf".to_string(), IncValue::to_iso);
        let upper = self
            .upper
            .as_ref()
            .map_or("+inf".to_string(), IncValue::to_iso);
        format!("{} ({}) in [{lower}, {upper})", self.column, self.ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_iso_round_trip() {
        let cases = [
            (IncType::Date, "2025-06-01", "2025-06-01"),
            (
                IncType::Datetime,
                "2025-06-01T05:00:00",
                "2025-06-01T05:00:00",
            ),
            (
                IncType::Datetime,
                "2025-06-01 05:00:00.25",
                "2025-06-01T05:00:00.250",
            ),
            (IncType::Datetime, "2025-06-01", "2025-06-01T00:00:00"),
            (
                IncType::Timestamp,
                "2025-06-01T05:00:00Z",
                "2025-06-01T05:00:00Z",
            ),
            (
                IncType::Timestamp,
                "2025-06-01 00:00:00-05:00",
                "2025-06-01T05:00:00Z",
            ),
            (
                IncType::Timestamp,
                "2025-06-01T05:00:00.123456789Z",
                "2025-06-01T05:00:00.123456Z",
            ),
        ];
        for (ty, text, iso) in cases {
            let v = IncValue::parse(ty, text).unwrap();
            assert_eq!(v.to_iso(), iso, "{text}");
            assert_eq!(IncValue::parse(ty, &v.to_iso()).unwrap(), v);
            assert_eq!(v.ty(), ty);
        }
    }

    #[test]
    fn parse_rejects_zone_confusion_and_garbage() {
        let e = IncValue::parse(IncType::Timestamp, "2025-06-01T05:00:00").unwrap_err();
        assert!(e.to_string().contains("needs `Z` or an offset"), "{e}");
        let e = IncValue::parse(IncType::Datetime, "2025-06-01T05:00:00Z").unwrap_err();
        assert!(e.to_string().contains("zone-less"), "{e}");
        let e = IncValue::parse(IncType::Date, "2025-13-01").unwrap_err();
        assert!(
            e.to_string().contains("invalid date value \"2025-13-01\""),
            "{e}"
        );
        assert!(IncValue::parse(IncType::Date, "x' OR 1=1 --").is_err());
    }

    #[test]
    fn minus_and_scalar() {
        let ts = IncValue::parse(IncType::Timestamp, "2025-06-08T00:00:00Z").unwrap();
        assert_eq!(ts.minus(Duration::days(7)).to_iso(), "2025-06-01T00:00:00Z");
        let d = IncValue::parse(IncType::Date, "2025-06-08").unwrap();
        assert_eq!(d.minus(Duration::hours(30)).to_iso(), "2025-06-07");
        assert_eq!(
            IncValue::Date(NaiveDate::MIN).minus(Duration::days(1)),
            IncValue::Date(NaiveDate::MIN)
        );
        assert_eq!(
            ts.to_scalar(),
            ScalarValue::TimestampMicrosecond(Some(1_749_340_800_000_000), Some(Arc::from("UTC")))
        );
        assert_eq!(d.to_scalar(), ScalarValue::Date32(Some(20247)));
        let dt = IncValue::parse(IncType::Datetime, "1970-01-01T00:00:01").unwrap();
        assert_eq!(
            dt.to_scalar(),
            ScalarValue::TimestampMicrosecond(Some(1_000_000), None)
        );
    }

    #[test]
    fn max_of_typed_and_text_columns() {
        use arrow::array::{StringArray, TimestampNanosecondArray};
        let ts: ArrayRef = Arc::new(
            TimestampNanosecondArray::from(vec![Some(5_000), None, Some(9_000_123)])
                .with_timezone("UTC"),
        );
        assert_eq!(
            IncValue::max_of(&ts, IncType::Timestamp)
                .unwrap()
                .unwrap()
                .to_iso(),
            "1970-01-01T00:00:00.009Z"
        );
        assert!(IncValue::max_of(&ts, IncType::Datetime).is_err());
        let text: ArrayRef = Arc::new(StringArray::from(vec![
            Some("2025-01-02"),
            None,
            Some("2025-01-10"),
        ]));
        assert_eq!(
            IncValue::max_of(&text, IncType::Date).unwrap(),
            Some(IncValue::parse(IncType::Date, "2025-01-10").unwrap())
        );
        let empty: ArrayRef = Arc::new(StringArray::from(Vec::<Option<&str>>::new()));
        assert_eq!(IncValue::max_of(&empty, IncType::Date).unwrap(), None);
    }
}
