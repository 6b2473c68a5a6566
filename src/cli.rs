//! Argument parsing and the commands.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand, ValueEnum};
use pulso_engine::EngineError;
use pulso_engine::compile::load_pipeline;
use pulso_engine::executor::{self, NodeStatus, RunObserver, RunOptions};
use pulso_engine::pipeline::{NodeKind, Pipeline, TableNode};
use pulso_engine::run_id::{Starter, new_run_id};
use pulso_sinks::state;
use pulso_types::IncValue;

use crate::progress::Progress;
use crate::summary;

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_LOCKED: u8 = 3;
pub const EXIT_INTERRUPTED: u8 = 130;
/// SIGTERM (systemd, Kubernetes, `docker stop`): 128 + 15, as a shell reports it.
pub const EXIT_TERMINATED: u8 = 143;

#[derive(Parser, Debug)]
#[command(
    name = "pulso-flow",
    version,
    about = "BigQuery → PostgreSQL incremental data engine of the Pulso dashboard"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log level (error, warn, info, debug, trace) or a tracing filter such as `pulso_sinks=debug`.
    #[arg(long, global = true, env = "PULSO_LOG")]
    pub log_level: Option<String>,
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// Target PostgreSQL (overrides a `postgres` connection named by the pipeline's defaults.target).
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum ExplainFormat {
    Text,
    Json,
    Dot,
    /// The DAG drawn as SVG (no Graphviz needed).
    Svg,
    /// The DAG as a Mermaid flowchart, for Markdown.
    Mermaid,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum SummaryFormat {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load the pipeline's tables and run its builds.
    Run {
        #[arg(default_value = "pipelines.yaml")]
        file: PathBuf,
        /// Only these nodes (comma-separated table or build names).
        #[arg(long, value_delimiter = ',')]
        tables: Option<Vec<String>>,
        /// Re-read the selected tables whole and replace their content.
        #[arg(long)]
        full_refresh: bool,
        /// How many nodes run at the same time (at least 1).
        #[arg(long, default_value_t = 4, value_parser = at_least_one)]
        concurrency: usize,
        /// Fail a table at once if another run is loading it, instead of waiting.
        #[arg(long)]
        no_wait: bool,
        /// Print the final summary as a table (default) or as JSON on stdout.
        #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
        summary: SummaryFormat,
    },
    /// Show the DAG and, per node, the window, the DataFusion plan and the exact SQL, without loading.
    Explain {
        #[arg(default_value = "pipelines.yaml")]
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = ExplainFormat::Text)]
        format: ExplainFormat,
        #[arg(long)]
        full_refresh: bool,
    },
    /// Check a pipeline file; exit 2 with file:line:col errors if it is invalid.
    Validate {
        #[arg(default_value = "pipelines.yaml")]
        file: PathBuf,
    },
    /// List the pipeline's nodes.
    List {
        #[arg(default_value = "pipelines.yaml")]
        file: PathBuf,
    },
    /// Show, set or reset watermarks.
    Watermarks {
        #[command(subcommand)]
        action: WatermarkAction,
    },
    /// Apply the versioned SQL migrations.
    Migrate,
    /// The run history: the latest runs, or one run's nodes (`runs show RUN_ID`).
    Runs(crate::runs::RunsArgs),
    /// Compare source and target per day (count and sums of `reconcile:`); exit 1 when a day
    /// differs. `--repair` reloads exactly the differing days and rebuilds what depends on them.
    Reconcile(crate::reconcile_cmd::ReconcileArgs),
    /// Load a range of history in chunks, each one atomic load, resumable (`backfill status`:
    /// progress per table).
    Backfill(crate::backfill_cmd::BackfillArgs),
    /// Serve the dashboard HTTP API (settings from the environment: see .env.example).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "PULSO_API_BIND")]
        bind: Option<std::net::SocketAddr>,
    },
}

