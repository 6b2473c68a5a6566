//! Observed lateness: for the rows a load inserts (keys new to the target), how far below the
//! previous watermark their incremental value was.
//!
//! A row inserted with a value below the previous watermark arrived after a later row had
//! already been loaded: it is "late" by `watermark_before − value`. Incremental loads can only
//! see lateness up to the table's lookback (the window starts at `watermark − lookback`); a full
//! refresh sees all of it. Each load stores the maximum and a histogram in
//! `node_runs.details.lateness` ([`Lateness::to_json`]), `pulso-flow watermarks show` and
//! `/api/v1/etl/status` show the maximum observed over recent runs (read by
//! [`crate::status::lateness`]), and a lookback that an observed lateness reaches is warned about
//! ([`lookback_warning`]): rows later than the lookback are never read by incremental runs.
//!
//! Dates are late by whole days (86,400 s each); timestamps to the second.

use serde_json::{Value, json};

/// Upper bounds (inclusive, seconds) of the histogram's buckets and their names; a last bucket
/// (`gt_30d`) takes the rest.
pub const BUCKETS: &[(i64, &str)] = &[
    (60, "le_1m"),
    (3_600, "le_1h"),
    (6 * 3_600, "le_6h"),
    (86_400, "le_1d"),
    (3 * 86_400, "le_3d"),
    (7 * 86_400, "le_7d"),
    (14 * 86_400, "le_14d"),
    (30 * 86_400, "le_30d"),
];
pub const OVERFLOW: &str = "gt_30d";

/// The lateness observed by one load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lateness {
    /// Inserted rows below the previous watermark.
    pub rows: u64,
    /// The greatest lateness, in seconds (`None` when no row was late).
    pub max_seconds: Option<i64>,
    /// Row counts per bucket of [`BUCKETS`], then the overflow bucket.
    pub histogram: Vec<u64>,
}

impl Lateness {
    /// No late row.
    pub fn none() -> Lateness {
        Lateness {
            rows: 0,
            max_seconds: None,
            histogram: vec![0; BUCKETS.len() + 1],
        }
    }

    /// The ledger's `details.lateness`; `lookback_seconds` is the table's lookback at the time
    /// of the load (kept with it so that a later reader can compare without the pipeline file).
    pub fn to_json(&self, lookback_seconds: Option<i64>) -> Value {
        let mut histogram = serde_json::Map::new();
        for (i, name) in BUCKETS
            .iter()
            .map(|(_, n)| *n)
            .chain([OVERFLOW])
            .enumerate()
        {
            let n = self.histogram.get(i).copied().unwrap_or(0);
            if n > 0 {
                histogram.insert(name.to_string(), json!(n));
            }
        }
        json!({
            "rows": self.rows,
            "max_seconds": self.max_seconds,
            "max": self.max_seconds.map(human),
            "lookback_seconds": lookback_seconds,
            "histogram": histogram,
        })
    }
}

/// The SQL select list that aggregates a relation with columns `inserted` (bool) and `late`
/// (seconds, NULL when the row is not late): late rows, their maximum, one count per bucket.
/// [`from_row`] reads it starting at the given column.
pub fn aggregates() -> String {
    let mut cols = vec!["count(late)".to_string(), "max(late)::bigint".to_string()];
    let mut lower = None;
    for (upper, _) in BUCKETS {
        cols.push(match lower {
            None => format!("count(*) FILTER (WHERE late <= {upper})"),
            Some(l) => format!("count(*) FILTER (WHERE late > {l} AND late <= {upper})"),
        });
        lower = Some(*upper);
    }
    if let Some(l) = lower {
        cols.push(format!("count(*) FILTER (WHERE late > {l})"));
    }
    cols.join(", ")
}

/// Read [`aggregates`] from `row` starting at column `first`.
pub fn from_row(
    row: &tokio_postgres::Row,
    first: usize,
) -> Result<Lateness, tokio_postgres::Error> {
    let count = |i: usize| -> Result<u64, tokio_postgres::Error> {
        Ok(u64::try_from(row.try_get::<_, i64>(i)?).unwrap_or(0))
    };
    let rows = count(first)?;
    let max_seconds = row.try_get::<_, Option<i64>>(first + 1)?;
    let histogram = (0..=BUCKETS.len())
        .map(|b| count(first + 2 + b))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Lateness {
        rows,
        max_seconds,
        histogram,
    })
}

/// The warning of an observed lateness that reaches the table's lookback, or `None`.
/// Incremental runs read back `lookback` below the watermark, so a row later than that is never
/// read by them (only a full refresh finds it); one exactly at the edge means the next, later
/// one would be missed.
pub fn lookback_warning(
    table: &str,
    column: &str,
    max_seconds: i64,
    lookback_seconds: i64,
) -> Option<String> {
    (max_seconds > 0 && max_seconds >= lookback_seconds).then(|| {
        format!(
            "table {table}: rows arrived up to {} late (their {column} that far below the \
             previous watermark), and the lookback is {}: rows later than the lookback are \
             missed by incremental runs; lengthen incremental.lookback",
            human(max_seconds),
            human(lookback_seconds)
        )
    })
}

/// The warning of one load's lateness against its table's lookback (see [`lookback_warning`]).
pub fn warning(shape: &crate::sql::LoadShape, lateness: Option<&Lateness>) -> Option<String> {
    let max = lateness?.max_seconds?;
    let column = shape.incremental.as_deref()?;
    let lookback = shape.lookback?.num_seconds();
    lookback_warning(&shape.target.to_string(), column, max, lookback)
}

/// `3d 4h`, `2h 5m`, `45s`: the two largest units.
pub fn human(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (sec, "s")]
        .iter()
        .skip_while(|(v, _)| *v == 0)
        .take(2)
        .filter(|(v, _)| *v > 0)
        .map(|(v, u)| format!("{v}{u}"))
        .collect();
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(0), "0s");
        assert_eq!(human(45), "45s");
        assert_eq!(human(3_600 + 300 + 7), "1h 5m");
        assert_eq!(human(3 * 86_400 + 4 * 3_600), "3d 4h");
        assert_eq!(human(2 * 86_400 + 30), "2d");
    }

    #[test]
    fn a_lateness_that_reaches_the_lookback_is_warned_about() {
        assert_eq!(lookback_warning("t", "c", 3_600, 86_400), None);
        assert_eq!(lookback_warning("t", "c", 0, 0), None);
        let w = lookback_warning("raw.t", "creado_el", 2 * 86_400, 86_400).unwrap();
        assert!(w.contains("2d late") && w.contains("lookback is 1d"), "{w}");
        assert!(lookback_warning("t", "c", 86_400, 86_400).is_some());
    }

    #[test]
    fn json_names_the_nonempty_buckets() {
        let mut histogram = vec![0; BUCKETS.len() + 1];
        histogram[1] = 2;
        histogram[BUCKETS.len()] = 1;
        let l = Lateness {
            rows: 3,
            max_seconds: Some(40 * 86_400),
            histogram,
        };
        let j = l.to_json(Some(86_400));
        assert_eq!(j["histogram"], json!({"le_1h": 2, "gt_30d": 1}));
        assert_eq!(j["max"], json!("40d"));
        assert_eq!(j["lookback_seconds"], json!(86_400));
        assert_eq!(aggregates().matches("count(").count(), BUCKETS.len() + 2);
    }
}
