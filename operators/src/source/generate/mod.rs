//! `kind: generate` — deterministic synthetic rows, so that demos, tests and benchmarks need no
//! files and no BigQuery.
//!
//! ```yaml
//! source:
//!   kind: generate
//!   rows: 1000000            # rows at revision 0
//!   seed: 42
//!   revision: 0              # bump to change a share of rows and add rows
//!   change_share: 0.01       # share of existing rows changed by each revision r >= 1
//!   grow: 0                  # rows added by each revision r >= 1
//!   history: 0               # growth steps already there at revision 0 (rows + history * grow)
//!   columns:                 # output order
//!     cod_cuenta:    { from_id: "{}", offset: 5000000000, div: 2 }
//!     nro_documento: { from_id: "F{}", offset: 100000000000 }
//!     archivo:       { choice: ["A", "B", "C"] }
//!     fecha_vencimiento: { date: ["2024-01-01", "2025-12-31"] }
//!     monto_exigible: { decimal: ["1.00", "99999.99"] }
//!     decil:         { int: [1, 10] }
//!     activo:        { bool: 0.5 }
//!     creado_el:     { incremental: { start: "2025-06-01T05:00:00Z", step: "1s", type: timestamp } }
//!     motivo_rechazo: { choice: ["X", "Y"], null_share: 0.99 }
//! ```
//!
//! Revision semantics: row ids are `0 .. rows + revision * grow`; a row is born at revision 0
//! (`id < rows`) or at `(id - rows) / grow + 1`. Its last change `lastrev(id)` is the largest
//! revision r in (born, revision] with `hash(seed, id, r) < change_share`, else its birth. Every
//! value except `from_id` is a pure function of (seed, column name, id, lastrev).
//!
//! Batches are built lazily on a blocking thread, `batch_size` rows at a time: memory does not
//! depend on `rows`.
//!
//! The run's window is pushed down where that is exact and cheap: at revision 0 (or with
//! `change_share: 0`) with an incremental column that is never NULL, values grow with the row
//! id, so only the ids whose value can fall in the window are generated (a backfill chunk
//! generates its own rows, not all of them). The transform still applies the window to what
//! comes out.

mod hash;
mod spec;

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Date32Type, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

pub use self::spec::{ColumnSpec, GenerateSpec, Generator, LateDelivery};
use super::blocking;
use crate::window::Window;
use crate::{BatchStream, OperatorError};
use pulso_types::IncValue;

/// Salt of the "is row `id` changed at revision r" draw, distinct from every column's stream.
const CHANGE_SALT: u64 = 0x6368_616e_6765_2121;
/// Salt of the "is this cell NULL" draw, so that nulls do not correlate with values.
const NULL_SALT: u64 = 0x6e75_6c6c_6e75_6c6c;

/// The largest revision accepted: each row's last change is found by walking back through the
/// revisions, so cost grows with the revision number.
pub const MAX_REVISION: u64 = 100_000;

/// Counts the rows whose last change is `revision` when generating at `revision`:
/// `(existing rows changed at it, rows born at it)`. At revision 0 every row is born: `(0, rows)`.
/// (`spec.revision` is ignored.) These are exactly the rows whose values differ between
/// revision - 1 and revision, plus the new ones.
pub fn changed_rows(spec: &GenerateSpec, revision: u64) -> (u64, u64) {
    if revision == 0 {
        return (0, spec.rows);
    }
    let existing = spec
        .rows
        .saturating_add((revision - 1).saturating_mul(spec.grow));
    let plan = Revisions {
        rows: spec.rows,
        grow: spec.grow,
        seed: spec.seed,
        change_share: spec.change_share,
        revision,
    };
    let changed = (0..existing)
        .filter(|id| plan.changed_at(*id, revision))
        .count() as u64;
    (changed, spec.grow)
}

impl GenerateSpec {
    /// Total rows at the current revision.
    pub fn total_rows(&self) -> u64 {
        self.rows
            .saturating_add(self.revision.saturating_mul(self.grow))
    }

    /// Checks the whole spec (shares, bounds, value ranges at this revision) without generating.
    pub fn validate(&self) -> Result<(), OperatorError> {
        Compiled::new(self).map(|_| ())
    }

    pub(crate) fn schema(&self) -> Result<SchemaRef, OperatorError> {
        Ok(Compiled::new(self)?.schema)
    }

