//! The data version every cache key carries.
//!
//! Every committed load or build bumps the data version of its node and, in the same transaction,
//! sends `NOTIFY pulso_flow_loads` ([`CHANNEL`]). The API keeps one connection that LISTENs on
//! that channel; on each notification it re-reads the version
//! ([`pulso_sinks::status::data_version`]: the sum over all nodes, which only ever grows) and from
//! then on every cache key
//! carries the new value, so no answer computed before the commit can be served again.
//!
//! While the listener is not connected (startup, a lost connection), or between a notification
//! and the re-read, the version is read from PostgreSQL on every request instead (the slow path):
//! a notification missed while disconnected can therefore never leave the API on an old version.
//! If that read fails too, the database is down — nothing can commit — and the last known
//! version stays valid.
//!
//! The version text also carries an identity of the database (host, name and oid), so that a
//! shared Redis never mixes answers of two databases whose version counters happen to agree.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use pulso_sinks::connect::{PgConnectConfig, PgConnector};
use pulso_sinks::status;
use tokio::sync::{mpsc, watch};
use tokio_postgres::AsyncMessage;

use crate::db::Db;
use crate::metrics::Metrics;

pub use pulso_sinks::state::LOADS_CHANNEL as CHANNEL;

pub struct DataVersion {
    /// Hash of the database identity; 0 until first read.
    ident: AtomicU64,
    sum: AtomicI64,
    /// The listener is connected and `sum` is current.
    live: AtomicBool,
    /// Unix millis until which the slow path does not retry a failed read.
    backoff_until: AtomicU64,
    db: Db,
    url_ident: String,
    metrics: Metrics,
    changed: watch::Sender<i64>,
    started: Instant,
}

impl DataVersion {
    pub fn new(db: Db, database_url: &str, metrics: Metrics) -> Arc<Self> {
        // Host, port and database name identify the database; user and password do not.
        let url_ident = PgConnectConfig::from_env(database_url)
            .map(|c| c.identity())
            .unwrap_or_default();
        Arc::new(DataVersion {
            ident: AtomicU64::new(0),
            sum: AtomicI64::new(-1),
            live: AtomicBool::new(false),
            backoff_until: AtomicU64::new(0),
            db,
            url_ident,
            metrics,
            changed: watch::channel(-1).0,
            started: Instant::now(),
        })
    }

    /// The version to key caches with now.
    pub async fn current(&self) -> String {
        if self.live.load(Ordering::Acquire) {
            return self.text();
        }
        let now = self.started.elapsed().as_millis() as u64;
        if now >= self.backoff_until.load(Ordering::Relaxed) {
            let read = tokio::time::timeout(Duration::from_secs(1), self.read_from_db()).await;
            match read {
                Ok(Ok(())) => {}
                _ => {
                    self.backoff_until.store(now + 1000, Ordering::Relaxed);
                }
            }
        }
        self.text()
    }

    /// The last known sum (`-1` before the first read).
    pub fn last_known(&self) -> i64 {
        self.sum.load(Ordering::Acquire)
    }

    /// Whether the LISTEN connection is up and the version current.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Wait until the version differs from `seen` (tests, diagnostics).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.changed.subscribe()
    }

    fn text(&self) -> String {
        format!(
            "{:x}.{}",
            self.ident.load(Ordering::Acquire),
            self.sum.load(Ordering::Acquire)
        )
    }

    fn store(&self, oid: i64, sum: i64) {
        // FNV-1a: stable across builds, so API instances of different versions share Redis.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.url_ident.bytes().chain(oid.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        // Keep it short: 32 bits are plenty to tell databases apart.
        self.ident.store(h & 0xffff_ffff, Ordering::Release);
        let old = self.sum.swap(sum, Ordering::AcqRel);
        self.metrics.data_version.set(sum);
        if old != sum {
            self.changed.send_replace(sum);
            tracing::debug!(old, new = sum, "data version changed");
        }
    }

    async fn read_from_db(&self) -> Result<(), crate::error::ApiError> {
        let v = status::data_version(&self.db).await?;
        self.store(v.database_oid, v.sum);
        Ok(())
    }

    /// Keep a LISTEN connection open until `shutdown` turns true, reconnecting with back-off.
    pub async fn listen(self: Arc<Self>, url: String, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.listen_once(&url, &mut shutdown).await {
                Ok(()) => return, // shutdown
                Err(e) => {
                    self.live.store(false, Ordering::Release);
                    self.metrics.up.with_label_values(&["listener"]).set(0);
                    tracing::warn!(error = %e, retry_ms = backoff.as_millis() as u64,
                        "data-version listener disconnected; reading the version per request until it is back");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn listen_once(
        &self,
        url: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), String> {
        // Opened like every other connection (pulso_sinks::connect): PG* environment, TLS.
        let mut config = PgConnectConfig::from_env(url).map_err(|e| e.to_string())?;
        config.fallback_application_name("pulso-flow-api-listener");
        let connector = PgConnector::new(config).map_err(|e| e.to_string())?;
        let (client, mut connection) = connector
            .connect_with(connector.config().tokio_config())
            .await
            .map_err(|e| pulso_sinks::error::describe_pg_error(&e))?;
        let (tx, mut notes) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if tx.send(n.payload().to_string()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "listener connection ended");
                        break;
                    }
                }
            }
        });
        let _abort = AbortOnDrop(driver);
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|e| pulso_sinks::error::describe_pg_error(&e))?;
        // Read after LISTEN: a commit between the two is either in this read or notified.
        let reread = || async {
            let v = status::data_version(&client)
                .await
                .map_err(|e| pulso_sinks::error::describe_pg_error(&e))?;
            self.store(v.database_oid, v.sum);
            Ok::<_, String>(())
        };
        reread().await?;
        self.live.store(true, Ordering::Release);
        self.metrics.up.with_label_values(&["listener"]).set(1);
        tracing::info!(version = self.last_known(), "listening for committed loads");
        // A periodic re-read also proves the connection is alive.
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.tick().await;
        loop {
            tokio::select! {
                note = notes.recv() => {
                    let Some(payload) = note else {
                        return Err("listener connection closed".into());
                    };
                    // Until the re-read lands, requests read the version themselves.
                    self.live.store(false, Ordering::Release);
                    tracing::debug!(%payload, "committed load notified");
                    while notes.try_recv().is_ok() {}
                    reread().await?;
                    self.live.store(true, Ordering::Release);
                }
                _ = tick.tick() => {
                    reread().await?;
                }
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        return Ok(());
                    }
                }
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
