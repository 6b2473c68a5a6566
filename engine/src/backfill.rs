//! `pulso-flow backfill`: load a long range of history as many small atomic loads.
//!
//! The range `[from, to)` (dates on the pipeline's wall clock, `to` exclusive) of each selected
//! table is split into chunks of `--chunk` on the table's incremental column (or, without one,
//! its `change_date`): half-open windows `lo <= column < hi`. Each chunk is one load transaction
//! (source → transform → COPY → merge → chunk-ledger row → watermark → COMMIT, see
//! [`pulso_sinks::load::open_chunk`] and [`pulso_sinks::chunks`]). The plan is registered in the
//! ledger first, so a rerun of the same command skips committed chunks and retries the others.
//!
//! For the whole backfill of a table the backfill lock is held ([`pulso_sinks::lock`]): a
//! normal `run` of the table waits for it or exits 3 (`--no-wait`).
//!
//! A backfill that starts on an empty target runs in bulk mode ([`pulso_sinks::bulk`]): the
//! target's indexes are dropped, every chunk COPYs straight into it (up to `--parallel` at a
//! time, each taking the target's lock only for its commit), and the indexes are built once
//! after the last chunk, which is what makes a chunked backfill cost about what one load does.
//! Otherwise chunks merge: the first pending chunk alone, then up to `--parallel` at a time,
//! each reading its window and COPYing into its own staging table concurrently, then taking the
//! target's lock for the merge and commit, so merges into one target are serialised. Either way,
//! after a chunk fails no new chunk starts (the ones in flight finish), and the watermark stays
//! at the end of the contiguous prefix of committed chunks.
//!
//! Dependent builds run once after the backfill (they consume every chunk's recorded changed
//! days at once), or after every chunk (`--builds per-chunk`), or not at all (`--builds none`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use pulso_operators::source::SourceContext;
use pulso_operators::window::Window;
use pulso_sinks::chunks::{self, ChunkCommit, ChunkPlan, ChunkRow, ChunkStatus};
use pulso_sinks::load::{self, LoadOutcome, LoadRequest};
use pulso_sinks::state::{NodeRun, RunMode};
use pulso_types::{IncType, IncValue};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_postgres::Client;

use crate::error::EngineError;
use crate::executor::{self, NodeCounters, Quiet, RunOptions, RunReport};
use crate::pipeline::{Node, NodeKind, Pipeline, TableNode};

/// When dependent builds run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildsMode {
    /// Once, after every table's chunks (the default).
    After,
    /// After every committed chunk.
    PerChunk,
    /// Not at all (the next `run` catches up).
    None,
}

/// What to backfill: which tables, which range, in which chunks.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub tables: Vec<String>,
    /// First day (inclusive), on the pipeline's wall clock.
    pub from: NaiveDate,
    /// Last day (exclusive).
    pub to: NaiveDate,
    pub chunk: chrono::Duration,
}

#[derive(Debug, Clone)]
pub struct BackfillOptions {
    pub database_url: String,
    pub plan: PlanOptions,
    /// Chunks loaded at the same time (at least 1).
    pub parallel: usize,
    /// Wait for a running load or backfill of a table (true) or fail at once (`--no-wait`).
    pub wait_for_lock: bool,
    pub builds: BuildsMode,
    pub run_id: String,
}

/// One table's chunks.
#[derive(Debug, Clone)]
pub struct TablePlan {
    /// Index of the node in the pipeline.
    pub index: usize,
    pub plan: ChunkPlan,
}

/// How one chunk ended in this invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Loaded and committed now.
    Committed,
    /// Committed by an earlier invocation: skipped.
    AlreadyCommitted,
    Failed,
    /// Rolled back by a signal.
    Cancelled,
    /// Not started: an earlier chunk failed, or the run was cancelled, or the table was locked.
    NotStarted,
}

impl ChunkOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkOutcome::Committed => "committed",
            ChunkOutcome::AlreadyCommitted => "skipped",
            ChunkOutcome::Failed => "failed",
            ChunkOutcome::Cancelled => "cancelled",
            ChunkOutcome::NotStarted => "not started",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChunkReport {
    pub node: String,
    pub seq: usize,
    pub lo: IncValue,
    pub hi: IncValue,
    pub outcome: ChunkOutcome,
    pub rows_read: u64,
    pub bytes: u64,
    pub load: Option<LoadOutcome>,
    pub error: Option<String>,
    /// The node failed only because another run or backfill holds the table (`--no-wait`).
    pub lock_conflict: bool,
    pub attempt: i32,
    pub duration: Duration,
}

