//! Progress bars per running node, on a terminal only.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pulso_engine::executor::{NodeCounters, NodeReport, NodeStatus, RunObserver};

pub struct Progress {
    enabled: bool,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, (ProgressBar, Arc<NodeCounters>)>>,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        let multi = MultiProgress::with_draw_target(if enabled {
            ProgressDrawTarget::stderr_with_hz(8)
        } else {
            ProgressDrawTarget::hidden()
        });
        Self {
            enabled,
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    pub fn finish(&self) {
        if let Ok(mut bars) = self.bars.lock() {
            for (_, (bar, _)) in bars.drain() {
                bar.finish_and_clear();
            }
        }
        let _ = self.multi.clear();
    }

    fn style() -> ProgressStyle {
        ProgressStyle::with_template("{spinner} {prefix:<24} {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
    }
}

impl RunObserver for Progress {
    fn node_started(&self, name: &str, kind: &'static str, counters: Arc<NodeCounters>) {
        if !self.enabled {
            return;
        }
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(Self::style());
        bar.set_prefix(name.to_string());
        bar.set_message(if kind == "sql" {
            "running SQL".to_string()
        } else {
            "starting".to_string()
        });
        bar.enable_steady_tick(Duration::from_millis(125));
        // A light ticker updates the message from the live counters.
        let (b, c) = (bar.clone(), counters.clone());
        if kind == "table" {
            tokio::spawn(async move {
                while !b.is_finished() {
                    let read = c.rows_read.load(Ordering::Relaxed);
                    let staged = c.load.rows_staged.load(Ordering::Relaxed);
                    let mb = c.load.bytes_sent.load(Ordering::Relaxed) as f64 / 1e6;
                    b.set_message(format!(
                        "read {read:>10}  staged {staged:>10}  {mb:>8.1} MB"
                    ));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        }
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(name.to_string(), (bar, counters));
        }
    }

    fn node_finished(&self, report: &NodeReport) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        if let Some((bar, _)) = bars.remove(&report.name) {
            let mark = if report.status == NodeStatus::Ok {
                "done"
            } else {
                report.status.as_str()
            };
            bar.finish_with_message(mark.to_string());
        }
    }
}