    pub(crate) fn open(
        &self,
        batch_size: usize,
        window: Option<&Window>,
    ) -> Result<(SchemaRef, BatchStream), OperatorError> {
        let compiled = Arc::new(Compiled::new(self)?);
        let schema = compiled.schema.clone();
        let (first, end) = window
            .and_then(|w| compiled.id_range(w))
            .unwrap_or((0, self.total_rows()));
        let batches = GenerateBatches {
            compiled,
            next_id: first,
            end,
            batch_size: batch_size.max(1),
        };
        Ok((schema, blocking::stream(self.describe(), batches)))
    }

    pub(crate) fn describe(&self) -> String {
        let mut text = format!(
            "generate {} rows (seed {}, revision {}",
            self.total_rows(),
            self.seed,
            self.revision
        );
        if self.change_share > 0.0 || self.grow > 0 {
            let _ = write!(
                text,
                ", change_share {}, grow {}",
                self.change_share, self.grow
            );
        }
        if self.history > 0 {
            let _ = write!(text, ", history {}", self.history);
        }
        text.push(')');
        text
    }
}

/// The revision bookkeeping shared by generation and [`changed_rows`].
#[derive(Debug, Clone)]
struct Revisions {
    rows: u64,
    grow: u64,
    seed: u64,
    change_share: f64,
    revision: u64,
}

impl Revisions {
    /// Rows that exist at revision `r`.
    fn rows_at(&self, r: u64) -> u64 {
        self.rows + r * self.grow
    }

    fn born(&self, id: u64) -> u64 {
        if id < self.rows {
            0
        } else {
            // grow > 0 here, as ids beyond `rows` only exist when rows are grown.
            (id - self.rows) / self.grow.max(1) + 1
        }
    }

    #[inline]
    fn changed_at(&self, id: u64, r: u64) -> bool {
        self.change_share > 0.0
            && hash::unit(hash::hash3(self.seed ^ CHANGE_SALT, id, r)) < self.change_share
    }

    /// The last revision in (born, revision] that changed row `id`, else its birth revision.
    fn lastrev(&self, id: u64) -> u64 {
        let born = self.born(id);
        if self.change_share > 0.0 {
            // Newest first: with any real change share the walk stops early.
            for r in (born + 1..=self.revision).rev() {
                if self.changed_at(id, r) {
                    return r;
                }
            }
        }
        born
    }
}

/// One column ready to generate: its draw salt and typed parameters.
#[derive(Debug)]
struct ColumnGen {
    salt: u64,
    null_share: f64,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    FromId {
        prefix: String,
        suffix: String,
        offset: u64,
        div: u64,
    },
    Choice(Vec<String>),
    Date {
        min: i32,
        span: u64,
    },
    Decimal {
        min: i128,
        span: u128,
        precision: u8,
        scale: i8,
    },
    Int {
        min: i64,
        span: u128,
    },
    Bool {
        true_share: f64,
    },
    Incremental(IncrementalKind),
}

/// `value = start + step * (block_offset[lastrev] + id / rows_per_step)` (+ `late.1` from
/// position `late.0` of a step on), in days for dates and microseconds otherwise; the range was
/// checked at compile time.
#[derive(Debug)]
struct IncrementalKind {
    start: i64,
    step: i64,
    rows_per_step: u64,
    block_offset: Vec<u64>,
    late: Option<(u64, i64)>,
    value: IncValue,
}

impl IncrementalKind {
    /// The value of row `id` whose last change is revision `lastrev`, in units.
    fn units(&self, id: u64, lastrev: u64) -> i64 {
        let offset = usize::try_from(lastrev)
            .ok()
            .and_then(|r| self.block_offset.get(r))
            .copied()
            .unwrap_or(u64::MAX);
        let index = offset.saturating_add(id / self.rows_per_step);
        let late = match self.late {
            Some((from, by)) if id % self.rows_per_step >= from => by,
            _ => 0,
        };
        self.start
            .saturating_add(
                self.step
                    .saturating_mul(i64::try_from(index).unwrap_or(i64::MAX)),
            )
            .saturating_add(late)
    }
}

#[derive(Debug)]
struct Compiled {
    revisions: Revisions,
    schema: SchemaRef,
    columns: Vec<ColumnGen>,
}

