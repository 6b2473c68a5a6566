//! What every handler can reach ([`AppState`], shared as [`Shared`]) and the one way an answer is
//! served from the cache ([`AppState::cached`]).
//!
//! The state sits under the routes and the router and imports neither: it is built by
//! [`crate::app::Api::build`] and handed to the handlers by axum.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::cache::Cache;
use crate::config::ApiConfig;
use crate::db::Db;
use crate::error::ApiError;
use crate::http::json::JsonBytes;
use crate::http::params::Limits;
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
    pub sql: crate::marts::Sql,
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
            .get_or_compute(key, || async move {
                let value = compute().await?;
                serde_json::to_vec(&value)
                    .map(Bytes::from)
                    .map_err(ApiError::internal)
            })
            .await?;
        Ok(JsonBytes(bytes))
    }
}
