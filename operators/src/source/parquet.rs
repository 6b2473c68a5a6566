//! `kind: parquet` — one Parquet file, read with the parquet crate's synchronous Arrow reader on a
//! blocking thread.
//!
//! ```yaml
//! source: { kind: parquet, path: data/pagos.parquet }   # relative to the pipeline file
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};

use ::parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use arrow::datatypes::SchemaRef;

use super::{SourceContext, blocking};
use crate::{BatchStream, OperatorError};

/// The `source:` block of a Parquet table.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSpec {
    /// The file; relative paths resolve against the pipeline file's folder.
    pub path: PathBuf,
}

impl ParquetSpec {
    pub(crate) async fn open(
        &self,
        ctx: &SourceContext,
    ) -> Result<(SchemaRef, BatchStream), OperatorError> {
        let path = ctx.resolve(&self.path);
        let batch_size = ctx.batch_size();
        let what = format!("parquet {}", path.display());
        let reader_path = path.clone();
        let (schema, reader) = blocking::run(&what, move || {
            let builder = builder(&reader_path)?.with_batch_size(batch_size);
            let schema = builder.schema().clone();
            let reader: ParquetRecordBatchReader =
                builder.build().map_err(|e| error(&reader_path, e))?;
            Ok((schema, reader))
        })
        .await?;
        let batches = reader.map(move |item| {
            item.map_err(|e| OperatorError::File {
                format: "parquet",
                path: path.clone(),
                lines: None,
                message: e.to_string(),
            })
        });
        Ok((schema, blocking::stream(what, batches)))
    }

    pub(crate) async fn schema(&self, ctx: &SourceContext) -> Result<SchemaRef, OperatorError> {
        let path = ctx.resolve(&self.path);
        let what = format!("parquet {}", path.display());
        // Reads only the footer.
        blocking::run(&what, move || Ok(builder(&path)?.schema().clone())).await
    }
}

fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, OperatorError> {
    let file = File::open(path).map_err(|e| OperatorError::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| error(path, e))
}

fn error(path: &Path, e: ::parquet::errors::ParquetError) -> OperatorError {
    OperatorError::File {
        format: "parquet",
        path: path.to_path_buf(),
        lines: None,
        message: e.to_string(),
    }
}
