//! Which rows a table load reads: the window on its incremental column.
//!
//! lower = watermark − lookback (inclusive), or the table's `initial` value on the first load, or
//! unbounded; upper = unbounded for snapshot sources (files, generator). Sources that push the
//! window down (BigQuery) get an upper bound fixed once at run start, so rows that arrive while
//! the run reads are left for the next run instead of being half-read:
//! timestamp → now (UTC); datetime → now on the wall clock of the pipeline's time zone;
//! date → tomorrow in the pipeline's time zone (exclusive, so today is read whole). The
//! watermark is the greatest value actually loaded, so nothing between it and the next run is
//! skipped, and the lookback re-reads late rows (the merge makes the overlap harmless).
//!
//! A watermark at or past that upper bound cannot come from a load (no loaded row reaches an
//! exclusive bound): it was set by hand, and every run would read nothing new. `run` warns about
//! it ([`watermark_ahead`]) and `watermarks set` refuses it unless forced ([`implausible`]).

use chrono::{DateTime, Utc};
use pulso_operators::window::Window;
use pulso_types::{IncType, IncValue};

use crate::error::EngineError;
use crate::pipeline::TableNode;

/// The window of one load, or `None` when the whole source is read (no incremental column, or a
/// full refresh).
pub fn window_for(
    node: &TableNode,
    watermark: Option<IncValue>,
    full_refresh: bool,
    run_start: DateTime<Utc>,
    time_zone: chrono_tz::Tz,
) -> Result<Option<Window>, EngineError> {
    let Some(inc) = &node.incremental else {
        return Ok(None);
    };
    if full_refresh {
        return Ok(None);
    }
    let lower = match watermark {
        Some(w) => {
            // Same type: used as it is. Another type (the pipeline's type was changed): read its
            // text as the declared type, which refuses what would need a time-zone guess.
            let value = if w.ty() == inc.ty {
                Ok(w)
            } else {
                IncValue::parse(inc.ty, &w.to_iso())
            };
            let value = value.map_err(|e| {
                EngineError::Usage(format!(
                    "stored watermark {} does not fit incremental type {:?}: {e} \
                     (fix it with `pulso-flow watermarks set` or `reset`)",
                    w.to_iso(),
                    inc.ty
                ))
            })?;
            Some(value.minus(inc.lookback))
        }
        None => inc.initial,
    };
    Ok(Some(Window {
        column: inc.column.clone(),
        ty: inc.ty,
        upper: node
            .source
            .pushes_window_down()
            .then(|| upper_bound(inc.ty, run_start, time_zone)),
        lower,
    }))
}

/// The exclusive upper bound of a pushed-down window, fixed at run start (see the module doc).
pub fn upper_bound(ty: IncType, run_start: DateTime<Utc>, time_zone: chrono_tz::Tz) -> IncValue {
    let micros =
        DateTime::<Utc>::from_timestamp_micros(run_start.timestamp_micros()).unwrap_or(run_start);
    match ty {
        IncType::Timestamp => IncValue::Timestamp(micros),
        IncType::Datetime => IncValue::Datetime(micros.with_timezone(&time_zone).naive_local()),
        IncType::Date => {
            let today = micros.with_timezone(&time_zone).date_naive();
            IncValue::Date(today.succ_opt().unwrap_or(today))
        }
    }
}

/// The warning of a run whose stored watermark is at or past its window's upper bound (see the
/// module doc), or `None`. Only pushed-down windows have an upper bound.
pub fn watermark_ahead(watermark: Option<&IncValue>, window: Option<&Window>) -> Option<String> {
    let (w, upper) = (watermark?, window?.upper.as_ref()?);
    (w.ty() == upper.ty() && w >= upper).then(|| {
        format!(
            "the stored watermark {w} is not before this run's upper bound {upper}: no load can \
             have produced it, and rows up to it are skipped; if it was set by mistake, fix it \
             with `pulso-flow watermarks set` or `reset`"
        )
    })
}

