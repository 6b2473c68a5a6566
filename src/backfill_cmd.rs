//! `pulso-flow backfill`: chunked, resumable loads of a range of history, `--dry-run`, and
//! `backfill status` (the chunk ledger per table).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};
use pulso_engine::backfill::{
    self, BackfillObserver, BackfillOptions, BackfillReport, BuildsMode, ChunkOutcome, PlanOptions,
};
use pulso_engine::run_id::{Starter, new_run_id};
use pulso_sinks::chunks::{self, ChunkRow, ChunkStatus};
use serde_json::json;

use crate::backfill_progress::BackfillProgress;
use crate::cli::{
    EXIT_FAILED, EXIT_LOCKED, StopSignal, StopSignals, SummaryFormat, database_url, pipeline,
    state_client, usage,
};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackfillArgs {
    #[command(subcommand)]
    pub action: Option<BackfillAction>,
    #[arg(default_value = "pipelines.yaml")]
    pub file: PathBuf,
    /// The tables to backfill (comma-separated); their dependent builds follow.
    #[arg(long, value_delimiter = ',', required = true)]
    pub tables: Vec<String>,
    /// First day of the range (inclusive), on the pipeline's wall clock: YYYY-MM-DD.
    #[arg(long, required = true)]
    pub from: Option<NaiveDate>,
    /// End of the range (exclusive): YYYY-MM-DD.
    #[arg(long, required = true)]
    pub to: Option<NaiveDate>,
    /// Length of a chunk: 7d, 12h, 2w (whole days on a date column).
    #[arg(long, default_value = "7d")]
    pub chunk: String,
    /// Chunks loaded at the same time: reads run concurrently, merges one at a time.
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    pub parallel: usize,
    /// Print the chunks and each chunk's query, parameters, bytes and cost; load nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// When dependent builds run: once after the backfill, after every chunk, or never.
    #[arg(long, value_enum, default_value_t = BuildsArg::After)]
    pub builds: BuildsArg,
    /// Fail at once if another run or backfill holds a table, instead of waiting.
    #[arg(long)]
    pub no_wait: bool,
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub summary: SummaryFormat,
}

#[derive(Subcommand, Debug)]
pub enum BackfillAction {
    /// The chunk ledger: per table and plan, chunks done / failed / running / pending, rows, ETA.
    Status {
        /// Only these tables.
        #[arg(long, value_delimiter = ',')]
        tables: Option<Vec<String>>,
        #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
        format: SummaryFormat,
    },
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum BuildsArg {
    After,
    PerChunk,
    None,
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}; expected a whole number of at least 1")),
    }
}

