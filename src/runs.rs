//! `pulso-flow runs [--limit N]` and `pulso-flow runs show RUN_ID`: the run history of the
//! ledger (`pulso_flow.runs`, `pulso_flow.node_runs`) in the terminal, as a table or as JSON.
//! Read through `pulso_sinks::status`, the same functions the API's operations page uses.

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand, ValueEnum};
use pulso_engine::EngineError;
use pulso_sinks::status::{self, NodeRun, RunOverview};
use serde_json::{Value, json};

#[derive(Args, Debug)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub action: Option<RunsAction>,
    /// How many runs to list, newest first.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub limit: i64,
    #[arg(long, value_enum, default_value_t = RunsFormat::Table, global = true)]
    pub format: RunsFormat,
}

#[derive(Subcommand, Debug)]
pub enum RunsAction {
    /// One run: every node with its counters, window, watermark and full error.
    Show { run_id: String },
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum RunsFormat {
    Table,
    Json,
}

pub async fn runs(args: RunsArgs, url: String) -> Result<ExitCode> {
    let client = pulso_sinks::connect::connect(&url).await?;
    match args.action {
        None => {
            let runs = status::run_history(&client, args.limit)
                .await
                .map_err(ledger_error)?;
            match args.format {
                RunsFormat::Table => print!("{}", runs_table(&runs)),
                RunsFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&Value::Array(
                        runs.iter().map(run_json).collect()
                    ))?
                ),
            }
        }
        Some(RunsAction::Show { run_id }) => {
            let Some(run) = status::run(&client, &run_id).await.map_err(ledger_error)? else {
                return Err(anyhow!(EngineError::Usage(format!(
                    "no run {run_id:?} in the ledger (`pulso-flow runs` lists them)"
                ))));
            };
            let nodes = status::run_nodes(&client, &run_id)
                .await
                .map_err(ledger_error)?;
            match args.format {
                RunsFormat::Table => print!("{}", run_detail(&run, &nodes)),
                RunsFormat::Json => {
                    let mut v = run_json(&run);
                    v["nodes"] = Value::Array(nodes.iter().map(node_json).collect());
                    println!("{}", serde_json::to_string_pretty(&v)?)
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An unmigrated database has no ledger: say so instead of "relation does not exist".
fn ledger_error(e: tokio_postgres::Error) -> anyhow::Error {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) {
        anyhow!(EngineError::Usage(
            "this database has no run ledger yet (run `pulso-flow migrate` or a pipeline first)"
                .into()
        ))
    } else {
        anyhow!(e).context("reading the run ledger")
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn ts_ms(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `1.234s`, `2m05s`, `1h02m`.
pub fn duration(ms: i64) -> String {
    let s = ms / 1000;
    if s < 60 {
        format!("{}.{:03}s", s, ms % 1000)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

fn runs_table(runs: &[RunOverview]) -> String {
    let mut out = format!(
        "{:<34} {:<9} {:<20} {:>9} {:>5} {:>4} {:>6} {:>10} {:>10} {:>10}\n",
        "RUN",
        "STATUS",
        "STARTED (UTC)",
        "DURATION",
        "NODES",
        "OK",
        "FAILED",
        "READ",
        "INSERTED",
        "UPDATED"
    );
    for r in runs {
        out.push_str(&format!(
            "{:<34} {:<9} {:<20} {:>9} {:>5} {:>4} {:>6} {:>10} {:>10} {:>10}\n",
            r.run_id,
            r.status,
            ts(r.started_at),
            r.duration_ms().map(duration).unwrap_or_else(|| "-".into()),
            r.nodes,
            r.nodes_ok,
            r.nodes_failed,
            r.rows_read,
            r.inserted,
            r.updated
        ));
    }
    if runs.is_empty() {
        out.push_str("(no runs yet)\n");
    }
    out
}

fn run_detail(run: &RunOverview, nodes: &[NodeRun]) -> String {
    let mut out = format!(
        "run {}  pipeline {}  status {}\nstarted {}  finished {}  duration {}\n\
         nodes {} ({} ok, {} failed)  read {}  inserted {}  updated {}\n\n",
        run.run_id,
        run.pipeline,
        run.status,
        ts(run.started_at),
        run.finished_at.map(ts).unwrap_or_else(|| "-".into()),
        run.duration_ms()
            .map(duration)
            .unwrap_or_else(|| "-".into()),
        run.nodes,
        run.nodes_ok,
        run.nodes_failed,
        run.rows_read,
        run.inserted,
        run.updated
    );
    out.push_str(&format!(
        "{:<24} {:<5} {:<9} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}  WATERMARK\n",
        "NODE",
        "KIND",
        "STATUS",
        "START",
        "DURATION",
        "READ",
        "STAGED",
        "INSERTED",
        "UPDATED",
        "UNCHANGED",
        "DELETED"
    ));
    for n in nodes {
        let offset = (n.started_at - run.started_at).num_milliseconds().max(0);
        out.push_str(&format!(
            "{:<24} {:<5} {:<9} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}  {}\n",
            n.node,
            n.kind,
            n.status,
            format!("+{}", duration(offset)),
            duration(n.duration_ms),
            n.rows_read,
            n.rows_staged,
            n.inserted,
            n.updated,
            n.unchanged,
            n.deleted,
            match (&n.watermark_before, &n.watermark_after) {
                (Some(b), Some(a)) if a != b => format!("{b} → {a}"),
                (_, Some(a)) => a.clone(),
                (Some(b), None) => b.clone(),
                (None, None) => "-".into(),
            }
        ));
    }
    for n in nodes {
        if let Some(e) = &n.error {
            out.push_str(&format!("\nerror of {} ({}):\n", n.node, n.status));
            for line in e.lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    out
}

fn run_json(r: &RunOverview) -> Value {
    json!({
        "run_id": r.run_id,
        "pipeline": r.pipeline,
        "status": r.status,
        "started_at": ts_ms(r.started_at),
        "finished_at": r.finished_at.map(ts_ms),
        "duration_ms": r.duration_ms(),
        "nodes": r.nodes,
        "nodes_ok": r.nodes_ok,
        "nodes_failed": r.nodes_failed,
        "rows_read": r.rows_read,
        "inserted": r.inserted,
        "updated": r.updated,
    })
}

fn node_json(n: &NodeRun) -> Value {
    json!({
        "node": n.node,
        "kind": n.kind,
        "status": n.status,
        "target": n.target,
        "mode": n.mode,
        "window_lower": n.window_lower,
        "window_upper": n.window_upper,
        "watermark_before": n.watermark_before,
        "watermark_after": n.watermark_after,
        "rows_read": n.rows_read,
        "rows_staged": n.rows_staged,
        "inserted": n.inserted,
        "updated": n.updated,
        "unchanged": n.unchanged,
        "deleted": n.deleted,
        "bytes_billed": n.bytes_billed,
        "started_at": ts_ms(n.started_at),
        "duration_ms": n.duration_ms,
        "error": n.error,
        "details": n.details,
    })
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(0), "0.000s");
        assert_eq!(duration(1_234), "1.234s");
        assert_eq!(duration(125_000), "2m05s");
        assert_eq!(duration(3_720_000), "1h02m");
    }
}
