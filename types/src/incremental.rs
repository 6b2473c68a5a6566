//! The value of an incremental column: a watermark, a window bound, `incremental.initial`.
//!
//! The three types mirror BigQuery's: DATE, zone-less DATETIME (a wall-clock reading, in Pulso
//! America/Lima local time) and TIMESTAMP (an instant). They never mix implicitly: comparing a
//! wall-clock column with an instant needs a time zone, and guessing one is how Pulso-Back shifted
//! windows by five hours (weaknesses W-09, W-36). So the one parser, [`IncValue::parse`], refuses
//! a timestamp without `Z` or an offset wherever it is entered (pipeline file, `watermarks set`,
//! stored watermark), with the hint to add one.
//!
//! The canonical text, [`IncValue::to_iso`], is what `pulso_flow.watermarks.value` has always
//! stored: fixed microseconds, `Z` for instants (`2025-06-27`, `2025-06-27T07:04:00.000001`,
//! `2025-06-27T07:04:00.000001Z`). It parses back to the same value.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// Type of an incremental column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncType {
    /// Calendar date (Arrow Date32, PostgreSQL `date`).
    Date,
    /// Zone-less date and time, a wall-clock reading (Arrow Timestamp(µs, None), PostgreSQL
    /// `timestamp`).
    Datetime,
    /// An instant (Arrow Timestamp(µs, "UTC"), PostgreSQL `timestamptz`).
    Timestamp,
}

impl IncType {
    /// The name used in pipeline files and in `pulso_flow.watermarks.inc_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            IncType::Date => "date",
            IncType::Datetime => "datetime",
            IncType::Timestamp => "timestamp",
        }
    }

    /// The type named by [`IncType::as_str`], if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "date" => Some(IncType::Date),
            "datetime" => Some(IncType::Datetime),
            "timestamp" => Some(IncType::Timestamp),
            _ => None,
        }
    }
}

impl fmt::Display for IncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not a value of its incremental type. The reason says what was expected and,
/// for a zone-less timestamp, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {ty} value {value:?}: {reason}")]
pub struct ValueError {
    pub ty: IncType,
    pub value: String,
    pub reason: String,
}

/// A value of an incremental column: a watermark or a window bound.
///
/// Precision is the microsecond (BigQuery's and Postgres's); finer input is truncated when parsed.
/// The derived order only makes sense between values of the same variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IncValue {
    Date(NaiveDate),
    Datetime(NaiveDateTime),
    Timestamp(DateTime<Utc>),
}

/// The hint every refused zone-less timestamp gets.
const ADD_AN_OFFSET: &str = "a timestamp is an instant and needs `Z` or an offset; add one, e.g. \
                             2025-06-01T05:00:00Z or 2025-06-01T00:00:00-05:00 (America/Lima)";