#[derive(Debug, Clone)]
pub struct BackfillReport {
    pub run_id: String,
    pub chunks: Vec<ChunkReport>,
    /// The dependent builds' run, when they ran.
    pub builds: Vec<RunReport>,
    /// Why the builds did not run, when they did not.
    pub builds_skipped: Option<String>,
    /// The index builds that ended bulk backfills (see [`pulso_sinks::bulk`]).
    pub index_builds: Vec<IndexBuild>,
    pub cancelled: bool,
    pub duration: Duration,
}

/// The end of one table's bulk backfill: its indexes built once after the last chunk.
#[derive(Debug, Clone)]
pub struct IndexBuild {
    pub node: String,
    /// What the build did, or why it failed (the table stays in bulk mode: the next backfill
    /// or load of it builds the indexes).
    pub result: Result<pulso_sinks::bulk::Finished, String>,
}

impl BackfillReport {
    pub fn all_ok(&self) -> bool {
        !self.cancelled
            && self.chunks.iter().all(|c| {
                matches!(
                    c.outcome,
                    ChunkOutcome::Committed | ChunkOutcome::AlreadyCommitted
                )
            })
            && self.builds.iter().all(RunReport::all_ok)
            && self.index_builds.iter().all(|b| b.result.is_ok())
    }
}

/// Hooks for the CLI's progress bar and logs; empty defaults.
pub trait BackfillObserver: Send + Sync {
    /// A table's plan is registered: `total` chunks, `done` of them already committed.
    fn planned(&self, _node: &str, _total: usize, _done: usize) {}
    fn chunk_started(&self, _node: &str, _seq: usize, _counters: Arc<NodeCounters>) {}
    fn chunk_finished(&self, _report: &ChunkReport) {}
}

impl BackfillObserver for Quiet {}

/// The chunks of every selected table. Errors (usage) for an unknown table, a build, a table
/// with neither incremental column nor `change_date`, an empty range, a chunk that is not a
/// positive whole number of days on a date column.
pub fn plan(pipeline: &Pipeline, opts: &PlanOptions) -> Result<Vec<TablePlan>, EngineError> {
    if opts.tables.is_empty() {
        return Err(usage("--tables names no table".into()));
    }
    if opts.from >= opts.to {
        return Err(usage(format!(
            "empty range: --from {} must be before --to {} (exclusive)",
            opts.from, opts.to
        )));
    }
    if opts.chunk <= chrono::Duration::zero() {
        return Err(usage("--chunk must be positive".into()));
    }
    let plan_id = format!("{}..{}/{}s", opts.from, opts.to, opts.chunk.num_seconds());
    let mut plans = Vec::new();
    for name in &opts.tables {
        let Some((index, node)) = pipeline.node(name) else {
            let known: Vec<&str> = pipeline.nodes.iter().map(|n| n.name.as_str()).collect();
            return Err(usage(format!(
                "unknown table {name}; the pipeline has: {}",
                known.join(", ")
            )));
        };
        let NodeKind::Table(table) = &node.kind else {
            return Err(usage(format!(
                "{name} is a build; backfill loads tables (their builds follow)"
            )));
        };
        let (column, ty) = chunk_column(name, table)?;
        if ty == IncType::Date && opts.chunk.num_seconds() % 86_400 != 0 {
            return Err(usage(format!(
                "table {name} is chunked on the date column {column}: --chunk must be whole days"
            )));
        }
        let bounds = boundaries(opts, ty, pipeline.time_zone)?;
        let chunks = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        plans.push(TablePlan {
            index,
            plan: ChunkPlan {
                node: name.clone(),
                target: table.shape.target.to_string(),
                column,
                ty,
                plan: plan_id.clone(),
                chunks,
            },
        });
    }
    Ok(plans)
}

/// The column a table's chunks split: its incremental column, else its `change_date`.
fn chunk_column(name: &str, table: &TableNode) -> Result<(String, IncType), EngineError> {
    if let Some(inc) = &table.incremental {
        return Ok((inc.column.clone(), inc.ty));
    }
    if let Some(day) = &table.shape.change_day {
        return Ok((day.clone(), IncType::Date));
    }
    Err(usage(format!(
        "table {name} has neither an incremental column nor a change_date to split into chunks; \
         load it with `pulso-flow run`"
    )))
}

