//! Unchanged days of a lookback are left out of the merge (issue 15 item 2), by the per-day
//! fingerprints of `pulso_flow.day_fingerprints` (migration V10).
//!
//! A lookback re-reads, every run, days the previous load staged already; most are unchanged.
//! While the COPY encodes the staged rows it fingerprints each day of the incremental column
//! (count and hashes of the rows' bytes, [`crate::encode::DayPrint`]). After the merge the load
//! stores the fingerprints of its *whole* days: the days its window covers from their first
//! instant (the day of the window's lower bound is whole only when the bound is that day's
//! start). The next load compares its whole days with them. A day whose fingerprint is the one
//! stored holds exactly the rows the target got from that day last time: its rows are dropped
//! from the merge, after deduplication (so the row that wins a key never changes), and when every
//! staged row is in such a day there is no merge at all.
//!
//! Why the target still holds those rows: the stored fingerprints count only while the load that
//! stored them is the node's last committed writer (`pulso_flow.watermarks.last_run_id`, status
//! `ok`). A backfill chunk, a `reconcile --repair` or `watermarks set`/`reset` writes that row
//! too and so makes them stale, and windows only move forward, so every load between covers the
//! day whole as well. What a skip leaves as it is: a key whose latest row vanished from a later
//! day keeps that row, as a key whose only row vanished does (an incremental load never deletes;
//! a full refresh or `reconcile --repair` does).
//!
//! Days are PostgreSQL day numbers (days since 2000-01-01) of the incremental value, UTC days for
//! `timestamptz`.

use chrono::{Duration, NaiveDate};
use pulso_types::IncValue;
use tokio_postgres::Client;

use crate::encode::{DayPrint, DayPrints};
use crate::error::SinkError;
use crate::pgtype::PgType;
use crate::sql::ident;

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// 2000-01-01T00:00:00Z in µs since the Unix epoch.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

fn pg_epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default()
}

/// The PostgreSQL day number of a date.
pub fn day_number(d: NaiveDate) -> Option<i32> {
    i32::try_from((d - pg_epoch()).num_days()).ok()
}

/// The date of a PostgreSQL day number.
pub fn date_of(day: i32) -> Option<NaiveDate> {
    pg_epoch().checked_add_signed(Duration::days(i64::from(day)))
}

/// The first day a window starting at `lower` (inclusive) covers whole; `None` when it has no
/// lower bound (every day is whole).
pub fn first_whole_day(lower: Option<&IncValue>) -> Option<i32> {
    let micros = match lower? {
        IncValue::Date(d) => return day_number(*d),
        IncValue::Timestamp(t) => t.timestamp_micros(),
        IncValue::Datetime(t) => t.and_utc().timestamp_micros(),
    } - PG_EPOCH_MICROS;
    let day = micros.div_euclid(MICROS_PER_DAY) + i64::from(micros.rem_euclid(MICROS_PER_DAY) != 0);
    Some(i32::try_from(day).unwrap_or(i32::MAX))
}

/// How a load fingerprints its staged rows.
#[derive(Debug, Clone)]
pub struct Fingerprinting {
    /// The incremental column.
    pub column: String,
    /// First whole day of the load's window (see [`first_whole_day`]).
    pub first_whole: Option<i32>,
}

fn whole(first_whole: Option<i32>) -> impl Fn(&&i32) -> bool {
    move |d| first_whole.is_none_or(|f| **d >= f)
}

/// The fingerprints the node's last load stored for `column`, if that load is still the node's
/// last committed writer (see the module doc); empty otherwise.
pub async fn stored(client: &Client, node: &str, column: &str) -> Result<DayPrints, SinkError> {
    let rows = client
        .query(
            "SELECT f.day, f.rows, f.hash_a, f.hash_b FROM pulso_flow.day_fingerprints f \
               JOIN pulso_flow.watermarks w \
                 ON w.node = f.node AND w.last_run_id = f.run_id AND w.last_status = 'ok' \
              WHERE f.node = $1 AND f.inc_column = $2",
            &[&node, &column],
        )
        .await
        .map_err(|e| SinkError::pg(format!("reading the day fingerprints of {node}"), e))?;
    let mut prints = DayPrints::new();
    for r in rows {
        let decode = |e| SinkError::pg(format!("reading the day fingerprints of {node}"), e);
        let day: NaiveDate = r.try_get(0).map_err(decode)?;
        let Some(day) = day_number(day) else { continue };
        prints.insert(
            day,
            DayPrint {
                rows: u64::try_from(r.try_get::<_, i64>(1).map_err(decode)?).unwrap_or(0),
                hash_a: r.try_get::<_, i64>(2).map_err(decode)? as u64,
                hash_b: r.try_get::<_, i64>(3).map_err(decode)? as u64,
            },
        );
    }
    Ok(prints)
}

/// The whole staged days whose fingerprint is the stored one.
pub fn unchanged(staged: &DayPrints, stored: &DayPrints, first_whole: Option<i32>) -> Vec<i32> {
    staged
        .iter()
        .filter(|(d, p)| whole(first_whole)(d) && stored.get(d) == Some(p))
        .map(|(d, _)| *d)
        .collect()
}