impl IncValue {
    /// The one parser of incremental values. Accepts the canonical text ([`IncValue::to_iso`])
    /// and a few unambiguous variations:
    ///
    /// - date: `2025-06-01`;
    /// - datetime: `2025-06-01T05:00:00[.ffffff]` (a space instead of `T` is accepted) or a bare
    ///   date meaning midnight; an offset or `Z` is refused (a wall-clock reading has no zone);
    /// - timestamp: RFC 3339 with `Z` or an offset (`2025-06-01T05:00:00Z`,
    ///   `2025-06-01 00:00:00-05:00`); a zone-less text or a bare date is refused rather than
    ///   guessed, with the hint to add an offset.
    ///
    /// Leading and trailing blanks are ignored; digits beyond the microsecond are truncated.
    pub fn parse(ty: IncType, s: &str) -> Result<Self, ValueError> {
        let text = s.trim();
        let invalid = |reason: &str| ValueError {
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
                if text.parse::<DateTime<FixedOffset>>().is_ok() {
                    return Err(invalid(
                        "a datetime is a zone-less wall-clock reading; remove the offset/`Z` or \
                         declare the column as timestamp",
                    ));
                }
                parse_naive(text)
                    .map(|dt| IncValue::Datetime(truncate_naive(dt)))
                    .map_err(|e| invalid(&format!("{e}; expected YYYY-MM-DDTHH:MM:SS[.ffffff]")))
            }
            IncType::Timestamp => match text.parse::<DateTime<FixedOffset>>() {
                Ok(dt) => Ok(IncValue::Timestamp(truncate_utc(dt.with_timezone(&Utc)))),
                Err(e) => {
                    if parse_naive(text).is_ok()
                        || NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
                    {
                        Err(invalid(ADD_AN_OFFSET))
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

    /// The calendar year (proleptic Gregorian; 0 is 1 BC). Instants count in UTC.
    pub fn year(&self) -> i32 {
        match self {
            IncValue::Date(d) => d.year(),
            IncValue::Datetime(dt) => dt.year(),
            IncValue::Timestamp(ts) => ts.year(),
        }
    }

    /// The canonical text, parsed back by [`IncValue::parse`] to the same value: `2025-06-01`,
    /// `2025-06-01T05:00:00.000000`, `2025-06-01T05:00:00.000000Z` (always six fraction digits,
    /// instants in UTC). This is the stored form of watermarks.
    pub fn to_iso(&self) -> String {
        match self {
            IncValue::Date(d) => d.format("%Y-%m-%d").to_string(),
            IncValue::Datetime(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            IncValue::Timestamp(ts) => ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
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
}

impl fmt::Display for IncValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso())
    }
}

/// A zone-less date and time with `T` or a space between date and time.
fn parse_naive(text: &str) -> Result<NaiveDateTime, chrono::ParseError> {
    NaiveDateTime::parse_from_str(&text.replacen(' ', "T", 1), "%Y-%m-%dT%H:%M:%S%.f")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_canonical_text_round_trip() {
        let cases = [
            (IncType::Date, "2025-06-01", "2025-06-01"),
            (IncType::Date, " 0001-01-01 ", "0001-01-01"),
            (IncType::Date, "9999-12-31", "9999-12-31"),
            (
                IncType::Datetime,
                "2025-06-01T05:00:00",
                "2025-06-01T05:00:00.000000",
            ),
            (
                IncType::Datetime,
                "2025-06-01 05:00:00.25",
                "2025-06-01T05:00:00.250000",
            ),
            (
                IncType::Datetime,
                "2025-06-01",
                "2025-06-01T00:00:00.000000",
            ),
            (
                IncType::Timestamp,
                "2025-06-01T05:00:00Z",
                "2025-06-01T05:00:00.000000Z",
            ),
            (
                IncType::Timestamp,
                "2025-06-01 00:00:00-05:00",
                "2025-06-01T05:00:00.000000Z",
            ),
            (
                IncType::Timestamp,
                "2025-06-01T05:00:00.123456789Z",
                "2025-06-01T05:00:00.123456Z",
            ),
            (
                IncType::Timestamp,
                "1969-12-31T23:59:59.999999Z",
                "1969-12-31T23:59:59.999999Z",
            ),
            (
                IncType::Timestamp,
                "9999-12-31T23:59:59.999999Z",
                "9999-12-31T23:59:59.999999Z",
            ),
        ];
        for (ty, text, iso) in cases {
            let v = IncValue::parse(ty, text).unwrap();
            assert_eq!(v.to_iso(), iso, "{text}");
            assert_eq!(IncValue::parse(ty, &v.to_iso()).unwrap(), v);
            assert_eq!(v.ty(), ty);
        }
    }

    /// Databases written before the types were merged hold these texts (the old `Watermark`'s
    /// canonical form, and the old bound text without fraction digits): they still read.
    #[test]
    fn stored_texts_of_earlier_versions_still_parse() {
        for (ty, text) in [
            (IncType::Date, "2025-06-27"),
            (IncType::Datetime, "2025-06-27T07:04:00.000001"),
            (IncType::Timestamp, "2025-06-27T07:04:00.000000Z"),
            (IncType::Timestamp, "2025-06-27T07:04:00Z"),
            (IncType::Datetime, "2025-06-27T07:04:00"),
        ] {
            let v = IncValue::parse(ty, text).unwrap();
            assert_eq!(IncValue::parse(ty, &v.to_iso()).unwrap(), v, "{text}");
        }
    }

    #[test]
    fn instants_order_across_offsets() {
        let a = IncValue::parse(IncType::Timestamp, "2025-06-27T02:00:00-05:00").unwrap();
        let b = IncValue::parse(IncType::Timestamp, "2025-06-27T06:59:59Z").unwrap();
        assert!(b < a);
        assert_eq!(a.to_iso(), "2025-06-27T07:00:00.000000Z");
    }

    #[test]
    fn zone_less_timestamps_are_refused_with_the_hint_to_add_an_offset() {
        for text in ["2025-06-01T05:00:00", "2025-06-01 05:00:00.5", "2025-06-01"] {
            let e = IncValue::parse(IncType::Timestamp, text).unwrap_err();
            assert!(
                e.to_string().contains("needs `Z` or an offset; add one"),
                "{e}"
            );
            assert_eq!(e.value, text);
        }
        let e = IncValue::parse(IncType::Datetime, "2025-06-01T05:00:00Z").unwrap_err();
        assert!(e.to_string().contains("zone-less"), "{e}");
    }

    #[test]
    fn garbage_is_refused() {
        let e = IncValue::parse(IncType::Date, "2025-13-01").unwrap_err();
        assert!(
            e.to_string().contains("invalid date value \"2025-13-01\""),
            "{e}"
        );
        for (ty, text) in [
            (IncType::Date, "x' OR 1=1 --"),
            (IncType::Timestamp, "yesterday'; DROP"),
            (IncType::Datetime, ""),
            (IncType::Timestamp, "2025-06-01T25:00:00Z"),
        ] {
            assert!(IncValue::parse(ty, text).is_err(), "{text}");
        }
    }

    #[test]
    fn minus_saturates_and_dates_move_by_whole_days() {
        let ts = IncValue::parse(IncType::Timestamp, "2025-06-08T00:00:00Z").unwrap();
        assert_eq!(
            ts.minus(Duration::days(7)).to_iso(),
            "2025-06-01T00:00:00.000000Z"
        );
        let d = IncValue::parse(IncType::Date, "2025-06-08").unwrap();
        assert_eq!(d.minus(Duration::hours(30)).to_iso(), "2025-06-07");
        assert_eq!(
            IncValue::Date(NaiveDate::MIN).minus(Duration::days(1)),
            IncValue::Date(NaiveDate::MIN)
        );
    }

    #[test]
    fn type_names_round_trip() {
        for ty in [IncType::Date, IncType::Datetime, IncType::Timestamp] {
            assert_eq!(IncType::from_name(ty.as_str()), Some(ty));
        }
        assert_eq!(IncType::from_name("Timestamp"), None);
        assert_eq!(
            IncValue::parse(IncType::Date, "0000-01-01").unwrap().year(),
            0
        );
    }
}
