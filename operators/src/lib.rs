//! Sources and transforms of pulso-flow: everything that produces or reshapes Arrow batches.
//!
//! A table node reads a [`source::SourceSpec`] as a [`BatchStream`], optionally passes it through
//! [`transform::apply`] (DataFusion: derived columns, filter, incremental window) and hands the
//! resulting stream to the Postgres sink. Every stage pulls batch by batch, so memory stays bounded
//! by a few batches whatever the size of the table.

pub mod error;
pub mod source;
pub mod transform;
pub mod window;

pub use error::OperatorError;

/// The stream of record batches that flows between a source, the transform and the sink.
///
/// Errors are typed: a consumer can tell a file error (with path and line) from a bad expression.
pub type BatchStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<arrow::record_batch::RecordBatch, OperatorError>> + Send>,
>;
