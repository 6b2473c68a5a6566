//! Types shared by every layer of pulso-flow that neither `pulso-operators` nor `pulso-sinks`
//! may own alone (they do not depend on each other).
//!
//! * [`incremental`] — the value of an incremental column ([`IncType`], [`IncValue`]): a
//!   watermark, a window bound, `incremental.initial`, the argument of `watermarks set`. One type,
//!   one strict parser (a zone-less timestamp is refused, never guessed), one canonical text
//!   (what `pulso_flow.watermarks.value` stores).
//! * [`day_totals`] — one day's row count and exact sums ([`DayTotals`]): what a source reports
//!   and the sink compares with the target when reconciling.

pub mod day_totals;
pub mod incremental;

pub use day_totals::DayTotals;
pub use incremental::{IncType, IncValue, ValueError};
