//! `pulso-flow reconcile`: compare source and target per day over any range of days, long after
//! the load, and with `--repair` reload exactly the differing days.
//!
//! For each table with `reconcile:` (or the ones named), the whole source is read through the
//! table's own source and transform (no window) into the staging table of a transaction that
//! holds the target's lock, and compared per day with the target
//! ([`pulso_sinks::reconcile::Session`]). With `repair`, the differing days are replaced in that
//! same transaction and committed with a ledger row and their changed days; then the builds
//! downstream of the repaired tables run ([`crate::executor::run`] restricted to them), so they
//! recompute exactly those days. A table whose days all match is rolled back untouched.

use std::sync::Arc;

use chrono::NaiveDate;
use pulso_sinks::load::LoadRequest;
use pulso_sinks::reconcile::{ReconcileReport, RepairOutcome, Session};
use pulso_sinks::state::{self, RunMode};

use crate::error::EngineError;
use crate::executor::{self, RunObserver, RunOptions, RunReport};
use crate::pipeline::{Node, NodeKind, Pipeline, TableNode};

#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    pub database_url: String,
    /// Only these tables (each must declare `reconcile:`); default every table that does.
    pub tables: Option<Vec<String>>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub repair: bool,
    pub wait_for_lock: bool,
    pub run_id: String,
}

/// One table's outcome.
#[derive(Debug, Clone)]
pub struct TableReconcile {
    pub name: String,
    /// Source rows read (the whole source).
    pub rows_read: u64,
    pub report: Option<ReconcileReport>,
    pub repair: Option<RepairOutcome>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ReconcileRun {
    pub run_id: String,
    pub tables: Vec<TableReconcile>,
    /// The downstream builds run after a repair.
    pub builds: Option<RunReport>,
}

impl ReconcileRun {
    /// Any table failed, or any differed and was not repaired, or a rebuild failed.
    pub fn clean(&self) -> bool {
        self.tables.iter().all(|t| {
            t.error.is_none()
                && (t.repair.is_some() || t.report.as_ref().is_none_or(ReconcileReport::matches))
        }) && self.builds.as_ref().is_none_or(RunReport::all_ok)
    }
}

/// The tables to reconcile: the named ones (each must have `reconcile:`), or all that have it.
fn select<'a>(
    pipeline: &'a Pipeline,
    only: Option<&[String]>,
) -> Result<Vec<(usize, &'a Node, &'a TableNode)>, EngineError> {
    let with_spec = |i: usize| match &pipeline.nodes[i].kind {
        NodeKind::Table(t) if t.reconcile.is_some() => Some((i, &pipeline.nodes[i], &**t)),
        _ => None,
    };
    match only {
        None => Ok((0..pipeline.nodes.len()).filter_map(with_spec).collect()),
        Some(names) => {
            let found = pipeline.find_nodes(names).map_err(|unknown| {
                EngineError::Usage(format!("unknown table(s) {}", unknown.join(", ")))
            })?;
            found
                .into_iter()
                .map(|i| {
                    with_spec(i).ok_or_else(|| {
                        EngineError::Usage(format!(
                            "{} declares no `reconcile:` (by and sum columns); add one to reconcile it",
                            pipeline.nodes[i].name
                        ))
                    })
                })
                .collect()
        }
    }
}

