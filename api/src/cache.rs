//! Two-level cache of serialised answers: moka in process over Redis shared between instances.
//!
//! Keys are `prefix:version:route?normalised-params`, where `version` is the data version (see
//! [`crate::version`]): a commit changes the version, so old entries are never looked up again
//! and age out (moka: size bound + TTL safety net; Redis: `EX`). Nothing is ever deleted by
//! pattern, so there is no `KEYS`/`SCAN` on the request path.
//!
//! A miss in process coalesces: concurrent requests for the same key wait for one computation
//! (moka's `try_get_with`), which first asks Redis and only then PostgreSQL.
//!
//! Redis is optional at all times: a failing command marks it down, later requests skip it (no
//! latency added) and a background task pings it until it answers again. The connection manager
//! reconnects by itself.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use moka::future::Cache as Moka;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::watch;

use crate::config::RedisTlsFiles;
use crate::error::ApiError;
use crate::metrics::Metrics;
use pulso_sinks::connect::redact;

pub struct RedisCache {
    conn: ConnectionManager,
    up: AtomicBool,
    ttl_secs: u64,
    timeout: Duration,
    last_error: std::sync::Mutex<Option<String>>,
    metrics: Metrics,
    /// Writes of this instance per data version (`PULSO_API_REDIS_MAX_KEYS`): see [`Self::put`].
    budget: WriteBudget,
}

/// At most `max` Redis writes per data version from this instance, so the keys one data version
/// can add to Redis are bounded by design (the key space of valid requests is finite but large:
/// dates × filter combinations). Past the budget answers are still cached in process.
#[derive(Default)]
struct WriteBudget {
    max: std::sync::atomic::AtomicU64,
    /// The data version counted and its writes so far.
    used: std::sync::Mutex<(String, u64)>,
}

impl WriteBudget {
    fn take(&self, version: &str) -> bool {
        let max = self.max.load(Ordering::Relaxed);
        let Ok(mut used) = self.used.lock() else {
            return false;
        };
        if used.0 != version {
            *used = (version.to_string(), 0);
        }
        if used.1 >= max {
            return false;
        }
        used.1 += 1;
        true
    }
}

impl RedisCache {
    /// A lazy connection: nothing is contacted until the first command, so startup never waits
    /// for (or fails on) Redis.
    pub fn new(
        url: &str,
        tls: &RedisTlsFiles,
        ttl: Duration,
        timeout: Duration,
        metrics: Metrics,
    ) -> Result<Arc<Self>, String> {
        let client = redis_client(url, tls)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("redis: {e}"))?;
        Ok(Arc::new(RedisCache {
            conn,
            up: AtomicBool::new(false),
            ttl_secs: ttl.as_secs().max(1),
            timeout,
            last_error: std::sync::Mutex::new(Some("not contacted yet".into())),
            metrics,
            budget: WriteBudget {
                max: u64::MAX.into(),
                ..WriteBudget::default()
            },
        }))
    }

    /// The most entries this instance writes per data version (`PULSO_API_REDIS_MAX_KEYS`).
    pub fn set_max_keys(&self, max: u64) {
        self.budget.max.store(max, Ordering::Relaxed);
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().map(|e| e.clone()).unwrap_or(None)
    }

    fn mark(&self, result: Result<(), String>) {
        let up = result.is_ok();
        let was = self.up.swap(up, Ordering::AcqRel);
        self.metrics
            .up
            .with_label_values(&["redis"])
            .set(i64::from(up));
        if let Ok(mut e) = self.last_error.lock() {
            *e = result.err();
            if was != up {
                match &*e {
                    None => tracing::info!("redis is reachable; shared cache enabled"),
                    Some(err) => {
                        tracing::warn!(error = %err, "redis unreachable; serving from memory and PostgreSQL")
                    }
                }
            }
        }
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }

    /// `GET key`; `None` on a miss, and when Redis is down (without trying).
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        if !self.is_up() {
            self.metrics
                .cache
                .with_label_values(&["redis", "skipped"])
                .inc();
            return None;
        }
        match self
            .run::<Option<Vec<u8>>>(redis::cmd("GET").arg(key))
            .await
        {
            Ok(Some(v)) => {
                self.metrics
                    .cache
                    .with_label_values(&["redis", "hit"])
                    .inc();
                Some(Bytes::from(v))
            }
            Ok(None) => {
                self.metrics
                    .cache
                    .with_label_values(&["redis", "miss"])
                    .inc();
                None
            }
            Err(e) => {
                self.metrics
                    .cache
                    .with_label_values(&["redis", "error"])
                    .inc();
                self.mark(Err(e));
                None
            }
        }
    }

    /// `SET key value EX ttl` in the background: the answer does not wait for it. Skipped past
    /// this instance's write budget for `version`.
    pub fn put(self: &Arc<Self>, version: &str, key: Arc<str>, value: Bytes) {
        if !self.is_up() {
            return;
        }
        if !self.budget.take(version) {
            self.metrics.redis_writes_skipped.inc();
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&*key)
                .arg(value.as_ref())
                .arg("EX")
                .arg(this.ttl_secs);
            if let Err(e) = this.run::<()>(&cmd).await {
                this.mark(Err(e));
            }
        });
    }

    /// `PING` with the command timeout; updates the up/down state.
    pub async fn ping(&self) -> Result<Duration, String> {
        let t0 = std::time::Instant::now();
        let r = self.run::<String>(&redis::cmd("PING")).await.map(|_| ());
        self.mark(r.clone());
        r.map(|()| t0.elapsed())
    }

    /// Ping every second while down and every 5 s while up, until `shutdown`.
    pub async fn watch_health(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let _ = self.ping().await;
            let pause = if self.is_up() {
                Duration::from_secs(5)
            } else {
                Duration::from_secs(1)
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }
}

