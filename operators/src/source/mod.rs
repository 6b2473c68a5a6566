//! Sources: where a table node's batches come from.
//!
//! A [`SourceSpec`] is deserialised from the `source:` block of a table in `pipelines.yaml`;
//! [`SourceSpec::open`] turns it into an Arrow schema and a lazy [`BatchStream`].

pub mod bigquery;
pub mod csv;
pub mod generate;
pub mod locate;
pub mod ndjson;
pub mod parquet;

mod blocking;

use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;

use crate::window::Window;
use crate::{BatchStream, OperatorError};

pub use self::bigquery::{BigQueryConnection, BigQueryConnections, BigQuerySpec};
pub use self::csv::CsvSpec;
pub use self::generate::{ColumnSpec, GenerateSpec, Generator, changed_rows};
pub use self::locate::{Position, RowLocator, RowPlace};
pub use self::ndjson::NdjsonSpec;
pub use self::parquet::ParquetSpec;

/// The `source:` block of a table.
///
/// ```yaml
/// source: { kind: parquet, path: data/trandeuda.parquet }
/// ```
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceSpec {
    /// Deterministic synthetic rows (demos, benchmarks, tests).
    Generate(GenerateSpec),
    /// One Parquet file.
    Parquet(ParquetSpec),
    /// One CSV file; every column is read as nullable text.
    Csv(CsvSpec),
    /// One newline-delimited JSON file; every column is read as nullable text.
    Ndjson(NdjsonSpec),
    /// A BigQuery query or table (REST pages or the Storage Read API); see [`bigquery`].
    Bigquery(BigQuerySpec),
}

/// What a source needs from the run that opens it.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// Rows per batch (the last batch may be shorter).
    pub batch_size: usize,
    /// Folder that relative paths resolve against: the folder of the pipeline file.
    pub base_dir: PathBuf,
    /// The run's incremental window, for sources that push it down (BigQuery); others ignore
    /// it (the transform applies the window to every source anyway).
    pub window: Option<Window>,
    /// The pipeline's `kind: bigquery` connections, by name.
    pub bigquery: BigQueryConnections,
}

impl SourceContext {
    /// Resolves a path from the pipeline file against [`SourceContext::base_dir`].
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    fn batch_size(&self) -> usize {
        // A zero batch size would make readers spin forever on empty batches.
        self.batch_size.max(1)
    }
}

impl SourceSpec {
    /// Opens the source: its Arrow schema (known before the first batch) and the stream of
    /// batches. File sources read on a blocking thread and stay at most two batches ahead of the
    /// consumer, so a slow sink slows the reader.
    pub async fn open(
        &self,
        ctx: &SourceContext,
    ) -> Result<(SchemaRef, BatchStream), OperatorError> {
        match self {
            SourceSpec::Generate(spec) => spec.open(ctx.batch_size(), ctx.window.as_ref()),
            SourceSpec::Parquet(spec) => spec.open(ctx).await,
            SourceSpec::Csv(spec) => spec.open(ctx).await,
            SourceSpec::Ndjson(spec) => spec.open(ctx).await,
            SourceSpec::Bigquery(spec) => spec.open(ctx).await,
        }
    }

    /// The schema without reading data: always known for `generate`; for files read from the
    /// Parquet footer, the CSV header or the first NDJSON lines (an error if the file is missing;
    /// see [`OperatorError::is_not_found`]).
    pub async fn schema(&self, ctx: &SourceContext) -> Result<SchemaRef, OperatorError> {
        match self {
            SourceSpec::Generate(spec) => spec.schema(),
            SourceSpec::Parquet(spec) => spec.schema(ctx).await,
            SourceSpec::Csv(spec) => spec.schema(ctx).await,
            SourceSpec::Ndjson(spec) => spec.schema(ctx).await,
            SourceSpec::Bigquery(spec) => spec.schema(ctx).await,
        }
    }

    /// Checks the spec without any I/O (bounds, shares, delimiters): what `validate` can say
    /// offline. Files are not opened.
    pub fn validate(&self) -> Result<(), OperatorError> {
        match self {
            SourceSpec::Generate(spec) => spec.validate(),
            SourceSpec::Csv(spec) => spec.validate(),
            SourceSpec::Bigquery(spec) => spec.validate(),
            SourceSpec::Parquet(_) | SourceSpec::Ndjson(_) => Ok(()),
        }
    }

    /// One line for `explain`, e.g. `generate 1000000 rows (seed 42, revision 0)`.
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::Generate(spec) => spec.describe(),
            SourceSpec::Parquet(spec) => format!("parquet {}", spec.path.display()),
            SourceSpec::Csv(spec) => spec.describe(),
            SourceSpec::Ndjson(spec) => format!("ndjson {}", spec.path.display()),
            SourceSpec::Bigquery(spec) => spec.describe(),
        }
    }

    /// True when the source reads only the window it is given ([`SourceContext::window`]):
    /// the engine then fixes the window's upper bound at run start.
    pub fn pushes_window_down(&self) -> bool {
        matches!(self, SourceSpec::Bigquery(_))
    }

    /// Extra `explain` items of the source (label, text): for BigQuery the SQL with its
    /// parameters, the read path and a dry run. Empty for file sources and the generator.
    pub async fn explain(&self, ctx: &SourceContext) -> Vec<(String, String)> {
        match self {
            SourceSpec::Bigquery(spec) => spec
                .explain(ctx)
                .await
                .into_iter()
                .map(|l| (l.label, l.value))
                .collect(),
            _ => Vec::new(),
        }
    }
}
