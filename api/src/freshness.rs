//! Freshness of each pipeline node's data: when its last successful load or build finished,
//! against its limit (`PULSO_API_FRESHNESS_MAX_AGE`, `PULSO_API_FRESHNESS_OVERRIDES`). Shared by
//! `/ready` and `/api/v1/etl/status`, from the typed ledger rows of [`pulso_sinks::status`].

use chrono::{DateTime, Utc};
use pulso_sinks::status::{self, NodeStatus};
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::ApiConfig;
use crate::db::Db;
use crate::error::ApiError;

/// Freshness of one pipeline node's data.
#[derive(Serialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase")]
pub struct TableFreshness {
    pub node: String,
    /// When its last successful load or build finished.
    #[serde(serialize_with = "crate::http::ser::ts_opt::serialize")]
    pub last_success_at: Option<DateTime<Utc>>,
    pub age_seconds: Option<i64>,
    pub max_age_seconds: i64,
    /// Loaded successfully within `maxAgeSeconds`.
    pub fresh: bool,
}

/// The freshness of node `n` at `now`.
pub fn of_node(cfg: &ApiConfig, n: &NodeStatus, now: DateTime<Utc>) -> TableFreshness {
    let max_age = cfg.max_age(&n.node).as_secs() as i64;
    let age = n.last_success_at.map(|t| (now - t).num_seconds().max(0));
    TableFreshness {
        node: n.node.clone(),
        last_success_at: n.last_success_at,
        age_seconds: age,
        max_age_seconds: max_age,
        fresh: age.is_some_and(|a| a <= max_age),
    }
}

/// Freshness of every node of the pipeline file (`pipeline_nodes`) and every node with a
/// watermark, ordered by name.
pub async fn of_every_node(
    db: &Db,
    cfg: &ApiConfig,
    pipeline_nodes: &[String],
) -> Result<Vec<TableFreshness>, ApiError> {
    let now = Utc::now();
    Ok(status::node_status(db, pipeline_nodes)
        .await?
        .iter()
        .map(|n| of_node(cfg, n, now))
        .collect())
}
