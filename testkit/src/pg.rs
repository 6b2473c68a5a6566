//! PostgreSQL for tests: the server of `DATABASE_URL`, a private database per test (dropped with
//! the value), table checksums and the watermark of a node.

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

/// `tag` made unique within this machine's test runs: the process id and a per-process counter.
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{tag}_{}_{n}", std::process::id())
}

impl TestDb {
    pub async fn new(tag: &str) -> TestDb {
        let name = format!("pf_{}", unique(tag));
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

    /// A database with pulso-flow's migrations applied.
    pub async fn migrated(tag: &str) -> TestDb {
        let db = TestDb::new(tag).await;
        pulso_sinks::migrate::migrate_url(&db.url)
            .await
            .expect("migrations apply");
        db
    }

    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        on_fresh_connection(format!("{}/postgres", server_url()), sql);
    }
}

/// A schema private to one test in the server's own database (`DATABASE_URL`), dropped with
/// everything in it when the value is dropped; the session's time zone is UTC. For tests that
/// need tables but not pulso-flow's state (a [`TestDb`] isolates that too, at the cost of a
/// database).
pub struct TestSchema {
    pub name: String,
    pub url: String,
    pub client: Client,
}

impl TestSchema {
    pub async fn new(tag: &str) -> TestSchema {
        let name = unique(tag);
        let url = format!("{}/postgres", server_url());
        let client = connect(&url).await;
        client
            .batch_execute(&format!("CREATE SCHEMA {name}; SET TIME ZONE 'UTC';"))
            .await
            .expect("create test schema");
        TestSchema { name, url, client }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        on_fresh_connection(self.url.clone(), sql);
    }
}

/// Run `sql` on a new connection to `url` from a thread of its own, waiting for it: `Drop` runs
/// inside a test's runtime (which cannot be blocked on) and also after a test panicked.
fn on_fresh_connection(url: String, sql: String) {
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            if let Ok((client, conn)) = tokio_postgres::connect(&url, NoTls).await {
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                let _ = client.batch_execute(&sql).await;
            }
        });
    })
    .join();
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