impl Compiled {
    fn new(spec: &GenerateSpec) -> Result<Self, OperatorError> {
        let invalid = |message: String| OperatorError::spec("generate source", message);
        if !(0.0..=1.0).contains(&spec.change_share) {
            return Err(invalid(format!(
                "change_share {} is not in [0, 1]",
                spec.change_share
            )));
        }
        if spec.revision > MAX_REVISION {
            return Err(invalid(format!(
                "revision {} exceeds {MAX_REVISION}",
                spec.revision
            )));
        }
        if spec.columns.is_empty() {
            return Err(invalid("no columns".to_string()));
        }
        spec.revision
            .checked_mul(spec.grow)
            .and_then(|g| g.checked_add(spec.rows))
            .ok_or_else(|| invalid("rows + revision * grow overflows".to_string()))?;
        let revisions = Revisions {
            rows: spec.rows,
            grow: spec.grow,
            seed: spec.seed,
            change_share: spec.change_share,
            revision: spec.revision,
        };
        let mut fields = Vec::with_capacity(spec.columns.len());
        let mut columns = Vec::with_capacity(spec.columns.len());
        for (name, column) in &spec.columns {
            let in_column = |message: String| {
                OperatorError::spec(format!("generated column {name:?}"), message)
            };
            column.validate().map_err(in_column)?;
            let (kind, data_type) =
                compile_kind(&column.generator, &revisions).map_err(in_column)?;
            fields.push(Field::new(name, data_type, column.null_share > 0.0));
            columns.push(ColumnGen {
                salt: hash::mix(spec.seed ^ hash::text_hash(name)),
                null_share: column.null_share,
                kind,
            });
        }
        Ok(Compiled {
            revisions,
            schema: Arc::new(Schema::new(fields)),
            columns,
        })
    }

