//! ETL refreshes started from the API: one at a time per API process, each a normal
//! `pulso-flow run` of the chosen tables and everything downstream of them (so the marts they
//! feed are rebuilt), with the engine's per-table advisory locks serialising it against runs of
//! the CLI or of other API instances.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use pulso_engine::executor::{self, Quiet, RunOptions};
use pulso_engine::pipeline::Pipeline;
use tokio::sync::watch;

use crate::error::ApiError;

/// A run this process started and has not seen finish.
#[derive(Clone, Debug)]
pub struct Running {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub nodes: Vec<String>,
}

pub struct Refresher {
    pipeline_file: String,
    database_url: String,
    running: Mutex<Option<(Running, watch::Sender<bool>)>>,
    /// Node names of the pipeline file as loaded at startup (status and freshness list them even
    /// before they first run).
    nodes: Vec<String>,
    /// Set on shutdown: no new runs.
    closed: std::sync::atomic::AtomicBool,
}

/// What `start` did.
pub enum Started {
    New(Running),
    AlreadyRunning(Running),
}

impl Refresher {
    pub fn new(pipeline_file: String, database_url: String) -> Arc<Self> {
        let nodes = match pulso_engine::compile::load_pipeline(std::path::Path::new(&pipeline_file))
        {
            Ok(p) => p
                .dag
                .order
                .iter()
                .map(|&i| p.nodes[i].name.clone())
                .collect(),
            Err(e) => {
                // Only the first line: an unset environment produces one error per use.
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default().to_string();
                let more = text
                    .lines()
                    .filter(|l| l.contains("error"))
                    .count()
                    .saturating_sub(1);
                tracing::warn!(file = %pipeline_file, error = %first, more_errors = more,
                    "pipeline file not loaded (PULSO_API_PIPELINE): status lists only nodes that ran; refresh retries loading it");
                Vec::new()
            }
        };
        Arc::new(Refresher {
            pipeline_file,
            database_url,
            running: Mutex::new(None),
            nodes,
            closed: false.into(),
        })
    }

    pub fn pipeline_nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }

    pub fn pipeline_file(&self) -> &str {
        &self.pipeline_file
    }

    /// Load the pipeline file (each time: edits apply without a restart).
    pub fn pipeline(&self) -> Result<Pipeline, ApiError> {
        pulso_engine::compile::load_pipeline(std::path::Path::new(&self.pipeline_file)).map_err(
            |e| {
                tracing::error!(file = %self.pipeline_file, error = %e, "cannot load the pipeline");
                ApiError::Unavailable(format!(
                    "the pipeline file {} cannot be loaded; see the server log",
                    self.pipeline_file
                ))
            },
        )
    }

    pub fn running(&self) -> Option<Running> {
        self.running
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|(r, _)| r.clone()))
    }

    /// Start a run of `tables` (all nodes when `None`) and their dependants.
    pub fn start(
        self: &Arc<Self>,
        tables: Option<&[String]>,
        full_refresh: bool,
        concurrency: usize,
    ) -> Result<Started, ApiError> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(ApiError::Unavailable("the server is shutting down".into()));
        }
        let pipeline = self.pipeline()?;
        let nodes = select_with_dependants(&pipeline, tables)?;
        let mut slot = self
            .running
            .lock()
            .map_err(|_| ApiError::internal("refresh lock poisoned"))?;
        if let Some((r, _)) = slot.as_ref() {
            return Ok(Started::AlreadyRunning(r.clone()));
        }
        let run_id = new_run_id();
        let running = Running {
            run_id: run_id.clone(),
            started_at: Utc::now(),
            nodes: nodes.clone(),
        };
        let (cancel_tx, cancel_rx) = watch::channel(false);
        *slot = Some((running.clone(), cancel_tx));
        drop(slot);
        let opts = RunOptions {
            database_url: self.database_url.clone(),
            only: Some(nodes),
            full_refresh,
            concurrency: concurrency.clamp(1, 8),
            wait_for_lock: true,
            run_id: run_id.clone(),
        };
        let this = self.clone();
        tokio::spawn(async move {
            tracing::info!(%run_id, "refresh started");
            let result = executor::run(Arc::new(pipeline), opts, Arc::new(Quiet), cancel_rx).await;
            match result {
                Ok(report) => {
                    let failed: Vec<_> = report
                        .nodes
                        .iter()
                        .filter(|n| n.status != executor::NodeStatus::Ok)
                        .map(|n| n.name.as_str())
                        .collect();
                    if failed.is_empty() {
                        tracing::info!(%run_id, ms = report.duration.as_millis() as u64, "refresh finished");
                    } else {
                        tracing::warn!(%run_id, failed = ?failed, "refresh finished with failures");
                    }
                }
                Err(e) => tracing::error!(%run_id, error = %e, "refresh could not run"),
            }
            if let Ok(mut slot) = this.running.lock() {
                *slot = None;
            }
        });
        Ok(Started::New(running))
    }

    /// Shutdown: refuse new runs and cancel the running one (its loads roll back).
    pub fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        if let Ok(slot) = self.running.lock()
            && let Some((r, cancel)) = slot.as_ref()
        {
            tracing::warn!(run_id = %r.run_id, "shutting down: cancelling the running refresh");
            let _ = cancel.send(true);
        }
    }
}

/// The named nodes plus every node downstream of them, in pipeline order.
pub fn select_with_dependants(
    pipeline: &Pipeline,
    tables: Option<&[String]>,
) -> Result<Vec<String>, ApiError> {
    let Some(tables) = tables else {
        return Ok(pipeline
            .dag
            .order
            .iter()
            .map(|&i| pipeline.nodes[i].name.clone())
            .collect());
    };
    let mut chosen = BTreeSet::new();
    for t in tables {
        match pipeline.node(t) {
            Some((i, _)) => {
                chosen.insert(i);
            }
            None => {
                return Err(ApiError::NotFound(format!(
                    "table {:?} is not in the pipeline {}",
                    crate::http::params::safe_text(t),
                    pipeline.file
                )));
            }
        }
    }
    // Close over the edges (from → to).
    loop {
        let before = chosen.len();
        for &(from, to) in &pipeline.dag.edges {
            if chosen.contains(&from) {
                chosen.insert(to);
            }
        }
        if chosen.len() == before {
            break;
        }
    }
    Ok(pipeline
        .dag
        .order
        .iter()
        .filter(|i| chosen.contains(i))
        .map(|&i| pipeline.nodes[i].name.clone())
        .collect())
}

/// Same shape as the CLI's run ids (sortable by time), marked as started by the API.
fn new_run_id() -> String {
    let now = Utc::now();
    let salt = now.timestamp_subsec_nanos() ^ std::process::id().rotate_left(16);
    format!("{}-api{salt:08x}", now.format("%Y%m%dT%H%M%SZ"))
}
