//! The progress bar of `backfill`: one bar across all chunks, with rows/s and ETA, on a terminal
//! only (elsewhere the engine's `chunk started` / `chunk committed` log lines say the same, as
//! JSON with `--log-format json`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pulso_engine::backfill::{BackfillObserver, ChunkOutcome, ChunkReport};
use pulso_engine::executor::NodeCounters;

pub struct BackfillProgress {
    bar: ProgressBar,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Rows read by finished chunks.
    rows_done: u64,
    /// Counters of the chunks in flight.
    running: Vec<(usize, Arc<NodeCounters>)>,
    started: Option<Instant>,
}

impl State {
    fn rows(&self) -> u64 {
        self.rows_done
            + self
                .running
                .iter()
                .map(|(_, c)| c.rows_read.load(Ordering::Relaxed))
                .sum::<u64>()
    }
}

impl BackfillProgress {
    pub fn new(enabled: bool) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if enabled {
                ProgressDrawTarget::stderr_with_hz(8)
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} chunks  {msg}  ETA {eta} [{elapsed_precise}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix("backfill");
        let state = Arc::new(Mutex::new(State::default()));
        if enabled {
            let (b, s) = (bar.clone(), state.clone());
            tokio::spawn(async move {
                while !b.is_finished() {
                    if let Ok(s) = s.lock() {
                        let rows = s.rows();
                        let secs = s.started.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
                        let rate = if secs > 0.0 { rows as f64 / secs } else { 0.0 };
                        b.set_message(format!(
                            "{rows} rows read, {rate:.0} rows/s, {} in flight",
                            s.running.len()
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        }
        Self { bar, state }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl BackfillObserver for BackfillProgress {
    fn planned(&self, _node: &str, total: usize, done: usize) {
        self.bar.inc_length(total as u64);
        self.bar.inc(done as u64);
        if let Ok(mut s) = self.state.lock() {
            s.started.get_or_insert_with(Instant::now);
        }
    }

    fn chunk_started(&self, _node: &str, seq: usize, counters: Arc<NodeCounters>) {
        if let Ok(mut s) = self.state.lock() {
            s.running.push((seq, counters));
        }
    }

    fn chunk_finished(&self, report: &ChunkReport) {
        if let Ok(mut s) = self.state.lock() {
            s.running.retain(|(seq, _)| *seq != report.seq);
            if report.outcome != ChunkOutcome::AlreadyCommitted {
                s.rows_done += report.rows_read;
            }
        }
        if report.outcome == ChunkOutcome::Committed {
            self.bar.inc(1);
        }
    }
}
