//! The API's configuration, read from the environment (see `.env.example`).
//!
//! Every variable has a safe default except `DATABASE_URL`; bad values fail at startup with a
//! message naming the variable.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::error::ConfigError;

/// Everything `serve` needs. Build it with [`ApiConfig::from_env`] or field by field in tests.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// `PULSO_API_BIND`: address to listen on.
    pub bind: SocketAddr,
    /// `DATABASE_URL`: the PostgreSQL holding the marts and `pulso_flow.*`.
    pub database_url: String,
    /// `REDIS_URL`: the shared second-level cache; `None` runs with the in-process cache only.
    pub redis_url: Option<String>,
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
    /// `PULSO_API_REFRESH_TOKEN`: bearer token of the ETL refresh endpoints; unset disables them.
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
    /// `PULSO_API_PUBLIC_ERROR_DETAIL`: what the operations page shows of a failed run's error:
    /// its class only (default) or the full message.
    pub public_error_detail: ErrorDetail,
}

/// How much of a failed run's error is shown without a token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorDetail {
    /// A short class (`source`, `file`, `timeout`, …); the text is in the logs and the ledger.
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
            public_error_detail: ErrorDetail::Class,
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
        let database_url = get("DATABASE_URL").ok_or_else(|| ConfigError {
            var: "DATABASE_URL",
            message: "is required (postgres://user@host:5432/db)".into(),
        })?;
        let mut c = ApiConfig::new(database_url);
        if let Some(v) = get("PULSO_API_BIND") {
            c.bind = v.parse().map_err(|_| ConfigError {
                var: "PULSO_API_BIND",
                message: format!("{v:?} is not an address such as 127.0.0.1:8000"),
            })?;
        }
        c.redis_url = get("REDIS_URL");
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
        c.refresh_token = get("PULSO_API_REFRESH_TOKEN");
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
}