/// `from`, `from + chunk`, …, `to` as values of `ty`: dates and wall-clock datetimes as they are,
/// instants at those wall-clock times in the pipeline's zone.
fn boundaries(
    opts: &PlanOptions,
    ty: IncType,
    tz: chrono_tz::Tz,
) -> Result<Vec<IncValue>, EngineError> {
    let start = opts.from.and_time(chrono::NaiveTime::MIN);
    let end = opts.to.and_time(chrono::NaiveTime::MIN);
    let mut points = Vec::new();
    let mut at = start;
    while at < end {
        points.push(at);
        at = at
            .checked_add_signed(opts.chunk)
            .ok_or_else(|| usage("--chunk is too large".into()))?;
    }
    points.push(end);
    points.into_iter().map(|p| value_at(p, ty, tz)).collect()
}

fn value_at(at: NaiveDateTime, ty: IncType, tz: chrono_tz::Tz) -> Result<IncValue, EngineError> {
    Ok(match ty {
        IncType::Date => IncValue::Date(at.date()),
        IncType::Datetime => IncValue::Datetime(at),
        IncType::Timestamp => {
            let local = tz.from_local_datetime(&at);
            let instant = local.earliest().or(local.latest()).ok_or_else(|| {
                usage(format!(
                    "{at} does not exist in {tz} (a clock change): choose another --from or --chunk"
                ))
            })?;
            IncValue::Timestamp(instant.with_timezone(&chrono::Utc))
        }
    })
}

fn usage(message: String) -> EngineError {
    EngineError::Usage(message)
}

/// Run the backfill. Errors only for what prevents starting (bad arguments, database
/// unreachable, migrations failing); chunk failures are in the report.
pub async fn run(
    pipeline: Arc<Pipeline>,
    opts: BackfillOptions,
    observer: Arc<dyn BackfillObserver>,
    cancel: watch::Receiver<bool>,
) -> Result<BackfillReport, EngineError> {
    let t0 = Instant::now();
    let plans = plan(&pipeline, &opts.plan)?;
    let mut control = pulso_sinks::connect::connect(&opts.database_url).await?;
    pulso_sinks::migrate::migrate(&mut control).await?;
    let args = serde_json::json!({
        "file": pipeline.file, "backfill": opts.plan.tables, "from": opts.plan.from.to_string(),
        "to": opts.plan.to.to_string(), "chunk_s": opts.plan.chunk.num_seconds(), "parallel": opts.parallel,
    });
    pulso_sinks::state::start_run(&control, &opts.run_id, &pipeline.name, &args).await?;
    let control = Arc::new(control);
    let opts = Arc::new(opts);
    let mut report = BackfillReport {
        run_id: opts.run_id.clone(),
        chunks: Vec::new(),
        builds: Vec::new(),
        builds_skipped: None,
        index_builds: Vec::new(),
        cancelled: false,
        duration: Duration::ZERO,
    };
    let mut builds_run = 0usize;
    for table_plan in &plans {
        let ctx = TableRun {
            pipeline: pipeline.clone(),
            index: table_plan.index,
            plan: table_plan.plan.clone(),
            opts: opts.clone(),
            control: control.clone(),
            observer: observer.clone(),
        };
        let outcome = ctx.run(cancel.clone(), &mut builds_run).await;
        report.chunks.extend(outcome.chunks);
        report.builds.extend(outcome.builds);
        report.index_builds.extend(outcome.index_build);
        if outcome.cancelled {
            report.cancelled = true;
            break;
        }
    }
    if report.cancelled {
        report.builds_skipped = Some("the backfill was cancelled".into());
    } else if opts.builds == BuildsMode::After {
        let failed = report
            .chunks
            .iter()
            .filter(|c| {
                !matches!(
                    c.outcome,
                    ChunkOutcome::Committed | ChunkOutcome::AlreadyCommitted
                )
            })
            .count();
        let unbuilt = report
            .index_builds
            .iter()
            .filter(|b| b.result.is_err())
            .count();
        if failed == 0 && unbuilt > 0 {
            report.builds_skipped = Some(format!(
                "{unbuilt} table(s) could not build their indexes after the backfill; run it again"
            ));
        } else if failed > 0 {
            report.builds_skipped = Some(format!(
                "{failed} chunk(s) were not committed; run the backfill again, then the builds \
                 rebuild every changed day once"
            ));
        } else {
            let roots: Vec<usize> = plans.iter().map(|p| p.index).collect();
            match run_builds(&pipeline, &opts, &roots, &mut builds_run, cancel.clone()).await {
                Ok(Some(r)) => report.builds.push(r),
                Ok(None) => {}
                Err(e) => report.builds_skipped = Some(format!("builds could not start: {e}")),
            }
        }
    }
    let status = if report.cancelled {
        "cancelled"
    } else if report.all_ok() {
        "ok"
    } else {
        "failed"
    };
    if let Err(e) = pulso_sinks::state::finish_run(&control, &opts.run_id, status).await {
        tracing::warn!(error = %e, "could not record the end of the backfill");
    }
    report.duration = t0.elapsed();
    Ok(report)
}

