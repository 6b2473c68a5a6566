//! Runs a pipeline: every selected node once, dependencies first, independent nodes concurrently.
//!
//! A table node is a stream `source → transform → Postgres sink` connected by bounded channels
//! (so memory does not grow with the table) inside one transaction. A failing node does not stop
//! independent ones; its dependants are skipped. Cancelling (Ctrl-C) aborts the running nodes,
//! which drops their connections before COMMIT, so the server rolls them back.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pulso_sinks::build::BuildRequest;
use pulso_sinks::load::{self, LoadOutcome, LoadProgress, LoadRequest};
use pulso_sinks::state::{self, NodeRun, RunMode};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::error::EngineError;
use crate::pipeline::{BuildNode, Node, NodeKind, Pipeline, TableNode};
use crate::window::{bound_text, watermark_ahead, window_for};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub database_url: String,
    /// Run only these nodes (`--tables`); their unselected dependencies are assumed current.
    pub only: Option<Vec<String>>,
    /// Re-read every selected table whole and replace its content.
    pub full_refresh: bool,
    pub concurrency: usize,
    pub wait_for_lock: bool,
    pub run_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    Ok,
    Failed,
    Skipped,
    Cancelled,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Ok => "ok",
            NodeStatus::Failed => "failed",
            NodeStatus::Skipped => "skipped",
            NodeStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NodeReport {
    pub name: String,
    pub kind: &'static str,
    pub status: NodeStatus,
    pub error: Option<String>,
    /// The node failed only because another run holds its lock (`--no-wait`).
    pub lock_conflict: bool,
    pub rows_read: u64,
    pub outcome: Option<LoadOutcome>,
    pub window_lower: Option<String>,
    pub window_upper: Option<String>,
    /// What an operator should look at although the node ran (also in the ledger's details).
    pub warnings: Vec<String>,
    pub duration: Duration,
    /// Results of its `reconcile:` and `checks:` (also when they failed the node).
    pub gates: pulso_sinks::gates::Gates,
}

#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: String,
    pub nodes: Vec<NodeReport>,
    pub duration: Duration,
}

impl RunReport {
    pub fn all_ok(&self) -> bool {
        self.nodes.iter().all(|n| n.status == NodeStatus::Ok)
    }

