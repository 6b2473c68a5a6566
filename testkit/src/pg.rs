//! Shared helpers of the integration tests: a private database per test, the CLI binary, and
//! table checksums.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::{Client, NoTls};

/// The server the tests use: `DATABASE_URL` without its database name, or the local default.
pub fn server_url() -> String {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let host_start = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[host_start..].find('/') {
        Some(j) => url[..host_start + j].to_string(),
        None => url,
    }
}

pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("cannot connect to {url}: {e} (is PostgreSQL running? see .ci/run)")
        });
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A database private to one test, dropped when the value is dropped. A whole database (rather
/// than a schema) also isolates pulso-flow's own state schema and migrations history.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new(tag: &str) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("pf_{tag}_{}_{n}", std::process::id());
        let admin = connect(&format!("{}/postgres", server_url())).await;
        // Separate statements: a multi-statement query is one implicit transaction, which
        // CREATE/DROP DATABASE refuse.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .expect("drop stale test database");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        TestDb {
            url: format!("{}/{name}", server_url()),
            name,
        }
    }

    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Synchronous drop: a short-lived runtime-free connection via psql is not guaranteed to
        // exist, so use a blocking thread with its own runtime.
        let name = self.name.clone();
        let admin_url = format!("{}/postgres", server_url());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(&admin_url, NoTls).await {
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pulso-flow"))
}

/// Run the CLI with `DATABASE_URL` set to `db_url` and extra environment.
pub fn cli(db_url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env("DATABASE_URL", db_url)
        .env("PULSO_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run pulso-flow")
}

pub fn text(out: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write fixture");
    path
}

/// Row count and an order-independent checksum of every column of a table.
pub async fn checksum(client: &Client, table: &str) -> (i64, String) {
    let row = client
        .query_one(
            &format!("SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {table} t"),
            &[],
        )
        .await
        .expect("checksum");
    (row.get(0), row.get(1))
}

pub async fn watermark(client: &Client, node: &str) -> Option<String> {
    client
        .query_opt(
            "SELECT value FROM pulso_flow.watermarks WHERE node = $1",
            &[&node],
        )
        .await
        .ok()
        .flatten()
        .and_then(|r| r.get(0))
}

pub fn summary_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("summary is not JSON ({e}):\n{}", text(out)))
}

/// (inserted, updated, unchanged) of a node in a `--summary json` output.
pub fn counts(summary: &serde_json::Value, node: &str) -> (u64, u64, u64) {
    let n = summary["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == node))
        .unwrap_or_else(|| panic!("node {node} not in summary: {summary}"));
    let g = |k: &str| {
        n[k].as_u64()
            .unwrap_or_else(|| panic!("{k} missing for {node}: {n}"))
    };
    (g("inserted"), g("updated"), g("unchanged"))
}

/// Wait (at most 30 s) until the backend `pid` has ended: the server has rolled back whatever
/// it had open.
pub async fn wait_until_backend_ends(client: &Client, pid: i32) {
    let t0 = std::time::Instant::now();
    while client
        .query_opt("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .await
        .expect("pg_stat_activity")
        .is_some()
    {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(30),
            "backend {pid} did not end"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