/// A client for `url`: `redis://` plain, `rediss://` TLS (the system's roots, or the CA of
/// `REDIS_TLS_CA_FILE`; a client certificate when `REDIS_TLS_CERT_FILE`/`_KEY_FILE` are set).
/// `user:password@` in the URL logs in with `AUTH user password` (Redis 6 ACL users).
fn redis_client(url: &str, tls: &RedisTlsFiles) -> Result<redis::Client, String> {
    let safe = |e: redis::RedisError| format!("REDIS_URL: {}", redact(&e.to_string()));
    if *tls == RedisTlsFiles::default() {
        return redis::Client::open(url).map_err(safe);
    }
    if !url.starts_with("rediss://") {
        return Err("REDIS_TLS_* files are set but REDIS_URL is not a rediss:// URL".into());
    }
    let read = |path: &std::path::Path, var: &str| {
        std::fs::read(path).map_err(|e| format!("{var}: cannot read {}: {e}", path.display()))
    };
    let root_cert = match &tls.ca {
        Some(p) => Some(read(p, "REDIS_TLS_CA_FILE")?),
        None => None,
    };
    let client_tls = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert, "REDIS_TLS_CERT_FILE")?,
            client_key: read(key, "REDIS_TLS_KEY_FILE")?,
        }),
        (None, None) => None,
        _ => return Err("REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together".into()),
    };
    pulso_sinks::connect::ensure_crypto_provider();
    redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .map_err(safe)
}

/// The two levels together.
#[derive(Clone)]
pub struct Cache {
    local: Moka<Arc<str>, Bytes>,
    redis: Option<Arc<RedisCache>>,
    metrics: Metrics,
}

impl Cache {
    pub fn new(
        max_bytes: u64,
        ttl: Duration,
        redis: Option<Arc<RedisCache>>,
        metrics: Metrics,
    ) -> Self {
        let local = Moka::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &Arc<str>, v: &Bytes| {
                u32::try_from(k.len() + v.len() + 64).unwrap_or(u32::MAX)
            })
            .time_to_live(ttl)
            .build();
        Cache {
            local,
            redis,
            metrics,
        }
    }

    pub fn redis(&self) -> Option<&Arc<RedisCache>> {
        self.redis.as_ref()
    }

    /// The cached answer for `key`, or `compute`'s (run once however many requests wait for it).
    /// Errors are not cached.
    /// `version` is the data version the key carries.
    pub async fn get_or_compute<F, Fut>(
        &self,
        version: &str,
        key: String,
        compute: F,
    ) -> Result<Bytes, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, ApiError>>,
    {
        if let Some(v) = self.local.get(key.as_str()).await {
            self.metrics
                .cache
                .with_label_values(&["memory", "hit"])
                .inc();
            return Ok(v);
        }
        self.metrics
            .cache
            .with_label_values(&["memory", "miss"])
            .inc();
        let key: Arc<str> = key.into();
        let redis = self.redis.clone();
        let k = key.clone();
        let version = version.to_string();
        self.local
            .try_get_with(key, async move {
                if let Some(r) = &redis
                    && let Some(v) = r.get(&k).await
                {
                    return Ok(v);
                }
                let v = compute().await?;
                if let Some(r) = &redis {
                    r.put(&version, k, v.clone());
                }
                Ok(v)
            })
            .await
            .map_err(|e: Arc<ApiError>| (*e).clone())
    }

    /// Entries in process (approximate; for diagnostics).
    pub fn entry_count(&self) -> u64 {
        self.local.entry_count()
    }
}