/// The builds downstream of `roots`, run once by the executor (each consumes every change the
/// chunks recorded since its cursor). `None` when there are none.
async fn run_builds(
    pipeline: &Arc<Pipeline>,
    opts: &BackfillOptions,
    roots: &[usize],
    counter: &mut usize,
    cancel: watch::Receiver<bool>,
) -> Result<Option<RunReport>, EngineError> {
    let builds: Vec<usize> = pipeline
        .dag
        .downstream_of(roots)
        .into_iter()
        .filter(|&i| matches!(pipeline.nodes[i].kind, NodeKind::Build(_)))
        .collect();
    if builds.is_empty() {
        return Ok(None);
    }
    *counter += 1;
    let run_opts = RunOptions {
        database_url: opts.database_url.clone(),
        only: Some(pipeline.names(&builds)),
        full_refresh: false,
        concurrency: 4,
        wait_for_lock: true,
        run_id: format!("{}-b{:04}", opts.run_id, counter),
    };
    tracing::info!(builds = builds.len(), run_id = %run_opts.run_id, "running dependent builds");
    executor::run(pipeline.clone(), run_opts, Arc::new(Quiet), cancel)
        .await
        .map(Some)
}

/// One table's backfill.
struct TableRun {
    pipeline: Arc<Pipeline>,
    index: usize,
    plan: ChunkPlan,
    opts: Arc<BackfillOptions>,
    control: Arc<Client>,
    observer: Arc<dyn BackfillObserver>,
}

#[derive(Default)]
struct TableOutcome {
    chunks: Vec<ChunkReport>,
    builds: Vec<RunReport>,
    index_build: Option<IndexBuild>,
    cancelled: bool,
}

impl TableRun {
    fn node(&self) -> &Node {
        &self.pipeline.nodes[self.index]
    }

    fn report(&self, row: &ChunkRow, outcome: ChunkOutcome, error: Option<String>) -> ChunkReport {
        ChunkReport {
            node: self.plan.node.clone(),
            seq: usize::try_from(row.seq).unwrap_or(0),
            lo: row.lo,
            hi: row.hi,
            outcome,
            rows_read: u64::try_from(row.rows_read).unwrap_or(0),
            bytes: u64::try_from(row.bytes).unwrap_or(0),
            load: None,
            error,
            lock_conflict: false,
            attempt: row.attempts,
            duration: Duration::ZERO,
        }
    }

