//! Sources opened in-process for tests, and their Arrow batches as text cells.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::TryStreamExt;
use pulso_operators::source::{SourceContext, SourceSpec};
use pulso_operators::{BatchStream, OperatorError};

pub fn ctx(batch_size: usize, base_dir: &Path) -> SourceContext {
    SourceContext {
        batch_size,
        base_dir: base_dir.to_path_buf(),
        window: None,
        bigquery: Default::default(),
    }
}

pub fn yaml_source(yaml: &str) -> SourceSpec {
    serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("bad test YAML: {e}"))
}

pub async fn collect(stream: BatchStream) -> Result<Vec<RecordBatch>, OperatorError> {
    stream.try_collect().await
}

pub async fn read_all(spec: &SourceSpec, batch_size: usize) -> Vec<RecordBatch> {
    let dir = std::env::temp_dir();
    let (_, stream) = spec.open(&ctx(batch_size, &dir)).await.expect("open");
    collect(stream).await.expect("read")
}

/// Every row of the batches as text cells ("NULL" for nulls), in order.
pub fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for row in 0..batch.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    out
}

/// One column of the batches as text cells.
pub fn column(batches: &[RecordBatch], name: &str) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let array = batch
            .column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name}"));
        let f = ArrayFormatter::try_new(array.as_ref(), &options).expect("formatter");
        for row in 0..batch.num_rows() {
            out.push(f.value(row).to_string());
        }
    }
    out
}

pub fn total_rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}
