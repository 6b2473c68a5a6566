//! `pulso-flow reconcile [FILE] [--tables t,…] [--from D --to D] [--repair]`: per-day count and
//! sums of source and target (see `pulso_engine::reconcile`), printed for people or as JSON.
//!
//! Exit codes: 0 every day matches (or every differing day was repaired and rebuilt); 1 a day
//! differs (without `--repair`) or a table or rebuild failed; 2 bad usage.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use chrono::NaiveDate;
use pulso_engine::executor::{Quiet, RunObserver};
use pulso_engine::reconcile::{
    Method, ReconcileOptions, ReconcileRun, SourceQuery, reconcile as run_reconcile,
};
use pulso_engine::run_id::{Starter, new_run_id};
use serde_json::json;

use crate::cli::{EXIT_FAILED, SummaryFormat, database_url, pipeline};

#[derive(clap::Args, Debug)]
pub struct ReconcileArgs {
    #[arg(default_value = "pipelines.yaml")]
    file: PathBuf,
    /// Only these tables (comma-separated; each must declare `reconcile:`).
    #[arg(long, value_delimiter = ',')]
    tables: Option<Vec<String>>,
    /// First day compared (YYYY-MM-DD, inclusive).
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last day compared (YYYY-MM-DD, inclusive).
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Reload the differing days from the source (one transaction per table) and rebuild the
    /// builds that depend on them.
    #[arg(long)]
    repair: bool,
    /// Show each BigQuery table's aggregate query, its parameters and its dry-run bytes and
    /// cost, and stop: nothing is queried, compared or repaired.
    #[arg(long, conflicts_with = "repair")]
    dry_run: bool,
    /// Fail a table at once if another run holds its lock, instead of waiting.
    #[arg(long)]
    no_wait: bool,
    /// Print the result as a table (default) or as JSON on stdout.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    summary: SummaryFormat,
}

pub async fn reconcile(args: ReconcileArgs, cli_url: Option<String>) -> Result<ExitCode> {
    let pipeline = Arc::new(pipeline(&args.file)?);
    let url = database_url(cli_url, Some(&pipeline))?;
    let opts = ReconcileOptions {
        database_url: url,
        tables: args.tables,
        from: args.from,
        to: args.to,
        repair: args.repair,
        dry_run: args.dry_run,
        wait_for_lock: !args.no_wait,
        run_id: new_run_id(Starter::Cli),
    };
    // Interrupting drops the open transactions: nothing half-repaired is committed.
    let (_keep, cancel) = tokio::sync::watch::channel(false);
    // In table form the aggregate queries are shown as they are planned, before they run.
    let observer: Arc<dyn RunObserver> = match args.summary {
        SummaryFormat::Table => Arc::new(ShowQueries),
        SummaryFormat::Json => Arc::new(Quiet),
    };
    let run = run_reconcile(pipeline, opts, observer, cancel).await?;
    match args.summary {
        SummaryFormat::Table => print!("{}", text(&run)),
        SummaryFormat::Json => println!("{}", serde_json::to_string_pretty(&to_json(&run))?),
    }
    Ok(if run.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// Prints a table's BigQuery aggregate query with its dry-run bytes as soon as it is planned.
struct ShowQueries;

impl RunObserver for ShowQueries {
    fn reconcile_query(&self, node: &str, query: &SourceQuery) {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(query_text(node, query).as_bytes());
        let _ = out.flush();
    }
}

fn query_text(node: &str, q: &SourceQuery) -> String {
    let mut out = format!(
        "{node}: BigQuery aggregate query, dry run: {} bytes processed{}, estimated cost ${:.4}{}\n",
        q.bytes_processed,
        if q.emulator { " (emulator)" } else { "" },
        q.estimated_cost_usd,
        q.maximum_bytes_billed
            .map(|m| format!(", maximum_bytes_billed {m}"))
            .unwrap_or_default()
    );
    for line in q.sql.lines() {
        let _ = writeln!(out, "  | {line}");
    }
    for p in &q.params {
        let _ = writeln!(out, "  {p}");
    }
    out
}

fn text(run: &ReconcileRun) -> String {
    let mut out = String::new();
    for t in &run.tables {
        if let Some(e) = &t.error {
            let _ = writeln!(out, "{}: failed: {e}", t.name);
            continue;
        }
        let Some(r) = &t.report else {
            if t.method == Method::StagedSource {
                let _ = writeln!(
                    out,
                    "{}: dry run: the whole source would be read, staged and compared in PostgreSQL",
                    t.name
                );
            }
            continue;
        };
        let _ = writeln!(
            out,
            "{}: {} day(s) compared by {}, {} source rows (deduplicated) vs {} target rows: {}",
            t.name,
            r.days,
            r.by,
            r.source_rows,
            r.target_rows,
            if r.matches() {
                "clean".to_string()
            } else {
                format!("{} day(s) differ", r.mismatches.len())
            }
        );
        if !r.matches() {
            let mut header = format!(
                "  {:<12} {:>12} {:>12}",
                "DAY", "SOURCE ROWS", "TARGET ROWS"
            );
            for c in &r.sum {
                let _ = write!(
                    header,
                    " {:>20} {:>20}",
                    format!("SOURCE {c}"),
                    format!("TARGET {c}")
                );
            }
            let _ = writeln!(out, "{header}");
            for d in &r.mismatches {
                let mut line = format!(
                    "  {:<12} {:>12} {:>12}",
                    d.day.as_deref().unwrap_or("NULL"),
                    d.source_rows,
                    d.target_rows
                );
                for i in 0..r.sum.len() {
                    let cell = |v: Option<&Option<String>>| {
                        v.and_then(Clone::clone).unwrap_or_else(|| "NULL".into())
                    };
                    let _ = write!(
                        line,
                        " {:>20} {:>20}",
                        cell(d.source_sums.get(i)),
                        cell(d.target_sums.get(i))
                    );
                }
                let _ = writeln!(out, "{line}");
            }
        }
        if let Some(rep) = &t.repair {
            let _ = writeln!(
                out,
                "  repaired {} day(s): {} target rows deleted, {} source rows written (data version {})",
                r.mismatches.len(),
                rep.repaired.deleted,
                rep.repaired.inserted,
                rep.data_version
            );
            for w in &rep.gates.warnings {
                let _ = writeln!(out, "  warning: {w}");
            }
        }
    }
    if let Some(b) = &run.builds {
        for n in &b.nodes {
            let _ = writeln!(
                out,
                "rebuilt {}: {}{}",
                n.name,
                n.status.as_str(),
                n.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
    }
    out
}

fn to_json(run: &ReconcileRun) -> serde_json::Value {
    json!({
        "run_id": run.run_id,
        "clean": run.clean(),
        "tables": run.tables.iter().map(|t| json!({
            "name": t.name,
            "method": t.method,
            "rows_read": t.rows_read,
            "source_query": t.source_query,
            "error": t.error,
            "reconcile": t.report,
            "repair": t.repair.as_ref().map(|r| json!({
                "deleted": r.repaired.deleted,
                "inserted": r.repaired.inserted,
                "data_version": r.data_version,
                "checks": r.gates.checks,
            })),
        })).collect::<Vec<_>>(),
        "builds": run.builds.as_ref().map(crate::summary::json),
    })
}
