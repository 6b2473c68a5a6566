//! `pulso-flow reconcile`: compare source and target per day over any range of days, long after
//! the load, and with `--repair` reload exactly the differing days.
//!
//! Each table with `reconcile:` (or each one named) is compared inside a transaction that holds
//! the target's lock ([`pulso_sinks::reconcile::Session`]), by one of two methods:
//!
//! - **BigQuery aggregate** (a BigQuery source whose reconciled columns come straight from it):
//!   BigQuery computes the per-day count and sums in one query
//!   ([`pulso_operators::source::bigquery::aggregate`]), dry-run first so its bytes are shown
//!   before it runs (and refused above `maximum_bytes_billed`); no source row is read. A repair
//!   then reads only the rows of the differing days' range.
//! - **Staged source** (files, the generator, a BigQuery source whose transform derives or filters
//!   what is reconciled): the whole source is read through the table's source and transform into
//!   the staging table and aggregated in PostgreSQL.
//!
//! With `repair`, the differing days are replaced in that same transaction and committed with a
//! ledger row and their changed days; then the builds downstream of the repaired tables run
//! ([`crate::executor::run`] restricted to them), so they recompute exactly those days. A table
//! whose days all match is rolled back untouched.

use std::sync::Arc;

use chrono::NaiveDate;
use pulso_operators::source::SourceSpec;
use pulso_operators::source::bigquery::aggregate::{self, AggregateRequest, SumColumn};
use pulso_sinks::load::LoadRequest;
use pulso_sinks::pgtype::PgType;
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
    /// Plan and dry-run the source queries only: nothing is compared or repaired.
    pub dry_run: bool,
    pub wait_for_lock: bool,
    pub run_id: String,
}

/// How a table's source side was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// BigQuery computed the per-day totals (one aggregate query).
    BigqueryAggregate,
    /// The whole source was read and staged, and aggregated in PostgreSQL.
    StagedSource,
}

/// The aggregate query sent to BigQuery, as shown before it runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceQuery {
    pub sql: String,
    /// `@name TYPE = value`, one per parameter.
    pub params: Vec<String>,
    pub bytes_processed: u64,
    pub estimated_cost_usd: f64,
    pub maximum_bytes_billed: Option<u64>,
    /// The connection is an emulator (its byte counts mean little).
    pub emulator: bool,
}