pub async fn backfill(args: BackfillArgs, cli_url: Option<String>) -> Result<ExitCode> {
    if let Some(BackfillAction::Status { tables, format }) = args.action {
        return status(cli_url, tables, format).await;
    }
    let p = Arc::new(pipeline(&args.file)?);
    let (Some(from), Some(to)) = (args.from, args.to) else {
        return Err(usage("backfill needs --from and --to".into()));
    };
    let chunk = pulso_engine::duration::parse_duration(&args.chunk)
        .map_err(|e| usage(format!("--chunk: {e}")))?;
    let plan_opts = PlanOptions {
        tables: args.tables.clone(),
        from,
        to,
        chunk,
    };
    if args.dry_run {
        let plans = backfill::plan(&p, &plan_opts)?;
        let explained = backfill::dry_run(&p, &plans).await;
        print!("{}", dry_run_text(&explained));
        return Ok(ExitCode::SUCCESS);
    }
    let url = database_url(cli_url, Some(&p))?;
    let opts = BackfillOptions {
        database_url: url,
        plan: plan_opts,
        parallel: args.parallel,
        wait_for_lock: !args.no_wait,
        builds: match args.builds {
            BuildsArg::After => BuildsMode::After,
            BuildsArg::PerChunk => BuildsMode::PerChunk,
            BuildsArg::None => BuildsMode::None,
        },
        run_id: new_run_id(Starter::Cli),
    };
    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    let stopped_by = Arc::new(std::sync::Mutex::new(None::<StopSignal>));
    let signals = StopSignals::new()?;
    tokio::spawn(signals.cancel_on_signal(stopped_by.clone(), cancel_tx));
    let progress = Arc::new(BackfillProgress::new(std::io::stderr().is_terminal()));
    let observer: Arc<dyn BackfillObserver> = progress.clone();
    let report = backfill::run(p, opts, observer, cancel_rx).await?;
    progress.finish();
    let stopped_by = stopped_by.lock().ok().and_then(|s| *s);
    match args.summary {
        SummaryFormat::Table => {
            eprint!("{}", summary_table(&report));
            if let Some(signal) = stopped_by {
                eprintln!(
                    "interrupted by {}: the chunks in flight were rolled back; run the same \
                     command again to resume",
                    signal.name()
                );
            }
        }
        SummaryFormat::Json => {
            let mut j = summary_json(&report);
            j["interrupted_by"] = json!(stopped_by.map(StopSignal::name));
            println!("{}", serde_json::to_string_pretty(&j)?);
        }
    }
    if let Some(signal) = stopped_by {
        return Ok(ExitCode::from(signal.exit_code()));
    }
    if report.all_ok() {
        return Ok(ExitCode::SUCCESS);
    }
    let bad: Vec<_> = report
        .chunks
        .iter()
        .filter(|c| c.outcome == ChunkOutcome::Failed)
        .collect();
    if !bad.is_empty() && bad.iter().all(|c| c.lock_conflict) {
        Ok(ExitCode::from(EXIT_LOCKED))
    } else {
        Ok(ExitCode::from(EXIT_FAILED))
    }
}

fn summary_table(r: &BackfillReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<22} {:>5} {:<28} {:<28} {:<11} {:>10} {:>10} {:>9} {:>8}",
        "TABLE", "CHUNK", "FROM", "TO", "STATUS", "READ", "INSERTED", "UPDATED", "SECONDS"
    );
    for c in &r.chunks {
        let l = c.load.as_ref();
        let num = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:<22} {:>5} {:<28} {:<28} {:<11} {:>10} {:>10} {:>9} {:>8.2}",
            c.node,
            c.seq,
            c.lo.to_iso(),
            c.hi.to_iso(),
            c.outcome.as_str(),
            c.rows_read,
            num(l.map(|l| l.inserted)),
            num(l.map(|l| l.updated)),
            c.duration.as_secs_f64()
        );
    }
    for c in r
        .chunks
        .iter()
        .filter(|c| matches!(c.outcome, ChunkOutcome::Failed | ChunkOutcome::Cancelled))
    {
        if let Some(e) = &c.error {
            let _ = writeln!(out, "\n{} {e}", c.outcome.as_str());
        }
    }
    for b in &r.index_builds {
        let _ = match &b.result {
            Ok(f) => writeln!(
                out,
                "\n{}: {} index(es) built after the last chunk in {:.2}s; {} row(s) delivered again \
                 by a later chunk removed",
                b.node,
                f.indexes,
                f.duration.as_secs_f64(),
                f.duplicates
            ),
            Err(e) => writeln!(out, "\nindex build failed: {e}"),
        };
    }
    for b in &r.builds {
        let _ = write!(out, "{}", crate::summary::table(b));
    }
    if let Some(why) = &r.builds_skipped {
        let _ = writeln!(out, "\nbuilds not run: {why}");
    }
    let count = |o: ChunkOutcome| r.chunks.iter().filter(|c| c.outcome == o).count();
    let read: u64 = r.chunks.iter().map(|c| c.rows_read).sum();
    let _ = writeln!(
        out,
        "\nbackfill {}: {} committed, {} already committed, {} failed, {} cancelled, {} not started; \
         {read} rows read; {:.2}s",
        r.run_id,
        count(ChunkOutcome::Committed),
        count(ChunkOutcome::AlreadyCommitted),
        count(ChunkOutcome::Failed),
        count(ChunkOutcome::Cancelled),
        count(ChunkOutcome::NotStarted),
        r.duration.as_secs_f64()
    );
    out
}

