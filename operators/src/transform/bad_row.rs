//! Finding the row behind a conversion that failed inside the transform.
//!
//! DataFusion evaluates expressions a batch at a time, so a value it cannot convert — text the
//! incremental window cannot read as a timestamp, a `CAST` in `derive` — fails the whole batch
//! with Arrow's message and no row ("Parser error: Error parsing timestamp from 'x'"). Checking
//! every value beforehand would convert each one twice on the hot path. Instead the transform
//! keeps a reference to its last input batches and, only once its output has failed, runs the
//! same plan again over parts of them: halving finds the first failing row, then each step on that
//! row alone (each `derive` expression, the window, the filter) tells which column failed. The
//! row is named by its primary key and, for file sources, by its file and line
//! (see `source::locate`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use futures::StreamExt;
use indexmap::IndexMap;

use super::{OneShotPartition, TransformOptions, TransformSpec, plan};
use crate::error::BadRow;
use crate::window::Window;
use crate::{BatchStream, OperatorError};

/// Input batches kept after DataFusion has taken them. The batch a failing expression was
/// evaluated on is the last one pulled (one partition, batches pulled one at a time); one more
/// is kept in case an operator had already pulled the next.
const KEPT: usize = 2;

/// The last input batches of a transform, with the index of each one's first row in the input.
#[derive(Debug, Default)]
pub(super) struct RecentInput {
    inner: Mutex<Recent>,
}

#[derive(Debug, Default)]
struct Recent {
    /// Rows handed to DataFusion so far.
    rows: u64,
    batches: VecDeque<(u64, RecordBatch)>,
}

impl RecentInput {
    /// Records a batch as it enters the plan (a reference-counted copy: no data is copied).
    pub(super) fn push(&self, batch: &RecordBatch) {
        if let Ok(mut recent) = self.inner.lock() {
            let first = recent.rows;
            recent.rows += batch.num_rows() as u64;
            if recent.batches.len() == KEPT {
                recent.batches.pop_front();
            }
            recent.batches.push_back((first, batch.clone()));
        }
    }

    fn newest_first(&self) -> Vec<(u64, RecordBatch)> {
        self.inner
            .lock()
            .map(|recent| recent.batches.iter().rev().cloned().collect())
            .unwrap_or_default()
    }
}

/// What the transform was planned with, to re-run it on single rows.
#[derive(Debug)]
pub(super) struct BadRowFinder {
    pub input_schema: SchemaRef,
    pub spec: TransformSpec,
    pub window: Option<Window>,
    pub options: TransformOptions,
    pub recent: Arc<RecentInput>,
}

impl BadRowFinder {
    /// The transform's error, naming the failing row when it can be found in the last input.
    pub(super) async fn explain(&self, err: DataFusionError) -> OperatorError {
        let original = OperatorError::from_datafusion(err);
        // A source error carried through DataFusion is already located by its source.
        if !matches!(
            original,
            OperatorError::Arrow(_) | OperatorError::DataFusion(_)
        ) {
            return original;
        }
        match self.find().await {
            Some(bad) => bad,
            None => original,
        }
    }

    async fn find(&self) -> Option<OperatorError> {
        for (first, batch) in self.recent.newest_first() {
            if self
                .run(&self.spec, self.window.as_ref(), &batch)
                .await
                .is_ok()
            {
                continue;
            }
            let row = self.first_failing_row(&batch).await;
            let one = batch.slice(row, 1);
            // The row must fail on its own; if it only fails among others, blaming it would be
            // a guess, and the original message is kept.
            let (column, message) = self.blame(&one).await?;
            let index = first + row as u64;
            let place = match &self.options.rows {
                Some(locator) => locator.place(index).await,
                None => None,
            };
            return Some(OperatorError::BadRow(Box::new(BadRow {
                place,
                index,
                column,
                key: self.key(&one).await,
                message,
            })));
        }
        None
    }