#[derive(Subcommand, Debug)]
pub enum WatermarkAction {
    Show,
    /// Set NODE's watermark (its type comes from the pipeline file; a timestamp needs `Z` or an
    /// offset). A value in the future or before year 0001 is refused unless --force.
    Set {
        node: String,
        value: String,
        #[arg(long, default_value = "pipelines.yaml")]
        file: PathBuf,
        /// Set a value in the future or before year 0001 anyway.
        #[arg(long)]
        force: bool,
    },
    /// Forget NODE's watermark (a table of the pipeline file): its next run starts from the
    /// table's initial window.
    Reset {
        node: String,
        #[arg(long, default_value = "pipelines.yaml")]
        file: PathBuf,
    },
}

/// `--concurrency`: 0 would run nothing and wait forever, so it is refused (exit 2).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (how many nodes run at the same time)".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}; expected a whole number of at least 1")),
    }
}

pub fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    // On a terminal the progress bars and summary say what happens; logs default to warnings.
    let default = if std::io::stderr().is_terminal() {
        "warn"
    } else {
        "info"
    };
    let filter = EnvFilter::try_new(cli.log_level.as_deref().unwrap_or(default))
        .unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub async fn dispatch(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Run {
            file,
            tables,
            full_refresh,
            concurrency,
            no_wait,
            summary,
        } => {
            run(
                &file,
                cli.database_url,
                tables,
                full_refresh,
                concurrency,
                no_wait,
                summary,
            )
            .await
        }
        Command::Explain {
            file,
            format,
            full_refresh,
        } => explain(&file, cli.database_url, format, full_refresh).await,
        Command::Validate { file } => validate(&file),
        Command::List { file } => list(&file),
        Command::Watermarks { action } => watermarks(action, cli.database_url).await,
        Command::Migrate => migrate(cli.database_url).await,
        Command::Serve { bind } => serve(cli.database_url, bind).await,
        Command::Reconcile(args) => crate::reconcile_cmd::reconcile(args, cli.database_url).await,
        Command::Backfill(args) => crate::backfill_cmd::backfill(args, cli.database_url).await,
        Command::Runs(args) => match database_url(cli.database_url, None) {
            Ok(url) => crate::runs::runs(args, url).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Invalid pipelines and bad arguments are usage errors (2); anything else failed (1).
            let code = match e.downcast_ref::<EngineError>() {
                Some(EngineError::Spec(_) | EngineError::Usage(_) | EngineError::Read { .. }) => {
                    EXIT_USAGE
                }
                _ => EXIT_FAILED,
            };
            match e.downcast_ref::<EngineError>() {
                // Already "file:line:col: error: …" lines.
                Some(EngineError::Spec(errors)) => eprintln!("{errors}"),
                _ => eprintln!("error: {}", error_text(&e)),
            }
            ExitCode::from(code)
        }
    }
}

/// The message of an error for the terminal: anyhow's contexts, then the error they wrap. The
/// libraries' errors already name their cause in their message (the server's message, the file
/// and line); their source chain is there for callers that ask (connection lost? SQLSTATE?), and
/// printing it too would only repeat it.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause.to_string());
        if cause.is::<EngineError>()
            || cause.is::<pulso_sinks::SinkError>()
            || cause.is::<pulso_api::ServeError>()
        {
            break;
        }
    }
    text
}

pub(crate) fn pipeline(file: &Path) -> Result<Pipeline> {
    Ok(load_pipeline(file)?)
}

/// The target database: `--database-url`, else `DATABASE_URL` or the file `DATABASE_URL_FILE`
/// names, else the pipeline's `defaults.target`, else the libpq environment (`PGHOST`, `PGUSER`,
/// … — an empty connection string). Checked here, so a bad `sslmode` is a usage error.
pub(crate) fn database_url(cli_url: Option<String>, pipeline: Option<&Pipeline>) -> Result<String> {
    let url = url_from_flag_env_or_file(cli_url)?
        .or_else(|| pipeline.and_then(|p| p.target_url.clone()))
        .or_else(|| {
            pulso_sinks::connect::env_names_a_database(|k| std::env::var(k).ok()).then(String::new)
        })
        .ok_or_else(|| {
            anyhow!(EngineError::Usage(
                "no target database: set DATABASE_URL (or DATABASE_URL_FILE, or PGHOST, PGUSER, \
                 PGDATABASE…; see .env.example) or pass --database-url"
                    .into()
            ))
        })?;
    pulso_sinks::connect::PgConnectConfig::from_env(&url)
        .map_err(|e| anyhow!(EngineError::Usage(format!("target database: {e}"))))?;
    Ok(url)
}

