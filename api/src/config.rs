//! The API's configuration, read from the environment (see `.env.example`).
//!
//! Every variable has a safe default except `DATABASE_URL`; bad values fail at startup with a
//! message naming the variable.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::ConfigError;

/// Everything `serve` needs. Build it with [`ApiConfig::from_env`] or field by field in tests.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// `PULSO_API_BIND`: address to listen on.
    pub bind: SocketAddr,
    /// `DATABASE_URL` (or the file `DATABASE_URL_FILE` names; or empty: the `PG*` variables):
    /// the PostgreSQL holding the marts and `pulso_flow.*`.
    pub database_url: String,
    /// `REDIS_URL` (or the file `REDIS_URL_FILE` names): the shared second-level cache; `None`
    /// runs with the in-process cache only. `rediss://` is TLS; `user:password@` logs in (ACL).
    pub redis_url: Option<String>,
    /// `REDIS_TLS_CA_FILE`, `REDIS_TLS_CERT_FILE`, `REDIS_TLS_KEY_FILE`: PEM files for a
    /// `rediss://` URL (the CA that signed the server's certificate instead of the system roots;
    /// a client certificate and key when Redis requires one).
    pub redis_tls: RedisTlsFiles,
    /// `PULSO_API_REDIS_PREFIX`: namespace of every Redis key this API writes.
    pub redis_prefix: String,
    /// `PULSO_API_REDIS_TTL`: expiry of Redis entries (old data versions age out by themselves).
    pub redis_ttl: Duration,
    /// `PULSO_API_REDIS_TIMEOUT_MS`: per-command budget; a slower Redis is treated as a miss.
    pub redis_timeout: Duration,
    /// `PULSO_API_CACHE_MAX_BYTES`: size bound of the in-process cache (sum of cached bodies).
    pub cache_max_bytes: u64,
    /// `PULSO_API_CACHE_TTL`: safety-net expiry of in-process entries (invalidation is by data
    /// version, not by TTL).
    pub cache_ttl: Duration,
    /// `PULSO_API_CORS_ORIGINS`: comma-separated allowed origins (empty: no cross-origin access).
    pub cors_origins: Vec<String>,
    /// `PULSO_API_CORS_CREDENTIALS`: allow cookies/authorization on cross-origin requests; refused
    /// together with a `*` origin.
    pub cors_credentials: bool,
    /// `PULSO_API_REFRESH_TOKEN` (or `PULSO_API_REFRESH_TOKEN_FILE`): bearer token of the ETL
    /// refresh endpoints; unset disables them.
    pub refresh_token: Option<String>,
    /// `PULSO_API_PIPELINE`: the pipeline file the refresh endpoints run.
    pub pipeline_file: String,
    /// `PULSO_API_POOL_SIZE`: PostgreSQL connections of the read pool.
    pub pool_size: usize,
    /// `PULSO_API_STATEMENT_TIMEOUT_MS`: server-side `statement_timeout` of API queries.
    pub statement_timeout: Duration,
    /// `PULSO_API_POOL_WAIT_MS`: how long a request waits for a free connection.
    pub pool_wait: Duration,
    /// `PULSO_API_REQUEST_TIMEOUT_MS`: whole-request budget (answers 503 past it).
    pub request_timeout: Duration,
    /// `PULSO_API_BODY_LIMIT_BYTES`: largest accepted request body (413 past it).
    pub body_limit: usize,
    /// `PULSO_API_MAX_LIST`: most values accepted in one list parameter.
    pub max_list: usize,
    /// `PULSO_API_FRESHNESS_MAX_AGE`: default age limit of a table's last successful load.
    pub freshness_max_age: Duration,
    /// `PULSO_API_FRESHNESS_OVERRIDES`: `node=6h,other=30m` per-node limits.
    pub freshness_overrides: BTreeMap<String, Duration>,
    /// `PULSO_API_MART_SCHEMA`: schema of the mart tables.
    pub mart_schema: String,
    /// `PULSO_API_ACCESS_LOG`: one structured log line per request (target `pulso_api::access`).
    pub access_log: bool,
    /// `PULSO_API_SHUTDOWN_GRACE_SECS`: how long in-flight requests may finish on shutdown.
    pub shutdown_grace: Duration,
    /// `PULSO_TIME_ZONE`: business time zone for "today" defaults.
    pub time_zone: chrono_tz::Tz,
    /// `PULSO_API_HEADER_TIMEOUT_MS`: a client must send a request's whole head within this long
    /// of connecting or of the previous answer (so it also closes idle keep-alive connections).
    pub header_timeout: Duration,
    /// `PULSO_API_IDLE_TIMEOUT_MS`: a connection on which no byte moves either way for this long
    /// is closed (slow bodies, clients that stop reading); longer than the request timeout.
    pub idle_timeout: Duration,
    /// `PULSO_API_MAX_CONNECTIONS`: open client connections; past it a new one gets a 503 and
    /// is closed.
    pub max_connections: usize,
    /// `PULSO_API_MONITOR_TOKEN` (or `PULSO_API_MONITOR_TOKEN_FILE`): bearer token that unlocks the private monitoring endpoints and
    /// the full error text of the status endpoints (the refresh token does too).
    pub monitor_token: Option<String>,
    /// `PULSO_API_PRIVATE_ENDPOINTS`: which monitoring endpoints need a token.
    pub private_endpoints: PrivateEndpoints,
    /// `PULSO_API_PUBLIC_ERROR_DETAIL`: what the status endpoints and the operations page say of
    /// a failed run without a token: the error class only (default) or the full message.
    pub public_error_detail: ErrorDetail,
    /// `PULSO_API_REDIS_MAX_KEYS`: most Redis entries one instance writes per data version.
    pub redis_max_keys: u64,
    /// `PULSO_API_AUTH_FAILURES_PER_MINUTE`: wrong tokens accepted per client address and minute
    /// before its token checks answer 429.
    pub auth_failures_per_minute: u32,
}