    async fn run(&self, mut cancel: watch::Receiver<bool>, builds_run: &mut usize) -> TableOutcome {
        let mut out = TableOutcome::default();
        let target = self.plan.target.clone();
        let (rows, bulk) = match self.start(&target).await {
            Ok(started) => started,
            Err(e) => {
                // Nothing started: every chunk of the plan is reported as not started.
                let lock_conflict =
                    matches!(e, EngineError::Sink(pulso_sinks::SinkError::Locked { .. }));
                let message = format!("table {}: {e}", self.plan.node);
                tracing::error!(node = %self.plan.node, error = %e, "backfill could not start");
                for (seq, (lo, hi)) in self.plan.chunks.iter().enumerate() {
                    let mut r = self.not_started(seq, *lo, *hi, Some(message.clone()));
                    r.outcome = ChunkOutcome::Failed;
                    r.lock_conflict = lock_conflict;
                    self.observer.chunk_finished(&r);
                    out.chunks.push(r);
                }
                return out;
            }
        };
        let done = rows
            .iter()
            .filter(|r| r.status == ChunkStatus::Committed)
            .count();
        self.observer.planned(&self.plan.node, rows.len(), done);
        tracing::info!(node = %self.plan.node, chunks = rows.len(), committed = done, plan = %self.plan.plan, "backfill planned");
        let mut pending = Vec::new();
        for row in rows {
            if row.status == ChunkStatus::Committed {
                let r = self.report(&row, ChunkOutcome::AlreadyCommitted, None);
                self.observer.chunk_finished(&r);
                out.chunks.push(r);
            } else {
                pending.push(row);
            }
        }
        let parallel = self.opts.parallel.max(1);
        let mut queue = pending.into_iter();
        let mut tasks: JoinSet<ChunkReport> = JoinSet::new();
        let mut in_flight: Vec<(usize, IncValue, IncValue)> = Vec::new();
        let mut stop = false;
        let mut first = true;
        let mut cancelled = *cancel.borrow();
        loop {
            // Merging chunks: the first alone and with the lock from the start (direct path
            // into an empty target), then up to `parallel` at a time, locking only for the
            // merge. Bulk chunks: up to `parallel` at a time from the start, each appending
            // concurrently and locking only for its commit.
            let limit = if first && !bulk { 1 } else { parallel };
            while !stop && !cancelled && tasks.len() < limit {
                let Some(row) = queue.next() else { break };
                let lock_after_copy = parallel > 1 && (bulk || !first);
                first = false;
                let seq = usize::try_from(row.seq).unwrap_or(0);
                in_flight.push((seq, row.lo, row.hi));
                let counters = Arc::new(NodeCounters::default());
                self.observer
                    .chunk_started(&self.plan.node, seq, counters.clone());
                let job = ChunkJob {
                    pipeline: self.pipeline.clone(),
                    index: self.index,
                    plan: self.plan.clone(),
                    opts: self.opts.clone(),
                    control: self.control.clone(),
                    row,
                    lock_after_copy,
                    bulk,
                    counters,
                };
                tasks.spawn(job.run());
            }
            if tasks.is_empty() {
                break;
            }
            tokio::select! {
                joined = tasks.join_next() => {
                    let Some(joined) = joined else { continue };
                    let Ok(r) = joined else {
                        tracing::error!("a chunk task panicked");
                        stop = true;
                        continue;
                    };
                    in_flight.retain(|(seq, _, _)| *seq != r.seq);
                    if r.outcome != ChunkOutcome::Committed {
                        stop = true;
                    }
                    self.observer.chunk_finished(&r);
                    let committed = r.outcome == ChunkOutcome::Committed;
                    out.chunks.push(r);
                    if committed && self.opts.builds == BuildsMode::PerChunk {
                        match run_builds(&self.pipeline, &self.opts, &[self.index], builds_run, cancel.clone()).await {
                            Ok(Some(b)) => out.builds.push(b),
                            Ok(None) => {}
                            Err(e) => tracing::error!(error = %e, "dependent builds could not start"),
                        }
                    }
                }
                changed = cancel.changed(), if !cancelled => {
                    if changed.is_err() || *cancel.borrow() {
                        cancelled = true;
                        tracing::warn!(node = %self.plan.node, "cancelling: rolling back the chunks in flight");
                        tasks.abort_all();
                        while let Some(joined) = tasks.join_next().await {
                            if let Ok(r) = joined {
                                in_flight.retain(|(seq, _, _)| *seq != r.seq);
                                self.observer.chunk_finished(&r);
                                out.chunks.push(r);
                            }
                        }
                        for (seq, lo, hi) in in_flight.drain(..) {
                            let message = "cancelled: rolled back".to_string();
                            let load_run_id = format!("{}-c{seq:04}", self.opts.run_id);
                            if let Err(e) = pulso_sinks::state::finish_run(&self.control, &load_run_id, "cancelled").await {
                                tracing::warn!(error = %e, "could not record the cancelled chunk's run");
                            }
                            if let Err(e) = chunks::mark_failed(&self.control, &self.plan.node, &lo, &hi, &message).await {
                                tracing::warn!(error = %e, "could not record the cancelled chunk");
                            }
                            let mut r = self.not_started(seq, lo, hi, Some(message));
                            r.outcome = ChunkOutcome::Cancelled;
                            self.observer.chunk_finished(&r);
                            out.chunks.push(r);
                        }
                    }
                }
            }
        }
        for row in queue {
            let why = if cancelled {
                "not started: the backfill was cancelled"
            } else {
                "not started: an earlier chunk failed; run the backfill again to resume"
            };
            let r = self.report(&row, ChunkOutcome::NotStarted, Some(why.into()));
            self.observer.chunk_finished(&r);
            out.chunks.push(r);
        }
        out.chunks.sort_by_key(|c| c.seq);
        out.cancelled = cancelled;
        let all_committed = out.chunks.iter().all(|c| {
            matches!(
                c.outcome,
                ChunkOutcome::Committed | ChunkOutcome::AlreadyCommitted
            )
        });
        if bulk && !cancelled && all_committed {
            out.index_build = Some(self.build_indexes().await);
        }
        if let Err(e) = pulso_sinks::lock::unlock_backfill(&self.control, &target).await {
            tracing::warn!(error = %e, "could not release the backfill lock");
        }
        out
    }