/// `--database-url` (which wins), `DATABASE_URL` or `DATABASE_URL_FILE` (one of the two).
fn url_from_flag_env_or_file(cli_url: Option<String>) -> Result<Option<String>> {
    let from_env = std::env::var("DATABASE_URL").ok();
    if cli_url.is_some() && cli_url != from_env {
        return Ok(cli_url);
    }
    pulso_sinks::connect::from_env_or_file(|k| std::env::var(k).ok(), "DATABASE_URL")
        .map_err(|e| anyhow!(EngineError::Usage(e.to_string())))
}

async fn run(
    file: &Path,
    cli_url: Option<String>,
    tables: Option<Vec<String>>,
    full_refresh: bool,
    concurrency: usize,
    no_wait: bool,
    summary_format: SummaryFormat,
) -> Result<ExitCode> {
    let pipeline = Arc::new(pipeline(file)?);
    let url = database_url(cli_url, Some(&pipeline))?;
    let opts = RunOptions {
        database_url: url,
        only: tables,
        full_refresh,
        concurrency,
        wait_for_lock: !no_wait,
        run_id: new_run_id(Starter::Cli),
    };
    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    let stopped_by = Arc::new(std::sync::Mutex::new(None::<StopSignal>));
    let signals = StopSignals::new()?;
    tokio::spawn(signals.cancel_on_signal(stopped_by.clone(), cancel_tx));
    let progress = Arc::new(Progress::new(std::io::stderr().is_terminal()));
    let observer: Arc<dyn RunObserver> = progress.clone();
    let report = executor::run(pipeline.clone(), opts, observer, cancel_rx).await?;
    progress.finish();
    let stopped_by = stopped_by.lock().ok().and_then(|s| *s);
    match summary_format {
        SummaryFormat::Table => {
            eprint!("{}", summary::table(&report));
            if let Some(signal) = stopped_by {
                eprintln!(
                    "interrupted by {}: the running loads were rolled back, nothing of them was committed",
                    signal.name()
                );
            }
        }
        SummaryFormat::Json => {
            let mut json = summary::json(&report);
            json["interrupted_by"] = serde_json::json!(stopped_by.map(StopSignal::name));
            println!("{}", serde_json::to_string_pretty(&json)?)
        }
    }
    if let Some(signal) = stopped_by {
        return Ok(ExitCode::from(signal.exit_code()));
    }
    let failed: Vec<_> = report
        .nodes
        .iter()
        .filter(|n| n.status != NodeStatus::Ok)
        .collect();
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else if failed.iter().all(|n| n.lock_conflict) {
        Ok(ExitCode::from(EXIT_LOCKED))
    } else {
        Ok(ExitCode::from(EXIT_FAILED))
    }
}

