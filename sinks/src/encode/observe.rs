//! What a COPY wrote into the few columns a load must know about afterwards: the greatest value
//! of the incremental column (the watermark candidate), its NULLs, and the distinct days of date
//! columns (changed days, reconciliation days). Observed while encoding, from the very values the
//! server stores, so an append into a large target never has to scan it to find them again.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use pulso_types::IncValue;

use crate::pgtype::PgType;

/// PostgreSQL's epoch for dates and timestamps.
fn pg_epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

/// Values observed in the encoded rows; PostgreSQL's binary form (days or µs since 2000-01-01).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Greatest non-NULL value of the incremental column.
    pub max_incremental: Option<i64>,
    /// Rows whose incremental column is NULL.
    pub null_incremental: u64,
    /// Per observed date column (in the order asked), its distinct days; `None` is NULL.
    pub days: Vec<(String, BTreeSet<Option<i32>>)>,
    /// Per day of the fingerprinted incremental column, its rows' fingerprint.
    pub prints: super::DayPrints,
    /// Whether no two rows have the same key (`None`: not known, see
    /// [`super::CopyEncoder::unique_keys`]).
    pub unique_keys: Option<bool>,
}

impl Observed {
    /// The greatest incremental value as the watermark types it, from the column's type.
    pub fn max_incremental_value(&self, ty: &PgType) -> Option<IncValue> {
        let raw = self.max_incremental?;
        match ty {
            PgType::Date => Some(IncValue::Date(day(i32::try_from(raw).ok()?)?)),
            PgType::Timestamp => Some(IncValue::Datetime(micros(raw)?)),
            PgType::Timestamptz => Some(IncValue::Timestamp(
                DateTime::<Utc>::from_naive_utc_and_offset(micros(raw)?, Utc),
            )),
            _ => None,
        }
    }

    /// The distinct days observed in `column` (NULL left out), in order.
    pub fn days_of(&self, column: &str) -> Vec<NaiveDate> {
        self.days
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, set)| set.iter().filter_map(|d| d.and_then(day)).collect())
            .unwrap_or_default()
    }

    /// How many distinct values `column` took, NULL counting as one.
    pub fn distinct_days(&self, column: &str) -> usize {
        self.days
            .iter()
            .find(|(c, _)| c == column)
            .map_or(0, |(_, set)| set.len())
    }
}

fn day(days: i32) -> Option<NaiveDate> {
    pg_epoch()
        .date()
        .checked_add_signed(Duration::days(i64::from(days)))
}