/// Reconcile (and repair) the selected tables, then rebuild what depends on the repaired ones.
pub async fn reconcile(
    pipeline: Arc<Pipeline>,
    opts: ReconcileOptions,
    observer: Arc<dyn RunObserver>,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<ReconcileRun, EngineError> {
    let selected = select(&pipeline, opts.tables.as_deref())?;
    if selected.is_empty() {
        return Err(EngineError::Usage(
            "no table of the pipeline declares `reconcile:`".into(),
        ));
    }
    if let (Some(f), Some(t)) = (opts.from, opts.to)
        && f > t
    {
        return Err(EngineError::Usage(format!("--from {f} is after --to {t}")));
    }
    let mut control = pulso_sinks::connect::connect(&opts.database_url).await?;
    pulso_sinks::migrate::migrate(&mut control).await?;
    if opts.repair {
        let args = serde_json::json!({
            "file": pipeline.file, "reconcile": true, "repair": true, "only": opts.tables,
            "from": opts.from.map(|d| d.to_string()), "to": opts.to.map(|d| d.to_string()),
        });
        state::start_run(&control, &opts.run_id, &pipeline.name, &args).await?;
    }
    let mut tables = Vec::new();
    let mut repaired_nodes = Vec::new();
    for (i, node, table) in selected {
        let mut out = TableReconcile {
            name: node.name.clone(),
            rows_read: 0,
            report: None,
            repair: None,
            error: None,
        };
        match reconcile_table(&pipeline, node, table, &opts, &mut out).await {
            Ok(repaired) => {
                if repaired {
                    repaired_nodes.push(i);
                }
            }
            Err(e) => {
                tracing::error!(node = %node.name, error = %e, "reconciliation failed");
                out.error = Some(e.to_string());
            }
        }
        tables.push(out);
    }
    let mut builds = None;
    if !repaired_nodes.is_empty() {
        let downstream: Vec<String> = pipeline
            .dag
            .downstream_of(&repaired_nodes)
            .into_iter()
            .filter(|i| matches!(pipeline.nodes[*i].kind, NodeKind::Build(_)))
            .map(|i| pipeline.nodes[i].name.clone())
            .collect();
        if !downstream.is_empty() {
            let run = executor::run(
                pipeline.clone(),
                RunOptions {
                    database_url: opts.database_url.clone(),
                    only: Some(downstream),
                    full_refresh: false,
                    concurrency: 4,
                    wait_for_lock: opts.wait_for_lock,
                    // Its own run: the ledger keeps the repair and the rebuild apart.
                    run_id: format!("{}-builds", opts.run_id),
                },
                observer,
                cancel,
            )
            .await?;
            builds = Some(run);
        }
    }
    if opts.repair {
        let ok = tables.iter().all(|t| t.error.is_none());
        let status = if ok { "ok" } else { "failed" };
        if let Err(e) = state::finish_run(&control, &opts.run_id, status).await {
            tracing::warn!(error = %e, "could not record the end of the run");
        }
    }
    Ok(ReconcileRun {
        run_id: opts.run_id,
        tables,
        builds,
    })
}

/// Stage the whole source of one table, compare, and repair if asked and needed. Returns whether
/// it committed a repair.
async fn reconcile_table(
    pipeline: &Pipeline,
    node: &Node,
    table: &TableNode,
    opts: &ReconcileOptions,
    out: &mut TableReconcile,
) -> Result<bool, EngineError> {
    let Some(spec) = &table.reconcile else {
        return Ok(false);
    };
    let request = LoadRequest {
        node: node.name.clone(),
        shape: table.shape.clone(),
        mode: RunMode::Incremental,
        wait_for_lock: opts.wait_for_lock,
        create_target: false,
        time_zone: pipeline.time_zone,
        run_id: opts.run_id.clone(),
        checks: table.checks.clone(),
        reconcile: None,
    };
    let mut session = Session::open(&opts.database_url, request).await?;
    let counters = Arc::new(crate::executor::NodeCounters::default());
    let transformed = crate::read::read_table(pipeline, table, None, &counters).await?;
    session.stage(transformed).await?;
    out.rows_read = counters
        .rows_read
        .load(std::sync::atomic::Ordering::Relaxed);
    let report = session
        .compare(
            spec,
            opts.from.map(|d| d.to_string()),
            opts.to.map(|d| d.to_string()),
        )
        .await?;
    let days: Vec<NaiveDate> = report
        .mismatches
        .iter()
        .filter_map(|d| d.day.as_deref())
        .filter_map(|d| d.parse().ok())
        .collect();
    let null_day = report.mismatches.iter().any(|d| d.day.is_none());
    out.report = Some(report);
    if !opts.repair || days.is_empty() {
        if opts.repair && null_day {
            return Err(EngineError::Usage(format!(
                "{}: rows whose {} is NULL differ; --repair replaces whole days and cannot repair them",
                node.name, spec.by
            )));
        }
        return Ok(false); // dropping the session rolls back
    }
    out.repair = Some(session.repair(spec, &days).await?);
    Ok(true)
}