fn summary_json(r: &BackfillReport) -> serde_json::Value {
    json!({
        "run_id": r.run_id,
        "ok": r.all_ok(),
        "cancelled": r.cancelled,
        "duration_s": r.duration.as_secs_f64(),
        "chunks": r.chunks.iter().map(|c| {
            let l = c.load.as_ref();
            json!({
                "table": c.node,
                "chunk": c.seq,
                "lo": c.lo.to_iso(),
                "hi": c.hi.to_iso(),
                "status": c.outcome.as_str(),
                "attempt": c.attempt,
                "rows_read": c.rows_read,
                "bytes": c.bytes,
                "rows_staged": l.map(|l| l.rows_staged),
                "inserted": l.map(|l| l.inserted),
                "updated": l.map(|l| l.updated),
                "unchanged": l.map(|l| l.unchanged),
                "watermark_after": l.and_then(|l| l.watermark_after.map(|w| w.to_iso())),
                "error": c.error,
                "duration_s": c.duration.as_secs_f64(),
            })
        }).collect::<Vec<_>>(),
        "index_builds": r.index_builds.iter().map(|b| match &b.result {
            Ok(f) => json!({
                "table": b.node, "ok": true, "indexes": f.indexes, "duplicates": f.duplicates,
                "duration_s": f.duration.as_secs_f64(), "data_version": f.data_version,
            }),
            Err(e) => json!({ "table": b.node, "ok": false, "error": e }),
        }).collect::<Vec<_>>(),
        "builds": r.builds.iter().map(crate::summary::json).collect::<Vec<_>>(),
        "builds_skipped": r.builds_skipped,
    })
}

fn dry_run_text(chunks: &[backfill::ChunkExplain]) -> String {
    let mut out = String::new();
    let mut total_bytes = 0u64;
    let mut total_cost = 0f64;
    let mut answered = 0usize;
    for c in chunks {
        let _ = writeln!(
            out,
            "{} chunk {}: [{}, {})",
            c.node,
            c.seq,
            c.lo.to_iso(),
            c.hi.to_iso()
        );
        if c.lines.is_empty() {
            let _ = writeln!(
                out,
                "  source: not BigQuery; the window is applied while reading"
            );
        }
        for (label, value) in &c.lines {
            let mut lines = value.lines();
            let _ = writeln!(out, "  {label}: {}", lines.next().unwrap_or(""));
            for more in lines {
                let _ = writeln!(out, "    {more}");
            }
        }
        if let Some(b) = c.bytes {
            total_bytes += b;
            answered += 1;
        }
        total_cost += c.cost_usd.unwrap_or(0.0);
    }
    let _ = writeln!(
        out,
        "\n{} chunks; dry run answered for {answered}: {total_bytes} bytes processed in total, \
         estimated cost ${total_cost:.4}",
        chunks.len()
    );
    out
}

async fn status(
    cli_url: Option<String>,
    tables: Option<Vec<String>>,
    format: SummaryFormat,
) -> Result<ExitCode> {
    let client = state_client(database_url(cli_url, None)?).await?;
    let rows = chunks::list(&client, None).await?;
    let rows: Vec<ChunkRow> = rows
        .into_iter()
        .filter(|r| tables.as_ref().is_none_or(|t| t.contains(&r.node)))
        .collect();
    let groups = group(&rows);
    match format {
        SummaryFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&status_json(&groups))?);
        }
        SummaryFormat::Table => print!("{}", status_text(&groups)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The chunks of one table's plan, counted.
struct PlanStatus<'a> {
    node: &'a str,
    plan: &'a str,
    chunks: Vec<&'a ChunkRow>,
}