async fn explain(
    file: &Path,
    cli_url: Option<String>,
    format: ExplainFormat,
    full_refresh: bool,
) -> Result<ExitCode> {
    let pipeline = pipeline(file)?;
    // Offline is fine for explain: without a usable target it says why windows are unknown.
    let url = database_url(cli_url, Some(&pipeline)).ok();
    let ex = pulso_engine::explain::explain(&pipeline, url.as_deref(), full_refresh).await;
    match format {
        ExplainFormat::Text => print!("{}", ex.to_text()),
        ExplainFormat::Json => println!("{}", serde_json::to_string_pretty(&ex.to_json())?),
        ExplainFormat::Dot => print!("{}", ex.to_dot()),
        ExplainFormat::Svg | ExplainFormat::Mermaid => {
            use pulso_engine::render::{Graph, mermaid, svg};
            let graph = Graph::from_pipeline(&pipeline).with_windows(
                ex.nodes
                    .iter()
                    .map(|n| (n.name.as_str(), n.window.as_str())),
            );
            if format == ExplainFormat::Svg {
                print!("{}", svg::render_plain(&graph)?);
            } else {
                print!("{}", mermaid::render(&graph));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(file: &Path) -> Result<ExitCode> {
    let p = pipeline(file)?;
    let tables = p
        .nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Table(_)))
        .count();
    println!(
        "{}: ok ({tables} tables, {} builds, {} edges)",
        file.display(),
        p.nodes.len() - tables,
        p.dag.edges.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn list(file: &Path) -> Result<ExitCode> {
    let p = pipeline(file)?;
    println!(
        "{:<28} {:<6} {:<34} {:<14} {:<24} PRIMARY KEY / SOURCE",
        "NODE", "KIND", "TARGET", "MODE", "INCREMENTAL"
    );
    for &i in &p.dag.order {
        let n = &p.nodes[i];
        match &n.kind {
            NodeKind::Table(t) => println!(
                "{:<28} {:<6} {:<34} {:<14} {:<24} ({}) {}",
                n.name,
                "table",
                t.shape.target.to_string(),
                t.mode.as_str(),
                t.incremental
                    .as_ref()
                    .map(|i| format!("{} {:?}", i.column, i.ty).to_lowercase())
                    .unwrap_or_else(|| "-".into()),
                t.shape.primary_key.join(", "),
                t.source.describe()
            ),
            NodeKind::Build(b) => println!(
                "{:<28} {:<6} {:<34} {:<14} {:<24} {}",
                n.name, "sql", "-", "-", "-", b.origin
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn watermarks(action: WatermarkAction, cli_url: Option<String>) -> Result<ExitCode> {
    match action {
        WatermarkAction::Show => {
            let client = state_client(database_url(cli_url, None)?).await?;
            let lateness = pulso_sinks::status::lateness(&client).await?;
            println!(
                "{:<28} {:<10} {:<30} {:<8} {:>8} {:<20} {:>9} {:>9} LATE ROWS BY BUCKET",
                "NODE", "TYPE", "VALUE", "STATUS", "VERSION", "UPDATED", "MAX LATE", "LOOKBACK"
            );
            for w in state::list_watermarks(&client).await? {
                let late = lateness.iter().find(|l| l.node == w.node);
                let human = |s: Option<i64>| s.map_or("-".into(), pulso_sinks::lateness::human);
                println!(
                    "{:<28} {:<10} {:<30} {:<8} {:>8} {:<20} {:>9} {:>9} {}",
                    w.node,
                    w.inc_type.as_deref().unwrap_or("-"),
                    w.value.as_deref().unwrap_or("-"),
                    w.last_status,
                    w.data_version,
                    w.updated_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    human(late.and_then(|l| l.max_seconds)),
                    human(late.and_then(|l| l.lookback_seconds)),
                    late.map_or("-".into(), |l| l.histogram.to_string()),
                );
            }
            println!(
                "(MAX LATE: over the last {} days, how far below the previous watermark new rows were)",
                pulso_sinks::status::LATENESS_DAYS
            );
            for warning in lateness.iter().filter_map(|l| l.warning()) {
                println!("warning: {warning}");
            }
        }
        WatermarkAction::Set {
            node,
            value,
            file,
            force,
        } => {
            let p = pipeline(&file)?;
            let table = table_of(&p, &node, &file)?;
            let inc = table.incremental.as_ref().ok_or_else(|| {
                usage(format!(
                    "table {node} has no incremental column, so it has no watermark to set"
                ))
            })?;
            // The parser of `incremental.initial`: a zone-less timestamp is refused, not guessed.
            let w = IncValue::parse(inc.ty, &value)
                .map_err(|e| usage(format!("watermark of {node}: {e}")))?;
            if let Some(why) =
                pulso_engine::window::implausible(&w, chrono::Utc::now(), p.time_zone)
                && !force
            {
                return Err(usage(format!(
                    "refusing to set the watermark of {node}: {why}; pass --force to set it anyway"
                )));
            }
            let client = state_client(database_url(cli_url, Some(&p))?).await?;
            state::set_watermark(&client, &node, &table.shape.target.to_string(), w).await?;
            println!("{node}: watermark set to {w}");
        }
        WatermarkAction::Reset { node, file } => {
            let p = pipeline(&file)?;
            table_of(&p, &node, &file)?;
            let client = state_client(database_url(cli_url, Some(&p))?).await?;
            if state::reset_watermark(&client, &node).await? {
                println!("{node}: watermark reset; the next run starts from the initial window");
            } else {
                println!("{node}: had no watermark");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn usage(message: String) -> anyhow::Error {
    anyhow!(EngineError::Usage(message))
}

/// The table `node` of the pipeline file: watermarks belong to tables the pipeline declares.
fn table_of<'p>(p: &'p Pipeline, node: &str, file: &Path) -> Result<&'p TableNode> {
    let Some((_, n)) = p.node(node) else {
        let known: Vec<&str> = p.nodes.iter().map(|n| n.name.as_str()).collect();
        return Err(usage(format!(
            "no node {node} in {}; it has: {}",
            file.display(),
            known.join(", ")
        )));
    };
    match &n.kind {
        NodeKind::Table(t) => Ok(t),
        NodeKind::Build(_) => Err(usage(format!(
            "{node} is a build; only tables have watermarks"
        ))),
    }
}

/// A connection to the state database, migrated.
pub(crate) async fn state_client(url: String) -> Result<tokio_postgres::Client> {
    let mut client = pulso_sinks::connect::connect(&url).await?;
    pulso_sinks::migrate::migrate(&mut client).await?;
    Ok(client)
}

async fn migrate(cli_url: Option<String>) -> Result<ExitCode> {
    let url = database_url(cli_url, None)?;
    let applied = pulso_sinks::migrate::migrate_url(&url)
        .await
        .context("applying migrations")?;
    if applied.is_empty() {
        println!("migrations: up to date");
    }
    for m in applied {
        println!("applied V{} {}", m.version, m.name);
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(cli_url: Option<String>, bind: Option<std::net::SocketAddr>) -> Result<ExitCode> {
    let url = url_from_flag_env_or_file(cli_url)?;
    let mut cfg = pulso_api::ApiConfig::from_lookup(|k| match k {
        "DATABASE_URL" => url.clone(),
        "DATABASE_URL_FILE" => None, // already read into `url`
        _ => std::env::var(k).ok(),
    })
    .map_err(|e| anyhow!(EngineError::Usage(e.to_string())))?;
    if let Some(bind) = bind {
        cfg.bind = bind;
    }
    pulso_api::serve(cfg).await?;
    Ok(ExitCode::SUCCESS)
}

/// A signal that stops a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopSignal {
    Interrupt,
    Terminate,
}

impl StopSignal {
    pub(crate) fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        }
    }

    pub(crate) fn exit_code(self) -> u8 {
        match self {
            StopSignal::Interrupt => EXIT_INTERRUPTED,
            StopSignal::Terminate => EXIT_TERMINATED,
        }
    }
}

/// SIGINT (Ctrl-C) and SIGTERM (what systemd, Kubernetes and `docker stop` send), registered
/// before the run starts. Once registered they no longer kill the process by themselves, hence
/// the explicit exit on a second signal.
pub(crate) struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub(crate) fn new() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
                terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    async fn next(&mut self) -> StopSignal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => StopSignal::Interrupt,
                _ = self.terminate.recv() => StopSignal::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            StopSignal::Interrupt
        }
    }

    /// First signal: cancel the run (running loads roll back, the summary is printed, exit
    /// 130/143). Second signal: exit at once; the server rolls back whatever was still open when
    /// the connections drop.
    pub(crate) async fn cancel_on_signal(
        mut self,
        stopped_by: Arc<std::sync::Mutex<Option<StopSignal>>>,
        cancel: tokio::sync::watch::Sender<bool>,
    ) {
        let first = self.next().await;
        if let Ok(mut s) = stopped_by.lock() {
            *s = Some(first);
        }
        tracing::warn!(
            signal = first.name(),
            "stopping: rolling back the running loads (a second signal exits at once)"
        );
        let _ = cancel.send(true);
        let second = self.next().await;
        eprintln!(
            "error: {} again: exiting at once; the server rolls back the open transactions",
            second.name()
        );
        std::process::exit(i32::from(first.exit_code()));
    }
}
