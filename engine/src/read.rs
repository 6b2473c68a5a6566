//! The read side of a table load: the table's source over a window, counted as it streams, then
//! the table's transform. One place for what a scheduled run and a backfill chunk both read.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use pulso_operators::BatchStream;
use pulso_operators::source::SourceContext;
use pulso_operators::transform;
use pulso_operators::window::Window;

use crate::error::EngineError;
use crate::executor::NodeCounters;
use crate::pipeline::{Pipeline, TableNode};

/// What `table`'s source needs to open over `window`.
pub(crate) fn source_context(
    pipeline: &Pipeline,
    table: &TableNode,
    window: Option<&Window>,
) -> SourceContext {
    SourceContext {
        batch_size: table.batch_size,
        base_dir: pipeline.base_dir.clone(),
        window: window.cloned(),
        bigquery: pipeline.bigquery.clone(),
    }
}

/// The batches a load of `table` consumes: its source read over `window` (rows counted into
/// `counters.rows_read` before any filter), through its transform.
pub(crate) async fn read_table(
    pipeline: &Pipeline,
    table: &TableNode,
    window: Option<&Window>,
    counters: &Arc<NodeCounters>,
) -> Result<BatchStream, EngineError> {
    // A source may push the window down only onto its own column: when the transform derives
    // the window's column, the source's column of that name is another value.
    let source_window = window.filter(|w| !table.transform.derive.contains_key(&w.column));
    let ctx = source_context(pipeline, table, source_window);
    let (schema, batches) = table.source.open(&ctx).await?;
    let read_counter = counters.clone();
    let batches = batches.inspect(move |b| {
        if let Ok(b) = b {
            read_counter
                .rows_read
                .fetch_add(b.num_rows() as u64, Ordering::Relaxed);
        }
    });
    let (_, transformed) = transform::apply_with(
        schema,
        Box::pin(batches),
        &table.transform,
        window,
        &transform::TransformOptions {
            batch_size: table.batch_size,
            key_columns: table.shape.primary_key.clone(),
            rows: table.source.locator(&ctx),
        },
    )
    .await?;
    Ok(transformed)
}
