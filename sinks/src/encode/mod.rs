//! Arrow `RecordBatch` → PostgreSQL binary `COPY` rows, chosen from the target column types.
//!
//! A [`CopyEncoder`] knows the target table's columns. For each batch it matches the target
//! columns to batch columns by name, prepares one typed writer per column (converting and
//! checking values column-wise, see `column.rs`), then writes the rows. A value that cannot be
//! loaded fails the batch with an [`EncodeError::Value`] naming the table, the column and the
//! row's primary key.
//!
//! Conversions that need a time zone use the encoder's `time_zone` (America/Lima in Pulso):
//! zone-less timestamps loaded into `timestamptz` are wall-clock times there, and zoned Arrow
//! timestamps loaded into `timestamp` or `date` are shown on its wall clock. Sub-microsecond
//! precision is truncated toward −∞. Numerics are exact: a value that would need rounding to fit
//! the column's scale, or that is not a finite number, is refused (see `numeric.rs`).

mod column;
mod fingerprint;
mod keys;
mod numeric;
mod observe;
mod temporal;
mod writer;

pub use fingerprint::{DayPrint, DayPrints};
pub use keys::MAX_KEYS;
pub use observe::Observed;

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;
use bytes::{BufMut, BytesMut};
use chrono_tz::Tz;

use crate::pgtype::PgColumn;
use column::PlanError;
use numeric::NumericError;
use writer::{ColumnWriter, Scratch};

/// The binary COPY signature, then flags (i32 0: no OIDs) and header-extension length (i32 0).
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// PostgreSQL's limit on columns in a table; the per-row field count is an i16.
const MAX_COLUMNS: usize = 1600;

/// Why a batch could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A target column is absent from the batch.
    #[error("table {table}, column {column}: the input has no column of that name")]
    MissingColumn { table: String, column: String },
    /// No conversion from the batch column's Arrow type to the column's PostgreSQL type.
    #[error(
        "table {table}, column {column}: cannot load Arrow type {arrow_type} into PostgreSQL type {pg_type}"
    )]
    Unsupported {
        table: String,
        column: String,
        arrow_type: String,
        pg_type: String,
    },
    /// A value in one row cannot be loaded; `key` names the row by its primary key
    /// (`col=value, …`), or by its position in the batch when the table has no key.
    #[error("table {table}, column {column}, row key ({key}): {reason}")]
    Value {
        table: String,
        column: String,
        key: String,
        reason: String,
    },
    /// The encoder was configured inconsistently (unknown or repeated key column, …).
    #[error("table {table}: {reason}")]
    Invalid { table: String, reason: String },
}

/// Encodes record batches as the rows of one binary `COPY … FROM STDIN (FORMAT binary)`.
#[derive(Debug)]
pub struct CopyEncoder {
    table: String,
    columns: Vec<PgColumn>,
    key_columns: Vec<String>,
    time_zone: Tz,
    scratch: Scratch,
    /// Column index of the incremental column to observe, and of the date columns whose
    /// distinct days to collect (see [`CopyEncoder::observe`]).
    observe_incremental: Option<usize>,
    observe_days: Vec<usize>,
    /// Column index of the incremental column whose days to fingerprint (see
    /// [`CopyEncoder::fingerprint`]), and where each row of the current batch starts in `out`.
    print_column: Option<usize>,
    row_starts: Vec<usize>,
    observed: Observed,
    /// The rows' key hashes, when asked whether the keys are distinct (see
    /// [`CopyEncoder::check_unique_keys`]).
    keys: Option<keys::KeyHashes>,
}