fn micros(us: i64) -> Option<NaiveDateTime> {
    pg_epoch().checked_add_signed(Duration::microseconds(us))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::CopyEncoder;
    use crate::pgtype::PgColumn;
    use arrow::array::{ArrayRef, Date32Array, TimestampMicrosecondArray};
    use arrow::record_batch::RecordBatch;
    use std::sync::Arc;

    #[test]
    fn encoding_observes_the_greatest_value_the_nulls_and_the_days() {
        let col = |name: &str, ty| PgColumn {
            name: name.into(),
            ty,
            nullable: true,
        };
        let mut enc = CopyEncoder::new(
            "s.t",
            vec![col("d", PgType::Date), col("ts", PgType::Timestamptz)],
            vec![],
            chrono_tz::UTC,
        )
        .unwrap();
        enc.observe(Some("ts"), &["d"]).unwrap();
        // 2025-06-27 is day 20266 since 1970; 1_750_000_000 s is 2025-06-15T15:06:40Z.
        let batch = |days: Vec<Option<i32>>, secs: Vec<Option<i64>>| {
            let d: ArrayRef = Arc::new(Date32Array::from(days));
            let ts: ArrayRef = Arc::new(
                TimestampMicrosecondArray::from(
                    secs.into_iter()
                        .map(|s| s.map(|s| s * 1_000_000))
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            );
            RecordBatch::try_from_iter([("d", d), ("ts", ts)]).unwrap()
        };
        let mut out = bytes::BytesMut::new();
        let first = batch(vec![Some(20266), None], vec![Some(1_750_000_000), None]);
        let second = batch(
            vec![Some(20266), Some(20265)],
            vec![Some(1_600_000_000), None],
        );
        enc.encode_batch(&first, &mut out).unwrap();
        enc.encode_batch(&second, &mut out).unwrap();
        let o = enc.observed();
        assert_eq!(o.null_incremental, 2);
        let max = o.max_incremental_value(&PgType::Timestamptz).unwrap();
        assert_eq!(max.to_iso(), "2025-06-15T15:06:40.000000Z");
        let days: Vec<String> = o.days_of("d").iter().map(|d| d.to_string()).collect();
        assert_eq!(days, ["2025-06-26", "2025-06-27"]);
        assert_eq!(o.distinct_days("d"), 3, "NULL counts as one day");
        // Only date and timestamp columns can be observed.
        assert!(enc.observe(Some("nope"), &[]).is_err());
        assert!(enc.observe(None, &["ts"]).is_err());
    }

    #[test]
    fn encoding_fingerprints_the_rows_of_each_day_however_they_are_batched() {
        let cols = vec![
            PgColumn {
                name: "ts".into(),
                ty: PgType::Timestamptz,
                nullable: true,
            },
            PgColumn {
                name: "v".into(),
                ty: PgType::Int8,
                nullable: true,
            },
        ];
        let batch = |rows: &[(Option<i64>, i64)]| {
            let ts: ArrayRef = Arc::new(
                TimestampMicrosecondArray::from(
                    rows.iter()
                        .map(|r| r.0.map(|s| s * 1_000_000))
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            );
            let v: ArrayRef = Arc::new(arrow::array::Int64Array::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            ));
            RecordBatch::try_from_iter([("ts", ts), ("v", v)]).unwrap()
        };
        let prints = |batches: &[&[(Option<i64>, i64)]]| {
            let mut enc = CopyEncoder::new("s.t", cols.clone(), vec![], chrono_tz::UTC).unwrap();
            enc.fingerprint("ts").unwrap();
            let mut out = bytes::BytesMut::new();
            for b in batches {
                enc.encode_batch(&batch(b), &mut out).unwrap();
            }
            enc.observed().prints.clone()
        };
        // 946_684_800 s is 2000-01-01T00:00:00Z (day 0); one day is 86_400 s.
        let (d0, d1) = (946_684_800, 946_684_800 + 86_400);
        let rows = [
            (Some(d0), 1),
            (Some(d1 + 5), 2),
            (None, 3),
            (Some(d0 + 86_399), 4),
        ];
        let whole = prints(&[&rows]);
        assert_eq!(whole.keys().copied().collect::<Vec<_>>(), [0, 1]);
        assert_eq!((whole[&0].rows, whole[&1].rows), (2, 1), "NULL has no day");
        // Other batches, other order: the same prints.
        assert_eq!(prints(&[&rows[2..], &[rows[1], rows[0]]]), whole);
        // Another value in one row changes that day only.
        let changed = prints(&[&[rows[0], rows[1], rows[2], (Some(d0 + 86_399), 5)]]);
        assert_ne!(changed[&0], whole[&0]);
        assert_eq!(changed[&1], whole[&1]);
        // Before 2000: negative day numbers.
        assert_eq!(
            prints(&[&[(Some(d0 - 1), 1)]])
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            [-1]
        );
        let mut enc = CopyEncoder::new("s.t", cols.clone(), vec![], chrono_tz::UTC).unwrap();
        assert!(enc.fingerprint("v").is_err(), "not a day column");
    }

    #[test]
    fn binary_values_become_watermarks_and_days() {
        let o = Observed {
            // 2025-06-27T05:00:00Z in µs since 2000-01-01.
            max_incremental: Some(804_315_600_000_000),
            null_incremental: 0,
            days: vec![("d".into(), BTreeSet::from([None, Some(0), Some(9_309)]))],
            ..Observed::default()
        };
        let ts = o.max_incremental_value(&PgType::Timestamptz).unwrap();
        assert_eq!(ts.to_iso(), "2025-06-27T05:00:00.000000Z");
        let wall = o.max_incremental_value(&PgType::Timestamp).unwrap();
        assert_eq!(wall.to_iso(), "2025-06-27T05:00:00.000000");
        assert_eq!(o.max_incremental_value(&PgType::Text), None);
        let days: Vec<String> = o.days_of("d").iter().map(|d| d.to_string()).collect();
        assert_eq!(days, ["2000-01-01", "2025-06-27"]);
        assert_eq!(o.distinct_days("d"), 3);
        assert_eq!(o.distinct_days("other"), 0);
    }
}
