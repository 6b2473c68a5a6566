//! One day of a table as a reconciliation sees it: how many rows and the exact sums of some
//! columns. A source computes it (BigQuery's aggregate query), the sink compares it with the
//! target's own per-day totals.

use chrono::NaiveDate;

/// The rows and sums of one day. Sums are exact decimals as text (never floats), in the order
/// of the reconciliation's `sum:` columns; `None` is a NULL sum (no non-NULL value that day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayTotals {
    /// `None` for the rows whose day is NULL.
    pub day: Option<NaiveDate>,
    pub rows: i64,
    pub sums: Vec<Option<String>>,
}