    /// Take the table's backfill lock, register the plan, and put an empty target in bulk mode
    /// (or find it there after an interrupted backfill). Returns the chunks and whether they
    /// append ([`pulso_sinks::bulk`]). Bulk mode is not started with `--builds per-chunk` (the
    /// builds would read keys delivered twice before the final dedup) nor for a table with a
    /// `unique` check (each chunk's checks run before that dedup).
    async fn start(&self, target: &str) -> Result<(Vec<ChunkRow>, bool), EngineError> {
        pulso_sinks::lock::lock_backfill(&self.control, target, self.opts.wait_for_lock).await?;
        let rows = chunks::register(&self.control, &self.plan).await?;
        let NodeKind::Table(table) = &self.node().kind else {
            return Ok((rows, false));
        };
        let pending = rows.iter().any(|r| r.status != ChunkStatus::Committed);
        let unique_check = table
            .checks
            .iter()
            .any(|c| matches!(c.kind, pulso_sinks::checks::CheckKind::Unique { .. }));
        let start = pending && self.opts.builds != BuildsMode::PerChunk && !unique_check;
        let request = load_request(&self.pipeline, self.node(), table, &self.opts.run_id);
        let bulk = pulso_sinks::bulk::begin(&self.opts.database_url, &request, start).await?;
        Ok((rows, bulk))
    }

    /// The end of a bulk backfill: the indexes built once, as a run of its own in the ledger.
    async fn build_indexes(&self) -> IndexBuild {
        let node = self.node();
        let run_id = format!("{}-ix", self.opts.run_id);
        let result = async {
            let NodeKind::Table(table) = &node.kind else {
                return Err(usage(format!("{} is not a table", node.name)));
            };
            let args =
                serde_json::json!({ "backfill": self.opts.run_id, "index_build": node.name });
            pulso_sinks::state::start_run(&self.control, &run_id, &self.pipeline.name, &args)
                .await?;
            let request = load_request(&self.pipeline, node, table, &run_id);
            Ok(pulso_sinks::bulk::finish(&self.opts.database_url, &request).await?)
        }
        .await;
        let status = if result.is_ok() { "ok" } else { "failed" };
        if let Err(e) = pulso_sinks::state::finish_run(&self.control, &run_id, status).await {
            tracing::warn!(error = %e, "could not record the end of the index build");
        }
        let result = match result {
            Ok(Some(done)) => Ok(done),
            Ok(None) => Err(format!(
                "table {}: the target was no longer in bulk mode (its indexes were built by \
                 another load)",
                node.name
            )),
            Err(e) => Err(format!("table {}: building the indexes: {e}", node.name)),
        };
        if let Err(e) = &result {
            tracing::error!(node = %node.name, "{e}");
        }
        IndexBuild {
            node: node.name.clone(),
            result,
        }
    }

    fn not_started(
        &self,
        seq: usize,
        lo: IncValue,
        hi: IncValue,
        error: Option<String>,
    ) -> ChunkReport {
        ChunkReport {
            node: self.node().name.clone(),
            seq,
            lo,
            hi,
            outcome: ChunkOutcome::NotStarted,
            rows_read: 0,
            bytes: 0,
            load: None,
            error,
            lock_conflict: false,
            attempt: 0,
            duration: Duration::ZERO,
        }
    }
}

/// One chunk's load, as a task of its own.
struct ChunkJob {
    pipeline: Arc<Pipeline>,
    index: usize,
    plan: ChunkPlan,
    opts: Arc<BackfillOptions>,
    control: Arc<Client>,
    row: ChunkRow,
    lock_after_copy: bool,
    /// The target is in bulk mode: the chunk appends ([`pulso_sinks::bulk`]).
    bulk: bool,
    counters: Arc<NodeCounters>,
}