/// Why `value` is not a watermark a load could have produced, or `None`: a year before 0001
/// (no such year in PostgreSQL or BigQuery) or a value at or past the upper bound a run would
/// use now (the future; see the module doc). `watermarks set` refuses these unless forced.
pub fn implausible(
    value: &IncValue,
    now: DateTime<Utc>,
    time_zone: chrono_tz::Tz,
) -> Option<String> {
    if value.year() < 1 {
        return Some(format!(
            "{value} is before year 0001, which neither PostgreSQL nor BigQuery can compare with"
        ));
    }
    let upper = upper_bound(value.ty(), now, time_zone);
    (*value >= upper).then(|| {
        format!(
            "{value} is in the future (a run now reads up to {upper}, exclusive): every run would \
             skip the rows before it and report 0 rows"
        )
    })
}

/// Human text of a window bound for logs, the ledger and explain.
pub fn bound_text(v: Option<&IncValue>) -> Option<String> {
    v.map(IncValue::to_iso)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn future_and_year_zero_watermarks_are_implausible() {
        let now: DateTime<Utc> = "2025-06-01T03:30:00Z".parse().unwrap();
        let lima = chrono_tz::America::Lima;
        let v = |ty, s| IncValue::parse(ty, s).unwrap();
        for ok in [
            v(IncType::Timestamp, "2025-06-01T03:29:59Z"),
            v(IncType::Timestamp, "0001-01-01T00:00:00Z"),
            // Still May 31st in Lima: that whole day may be loaded.
            v(IncType::Date, "2025-05-31"),
            v(IncType::Datetime, "2025-05-31T22:29:00"),
        ] {
            assert_eq!(implausible(&ok, now, lima), None, "{ok}");
        }
        for bad in [
            v(IncType::Timestamp, "2025-06-01T03:30:00Z"),
            v(IncType::Date, "2025-06-01"),
            v(IncType::Datetime, "2025-05-31T22:31:00"),
            v(IncType::Date, "9999-12-31"),
        ] {
            let why = implausible(&bad, now, lima).unwrap();
            assert!(why.contains("in the future"), "{why}");
        }
        let why = implausible(&v(IncType::Date, "0000-12-31"), now, lima).unwrap();
        assert!(why.contains("before year 0001"), "{why}");
    }

    #[test]
    fn a_watermark_at_or_past_the_upper_bound_is_reported() {
        let ts = |s| IncValue::parse(IncType::Timestamp, s).unwrap();
        let window = Window {
            column: "c".into(),
            ty: IncType::Timestamp,
            lower: None,
            upper: Some(ts("2025-06-01T00:00:00Z")),
        };
        let before = ts("2025-05-31T23:59:59.999999Z");
        assert_eq!(watermark_ahead(Some(&before), Some(&window)), None);
        let at = ts("2025-06-01T00:00:00Z");
        let warning = watermark_ahead(Some(&at), Some(&window)).unwrap();
        assert!(warning.contains("2025-06-01T00:00:00.000000Z"), "{warning}");
        // Snapshot sources have no upper bound: any watermark may be true.
        let unbounded = Window {
            upper: None,
            ..window
        };
        assert_eq!(watermark_ahead(Some(&at), Some(&unbounded)), None);
        assert_eq!(watermark_ahead(None, None), None);
    }

    #[test]
    fn upper_bounds_follow_the_column_type_and_zone() {
        let start: DateTime<Utc> = "2025-06-01T03:30:00.1234567Z".parse().unwrap();
        let lima = chrono_tz::America::Lima;
        assert_eq!(
            upper_bound(IncType::Timestamp, start, lima).to_iso(),
            "2025-06-01T03:30:00.123456Z"
        );
        assert_eq!(
            upper_bound(IncType::Datetime, start, lima).to_iso(),
            "2025-05-31T22:30:00.123456"
        );
        // 22:30 in Lima is still May 31st: tomorrow is June 1st.
        assert_eq!(
            upper_bound(IncType::Date, start, lima).to_iso(),
            "2025-06-01"
        );
        assert_eq!(
            upper_bound(IncType::Date, start, chrono_tz::UTC).to_iso(),
            "2025-06-02"
        );
    }
}