    pub fn node(&self, name: &str) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// Live counters of a running node, for progress display.
#[derive(Debug, Default)]
pub struct NodeCounters {
    pub rows_read: AtomicU64,
    pub load: Arc<LoadProgress>,
}

/// Hooks for the CLI's progress bars and logs. All methods have empty defaults.
pub trait RunObserver: Send + Sync {
    fn node_started(&self, _name: &str, _kind: &'static str, _counters: Arc<NodeCounters>) {}
    fn node_finished(&self, _report: &NodeReport) {}
    /// `pulso-flow reconcile` planned and dry-ran a table's BigQuery aggregate query; it runs
    /// next (unless this is a dry run).
    fn reconcile_query(&self, _node: &str, _query: &crate::reconcile::SourceQuery) {}
}

/// An observer that does nothing.
pub struct Quiet;
impl RunObserver for Quiet {}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Done(NodeStatus),
}

/// Run the pipeline. Returns the report of every selected node; errors only for problems that
/// prevent running at all (bad `--tables`, database unreachable, migrations failing).
pub async fn run(
    pipeline: Arc<Pipeline>,
    opts: RunOptions,
    observer: Arc<dyn RunObserver>,
    mut cancel: watch::Receiver<bool>,
) -> Result<RunReport, EngineError> {
    let t0 = Instant::now();
    // Upper bound of pushed-down windows (BigQuery): fixed once for the whole run.
    let run_start = Utc::now();
    let selected = select(&pipeline, opts.only.as_deref())?;
    let mut control = pulso_sinks::connect::connect(&opts.database_url).await?;
    pulso_sinks::migrate::migrate(&mut control).await?;
    let args = serde_json::json!({
        "file": pipeline.file, "only": opts.only, "full_refresh": opts.full_refresh,
    });
    state::start_run(&control, &opts.run_id, &pipeline.name, &args).await?;

    let opts = Arc::new(opts);
    let n = pipeline.nodes.len();
    let mut states: Vec<State> = (0..n)
        .map(|i| {
            if selected.contains(&i) {
                State::Pending
            } else {
                State::Done(NodeStatus::Ok) // not selected: treated as current
            }
        })
        .collect();
    let mut reports: Vec<NodeReport> = Vec::new();
    let mut tasks: JoinSet<(usize, NodeReport)> = JoinSet::new();
    let mut running = 0usize;
    let mut cancelled = *cancel.borrow();

    loop {
        // Skip nodes whose dependency failed; start nodes whose dependencies all succeeded.
        for &i in &pipeline.dag.order {
            if states[i] != State::Pending {
                continue;
            }
            let deps: Vec<usize> = pipeline.dag.dependencies(i).collect();
            let failed_dep = deps
                .iter()
                .find(|&&d| matches!(states[d], State::Done(s) if s != NodeStatus::Ok));
            if cancelled || failed_dep.is_some() {
                let reason = match failed_dep {
                    Some(&d) if !cancelled => {
                        format!(
                            "skipped: dependency {} did not succeed",
                            pipeline.nodes[d].name
                        )
                    }
                    _ => "skipped: run cancelled".to_string(),
                };
                let report = not_run(&pipeline.nodes[i], NodeStatus::Skipped, reason);
                record_not_run(&opts, &pipeline.nodes[i], &report).await;
                observer.node_finished(&report);
                reports.push(report);
                states[i] = State::Done(NodeStatus::Skipped);
                continue;
            }
            let ready = deps
                .iter()
                .all(|&d| states[d] == State::Done(NodeStatus::Ok));
            if ready && running < opts.concurrency.max(1) {
                states[i] = State::Running;
                running += 1;
                let counters = Arc::new(NodeCounters::default());
                let node = &pipeline.nodes[i];
                observer.node_started(&node.name, node.kind.as_str(), counters.clone());
                let (p, o) = (pipeline.clone(), opts.clone());
                tasks.spawn(async move { (i, run_node(&p, i, &o, counters, run_start).await) });
            }
        }
        if tasks.is_empty() {
            break;
        }
        tokio::select! {
            joined = tasks.join_next() => {
                let Some(joined) = joined else { continue };
                running -= 1;
                match joined {
                    Ok((i, report)) => {
                        states[i] = State::Done(report.status);
                        observer.node_finished(&report);
                        reports.push(report);
                    }
                    Err(e) => {
                        // A panicking node must not take the run down with it; it has no index,
                        // so mark every still-running node's fate when the set drains.
                        tracing::error!(error = %e, "node task panicked");
                    }
                }
            }
            changed = cancel.changed(), if !cancelled => {
                if changed.is_err() || *cancel.borrow() {
                    cancelled = true;
                    tracing::warn!("cancelling: rolling back running loads");
                    tasks.abort_all();
                    while let Some(joined) = tasks.join_next().await {
                        if let Ok((i, report)) = joined {
                            states[i] = State::Done(report.status);
                            reports.push(report);
                        }
                    }
                    running = 0;
                    for (i, s) in states.iter_mut().enumerate() {
                        if *s == State::Running {
                            *s = State::Done(NodeStatus::Cancelled);
                            let report = not_run(&pipeline.nodes[i], NodeStatus::Cancelled, "cancelled: rolled back".into());
                            record_not_run(&opts, &pipeline.nodes[i], &report).await;
                            observer.node_finished(&report);
                            reports.push(report);
                        }
                    }
                }
            }
        }
    }
    // Tasks that panicked leave their node Running: report them as failed.
    for (i, s) in states.iter().enumerate() {
        if *s == State::Running {
            let report = not_run(
                &pipeline.nodes[i],
                NodeStatus::Failed,
                "internal error: the node's task panicked".into(),
            );
            observer.node_finished(&report);
            reports.push(report);
        }
    }
    // Report in pipeline order.
    reports.sort_by_key(|r| pipeline.node(&r.name).map(|(i, _)| i).unwrap_or(usize::MAX));
    let status = if cancelled {
        "cancelled"
    } else if reports.iter().all(|r| r.status == NodeStatus::Ok) {
        "ok"
    } else {
        "failed"
    };
    if let Err(e) = state::finish_run(&control, &opts.run_id, status).await {
        tracing::warn!(error = %e, "could not record the end of the run");
    }
    Ok(RunReport {
        run_id: opts.run_id.clone(),
        nodes: reports,
        duration: t0.elapsed(),
    })
}

/// Indices of the nodes to run.
fn select(pipeline: &Pipeline, only: Option<&[String]>) -> Result<HashSet<usize>, EngineError> {
    let Some(names) = only else {
        return Ok((0..pipeline.nodes.len()).collect());
    };
    match pipeline.find_nodes(names) {
        Ok(found) => Ok(found.into_iter().collect()),
        Err(unknown) => {
            let known: Vec<&str> = pipeline.nodes.iter().map(|n| n.name.as_str()).collect();
            Err(EngineError::Usage(format!(
                "unknown table(s) {}; the pipeline has: {}",
                unknown.join(", "),
                known.join(", ")
            )))
        }
    }
}

fn not_run(node: &Node, status: NodeStatus, reason: String) -> NodeReport {
    NodeReport {
        name: node.name.clone(),
        kind: node.kind.as_str(),
        status,
        error: Some(reason),
        lock_conflict: false,
        rows_read: 0,
        outcome: None,
        window_lower: None,
        window_upper: None,
        warnings: Vec::new(),
        duration: Duration::ZERO,
        gates: Default::default(),
    }
}

async fn run_node(
    pipeline: &Pipeline,
    i: usize,
    opts: &RunOptions,
    counters: Arc<NodeCounters>,
    run_start: DateTime<Utc>,
) -> NodeReport {
    let node = &pipeline.nodes[i];
    let t0 = Instant::now();
    let started_at = Utc::now();
    let mut report = not_run(node, NodeStatus::Ok, String::new());
    report.error = None;
    let result = match &node.kind {
        NodeKind::Table(table) => {
            run_table(
                pipeline,
                node,
                table,
                opts,
                &counters,
                &mut report,
                run_start,
            )
            .await
        }
        NodeKind::Build(build) => run_build(node, build, opts, &mut report).await,
    };
    report.duration = t0.elapsed();
    report.rows_read = counters.rows_read.load(Ordering::Relaxed);
    match result {
        Ok(outcome) => {
            report.outcome = outcome;
            tracing::info!(node = %node.name, rows_read = report.rows_read, ms = report.duration.as_millis() as u64, "node ok");
        }
        Err(e) => {
            let message = format!("{} {}: {e}", node.kind.as_str(), node.name);
            tracing::error!(node = %node.name, error = %e, "node failed");
            report.status = NodeStatus::Failed;
            report.error = Some(message.clone());
            report.lock_conflict =
                matches!(e, EngineError::Sink(pulso_sinks::SinkError::Locked { .. }));
            let details = crate::gates::failed_details(&e, &mut report.gates);
            let ledger = NodeRun {
                run_id: opts.run_id.clone(),
                node: node.name.clone(),
                kind: node.kind.as_str(),
                window_lower: report.window_lower.clone(),
                window_upper: report.window_upper.clone(),
                warnings: report.warnings.clone(),
                rows_read: i64::try_from(report.rows_read).unwrap_or(i64::MAX),
                started_at: Some(started_at),
                duration_ms: i64::try_from(report.duration.as_millis()).unwrap_or(i64::MAX),
                status: "failed",
                error: Some(message),
                details,
                ..NodeRun::default()
            };
            record_on_fresh_connection(&opts.database_url, &ledger).await;
        }
    }
    report
}

/// source → transform → sink for one table, inside the sink's transaction.
async fn run_table(
    pipeline: &Pipeline,
    node: &Node,
    table: &TableNode,
    opts: &RunOptions,
    counters: &Arc<NodeCounters>,
    report: &mut NodeReport,
    run_start: DateTime<Utc>,
) -> Result<Option<LoadOutcome>, EngineError> {
    let mode = if opts.full_refresh {
        RunMode::FullRefresh
    } else {
        table.mode
    };
    let full_refresh = mode == RunMode::FullRefresh;
    let request = LoadRequest {
        node: node.name.clone(),
        shape: table.shape.clone(),
        mode,
        wait_for_lock: opts.wait_for_lock,
        create_target: table.create_target,
        time_zone: pipeline.time_zone,
        run_id: opts.run_id.clone(),
        checks: table.checks.clone(),
        reconcile: table.reconcile.clone(),
    };
    let mut open = load::open(&opts.database_url, request).await?;
    let window = window_for(
        table,
        open.watermark(),
        full_refresh,
        run_start,
        pipeline.time_zone,
    )?;
    if let Some(w) = &window {
        open.set_window(&w.column, w.lower, w.upper);
    }
    report.window_lower = window.as_ref().and_then(|w| bound_text(w.lower.as_ref()));
    report.window_upper = window.as_ref().and_then(|w| bound_text(w.upper.as_ref()));
    tracing::info!(node = %node.name, lower = ?report.window_lower, upper = ?report.window_upper, "loading");
    if let Some(warning) = watermark_ahead(open.watermark().as_ref(), window.as_ref()) {
        tracing::warn!(node = %node.name, "{warning}");
        report.warnings.push(warning);
    }

    let transformed = crate::read::read_table(pipeline, table, window.as_ref(), counters).await?;
    let ledger = NodeRun {
        window_lower: report.window_lower.clone(),
        window_upper: report.window_upper.clone(),
        warnings: report.warnings.clone(),
        ..NodeRun::default()
    };
    let rows_read = counters.clone();
    let outcome = open
        .load(transformed, ledger, counters.load.clone(), move || {
            rows_read.rows_read.load(Ordering::Relaxed)
        })
        .await?;
    report.warnings.extend(outcome.warnings.iter().cloned());
    report.gates = outcome.gates.clone();
    report
        .warnings
        .extend(outcome.gates.warnings.iter().cloned());
    Ok(Some(outcome))
}

/// A SQL build: [`pulso_sinks::build`] runs it in one transaction with its ledger row.
async fn run_build(
    node: &Node,
    build: &BuildNode,
    opts: &RunOptions,
    report: &mut NodeReport,
) -> Result<Option<LoadOutcome>, EngineError> {
    let request = BuildRequest {
        node: &node.name,
        sql: &build.sql,
        origin: &build.origin,
        depends_on: &node.depends_on,
        full_refresh: opts.full_refresh,
        wait_for_lock: opts.wait_for_lock,
        run_id: &opts.run_id,
        checks: &build.checks,
    };
    let outcome = pulso_sinks::build::run(&opts.database_url, &request).await?;
    report
        .warnings
        .extend(outcome.gates.warnings.iter().cloned());
    report.gates = outcome.gates;
    Ok(None)
}

async fn record_not_run(opts: &RunOptions, node: &Node, report: &NodeReport) {
    let ledger = NodeRun {
        run_id: opts.run_id.clone(),
        node: node.name.clone(),
        kind: node.kind.as_str(),
        started_at: Some(Utc::now()),
        status: report.status.as_str(),
        error: report.error.clone(),
        ..NodeRun::default()
    };
    record_on_fresh_connection(&opts.database_url, &ledger).await;
}

/// Ledger rows for nodes that did not commit are written outside their (rolled back)
/// transaction; failing to write one is logged, never fatal.
async fn record_on_fresh_connection(url: &str, ledger: &NodeRun) {
    let result = async {
        let client = pulso_sinks::connect::connect(url).await?;
        state::record_node_run(&client, ledger).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(node = %ledger.node, error = %e, "could not record the node's run in the ledger");
    }
}
