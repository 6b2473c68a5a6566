//! The typed error of every operator. Messages name the file, line, column or expression at fault
//! so that the engine can print them as they are.

use std::fmt;
use std::path::PathBuf;

use datafusion::error::DataFusionError;

use crate::source::RowPlace;
use crate::window::IncType;

/// Error of a source, a transform or a window.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// A file could not be opened or read (missing, permissions, I/O failure).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file was read but its content is malformed (bad CSV, JSON or Parquet data).
    #[error("{format} file {}{}: {message}", path.display(), Lines(*lines))]
    File {
        /// "parquet", "csv" or "ndjson".
        format: &'static str,
        path: PathBuf,
        /// First and last line (1-based) of the region that failed, when the reader knows it.
        lines: Option<(u64, u64)>,
        message: String,
    },

    /// A source spec is invalid (bad generator bounds, bad delimiter, ...).
    #[error("invalid {what}: {message}")]
    Spec { what: String, message: String },

    /// A window bound or watermark text does not parse as its declared type.
    #[error("invalid {ty} value {value:?}: {reason}")]
    InvalidValue {
        ty: IncType,
        value: String,
        reason: String,
    },

    /// A user expression (`derive` column or `filter`) does not parse or does not plan.
    #[error("bad expression for {target}: {message}")]
    Expression { target: ExprTarget, message: String },

    /// The window cannot be applied to the data (missing column, incompatible type).
    #[error("window on column {column:?}: {message}")]
    Window { column: String, message: String },

    /// DataFusion failed while planning or running the transform.
    #[error("transform: {0}")]
    DataFusion(#[source] Box<DataFusionError>),

    /// Arrow failed while building or converting a batch.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    /// The BigQuery source failed (API error after retries, job error, short read, bad cell).
    #[error("{0}")]
    BigQuery(Box<crate::source::bigquery::BigQueryError>),

    /// A value of one row could not be converted while the transform ran: text the incremental
    /// window cannot read as its type, a `derive` expression that fails on it.
    #[error("{0}")]
    BadRow(Box<BadRow>),

    /// A background reader task died (panic or cancellation) before finishing its input.
    #[error("source task for {what} failed: {message}")]
    Task { what: String, message: String },
}

/// Which user expression an [`OperatorError::Expression`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprTarget {
    /// `transform.derive.<column>`.
    Derive(String),
    /// `transform.filter`.
    Filter,
}

impl fmt::Display for ExprTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExprTarget::Derive(column) => write!(f, "derived column {column:?}"),
            ExprTarget::Filter => f.write_str("filter"),
        }
    }
}

/// The row behind an [`OperatorError::BadRow`], named by its place in its file (file sources)
/// and its primary key. Displayed as `csv file F line 3, column C, row key (k=v): message`,
/// leaving out what is unknown, in the order of the encoder's value errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// The row's file and line (or Parquet row); `None` for sources without files.
    pub place: Option<RowPlace>,
    /// The row's index (0-based) in the order the source read it, shown when `place` is unknown.
    pub index: u64,
    /// The column at fault: the window column or the derived column; `None` for `filter`.
    pub column: Option<String>,
    /// `k1=v1, k2=v2` of the table's primary key, when the key columns are known.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.place {
            Some(place) => write!(f, "{place}")?,
            None => write!(f, "source row {}", self.index + 1)?,
        }
        if let Some(column) = &self.column {
            write!(f, ", column {column}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", row key ({key})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Formats an optional line range as " line 3" / " lines 3-9" (empty when unknown).
struct Lines(Option<(u64, u64)>);

impl fmt::Display for Lines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => Ok(()),
            Some((a, b)) if a == b => write!(f, " line {a}"),
            Some((a, b)) => write!(f, " lines {a}-{b}"),
        }
    }
}

impl OperatorError {
    /// True when the error is a missing file; `explain` reports it as "not resolved offline".
    pub fn is_not_found(&self) -> bool {
        matches!(self, OperatorError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        OperatorError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn spec(what: impl Into<String>, message: impl Into<String>) -> Self {
        OperatorError::Spec {
            what: what.into(),
            message: message.into(),
        }
    }

    /// Turns a DataFusion error back into the operator error it carries, if any.
    ///
    /// Input batches enter DataFusion wrapped as `DataFusionError::External`; unwrapping them on
    /// the way out keeps the original message (file, line) instead of a generic "external error".
    pub fn from_datafusion(err: DataFusionError) -> Self {
        match err {
            DataFusionError::External(inner) => match inner.downcast::<OperatorError>() {
                Ok(op) => *op,
                Err(other) => OperatorError::DataFusion(Box::new(DataFusionError::External(other))),
            },
            DataFusionError::Context(ctx, inner) => match OperatorError::from_datafusion(*inner) {
                OperatorError::DataFusion(df) => {
                    OperatorError::DataFusion(Box::new(DataFusionError::Context(ctx, df)))
                }
                op => op,
            },
            DataFusionError::ArrowError(arrow, _) => OperatorError::from_arrow(*arrow),
            other => OperatorError::DataFusion(Box::new(other)),
        }
    }
}

impl OperatorError {
    /// Arrow kernels may wrap an error of the input (ours, or DataFusion's carrying ours) as an
    /// external error; unwrap it so that the original message survives.
    fn from_arrow(err: arrow::error::ArrowError) -> Self {
        match err {
            arrow::error::ArrowError::ExternalError(inner) => {
                let inner = match inner.downcast::<OperatorError>() {
                    Ok(op) => return *op,
                    Err(other) => other,
                };
                match inner.downcast::<DataFusionError>() {
                    Ok(df) => OperatorError::from_datafusion(*df),
                    Err(other) => {
                        OperatorError::Arrow(arrow::error::ArrowError::ExternalError(other))
                    }
                }
            }
            other => OperatorError::Arrow(other),
        }
    }
}

impl From<DataFusionError> for OperatorError {
    fn from(err: DataFusionError) -> Self {
        OperatorError::from_datafusion(err)
    }
}
