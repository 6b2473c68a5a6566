//! What every handler can reach ([`AppState`], shared as [`Shared`]) and the one way an answer is
//! served from the cache ([`AppState::cached`]).
//!
//! The state sits under the routes and the router and imports neither: it is built by
//! [`crate::app::Api::build`] and handed to the handlers by axum.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use chrono::NaiveDate;
use serde::Serialize;

use crate::cache::Cache;
use crate::config::ApiConfig;
use crate::db::Db;
use crate::error::ApiError;
use crate::http::auth::FailureLimiter;
use crate::http::json::JsonBytes;
use crate::http::params::Limits;
use crate::marts::Marts;
use crate::marts::known::KnownValues;
use crate::marts::latest::Latest;
use crate::metrics::Metrics;
use crate::refresh::Refresher;
use crate::version::DataVersion;

/// Everything a handler can reach.
pub struct AppState {
    pub cfg: Arc<ApiConfig>,
    pub db: Db,
    pub cache: Cache,
    pub version: Arc<DataVersion>,
    pub metrics: Metrics,
    pub refresh: Arc<Refresher>,
    /// `/api/v1/openapi.json`, serialised once.
    pub openapi: Bytes,
    /// Every query on the marts.
    pub marts: Marts,
    /// Wrong tokens per client address (`PULSO_API_AUTH_FAILURES_PER_MINUTE`).
    pub auth_failures: FailureLimiter,
}

pub type Shared = Arc<AppState>;

impl Limits for Shared {
    fn max_list(&self) -> usize {
        self.cfg.max_list
    }
    fn body_limit(&self) -> usize {
        self.cfg.body_limit
    }
}

impl AppState {
    /// Serve `route` for the normalised `params` from the cache, computing it with `compute` on a
    /// miss. The key carries the data version, so a commit makes every older entry unreachable.
    pub async fn cached<P, T, F, Fut>(
        &self,
        route: &'static str,
        params: &P,
        compute: F,
    ) -> Result<JsonBytes, ApiError>
    where
        P: Serialize,
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let version = self.version.current().await;
        let params = serde_json::to_string(params).map_err(ApiError::internal)?;
        let key = format!("{}:{version}:{route}?{params}", self.cfg.redis_prefix);
        let bytes = self
            .cache
            .get_or_compute(&version, key, || async move {
                let value = compute().await?;
                serde_json::to_vec(&value)
                    .map(Bytes::from)
                    .map_err(ApiError::internal)
            })
            .await?;
        Ok(JsonBytes(bytes))
    }

    /// The values that exist in the marts at the current data version: filter values are
    /// checked against them before a cache key is made ([`crate::marts::known`]).
    pub async fn known_values(&self) -> Result<Arc<KnownValues>, ApiError> {
        let version = self.version.current().await;
        self.marts.known_values(&version).await
    }

    /// The latest date of `which` ([`Marts::latest`] relative to today) through the cache, so
    /// that requests with a default date look it up once per data version and day. The cached
    /// value is the date's text (or null), shared with other API instances through Redis.
    pub async fn latest_cached(&self, which: Latest) -> Result<Option<NaiveDate>, ApiError> {
        let route = match which {
            Latest::Photo => "meta:latest_photo",
            Latest::OperationDay => "meta:latest_operation",
            Latest::ProductivityDay => "meta:latest_productivity",
            Latest::AssignmentMonth => "meta:latest_month",
        };
        let today = self.marts.today();
        let bytes = self
            .cached(route, &today.to_string(), || async {
                let d = self.marts.latest(which, today).await?;
                Ok(d.map(|d| d.to_string()))
            })
            .await?;
        let d: Option<String> = serde_json::from_slice(&bytes.0).map_err(ApiError::internal)?;
        Ok(d.and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()))
    }
}
