//! Runs a synchronous batch reader on tokio's blocking pool and exposes it as a [`BatchStream`].
//!
//! The reader and the consumer are connected by a bounded channel of capacity 2: the reader works
//! ahead by at most two batches (overlapping decode with the sink's work) and blocks when the
//! consumer is slower, which is the backpressure invariant 4 asks for. Dropping the stream stops
//! the reader at its next send.

use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{BatchStream, OperatorError};

/// Batches buffered between the reader thread and the consumer.
const CHANNEL_CAPACITY: usize = 2;

/// Streams the items of `iter`, produced on a blocking thread. `what` names the source in errors.
///
/// The iterator stops being polled after its first error. If the reader thread dies (panics)
/// the stream ends with an [`OperatorError::Task`] instead of ending early and silently.
pub(crate) fn stream<I>(what: String, iter: I) -> BatchStream
where
    I: Iterator<Item = Result<RecordBatch, OperatorError>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let label = what.clone();
    let handle = tokio::task::spawn_blocking(move || {
        let (mut batches, mut rows) = (0u64, 0u64);
        for item in iter {
            let failed = item.is_err();
            if let Ok(batch) = &item {
                batches += 1;
                rows += batch.num_rows() as u64;
            }
            if tx.blocking_send(item).is_err() {
                tracing::debug!(source = %label, batches, rows, "consumer dropped the stream; reader stops");
                return;
            }
            if failed {
                return;
            }
        }
        tracing::debug!(source = %label, batches, rows, "reader finished");
    });

    struct State {
        rx: mpsc::Receiver<Result<RecordBatch, OperatorError>>,
        handle: Option<JoinHandle<()>>,
        what: String,
    }

    let state = State {
        rx,
        handle: Some(handle),
        what,
    };
    futures::stream::unfold(state, |mut state| async move {
        if let Some(item) = state.rx.recv().await {
            return Some((item, state));
        }
        // The channel closed: the reader returned or died. Tell the two apart, otherwise a panic
        // would look like the end of the input (invariant 3: every page is read).
        let handle = state.handle.take()?;
        match handle.await {
            Ok(()) => None,
            Err(join) => {
                let message = if join.is_panic() {
                    let payload = join.into_panic();
                    payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                        .map_or_else(
                            || "reader panicked".to_string(),
                            |m| format!("reader panicked: {m}"),
                        )
                } else {
                    "reader was cancelled".to_string()
                };
                let err = OperatorError::Task {
                    what: state.what.clone(),
                    message,
                };
                Some((Err(err), state))
            }
        }
    })
    .boxed()
}

/// Runs a blocking closure (opening a file, reading a footer) off the async threads.
pub(crate) async fn run<T, F>(what: &str, f: F) -> Result<T, OperatorError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, OperatorError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|join| OperatorError::Task {
            what: what.to_string(),
            message: join.to_string(),
        })?
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array};
    use futures::StreamExt;

    use super::*;

    fn batch(v: i64) -> RecordBatch {
        let column: ArrayRef = Arc::new(Int64Array::from(vec![v]));
        RecordBatch::try_from_iter([("v", column)]).expect("batch")
    }

    #[tokio::test]
    async fn a_panicking_reader_ends_the_stream_with_an_error() {
        let iter = (0..3).map(|i| {
            if i == 2 {
                panic!("disk on fire");
            }
            Ok(batch(i))
        });
        let items: Vec<_> = stream("test source".to_string(), iter).collect().await;
        assert_eq!(items.len(), 3);
        assert!(items[0].is_ok() && items[1].is_ok());
        let err = items[2]
            .as_ref()
            .expect_err("the panic is reported")
            .to_string();
        assert_eq!(
            err,
            "source task for test source failed: reader panicked: disk on fire"
        );
    }

    #[tokio::test]
    async fn the_reader_stops_after_its_first_error() {
        let iter = (0..5).map(|i| {
            if i == 1 {
                Err(OperatorError::spec("x", "broken"))
            } else {
                Ok(batch(i))
            }
        });
        let items: Vec<_> = stream("test source".to_string(), iter).collect().await;
        assert_eq!(items.len(), 2);
        assert!(items[1].is_err());
    }
}