impl ChunkJob {
    async fn run(self) -> ChunkReport {
        let t0 = Instant::now();
        let seq = usize::try_from(self.row.seq).unwrap_or(0);
        let load_run_id = format!("{}-c{seq:04}", self.opts.run_id);
        let node = &self.pipeline.nodes[self.index];
        let mut report = ChunkReport {
            node: node.name.clone(),
            seq,
            lo: self.row.lo,
            hi: self.row.hi,
            outcome: ChunkOutcome::Committed,
            rows_read: 0,
            bytes: 0,
            load: None,
            error: None,
            lock_conflict: false,
            attempt: 0,
            duration: Duration::ZERO,
        };
        tracing::info!(node = %node.name, chunk = seq, lo = %self.row.lo, hi = %self.row.hi, "chunk started");
        let started_at = chrono::Utc::now();
        let result = async {
            // The chunk is a run of its own in the ledger (`runs`, `node_runs`, `changes`).
            let args = serde_json::json!({
                "backfill": self.opts.run_id, "chunk": seq,
                "lo": self.row.lo.to_iso(), "hi": self.row.hi.to_iso(),
            });
            pulso_sinks::state::start_run(&self.control, &load_run_id, &self.pipeline.name, &args)
                .await?;
            report.attempt = chunks::mark_running(
                &self.control,
                &node.name,
                &self.row.lo,
                &self.row.hi,
                &self.opts.run_id,
                &load_run_id,
            )
            .await?;
            self.load(node, &load_run_id).await
        }
        .await;
        report.duration = t0.elapsed();
        report.rows_read = self.counters.rows_read.load(Ordering::Relaxed);
        report.bytes = self.counters.load.bytes_sent.load(Ordering::Relaxed);
        match result {
            Ok(outcome) => {
                tracing::info!(
                    node = %node.name, chunk = seq, lo = %self.row.lo, hi = %self.row.hi,
                    rows_read = report.rows_read, inserted = outcome.inserted, updated = outcome.updated,
                    watermark = ?outcome.watermark_after.map(|w| w.to_iso()),
                    ms = report.duration.as_millis() as u64, "chunk committed"
                );
                report.load = Some(outcome);
                self.finish_run(&load_run_id, "ok").await;
            }
            Err(e) => {
                let message = format!(
                    "table {} chunk {seq} [{}, {}): {e}",
                    node.name, self.row.lo, self.row.hi
                );
                tracing::error!(node = %node.name, chunk = seq, error = %e, "chunk failed");
                report.outcome = ChunkOutcome::Failed;
                report.error = Some(message.clone());
                if let Err(e) = chunks::mark_failed(
                    &self.control,
                    &node.name,
                    &self.row.lo,
                    &self.row.hi,
                    &message,
                )
                .await
                {
                    tracing::warn!(error = %e, "could not record the failed chunk");
                }
                let ledger = NodeRun {
                    run_id: load_run_id.clone(),
                    node: node.name.clone(),
                    kind: "table",
                    target: Some(self.plan.target.clone()),
                    mode: Some(RunMode::Incremental),
                    window_lower: Some(self.row.lo.to_iso()),
                    window_upper: Some(self.row.hi.to_iso()),
                    rows_read: i64::try_from(report.rows_read).unwrap_or(i64::MAX),
                    started_at: Some(started_at),
                    duration_ms: i64::try_from(report.duration.as_millis()).unwrap_or(i64::MAX),
                    status: "failed",
                    error: Some(message),
                    ..NodeRun::default()
                };
                if let Err(e) =
                    pulso_sinks::state::record_node_run(self.control.as_ref(), &ledger).await
                {
                    tracing::warn!(error = %e, "could not record the failed chunk's run");
                }
                self.finish_run(&load_run_id, "failed").await;
            }
        }
        report
    }

    async fn finish_run(&self, load_run_id: &str, status: &str) {
        if let Err(e) = pulso_sinks::state::finish_run(&self.control, load_run_id, status).await {
            tracing::warn!(error = %e, "could not record the end of the chunk's run");
        }
    }

    /// source → transform → one load transaction over the chunk's window.
    async fn load(&self, node: &Node, load_run_id: &str) -> Result<LoadOutcome, EngineError> {
        let NodeKind::Table(table) = &node.kind else {
            return Err(usage(format!("{} is not a table", node.name)));
        };
        let request = load_request(&self.pipeline, node, table, load_run_id);
        let commit = ChunkCommit {
            node: node.name.clone(),
            plan: self.plan.plan.clone(),
            lo: self.row.lo,
            hi: self.row.hi,
            run_id: self.opts.run_id.clone(),
            bulk: self.bulk,
        };
        let mut open = load::open_chunk(
            &self.opts.database_url,
            request,
            commit,
            self.lock_after_copy,
        )
        .await?;
        let window = Window {
            column: self.plan.column.clone(),
            ty: self.plan.ty,
            lower: Some(self.row.lo),
            upper: Some(self.row.hi),
        };
        open.set_window(&window.column, window.lower, window.upper);
        let transformed =
            crate::read::read_table(&self.pipeline, table, Some(&window), &self.counters).await?;
        let ledger = NodeRun {
            window_lower: Some(self.row.lo.to_iso()),
            window_upper: Some(self.row.hi.to_iso()),
            ..NodeRun::default()
        };
        let rows_read = self.counters.clone();
        Ok(open
            .load(transformed, ledger, self.counters.load.clone(), move || {
                rows_read.rows_read.load(Ordering::Relaxed)
            })
            .await?)
    }
}