impl PlanStatus<'_> {
    fn count(&self, s: ChunkStatus) -> usize {
        self.chunks.iter().filter(|c| c.status == s).count()
    }

    fn rows(&self) -> i64 {
        self.chunks.iter().map(|c| c.rows_loaded).sum()
    }

    /// Seconds left: the mean duration of committed chunks times the chunks not committed.
    fn eta_s(&self) -> Option<f64> {
        let done: Vec<i64> = self
            .chunks
            .iter()
            .filter(|c| c.status == ChunkStatus::Committed)
            .filter_map(|c| c.duration_ms)
            .collect();
        if done.is_empty() {
            return None;
        }
        let mean = done.iter().sum::<i64>() as f64 / done.len() as f64 / 1000.0;
        Some(mean * (self.chunks.len() - self.count(ChunkStatus::Committed)) as f64)
    }
}

fn group(rows: &[ChunkRow]) -> Vec<PlanStatus<'_>> {
    let mut map: BTreeMap<(&str, &str), Vec<&ChunkRow>> = BTreeMap::new();
    for r in rows {
        map.entry((&r.node, &r.plan)).or_default().push(r);
    }
    map.into_iter()
        .map(|((node, plan), chunks)| PlanStatus { node, plan, chunks })
        .collect()
}

fn status_text(groups: &[PlanStatus<'_>]) -> String {
    let mut out = String::new();
    if groups.is_empty() {
        let _ = writeln!(out, "no backfill chunks in the ledger");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<22} {:<34} {:>6} {:>6} {:>7} {:>7} {:>7} {:>12} {:>9}",
        "TABLE", "PLAN", "CHUNKS", "DONE", "FAILED", "RUNNING", "PENDING", "ROWS", "ETA"
    );
    for g in groups {
        let eta = match g.eta_s() {
            Some(s) if g.count(ChunkStatus::Committed) < g.chunks.len() => format!("{s:.0}s"),
            Some(_) => "done".into(),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:<22} {:<34} {:>6} {:>6} {:>7} {:>7} {:>7} {:>12} {:>9}",
            g.node,
            g.plan,
            g.chunks.len(),
            g.count(ChunkStatus::Committed),
            g.count(ChunkStatus::Failed),
            g.count(ChunkStatus::Running),
            g.count(ChunkStatus::Pending),
            g.rows(),
            eta
        );
    }
    for g in groups {
        for c in g.chunks.iter().filter(|c| c.status == ChunkStatus::Failed) {
            let _ = writeln!(
                out,
                "\nfailed {} chunk {} (attempt {}): {}",
                c.node,
                c.seq,
                c.attempts,
                c.error.as_deref().unwrap_or("-")
            );
        }
    }
    out
}

fn status_json(groups: &[PlanStatus<'_>]) -> serde_json::Value {
    json!(
        groups
            .iter()
            .map(|g| json!({
                "table": g.node,
                "plan": g.plan,
                "chunks": g.chunks.len(),
                "committed": g.count(ChunkStatus::Committed),
                "failed": g.count(ChunkStatus::Failed),
                "running": g.count(ChunkStatus::Running),
                "pending": g.count(ChunkStatus::Pending),
                "rows": g.rows(),
                "eta_s": g.eta_s(),
                "chunk_list": g.chunks.iter().map(|c| json!({
                    "chunk": c.seq, "lo": c.lo.to_iso(), "hi": c.hi.to_iso(),
                    "status": c.status.as_str(), "rows_loaded": c.rows_loaded,
                    "bytes": c.bytes, "attempts": c.attempts, "max_loaded": c.max_loaded,
                    "run_id": c.run_id, "error": c.error, "duration_ms": c.duration_ms,
                })).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>()
    )
}