impl CopyEncoder {
    /// `columns`: the target table's columns in COPY order; `key_columns`: names of the
    /// primary-key columns (a NULL there is rejected, and they name the failing row in errors);
    /// `time_zone`: how zone-less Arrow timestamps are read when the target is `timestamptz`
    /// (and where zoned ones are shown for `timestamp`/`date` targets).
    pub fn new(
        table: impl Into<String>,
        columns: Vec<PgColumn>,
        key_columns: Vec<String>,
        time_zone: Tz,
    ) -> Result<Self, EncodeError> {
        let table = table.into();
        let invalid = |reason: String| EncodeError::Invalid {
            table: table.clone(),
            reason,
        };
        if columns.is_empty() || columns.len() > MAX_COLUMNS {
            return Err(invalid(format!(
                "a COPY needs 1 to {MAX_COLUMNS} columns, not {}",
                columns.len()
            )));
        }
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].iter().any(|d| d.name == c.name) {
                return Err(invalid(format!("column {} is listed twice", c.name)));
            }
        }
        for (i, k) in key_columns.iter().enumerate() {
            if !columns.iter().any(|c| &c.name == k) {
                return Err(invalid(format!(
                    "key column {k} is not one of the table's columns"
                )));
            }
            if key_columns[..i].contains(k) {
                return Err(invalid(format!("key column {k} is listed twice")));
            }
        }
        Ok(CopyEncoder {
            table,
            columns,
            key_columns,
            time_zone,
            scratch: Scratch::default(),
            observe_incremental: None,
            observe_days: Vec::new(),
            print_column: None,
            row_starts: Vec::new(),
            observed: Observed::default(),
            keys: None,
        })
    }

    /// Also observe, while encoding, the greatest value and the NULLs of `incremental` (a date,
    /// timestamp or timestamptz column) and the distinct days of the `days` columns (date
    /// columns); read them with [`CopyEncoder::observed`] after the last batch.
    pub fn observe(&mut self, incremental: Option<&str>, days: &[&str]) -> Result<(), EncodeError> {
        use crate::pgtype::PgType;
        let find = |name: &str, allowed: &[PgType]| {
            self.columns
                .iter()
                .position(|c| c.name == name && allowed.contains(&c.ty))
                .ok_or_else(|| EncodeError::Invalid {
                    table: self.table.clone(),
                    reason: format!(
                        "column {name} cannot be observed: it is not a {} column of the table",
                        allowed
                            .iter()
                            .map(PgType::sql)
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                })
        };
        let inc = incremental
            .map(|c| find(c, &[PgType::Date, PgType::Timestamp, PgType::Timestamptz]))
            .transpose()?;
        let mut indexes = Vec::new();
        for d in days {
            let i = find(d, &[PgType::Date])?;
            if !indexes.contains(&i) {
                indexes.push(i);
            }
        }
        let day_sets = indexes
            .iter()
            .map(|&i| (self.columns[i].name.clone(), Default::default()))
            .collect();
        self.observe_incremental = inc;
        self.observe_days = indexes;
        self.observed = Observed {
            days: day_sets,
            ..Observed::default()
        };
        Ok(())
    }

    /// Also fingerprint, while encoding, the rows of each day of `incremental` (a date,
    /// timestamp or timestamptz column; timestamptz days are UTC days): see
    /// [`Observed::prints`].
    pub fn fingerprint(&mut self, incremental: &str) -> Result<(), EncodeError> {
        use crate::pgtype::PgType;
        let i = self
            .columns
            .iter()
            .position(|c| {
                c.name == incremental
                    && matches!(c.ty, PgType::Date | PgType::Timestamp | PgType::Timestamptz)
            })
            .ok_or_else(|| EncodeError::Invalid {
                table: self.table.clone(),
                reason: format!(
                    "column {incremental} cannot be fingerprinted by day: it is not a date or \
                     timestamp column of the table"
                ),
            })?;
        self.print_column = Some(i);
        Ok(())
    }

    /// Also hash each row's key while encoding, to tell [`CopyEncoder::unique_keys`]. Does
    /// nothing when a key type has no canonical binary form (`keys.rs`).
    pub fn check_unique_keys(&mut self) {
        self.keys = keys::KeyHashes::new(&self.columns, &self.key_columns);
    }

    /// After the last batch: `Some(true)` when no two encoded rows have the same key,
    /// `Some(false)` when two may have, `None` when it was not checked (not asked, a key type
    /// without a canonical form, more than [`MAX_KEYS`] rows). Frees the hashes.
    pub fn unique_keys(&mut self) -> Option<bool> {
        self.keys.as_mut().and_then(keys::KeyHashes::finish)
    }

    /// What [`CopyEncoder::observe`] and [`CopyEncoder::fingerprint`] asked for, over every
    /// batch encoded so far.
    pub fn observed(&self) -> &Observed {
        &self.observed
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn columns(&self) -> &[PgColumn] {
        &self.columns
    }

    /// Append the COPY header: signature, flags, header extension.
    pub fn write_header(out: &mut BytesMut) {
        out.put_slice(COPY_HEADER);
    }

    /// Append the COPY trailer (field count −1).
    pub fn write_trailer(out: &mut BytesMut) {
        out.put_i16(-1);
    }

    /// Append every row of `batch` to `out`. Target columns are matched to batch columns by
    /// name (exactly, else case-insensitively when that is unambiguous); extra batch columns
    /// are ignored. Returns the number of rows written. On error `out` is left as it was.
    pub fn encode_batch(
        &mut self,
        batch: &RecordBatch,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        let start = out.len();
        let keys_before = self.keys.as_ref().map(keys::KeyHashes::len);
        let result = self.encode_rows(batch, out);
        if result.is_err() {
            out.truncate(start);
            if let (Some(k), Some(len)) = (self.keys.as_mut(), keys_before) {
                k.truncate(len);
            }
        }
        result
    }

    fn encode_rows(
        &mut self,
        batch: &RecordBatch,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        let arrays = self.match_columns(batch)?;
        self.check_keys(batch, &arrays)?;
        let writers = self.prepare(batch, &arrays)?;
        let rows = batch.num_rows();
        let size = rows * 2 + writers.iter().map(|w| w.size_hint(rows)).sum::<usize>();
        out.reserve(size);
        // Checked in `new`: at most 1600 columns.
        let field_count = self.columns.len() as i16;
        let printing = self.print_column.is_some();
        self.row_starts.clear();
        if let Some(k) = self.keys.as_mut() {
            k.reserve(rows);
        }
        for row in 0..rows {
            if printing {
                self.row_starts.push(out.len());
            }
            out.put_i16(field_count);
            let mut key_hash = keys::KeyHashes::start();
            for (col, w) in writers.iter().enumerate() {
                let field_start = out.len();
                if let Err(e) = w.write(row, out, &mut self.scratch) {
                    return Err(self.numeric_error(batch, col, w, row, e));
                }
                if self.keys.as_ref().is_some_and(|k| k.is_key(col)) {
                    key_hash = keys::KeyHashes::fold(key_hash, &out[field_start..]);
                }
            }
            if let Some(k) = self.keys.as_mut() {
                k.push(key_hash);
            }
        }
        self.record_observed(&writers, rows);
        if let Some(i) = self.print_column {
            self.record_prints(&writers[i], rows, out);
        }
        Ok(rows)
    }

    /// Fold each row of a successfully encoded batch (its bytes in `out`, from `row_starts`)
    /// into the fingerprint of its day.
    fn record_prints(&mut self, inc: &ColumnWriter, rows: usize, out: &BytesMut) {
        const MICROS_PER_DAY: i64 = 86_400_000_000;
        let is_date = self
            .print_column
            .is_some_and(|i| self.columns[i].ty == crate::pgtype::PgType::Date);
        let (starts, prints) = (&self.row_starts, &mut self.observed.prints);
        // Rows come in runs of one day: fold a run, then add it to its day once.
        let mut run: Option<(i32, DayPrint)> = None;
        let mut row = 0;
        inc.visit_temporal(rows, |v| {
            let start = starts.get(row).copied().unwrap_or(out.len());
            let end = starts.get(row + 1).copied().unwrap_or(out.len());
            row += 1;
            let Some(v) = v else { return };
            let day = if is_date {
                v
            } else {
                v.div_euclid(MICROS_PER_DAY)
            };
            let Ok(day) = i32::try_from(day) else { return };
            if let Some((d, p)) = run.take_if(|(d, _)| *d != day) {
                prints.entry(d).or_default().merge(&p);
            }
            run.get_or_insert((day, DayPrint::default()))
                .1
                .add(&out[start..end]);
        });
        if let Some((d, p)) = run {
            prints.entry(d).or_default().merge(&p);
        }
    }

    /// Fold a successfully encoded batch into [`Observed`].
    fn record_observed(&mut self, writers: &[ColumnWriter], rows: usize) {
        if let Some(i) = self.observe_incremental {
            let (mut max, mut nulls) = (self.observed.max_incremental, 0u64);
            writers[i].visit_temporal(rows, |v| match v {
                Some(v) => max = max.max(Some(v)),
                None => nulls += 1,
            });
            self.observed.max_incremental = max;
            self.observed.null_incremental += nulls;
        }
        for (slot, &i) in self.observe_days.iter().enumerate() {
            let set = &mut self.observed.days[slot].1;
            // Rows come in runs of one day: insert only when the day changes.
            let mut last = None;
            writers[i].visit_temporal(rows, |v| {
                let d = v.and_then(|d| i32::try_from(d).ok());
                if last != Some(d) {
                    set.insert(d);
                    last = Some(d);
                }
            });
        }
    }

    /// The batch column for each target column.
    fn match_columns(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>, EncodeError> {
        self.columns
            .iter()
            .map(|c| {
                find_column(batch, &c.name).ok_or_else(|| EncodeError::MissingColumn {
                    table: self.table.clone(),
                    column: c.name.clone(),
                })
            })
            .collect()
    }

    /// The first row (in batch order) with a NULL in a key column.
    fn check_keys(&self, batch: &RecordBatch, arrays: &[ArrayRef]) -> Result<(), EncodeError> {
        let first_null = self
            .key_columns
            .iter()
            .filter_map(|k| {
                let index = self.columns.iter().position(|c| &c.name == k)?;
                let nulls = arrays[index].logical_nulls()?;
                let row = (0..nulls.len()).find(|&row| nulls.is_null(row))?;
                Some((row, k))
            })
            .min_by_key(|(row, _)| *row);
        match first_null {
            Some((row, k)) => {
                Err(self.value_error(batch, k, row, "NULL in primary-key column".into()))
            }
            None => Ok(()),
        }
    }

    fn prepare(
        &self,
        batch: &RecordBatch,
        arrays: &[ArrayRef],
    ) -> Result<Vec<ColumnWriter>, EncodeError> {
        self.columns
            .iter()
            .zip(arrays)
            .map(|(c, array)| {
                column::plan(array, &c.ty, &self.time_zone).map_err(|e| match e {
                    PlanError::Unsupported => EncodeError::Unsupported {
                        table: self.table.clone(),
                        column: c.name.clone(),
                        arrow_type: array.data_type().to_string(),
                        pg_type: c.ty.sql(),
                    },
                    PlanError::Cell { row, reason } => {
                        self.value_error(batch, &c.name, row, reason)
                    }
                })
            })
            .collect()
    }

    fn numeric_error(
        &self,
        batch: &RecordBatch,
        col: usize,
        w: &ColumnWriter,
        row: usize,
        e: NumericError,
    ) -> EncodeError {
        let column = &self.columns[col];
        let value = w
            .numeric_source()
            .map_or_else(|| "?".to_string(), |a| column::display(a, row));
        let reason = match e {
            NumericError::Invalid => format!("{value:?} is not a number"),
            NumericError::Overflow => format!("value {value} overflows {}", column.ty.sql()),
            NumericError::Inexact => format!(
                "value {value} has more decimal places than {} keeps ({}); values are never \
                 rounded: round it in the source or in transform.derive",
                column.ty.sql(),
                numeric_scale(&column.ty),
            ),
            NumericError::NotFinite => format!(
                "value {value} is not a finite number; numeric columns take only finite values"
            ),
            NumericError::OutOfRange => {
                format!("value {value} is out of the range PostgreSQL numeric can represent")
            }
        };
        self.value_error(batch, &column.name, row, reason)
    }

    fn value_error(
        &self,
        batch: &RecordBatch,
        column: &str,
        row: usize,
        reason: String,
    ) -> EncodeError {
        EncodeError::Value {
            table: self.table.clone(),
            column: column.to_string(),
            key: self.row_key(batch, row),
            reason,
        }
    }

    /// `k1=v1, k2=v2` for the key columns of `row`, values as Arrow prints them.
    fn row_key(&self, batch: &RecordBatch, row: usize) -> String {
        if self.key_columns.is_empty() {
            return format!("batch row {row}");
        }
        self.key_columns
            .iter()
            .map(|k| {
                let value = find_column(batch, k)
                    .map_or_else(|| "?".to_string(), |a| column::display(a.as_ref(), row));
                format!("{k}={value}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The scale of a `numeric` type (0 for anything else, where it cannot matter).
fn numeric_scale(ty: &crate::pgtype::PgType) -> u32 {
    match ty {
        crate::pgtype::PgType::Numeric { scale, .. } => *scale,
        _ => 0,
    }
}

/// The batch column called `name`: an exact match, else the only case-insensitive match.
fn find_column(batch: &RecordBatch, name: &str) -> Option<ArrayRef> {
    let schema = batch.schema_ref();
    if let Ok(i) = schema.index_of(name) {
        return Some(batch.column(i).clone());
    }
    let mut matches = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.name().eq_ignore_ascii_case(name));
    match (matches.next(), matches.next()) {
        (Some((i, _)), None) => Some(batch.column(i).clone()),
        _ => None,
    }
}