/// The load of a table by a backfill (a chunk, the bulk mode's start and end).
fn load_request(pipeline: &Pipeline, node: &Node, table: &TableNode, run_id: &str) -> LoadRequest {
    let mut shape = table.shape.clone();
    // Chunks may merge out of order (in parallel, or a retried chunk after later ones): a key
    // delivered in two chunks keeps the later delivery whatever the order.
    shape.keep_newer = true;
    LoadRequest {
        node: node.name.clone(),
        shape,
        // A chunk upserts its window; it never deletes keys outside it.
        mode: RunMode::Incremental,
        // Only this backfill's own chunks compete for the target (it holds the backfill lock).
        wait_for_lock: true,
        create_target: table.create_target,
        time_zone: pipeline.time_zone,
        run_id: run_id.to_string(),
        // A chunk passes the same gates as a scheduled load, reconciled over its own window.
        checks: table.checks.clone(),
        reconcile: table.reconcile.clone(),
    }
}

/// One chunk of `--dry-run`: its window and its source's explanation (for BigQuery the SQL with
/// its parameters, the dry run's bytes and cost, the maximum-bytes-billed verdict).
#[derive(Debug, Clone)]
pub struct ChunkExplain {
    pub node: String,
    pub seq: usize,
    pub lo: IncValue,
    pub hi: IncValue,
    pub lines: Vec<(String, String)>,
    /// Bytes the dry run says the chunk's query processes, when it answered.
    pub bytes: Option<u64>,
    /// Its estimated cost in USD, when it answered.
    pub cost_usd: Option<f64>,
}

/// `--dry-run`: every chunk's source explanation, without loading anything.
pub async fn dry_run(pipeline: &Pipeline, plans: &[TablePlan]) -> Vec<ChunkExplain> {
    let mut out = Vec::new();
    for p in plans {
        let NodeKind::Table(table) = &pipeline.nodes[p.index].kind else {
            continue;
        };
        for (seq, (lo, hi)) in p.plan.chunks.iter().enumerate() {
            let ctx = SourceContext {
                batch_size: table.batch_size,
                base_dir: pipeline.base_dir.clone(),
                window: Some(Window {
                    column: p.plan.column.clone(),
                    ty: p.plan.ty,
                    lower: Some(*lo),
                    upper: Some(*hi),
                }),
                bigquery: pipeline.bigquery.clone(),
            };
            let lines = table.source.explain(&ctx).await;
            let dry = lines
                .iter()
                .find(|(label, _)| label == "dry run")
                .map(|(_, v)| v.as_str());
            out.push(ChunkExplain {
                node: p.plan.node.clone(),
                seq,
                lo: *lo,
                hi: *hi,
                bytes: dry.and_then(dry_run_bytes),
                cost_usd: dry.and_then(dry_run_cost),
                lines,
            });
        }
    }
    out
}

/// The byte count of a dry-run line: `… processed (<n> bytes) …`.
fn dry_run_bytes(line: &str) -> Option<u64> {
    let open = line.find(" processed (")? + " processed (".len();
    let rest = &line[open..];
    rest[..rest.find(" bytes)")?].parse().ok()
}

/// The cost of a dry-run line: `… cost $<x> at …`.
fn dry_run_cost(line: &str) -> Option<f64> {
    let start = line.find("cost $")? + "cost $".len();
    let rest = &line[start..];
    rest[..rest.find(' ').unwrap_or(rest.len())].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(from: &str, to: &str, chunk: chrono::Duration) -> PlanOptions {
        PlanOptions {
            tables: vec!["t".into()],
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
            chunk,
        }
    }

    #[test]
    fn boundaries_cover_the_range_and_the_last_chunk_is_cut_at_to() {
        let lima = chrono_tz::America::Lima;
        let o = opts("2025-06-02", "2025-06-14", chrono::Duration::days(5));
        let b = boundaries(&o, IncType::Date, lima).unwrap();
        let text: Vec<String> = b.iter().map(IncValue::to_iso).collect();
        assert_eq!(
            text,
            ["2025-06-02", "2025-06-07", "2025-06-12", "2025-06-14"]
        );
        // Instants at midnight in Lima (UTC-5).
        let b = boundaries(&o, IncType::Timestamp, lima).unwrap();
        assert_eq!(b[0].to_iso(), "2025-06-02T05:00:00.000000Z");
        assert_eq!(b[3].to_iso(), "2025-06-14T05:00:00.000000Z");
        let b = boundaries(&o, IncType::Datetime, lima).unwrap();
        assert_eq!(b[1].to_iso(), "2025-06-07T00:00:00.000000");
    }

    #[test]
    fn dry_run_lines_are_read() {
        let line = "1.50 KiB processed (1536 bytes) (emulator); estimated on-demand query cost \
                    $0.0000 at $6.25/TiB";
        assert_eq!(dry_run_bytes(line), Some(1536));
        assert_eq!(dry_run_cost(line), Some(0.0));
        assert_eq!(dry_run_bytes("could not reach BigQuery: x"), None);
    }
}
