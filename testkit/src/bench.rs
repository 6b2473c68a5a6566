//! Set-up shared by the `cargo bench` harnesses that load through the binary: their knobs from
//! the environment and a database of their own.

use tokio_postgres::Client;

use crate::pg::{connect, server_url};

/// `name` from the environment as a number, or `default` when unset or not a number.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The database `name` on the server of `DATABASE_URL`, dropped and created again, with an empty
/// schema `bench`: its URL and a connection to it.
pub async fn fresh_bench_database(name: &str) -> (String, Client) {
    let server = server_url();
    let admin = connect(&format!("{server}/postgres")).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop the bench database");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create the bench database");
    let url = format!("{server}/{name}");
    let client = connect(&url).await;
    client
        .batch_execute("CREATE SCHEMA bench")
        .await
        .expect("create schema bench");
    (url, client)
}

/// One measured run of a pulso-flow binary: wall seconds, peak RSS (KiB) and its output.
pub struct TimedRun {
    pub seconds: f64,
    pub rss_kib: i64,
    pub output: std::process::Output,
}

/// Run `binary args…` against `db_url` under GNU time (`/usr/bin/time -f %M`) and fail the bench
/// if it fails. GNU time measures the RSS because its child is a fresh process:
/// getrusage(RUSAGE_CHILDREN) from a bench would count the pages a forked child shares with the
/// (large) bench process before exec. The connection is plain text (`PGSSLMODE=disable`), like
/// the ceiling's, and logging quiet.
pub fn timed_run(binary: &str, db_url: &str, args: &[&str], env: &[(&str, &str)]) -> TimedRun {
    let rss_file = tempfile::NamedTempFile::new().expect("temp file");
    let t0 = std::time::Instant::now();
    let output = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(rss_file.path())
        .arg(binary)
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("PGSSLMODE", "disable")
        .env("PULSO_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("run pulso-flow under /usr/bin/time (apt-get install time)");
    let seconds = t0.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "pulso-flow {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rss_kib = std::fs::read_to_string(rss_file.path())
        .ok()
        .and_then(|t| t.trim().lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(0);
    TimedRun {
        seconds,
        rss_kib,
        output,
    }
}
