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

/// Human text of a window bound for logs, the ledger and explain.
pub fn bound_text(v: Option<&IncValue>) -> Option<String> {
    v.map(IncValue::to_iso)
}

#[cfg(test)]
mod tests {
    use super::*;

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