/// The monitoring endpoints an operator may put behind a token (`PULSO_API_PRIVATE_ENDPOINTS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrivateEndpoints {
    /// `/metrics`.
    pub metrics: bool,
    /// `/docs`, `/redoc`, `/api/v1/openapi.json` and the viewers' scripts.
    pub docs: bool,
    /// `/ready`.
    pub ready: bool,
    /// `/api/v1/etl/status` and `/api/v1/etl/status/table/{name}`.
    pub status: bool,
}

impl PrivateEndpoints {
    pub const NAMES: &'static str = "metrics, docs, ready, status";

    fn any(&self) -> bool {
        self.metrics || self.docs || self.ready || self.status
    }
}

/// How much of a failed run's error the status endpoints show without a token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorDetail {
    /// A short class (`source`, `sink`, `timeout`, …) and the node; the text is in the logs and
    /// behind the token.
    #[default]
    Class,
    /// The full message (row keys, cell values, file paths included).
    Full,
}

impl ApiConfig {
    /// Defaults for everything but the database.
    pub fn new(database_url: impl Into<String>) -> Self {
        ApiConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            database_url: database_url.into(),
            redis_url: None,
            redis_tls: RedisTlsFiles::default(),
            redis_prefix: "pulso".into(),
            redis_ttl: Duration::from_secs(24 * 3600),
            redis_timeout: Duration::from_millis(100),
            cache_max_bytes: 64 * 1024 * 1024,
            cache_ttl: Duration::from_secs(3600),
            cors_origins: Vec::new(),
            cors_credentials: false,
            refresh_token: None,
            pipeline_file: "pipelines.yaml".into(),
            pool_size: 16,
            statement_timeout: Duration::from_secs(10),
            pool_wait: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            body_limit: 64 * 1024,
            max_list: 100,
            freshness_max_age: Duration::from_secs(6 * 3600),
            freshness_overrides: BTreeMap::new(),
            mart_schema: "mart".into(),
            access_log: true,
            shutdown_grace: Duration::from_secs(20),
            time_zone: chrono_tz::America::Lima,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
            monitor_token: None,
            private_endpoints: PrivateEndpoints::default(),
            public_error_detail: ErrorDetail::Class,
            redis_max_keys: 5_000,
            auth_failures_per_minute: 10,
        }
    }

    /// Read the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read the configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let database_url = match secret(&get, "DATABASE_URL", "DATABASE_URL_FILE")? {
            Some(url) => url,
            // libpq's conventions: PGHOST, PGUSER, … name the database by themselves.
            None if pulso_sinks::connect::env_names_a_database(get) => String::new(),
            None => {
                return Err(ConfigError {
                    var: "DATABASE_URL",
                    message: "is required (postgres://user@host:5432/db), or DATABASE_URL_FILE, \
                              or the PG* variables (PGHOST, PGUSER, PGDATABASE, …)"
                        .into(),
                });
            }
        };
        let mut c = ApiConfig::new(database_url);
        if let Some(v) = get("PULSO_API_BIND") {
            c.bind = v.parse().map_err(|_| ConfigError {
                var: "PULSO_API_BIND",
                message: format!("{v:?} is not an address such as 127.0.0.1:8000"),
            })?;
        }
        c.redis_url = secret(&get, "REDIS_URL", "REDIS_URL_FILE")?;
        c.redis_tls = RedisTlsFiles {
            ca: get("REDIS_TLS_CA_FILE").map(PathBuf::from),
            cert: get("REDIS_TLS_CERT_FILE").map(PathBuf::from),
            key: get("REDIS_TLS_KEY_FILE").map(PathBuf::from),
        };
        if let Some(v) = get("PULSO_API_REDIS_PREFIX") {
            c.redis_prefix = v;
        }
        if let Some(v) = get("PULSO_API_REDIS_TTL") {
            c.redis_ttl = duration("PULSO_API_REDIS_TTL", &v)?;
        }
        if let Some(v) = get("PULSO_API_REDIS_TIMEOUT_MS") {
            c.redis_timeout = Duration::from_millis(number("PULSO_API_REDIS_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("PULSO_API_CACHE_MAX_BYTES") {
            c.cache_max_bytes = number("PULSO_API_CACHE_MAX_BYTES", &v)?;
        }
        if let Some(v) = get("PULSO_API_CACHE_TTL") {
            c.cache_ttl = duration("PULSO_API_CACHE_TTL", &v)?;
        }
        if let Some(v) = get("PULSO_API_CORS_ORIGINS") {
            c.cors_origins = v
                .split(',')
                .map(|s| s.trim().trim_end_matches('/').to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        if let Some(v) = get("PULSO_API_CORS_CREDENTIALS") {
            c.cors_credentials = boolean("PULSO_API_CORS_CREDENTIALS", &v)?;
        }
        c.refresh_token = secret(
            &get,
            "PULSO_API_REFRESH_TOKEN",
            "PULSO_API_REFRESH_TOKEN_FILE",
        )?;
        if let Some(v) = get("PULSO_API_PIPELINE") {
            c.pipeline_file = v;
        }
        if let Some(v) = get("PULSO_API_POOL_SIZE") {
            c.pool_size = number("PULSO_API_POOL_SIZE", &v)? as usize;
        }
        if let Some(v) = get("PULSO_API_STATEMENT_TIMEOUT_MS") {
            c.statement_timeout =
                Duration::from_millis(number("PULSO_API_STATEMENT_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("PULSO_API_POOL_WAIT_MS") {
            c.pool_wait = Duration::from_millis(number("PULSO_API_POOL_WAIT_MS", &v)?);
        }
        if let Some(v) = get("PULSO_API_REQUEST_TIMEOUT_MS") {
            c.request_timeout = Duration::from_millis(number("PULSO_API_REQUEST_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("PULSO_API_BODY_LIMIT_BYTES") {
            c.body_limit = number("PULSO_API_BODY_LIMIT_BYTES", &v)? as usize;
        }
        if let Some(v) = get("PULSO_API_MAX_LIST") {
            c.max_list = number("PULSO_API_MAX_LIST", &v)? as usize;
        }
        if let Some(v) = get("PULSO_API_FRESHNESS_MAX_AGE") {
            c.freshness_max_age = duration("PULSO_API_FRESHNESS_MAX_AGE", &v)?;
        }
        if let Some(v) = get("PULSO_API_FRESHNESS_OVERRIDES") {
            for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (node, d) = item.split_once('=').ok_or_else(|| ConfigError {
                    var: "PULSO_API_FRESHNESS_OVERRIDES",
                    message: format!("{item:?} is not node=duration (e.g. trandeuda=3h)"),
                })?;
                c.freshness_overrides.insert(
                    node.trim().to_string(),
                    duration("PULSO_API_FRESHNESS_OVERRIDES", d.trim())?,
                );
            }
        }
        if let Some(v) = get("PULSO_API_MART_SCHEMA") {
            c.mart_schema = v;
        }
        if let Some(v) = get("PULSO_API_ACCESS_LOG") {
            c.access_log = boolean("PULSO_API_ACCESS_LOG", &v)?;
        }
        if let Some(v) = get("PULSO_API_SHUTDOWN_GRACE_SECS") {
            c.shutdown_grace = Duration::from_secs(number("PULSO_API_SHUTDOWN_GRACE_SECS", &v)?);
        }
        if let Some(v) = get("PULSO_TIME_ZONE") {
            c.time_zone = v.parse().map_err(|_| ConfigError {
                var: "PULSO_TIME_ZONE",
                message: format!("{v:?} is not an IANA time zone such as America/Lima"),
            })?;
        }
        if let Some(v) = get("PULSO_API_HEADER_TIMEOUT_MS") {
            c.header_timeout = Duration::from_millis(number("PULSO_API_HEADER_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("PULSO_API_IDLE_TIMEOUT_MS") {
            c.idle_timeout = Duration::from_millis(number("PULSO_API_IDLE_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("PULSO_API_MAX_CONNECTIONS") {
            c.max_connections = number("PULSO_API_MAX_CONNECTIONS", &v)? as usize;
        }
        c.monitor_token = secret(
            &get,
            "PULSO_API_MONITOR_TOKEN",
            "PULSO_API_MONITOR_TOKEN_FILE",
        )?;
        if let Some(v) = get("PULSO_API_PRIVATE_ENDPOINTS") {
            for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let p = &mut c.private_endpoints;
                match item.to_ascii_lowercase().as_str() {
                    "metrics" => p.metrics = true,
                    "docs" => p.docs = true,
                    "ready" => p.ready = true,
                    "status" => p.status = true,
                    _ => {
                        return Err(ConfigError {
                            var: "PULSO_API_PRIVATE_ENDPOINTS",
                            message: format!("{item:?} is not one of {}", PrivateEndpoints::NAMES),
                        });
                    }
                }
            }
        }
        if let Some(v) = get("PULSO_API_PUBLIC_ERROR_DETAIL") {
            c.public_error_detail = match v.to_ascii_lowercase().as_str() {
                "class" => ErrorDetail::Class,
                "full" => ErrorDetail::Full,
                _ => {
                    return Err(ConfigError {
                        var: "PULSO_API_PUBLIC_ERROR_DETAIL",
                        message: format!("{v:?} is not class or full"),
                    });
                }
            };
        }
        if let Some(v) = get("PULSO_API_REDIS_MAX_KEYS") {
            c.redis_max_keys = number("PULSO_API_REDIS_MAX_KEYS", &v)?;
        }
        if let Some(v) = get("PULSO_API_AUTH_FAILURES_PER_MINUTE") {
            c.auth_failures_per_minute =
                u32::try_from(number("PULSO_API_AUTH_FAILURES_PER_MINUTE", &v)?).map_err(|_| {
                    ConfigError {
                        var: "PULSO_API_AUTH_FAILURES_PER_MINUTE",
                        message: format!("{v:?} is too large"),
                    }
                })?;
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks that hold however the configuration was built.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cors_credentials && self.cors_origins.iter().any(|o| o == "*") {
            return Err(ConfigError {
                var: "PULSO_API_CORS_ORIGINS",
                message: "`*` cannot be combined with PULSO_API_CORS_CREDENTIALS=true; list the \
                          dashboard's origins"
                    .into(),
            });
        }
        for o in &self.cors_origins {
            if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
                return Err(ConfigError {
                    var: "PULSO_API_CORS_ORIGINS",
                    message: format!("{o:?} is not an origin such as https://dash.example.com"),
                });
            }
            if http::HeaderValue::from_str(o).is_err() {
                return Err(ConfigError {
                    var: "PULSO_API_CORS_ORIGINS",
                    message: format!("{o:?} is not a valid header value"),
                });
            }
        }
        if let Some(t) = &self.refresh_token
            && t.len() < 16
        {
            return Err(ConfigError {
                var: "PULSO_API_REFRESH_TOKEN",
                message: "must be at least 16 characters (use a random secret)".into(),
            });
        }
        if !is_identifier(&self.mart_schema) {
            return Err(ConfigError {
                var: "PULSO_API_MART_SCHEMA",
                message: format!(
                    "{:?} must be a plain identifier ([a-z_][a-z0-9_]*)",
                    self.mart_schema
                ),
            });
        }
        if self.pool_size == 0 {
            return Err(ConfigError {
                var: "PULSO_API_POOL_SIZE",
                message: "must be at least 1".into(),
            });
        }
        // A zero would silently disable a limit (PostgreSQL reads statement_timeout=0 as "none").
        for (var, d) in [
            ("PULSO_API_STATEMENT_TIMEOUT_MS", self.statement_timeout),
            ("PULSO_API_REQUEST_TIMEOUT_MS", self.request_timeout),
            ("PULSO_API_HEADER_TIMEOUT_MS", self.header_timeout),
            ("PULSO_API_IDLE_TIMEOUT_MS", self.idle_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError {
                    var,
                    message: "must be at least 1 ms (0 would disable the limit)".into(),
                });
            }
        }
        if self.idle_timeout <= self.request_timeout {
            return Err(ConfigError {
                var: "PULSO_API_IDLE_TIMEOUT_MS",
                message: format!(
                    "must be longer than PULSO_API_REQUEST_TIMEOUT_MS ({} ms), or a slow answer \
                     would be cut off as idle",
                    self.request_timeout.as_millis()
                ),
            });
        }
        if self.max_connections == 0 {
            return Err(ConfigError {
                var: "PULSO_API_MAX_CONNECTIONS",
                message: "must be at least 1".into(),
            });
        }
        if let Some(t) = &self.monitor_token
            && t.len() < 16
        {
            return Err(ConfigError {
                var: "PULSO_API_MONITOR_TOKEN",
                message: "must be at least 16 characters (use a random secret)".into(),
            });
        }
        if self.private_endpoints.any()
            && self.monitor_token.is_none()
            && self.refresh_token.is_none()
        {
            return Err(ConfigError {
                var: "PULSO_API_PRIVATE_ENDPOINTS",
                message: "needs PULSO_API_MONITOR_TOKEN (or PULSO_API_REFRESH_TOKEN): nobody \
                          could reach the private endpoints"
                    .into(),
            });
        }
        if self.redis_prefix.is_empty()
            || self
                .redis_prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ConfigError {
                var: "PULSO_API_REDIS_PREFIX",
                message: "must be non-empty without spaces".into(),
            });
        }
        Ok(())
    }

    /// The freshness limit of `node`.
    pub fn max_age(&self, node: &str) -> Duration {
        self.freshness_overrides
            .get(node)
            .copied()
            .unwrap_or(self.freshness_max_age)
    }
}

/// PEM files of a `rediss://` connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisTlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// `name` or the content of the file `file_var` names (see pulso_sinks::connect::secret).
fn secret(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    file_var: &'static str,
) -> Result<Option<String>, ConfigError> {
    pulso_sinks::connect::from_env_or_file(get, name).map_err(|e| ConfigError {
        var: match e {
            pulso_sinks::connect::SecretError::Both { .. } => name,
            _ => file_var,
        },
        message: e.to_string(),
    })
}

/// `[a-z_][a-z0-9_]*`, at most 63 bytes: safe to splice into SQL as an identifier.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}

fn number(var: &'static str, v: &str) -> Result<u64, ConfigError> {
    v.parse().map_err(|_| ConfigError {
        var,
        message: format!("{v:?} is not a non-negative integer"),
    })
}

fn boolean(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError {
            var,
            message: format!("{v:?} is not true/false"),
        }),
    }
}

/// `90`, `90s`, `15m`, `6h`, `2d`.
pub fn duration(var: &'static str, v: &str) -> Result<Duration, ConfigError> {
    let bad = || ConfigError {
        var,
        message: format!("{v:?} is not a duration such as 90s, 15m, 6h or 2d"),
    };
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<ApiConfig, ConfigError> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ApiConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn requires_database_url() {
        let e = cfg(&[]).unwrap_err();
        assert_eq!(e.var, "DATABASE_URL");
    }

    #[test]
    fn parses_everything() {
        let c = cfg(&[
            ("DATABASE_URL", "postgres://x@h/db"),
            ("PULSO_API_BIND", "0.0.0.0:9000"),
            (
                "PULSO_API_CORS_ORIGINS",
                "https://a.example, http://localhost:3000/",
            ),
            ("PULSO_API_FRESHNESS_OVERRIDES", "trandeuda=3h, pagos=30m"),
            ("PULSO_API_FRESHNESS_MAX_AGE", "2d"),
            ("PULSO_API_REFRESH_TOKEN", "0123456789abcdef0123"),
        ])
        .unwrap();
        assert_eq!(c.bind.port(), 9000);
        assert_eq!(
            c.cors_origins,
            vec!["https://a.example", "http://localhost:3000"]
        );
        assert_eq!(c.max_age("trandeuda"), Duration::from_secs(3 * 3600));
        assert_eq!(c.max_age("pagos"), Duration::from_secs(1800));
        assert_eq!(c.max_age("other"), Duration::from_secs(2 * 86400));
    }

    #[test]
    fn refuses_star_with_credentials_and_short_tokens() {
        let e = cfg(&[
            ("DATABASE_URL", "postgres://x@h/db"),
            ("PULSO_API_CORS_ORIGINS", "*"),
            ("PULSO_API_CORS_CREDENTIALS", "true"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "PULSO_API_CORS_ORIGINS");
        let e = cfg(&[
            ("DATABASE_URL", "postgres://x@h/db"),
            ("PULSO_API_REFRESH_TOKEN", "short"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "PULSO_API_REFRESH_TOKEN");
        let e = cfg(&[
            ("DATABASE_URL", "postgres://x@h/db"),
            ("PULSO_API_MART_SCHEMA", "mart; drop"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "PULSO_API_MART_SCHEMA");
    }

    /// Issue 14 item 14: `PULSO_API_STATEMENT_TIMEOUT_MS=0` used to disable the timeout.
    #[test]
    fn refuses_zero_timeouts_and_limits() {
        for var in [
            "PULSO_API_STATEMENT_TIMEOUT_MS",
            "PULSO_API_REQUEST_TIMEOUT_MS",
            "PULSO_API_HEADER_TIMEOUT_MS",
            "PULSO_API_IDLE_TIMEOUT_MS",
            "PULSO_API_MAX_CONNECTIONS",
        ] {
            let e = cfg(&[("DATABASE_URL", "postgres://x@h/db"), (var, "0")]).unwrap_err();
            assert_eq!(e.var, var);
            assert!(e.to_string().contains(var), "{e}");
        }
        let e = cfg(&[
            ("DATABASE_URL", "postgres://x@h/db"),
            ("PULSO_API_REQUEST_TIMEOUT_MS", "60000"),
            ("PULSO_API_IDLE_TIMEOUT_MS", "30000"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "PULSO_API_IDLE_TIMEOUT_MS");
    }

    #[test]
    fn private_endpoints_need_a_token() {
        let e = cfg(&[
            ("DATABASE_URL", "postgres://x@h/db"),
            ("PULSO_API_PRIVATE_ENDPOINTS", "metrics,status"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "PULSO_API_PRIVATE_ENDPOINTS");
        let e = cfg(&[
            ("DATABASE_URL", "postgres://x@h/db"),
            ("PULSO_API_PRIVATE_ENDPOINTS", "metrics,secrets"),
        ])
        .unwrap_err();
        assert!(e.message.contains("secrets"));
        let c = cfg(&[
            ("DATABASE_URL", "postgres://x@h/db"),
            ("PULSO_API_PRIVATE_ENDPOINTS", "metrics, Status"),
            ("PULSO_API_MONITOR_TOKEN", "monitor-0123456789"),
            ("PULSO_API_PUBLIC_ERROR_DETAIL", "full"),
        ])
        .unwrap();
        assert!(c.private_endpoints.metrics && c.private_endpoints.status);
        assert!(!c.private_endpoints.docs && !c.private_endpoints.ready);
        assert_eq!(c.public_error_detail, ErrorDetail::Full);
    }
}