    /// Runs `spec` and `window` over `batch` alone: its output, or why it failed.
    async fn run(
        &self,
        spec: &TransformSpec,
        window: Option<&Window>,
        batch: &RecordBatch,
    ) -> Result<Vec<RecordBatch>, String> {
        let input: BatchStream = futures::stream::iter([Ok(batch.clone())]).boxed();
        let partition = Arc::new(OneShotPartition::new(self.input_schema.clone(), input));
        let df = plan(&self.input_schema, partition, spec, window, &self.options)
            .await
            .map_err(|e| e.to_string())?;
        df.collect().await.map_err(|e| reason(&e))
    }

    /// The first row of `batch` whose prefix fails (the whole batch is known to fail).
    async fn first_failing_row(&self, batch: &RecordBatch) -> usize {
        // Invariant: the first `ok` rows pass, the first `fails` rows fail.
        let (mut ok, mut fails) = (0, batch.num_rows());
        while fails - ok > 1 {
            let mid = ok + (fails - ok) / 2;
            let prefix = batch.slice(0, mid);
            if self
                .run(&self.spec, self.window.as_ref(), &prefix)
                .await
                .is_ok()
            {
                ok = mid;
            } else {
                fails = mid;
            }
        }
        fails.saturating_sub(1)
    }

    /// Which step fails on the one-row batch `one`: (the column, the message).
    async fn blame(&self, one: &RecordBatch) -> Option<(Option<String>, String)> {
        for (name, sql) in &self.spec.derive {
            let alone = TransformSpec {
                derive: IndexMap::from([(name.clone(), sql.clone())]),
                filter: None,
            };
            if let Err(reason) = self.run(&alone, None, one).await {
                return Some((
                    Some(name.clone()),
                    format!("derived as {sql:?}, which failed: {reason}"),
                ));
            }
        }
        let derived = TransformSpec {
            derive: self.spec.derive.clone(),
            filter: None,
        };
        if let Some(window) = &self.window
            && let Err(reason) = self.run(&derived, Some(window), one).await
        {
            let value = match self.run(&derived, None, one).await {
                Ok(out) => cell(&out, &window.column)
                    .map_or_else(|| "the value".to_string(), |v| format!("{v:?}")),
                Err(_) => "the value".to_string(),
            };
            return Some((
                Some(window.column.clone()),
                format!(
                    "{value} is not a {} (the incremental window compares it as one): {reason}",
                    window.ty
                ),
            ));
        }
        if let Some(sql) = &self.spec.filter
            && let Err(reason) = self.run(&self.spec, None, one).await
        {
            return Some((None, format!("filter {sql:?} failed: {reason}")));
        }
        None
    }

    /// `k1=v1, k2=v2` of the key columns of the one-row batch (input columns, else derived
    /// ones); `None` without key columns.
    async fn key(&self, one: &RecordBatch) -> Option<String> {
        let keys = &self.options.key_columns;
        if keys.is_empty() {
            return None;
        }
        let derived = if keys.iter().all(|k| one.column_by_name(k).is_some()) {
            Vec::new()
        } else {
            let derived = TransformSpec {
                derive: self.spec.derive.clone(),
                filter: None,
            };
            self.run(&derived, None, one).await.unwrap_or_default()
        };
        let parts: Vec<String> = keys
            .iter()
            .map(|k| {
                let value = cell(std::slice::from_ref(one), k)
                    .or_else(|| cell(&derived, k))
                    .unwrap_or_else(|| "?".to_string());
                format!("{k}={value}")
            })
            .collect();
        Some(parts.join(", "))
    }
}

/// The first row's `column` in `batches`, as Arrow prints it ("NULL" for a null).
fn cell(batches: &[RecordBatch], column: &str) -> Option<String> {
    let batch = batches.iter().find(|b| b.num_rows() > 0)?;
    let array = batch.column_by_name(column)?;
    let options = FormatOptions::new().with_null("NULL");
    let formatter = ArrayFormatter::try_new(array.as_ref() as &dyn Array, &options).ok()?;
    formatter.value(0).try_to_string().ok()
}

/// DataFusion's message without its wrapping: Arrow's own text for an Arrow error.
fn reason(e: &DataFusionError) -> String {
    match e.find_root() {
        DataFusionError::ArrowError(arrow, _) => arrow.to_string(),
        root => root.strip_backtrace(),
    }
}