/// Replace the node's fingerprints with those of this load's whole days, in its transaction.
pub async fn save(
    client: &Client,
    node: &str,
    f: &Fingerprinting,
    run_id: &str,
    staged: &DayPrints,
) -> Result<(), SinkError> {
    let mut days = Vec::new();
    let (mut rows, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for (d, p) in staged.iter().filter(|(d, _)| whole(f.first_whole)(d)) {
        let Some(date) = date_of(*d) else { continue };
        days.push(date);
        rows.push(i64::try_from(p.rows).unwrap_or(i64::MAX));
        // Stored as the signed bigint with the same bits.
        a.push(p.hash_a as i64);
        b.push(p.hash_b as i64);
    }
    let err = |e| SinkError::pg(format!("storing the day fingerprints of {node}"), e);
    client
        .execute(
            "DELETE FROM pulso_flow.day_fingerprints WHERE node = $1",
            &[&node],
        )
        .await
        .map_err(err)?;
    if !days.is_empty() {
        client
            .execute(
                "INSERT INTO pulso_flow.day_fingerprints \
                   (node, inc_column, run_id, day, rows, hash_a, hash_b) \
                 SELECT $1, $2, $3, d, r, a, b \
                   FROM unnest($4::date[], $5::int8[], $6::int8[], $7::int8[]) AS u(d, r, a, b)",
                &[&node, &f.column, &run_id, &days, &rows, &a, &b],
            )
            .await
            .map_err(err)?;
    }
    Ok(())
}

/// A predicate that is true for a row of `alias` whose incremental day is one of `days` (never
/// for NULL), or `None` when there are none. The days are dates we formatted ourselves.
pub fn in_days(alias: &str, column: &str, ty: &PgType, days: &[i32]) -> Option<String> {
    let list = days
        .iter()
        .filter_map(|d| date_of(*d))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect::<Vec<_>>();
    if list.is_empty() {
        return None;
    }
    let col = format!("{alias}.{}", ident(column));
    let day = match ty {
        PgType::Date => col,
        PgType::Timestamptz => format!("({col} AT TIME ZONE 'UTC')::date"),
        _ => format!("{col}::date"),
    };
    Some(format!(
        "coalesce({day} = ANY ('{{{}}}'::date[]), false)",
        list.join(",")
    ))
}

/// Rows the staged prints hold for `days`.
pub fn rows_in(staged: &DayPrints, days: &[i32]) -> u64 {
    days.iter()
        .filter_map(|d| staged.get(d))
        .map(|p| p.rows)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDateTime, Utc};

    #[test]
    fn the_first_whole_day_starts_at_or_after_the_lower_bound() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let n = |s: &str| day_number(d(s));
        assert_eq!(first_whole_day(None), None);
        assert_eq!(
            first_whole_day(Some(&IncValue::Date(d("2025-06-09")))),
            n("2025-06-09")
        );
        let ts = |s: &str| IncValue::Timestamp(s.parse::<DateTime<Utc>>().unwrap());
        assert_eq!(
            first_whole_day(Some(&ts("2025-06-09T00:00:00Z"))),
            n("2025-06-09")
        );
        assert_eq!(
            first_whole_day(Some(&ts("2025-06-09T00:00:00.000001Z"))),
            n("2025-06-10")
        );
        assert_eq!(first_whole_day(Some(&ts("1999-12-31T23:00:00Z"))), Some(0));
        assert_eq!(
            first_whole_day(Some(&ts("0001-01-01T00:00:00Z"))),
            n("0001-01-01")
        );
        let dt = |s: &str| IncValue::Datetime(s.parse::<NaiveDateTime>().unwrap());
        assert_eq!(
            first_whole_day(Some(&dt("9999-12-31T00:00:00"))),
            n("9999-12-31")
        );
        assert_eq!(
            first_whole_day(Some(&dt("2025-06-09T14:00:00"))),
            n("2025-06-10")
        );
        assert_eq!(date_of(0), Some(d("2000-01-01")));
        assert_eq!(date_of(-1), Some(d("1999-12-31")));
    }

    #[test]
    fn only_whole_days_with_the_stored_print_are_unchanged() {
        let p = |rows, h| DayPrint {
            rows,
            hash_a: h,
            hash_b: h,
        };
        let staged = DayPrints::from([(9, p(5, 1)), (10, p(5, 2)), (11, p(3, 3)), (12, p(1, 4))]);
        let stored = DayPrints::from([(9, p(5, 1)), (10, p(5, 2)), (11, p(2, 3))]);
        // Day 9 matches but is cut by the window; 11 gained a row; 12 is new.
        assert_eq!(unchanged(&staged, &stored, Some(10)), [10]);
        assert_eq!(unchanged(&staged, &stored, None), [9, 10]);
        assert_eq!(
            unchanged(&staged, &DayPrints::new(), None),
            Vec::<i32>::new()
        );
        assert_eq!(rows_in(&staged, &[9, 10, 99]), 10);
    }

    #[test]
    fn the_day_predicate_follows_the_column_type() {
        assert_eq!(in_days("s", "c", &PgType::Date, &[]), None);
        assert_eq!(
            in_days("s", "c", &PgType::Timestamptz, &[0, 1]).unwrap(),
            "coalesce((s.\"c\" AT TIME ZONE 'UTC')::date = ANY ('{2000-01-01,2000-01-02}'::date[]), false)"
        );
        assert_eq!(
            in_days("s", "c", &PgType::Timestamp, &[0]).unwrap(),
            "coalesce(s.\"c\"::date = ANY ('{2000-01-01}'::date[]), false)"
        );
        assert_eq!(
            in_days("s", "c", &PgType::Date, &[0]).unwrap(),
            "coalesce(s.\"c\" = ANY ('{2000-01-01}'::date[]), false)"
        );
    }
}