    fn batch(&self, start: u64, end: u64) -> Result<RecordBatch, OperatorError> {
        let ids: Vec<u64> = (start..end).collect();
        let lastrevs: Vec<u64> = ids.iter().map(|id| self.revisions.lastrev(*id)).collect();
        let columns = self
            .columns
            .iter()
            .map(|c| c.build(&ids, &lastrevs))
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl Compiled {
    /// The ids `[first, end)` outside of which no row's value of the window's column can be in
    /// the window, when that is known without generating: no revision changes existing rows
    /// (revision 0, or `change_share: 0`: a row keeps the value of its birth, and values grow
    /// with the id) and a column that is never NULL (NULL rows are in every window). `None`: all
    /// ids.
    fn id_range(&self, window: &Window) -> Option<(u64, u64)> {
        if self.revisions.revision != 0 && self.revisions.change_share > 0.0 {
            return None;
        }
        let index = self.schema.index_of(&window.column).ok()?;
        let column = self.columns.get(index)?;
        let Kind::Incremental(inc) = &column.kind else {
            return None;
        };
        if column.null_share > 0.0 || inc.value.ty() != window.ty || inc.step <= 0 {
            return None;
        }
        let total = self.revisions.rows_at(self.revisions.revision);
        let units = |v: &IncValue| match v {
            IncValue::Date(d) => i64::from(Date32Type::from_naive_date(*d)),
            IncValue::Datetime(dt) => dt.and_utc().timestamp_micros(),
            IncValue::Timestamp(ts) => ts.timestamp_micros(),
        };
        // A row's last change is its birth here, and the value does not decrease with the id
        // (births and offsets only grow; a late tail stays below the next step), so the first
        // id at or above a bound is found by bisection.
        let value_of = |id: u64| -> i64 { inc.units(id, self.revisions.born(id)) };
        let first_at_or_above = |bound: &IncValue| -> u64 {
            let bound = units(bound);
            let (mut lo, mut hi) = (0u64, total);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if value_of(mid) >= bound {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            lo
        };
        let first = window.lower.as_ref().map_or(0, first_at_or_above);
        let end = window.upper.as_ref().map_or(total, first_at_or_above);
        Some((first, end.max(first)))
    }
}

fn compile_kind(generator: &Generator, revisions: &Revisions) -> Result<(Kind, DataType), String> {
    Ok(match generator {
        Generator::FromId {
            template,
            offset,
            div,
        } => {
            let (prefix, suffix) = template
                .split_once("{}")
                .ok_or_else(|| format!("from_id template {template:?} has no `{{}}`"))?;
            let last = revisions.rows_at(revisions.revision).saturating_sub(1);
            (last / div)
                .checked_add(*offset)
                .ok_or_else(|| "from_id offset + id overflows".to_string())?;
            (
                Kind::FromId {
                    prefix: prefix.to_string(),
                    suffix: suffix.to_string(),
                    offset: *offset,
                    div: *div,
                },
                DataType::Utf8,
            )
        }
        Generator::Choice(values) => (Kind::Choice(values.clone()), DataType::Utf8),
        Generator::Date { min, max } => {
            let lo = Date32Type::from_naive_date(*min);
            let hi = Date32Type::from_naive_date(*max);
            (
                Kind::Date {
                    min: lo,
                    span: (i64::from(hi) - i64::from(lo) + 1) as u64,
                },
                DataType::Date32,
            )
        }
        Generator::Decimal {
            min,
            max,
            precision,
            scale,
        } => (
            Kind::Decimal {
                min: *min,
                span: max.abs_diff(*min) + 1,
                precision: *precision,
                scale: *scale,
            },
            DataType::Decimal128(*precision, *scale),
        ),
        Generator::Int { min, max } => (
            Kind::Int {
                min: *min,
                span: u128::from(max.abs_diff(*min)) + 1,
            },
            DataType::Int64,
        ),
        Generator::Bool { true_share } => (
            Kind::Bool {
                true_share: *true_share,
            },
            DataType::Boolean,
        ),
        Generator::Incremental {
            start,
            step,
            rows_per_step,
            late,
        } => compile_incremental(start, *step, *rows_per_step, late.as_ref(), revisions)?,
    })
}

fn compile_incremental(
    start: &IncValue,
    step: chrono::Duration,
    rows_per_step: u64,
    late: Option<&LateDelivery>,
    revisions: &Revisions,
) -> Result<(Kind, DataType), String> {
    // offset(r) = Σ_{r' < r} ceil(rows_at(r') / rows_per_step): the values of rows whose last
    // change is r fill [offset(r), offset(r + 1)), so later revisions are strictly above.
    let mut block_offset = Vec::with_capacity(revisions.revision as usize + 1);
    let mut acc: u64 = 0;
    for r in 0..=revisions.revision {
        block_offset.push(acc);
        acc = acc
            .checked_add(revisions.rows_at(r).div_ceil(rows_per_step))
            .ok_or_else(|| "incremental values overflow".to_string())?;
    }
    let max_index = i64::try_from(acc).map_err(|_| "incremental values overflow".to_string())?;
    // Durations in the column's units: days for a date, microseconds otherwise.
    let units = |d: chrono::Duration| match start {
        IncValue::Date(_) => Ok(d.num_days()),
        _ => micros(d),
    };
    let start_units = match start {
        IncValue::Date(d) => i64::from(Date32Type::from_naive_date(*d)),
        IncValue::Datetime(dt) => dt.and_utc().timestamp_micros(),
        IncValue::Timestamp(ts) => ts.timestamp_micros(),
    };
    let step_units = units(step)?;
    let late = late
        .map(|l| units(l.by).map(|by| (l.from, by)))
        .transpose()?;
    let last = step_units
        .checked_mul(max_index)
        .and_then(|v| v.checked_add(start_units))
        .and_then(|v| v.checked_add(late.map_or(0, |(_, by)| by)))
        .ok_or_else(|| format!("incremental values overflow after {max_index} steps"))?;
    let representable = match start {
        IncValue::Date(_) => i32::try_from(last).is_ok(),
        _ => chrono::DateTime::from_timestamp_micros(last).is_some(),
    };
    if !representable {
        return Err(format!(
            "incremental values run past the representable range after {max_index} steps"
        ));
    }
    Ok((
        Kind::Incremental(IncrementalKind {
            start: start_units,
            step: step_units,
            rows_per_step,
            block_offset,
            late,
            value: *start,
        }),
        crate::window::arrow_type(start.ty()),
    ))
}

fn micros(step: chrono::Duration) -> Result<i64, String> {
    step.num_microseconds()
        .ok_or_else(|| "incremental step is too large".to_string())
}

impl ColumnGen {
    /// The draw of this column for (id, lastrev).
    #[inline]
    fn draw(&self, id: u64, lastrev: u64) -> u64 {
        hash::hash3(self.salt, id, lastrev)
    }

    #[inline]
    fn is_null(&self, h: u64) -> bool {
        self.null_share > 0.0 && hash::unit(hash::mix(h ^ NULL_SALT)) < self.null_share
    }

    fn build(&self, ids: &[u64], lastrevs: &[u64]) -> Result<ArrayRef, arrow::error::ArrowError> {
        let n = ids.len();
        let rows = ids.iter().zip(lastrevs).map(|(id, l)| (*id, *l));
        Ok(match &self.kind {
            Kind::FromId {
                prefix,
                suffix,
                offset,
                div,
            } => {
                let mut b = StringBuilder::with_capacity(n, n * (prefix.len() + suffix.len() + 12));
                let mut buf = String::with_capacity(32);
                for (id, _) in rows {
                    // Keys must not move between revisions: the null draw ignores lastrev too.
                    if self.is_null(self.draw(id, u64::MAX)) {
                        b.append_null();
                        continue;
                    }
                    buf.clear();
                    let _ = write!(buf, "{prefix}{}{suffix}", id / div + offset);
                    b.append_value(&buf);
                }
                Arc::new(b.finish())
            }
            Kind::Choice(values) => {
                let mut b = StringBuilder::with_capacity(n, n * 8);
                for (id, l) in rows {
                    let h = self.draw(id, l);
                    if self.is_null(h) {
                        b.append_null();
                    } else {
                        b.append_value(&values[hash::below(h, values.len() as u64) as usize]);
                    }
                }
                Arc::new(b.finish())
            }
            Kind::Date { min, span } => {
                let mut b = Date32Builder::with_capacity(n);
                for (id, l) in rows {
                    let h = self.draw(id, l);
                    if self.is_null(h) {
                        b.append_null();
                    } else {
                        // span <= i32 range, so the sum stays an i32.
                        b.append_value((i64::from(*min) + hash::below(h, *span) as i64) as i32);
                    }
                }
                Arc::new(b.finish())
            }
            Kind::Decimal {
                min,
                span,
                precision,
                scale,
            } => {
                let mut b = Decimal128Builder::with_capacity(n);
                for (id, l) in rows {
                    let h = self.draw(id, l);
                    if self.is_null(h) {
                        b.append_null();
                    } else {
                        // min + offset <= max, which fits by construction.
                        b.append_value(min.wrapping_add(hash::below_u128(h, *span) as i128));
                    }
                }
                Arc::new(b.finish().with_precision_and_scale(*precision, *scale)?)
            }
            Kind::Int { min, span } => {
                let mut b = Int64Builder::with_capacity(n);
                for (id, l) in rows {
                    let h = self.draw(id, l);
                    if self.is_null(h) {
                        b.append_null();
                    } else {
                        let offset = match u64::try_from(*span) {
                            Ok(s) => hash::below(h, s),
                            // The full i64 range: every hash is a valid offset.
                            Err(_) => h,
                        };
                        b.append_value(min.wrapping_add_unsigned(offset));
                    }
                }
                Arc::new(b.finish())
            }
            Kind::Bool { true_share } => {
                let mut b = BooleanBuilder::with_capacity(n);
                for (id, l) in rows {
                    let h = self.draw(id, l);
                    if self.is_null(h) {
                        b.append_null();
                    } else {
                        b.append_value(hash::unit(h) < *true_share);
                    }
                }
                Arc::new(b.finish())
            }
            Kind::Incremental(inc) => {
                let units = rows.map(|(id, l)| {
                    let h = self.draw(id, l);
                    // Bounded by the maximum checked in compile_incremental.
                    (!self.is_null(h)).then(|| inc.units(id, l))
                });
                match inc.value {
                    IncValue::Date(_) => {
                        let mut b = Date32Builder::with_capacity(n);
                        b.extend(units.map(|v| v.map(|d| d as i32)));
                        Arc::new(b.finish())
                    }
                    IncValue::Datetime(_) => {
                        let mut b = TimestampMicrosecondBuilder::with_capacity(n);
                        b.extend(units);
                        Arc::new(b.finish())
                    }
                    IncValue::Timestamp(_) => {
                        let mut b =
                            TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
                        b.extend(units);
                        Arc::new(b.finish())
                    }
                }
            }
        })
    }
}

/// Lazily generates `batch_size` rows at a time.
struct GenerateBatches {
    compiled: Arc<Compiled>,
    next_id: u64,
    end: u64,
    batch_size: usize,
}

impl Iterator for GenerateBatches {
    type Item = Result<RecordBatch, OperatorError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next_id >= self.end {
            return None;
        }
        let start = self.next_id;
        let end = self.end.min(start.saturating_add(self.batch_size as u64));
        self.next_id = end;
        Some(self.compiled.batch(start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revisions(rows: u64, grow: u64, revision: u64, share: f64) -> Revisions {
        Revisions {
            rows,
            grow,
            seed: 9,
            change_share: share,
            revision,
        }
    }

    #[test]
    fn born_and_lastrev() {
        let r = revisions(10, 3, 4, 0.0);
        assert_eq!(r.born(9), 0);
        assert_eq!(r.born(10), 1);
        assert_eq!(r.born(12), 1);
        assert_eq!(r.born(13), 2);
        assert_eq!(r.lastrev(21), 4);
        let all = revisions(10, 0, 3, 1.0);
        assert!((0..10).all(|id| all.lastrev(id) == 3));
    }
}