/// One table's outcome.
#[derive(Debug, Clone)]
pub struct TableReconcile {
    pub name: String,
    pub method: Method,
    /// Source rows read: the whole source (staged), or the repaired days' rows (aggregate).
    pub rows_read: u64,
    /// The BigQuery aggregate query (method `bigquery_aggregate`).
    pub source_query: Option<SourceQuery>,
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
            method: Method::StagedSource,
            rows_read: 0,
            source_query: None,
            report: None,
            repair: None,
            error: None,
        };
        match reconcile_table(&pipeline, node, table, &opts, observer.as_ref(), &mut out).await {
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

/// The aggregate request of a table whose source BigQuery can aggregate itself: a BigQuery
/// source whose day, summed, key and incremental columns come from it unchanged (not derived,
/// no transform filter), summed columns exact (integers or numeric). `None`: stage the source.
fn pushdown(
    table: &TableNode,
    spec: &pulso_sinks::reconcile::ReconcileSpec,
) -> Option<AggregateRequest> {
    if !matches!(table.source, SourceSpec::Bigquery(_)) || table.transform.filter.is_some() {
        return None;
    }
    let derived = |c: &String| table.transform.derive.contains_key(c);
    let latest_by = table.shape.incremental.clone();
    let touched = std::iter::once(&spec.by)
        .chain(&spec.sum)
        .chain(&table.shape.primary_key)
        .chain(latest_by.as_ref());
    if touched.clone().any(derived) {
        return None;
    }
    let sum = spec
        .sum
        .iter()
        .map(|c| {
            let ty = table
                .shape
                .columns
                .iter()
                .find(|col| &col.name == c)?
                .ty
                .clone();
            match ty {
                PgType::Int2 | PgType::Int4 | PgType::Int8 => Some(None),
                PgType::Numeric {
                    precision: Some(_),
                    scale,
                } => Some(Some(scale)),
                PgType::Numeric {
                    precision: None, ..
                } => Some(None),
                _ => None,
            }
            .map(|scale| SumColumn {
                name: c.clone(),
                scale,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(AggregateRequest {
        by: spec.by.clone(),
        sum,
        key: table.shape.primary_key.clone(),
        latest_by,
        from: None,
        to: None,
    })
}

/// Compare one table (and repair it if asked and needed). Returns whether it committed a repair.
async fn reconcile_table(
    pipeline: &Pipeline,
    node: &Node,
    table: &TableNode,
    opts: &ReconcileOptions,
    observer: &dyn RunObserver,
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
    let from = opts.from.map(|d| d.to_string());
    let to = opts.to.map(|d| d.to_string());
    let counters = Arc::new(crate::executor::NodeCounters::default());
    let aggregate = match (&table.source, pushdown(table, spec)) {
        (SourceSpec::Bigquery(bq), Some(req)) => Some((bq, req)),
        _ => None,
    };
    let (mut session, report) = if let Some((bq, req)) = &aggregate {
        let mut req = req.clone();
        out.method = Method::BigqueryAggregate;
        req.from = opts.from;
        req.to = opts.to;
        let ctx = crate::read::source_context(pipeline, table, None);
        let conn = bq
            .connection(&ctx)
            .map_err(pulso_operators::OperatorError::from)?;
        let query = aggregate::prepare(bq, conn, &req)
            .await
            .map_err(pulso_operators::OperatorError::from)?;
        let shown = SourceQuery {
            sql: query.plan.sql.clone(),
            params: query.plan.params.iter().map(|p| p.describe()).collect(),
            bytes_processed: query.bytes_processed,
            estimated_cost_usd: query.estimated_cost_usd,
            maximum_bytes_billed: query.plan.maximum_bytes_billed,
            emulator: query.emulator,
        };
        observer.reconcile_query(&node.name, &shown);
        out.source_query = Some(shown);
        if opts.dry_run {
            return Ok(false);
        }
        // The lock first: the target cannot change between BigQuery's answer and the comparison.
        let session = Session::open(&opts.database_url, request).await?;
        let totals = aggregate::run(query)
            .await
            .map_err(pulso_operators::OperatorError::from)?;
        let report = session.compare_totals(spec, &totals, from, to).await?;
        (session, report)
    } else {
        if opts.dry_run {
            return Ok(false);
        }
        let mut session = Session::open(&opts.database_url, request).await?;
        let transformed = crate::read::read_table(pipeline, table, None, &counters).await?;
        session.stage(transformed).await?;
        let report = session.compare(spec, from, to).await?;
        (session, report)
    };
    let days: Vec<NaiveDate> = report
        .mismatches
        .iter()
        .filter_map(|d| d.day.as_deref())
        .filter_map(|d| d.parse().ok())
        .collect();
    let null_day = report.mismatches.iter().any(|d| d.day.is_none());
    out.report = Some(report);
    if !opts.repair || days.is_empty() {
        out.rows_read = counters
            .rows_read
            .load(std::sync::atomic::Ordering::Relaxed);
        if opts.repair && null_day {
            return Err(EngineError::Usage(format!(
                "{}: rows whose {} is NULL differ; --repair replaces whole days and cannot repair them",
                node.name, spec.by
            )));
        }
        return Ok(false); // dropping the session rolls back
    }
    if let Some((bq, _)) = &aggregate {
        // Stage only the source rows of the differing days' range; the repair keeps those days.
        let (Some(first), Some(last)) = (days.iter().min(), days.iter().max()) else {
            return Ok(false);
        };
        let restricted = aggregate::restricted_to_days(bq, &spec.by, *first, *last)
            .map_err(pulso_operators::OperatorError::from)?;
        let table = TableNode {
            source: SourceSpec::Bigquery(restricted),
            ..table.clone()
        };
        let transformed = crate::read::read_table(pipeline, &table, None, &counters).await?;
        session.stage(transformed).await?;
    }
    out.rows_read = counters
        .rows_read
        .load(std::sync::atomic::Ordering::Relaxed);
    out.repair = Some(session.repair(spec, &days).await?);
    Ok(true)
}
