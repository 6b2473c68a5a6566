//! ETL status (watermarks, the run ledger, freshness) and refresh (authenticated).
//!
//! Field names follow the Pulso-Back contract of these endpoints (snake_case, api.md §9).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use pulso_sinks::status::{self, NodeStatus};

use crate::error::{ApiError, ErrorBody};
use crate::http::auth::require_bearer;
use crate::http::params::{JsonBody, Query};
use crate::refresh::Started;
use crate::routes::system::TableFreshness;
use crate::state::Shared;

async fn nodes(st: &Shared) -> Result<Vec<NodeStatus>, ApiError> {
    status::node_status(&st.db, &st.refresh.pipeline_nodes()).await
}

fn freshness_of(st: &Shared, n: &NodeStatus, now: DateTime<Utc>) -> TableFreshness {
    let max_age = st.cfg.max_age(&n.node).as_secs() as i64;
    let age = n.last_success_at.map(|t| (now - t).num_seconds().max(0));
    TableFreshness {
        node: n.node.clone(),
        last_success_at: n.last_success_at,
        age_seconds: age,
        max_age_seconds: max_age,
        fresh: age.is_some_and(|a| a <= max_age),
    }
}

/// Freshness of every known node (for `/ready`).
pub async fn freshness(st: &Shared) -> Result<Vec<TableFreshness>, ApiError> {
    let now = Utc::now();
    Ok(nodes(st)
        .await?
        .iter()
        .map(|n| freshness_of(st, n, now))
        .collect())
}

/// One node in `/api/v1/etl/status`.
#[derive(Serialize, ToSchema)]
pub struct TableStatus {
    pub table_name: String,
    /// `table` or `sql` (aux/mart build); null if it never ran.
    pub kind: Option<String>,
    pub target: Option<String>,
    /// Status of its last run: `ok`, `failed`, `skipped`, `cancelled`, or `never`.
    pub status: String,
    /// Watermark (greatest incremental value loaded) and its type.
    pub watermark: Option<String>,
    pub watermark_type: Option<String>,
    /// `ok`, `set` or `reset` (an operator changed it).
    pub watermark_status: Option<String>,
    pub data_version: Option<i64>,
    pub last_run_id: Option<String>,
    /// When its last run started.
    #[serde(serialize_with = "crate::http::ser::ts_opt::serialize")]
    pub last_extracted: Option<DateTime<Utc>>,
    /// Rows inserted + updated by its last run.
    pub records_count: Option<i64>,
    pub extraction_duration_seconds: Option<f64>,
    pub error_message: Option<String>,
    /// When its last successful run finished.
    #[serde(serialize_with = "crate::http::ser::ts_opt::serialize")]
    pub last_success: Option<DateTime<Utc>>,
    pub age_seconds: Option<i64>,
    pub max_age_seconds: i64,
    pub fresh: bool,
    /// No schedule is known to the API: always null.
    #[serde(serialize_with = "crate::http::ser::ts_opt::serialize")]
    pub next_scheduled: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct RecentActivity {
    pub table_name: String,
    pub status: String,
    #[serde(serialize_with = "crate::http::ser::ts::serialize")]
    pub timestamp: DateTime<Utc>,
    pub records: i64,
    /// Seconds.
    pub duration: f64,
}

#[derive(Serialize, ToSchema)]
pub struct RunRow {
    pub run_id: String,
    pub pipeline: String,
    /// `running`, `ok`, `failed` or `cancelled`.
    pub status: String,
    #[serde(serialize_with = "crate::http::ser::ts::serialize")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::http::ser::ts_opt::serialize")]
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct RunningRefresh {
    pub run_id: String,
    #[serde(serialize_with = "crate::http::ser::ts::serialize")]
    pub started_at: DateTime<Utc>,
    pub tables: Vec<String>,
}

/// `GET /api/v1/etl/status`.
#[derive(Serialize, ToSchema)]
pub struct EtlStatusResponse {
    /// `healthy` (no node's last run failed and all fresh) or `degraded`.
    pub status: &'static str,
    #[serde(serialize_with = "crate::http::ser::ts_opt::serialize")]
    pub last_updated: Option<DateTime<Utc>>,
    pub total_tables: usize,
    pub successful_tables: usize,
    pub failed_tables: usize,
    pub stale_tables: usize,
    /// Runs marked `running` in the ledger.
    pub running_extractions: usize,
    /// The source tables (table nodes).
    pub dashboard_tables: Vec<String>,
    pub recent_activity: Vec<RecentActivity>,
    pub tables: Vec<TableStatus>,
    pub runs: Vec<RunRow>,
    /// The refresh this API instance started, while it runs.
    pub running_refresh: Option<RunningRefresh>,
    pub data_version: i64,
}

fn table_status(st: &Shared, n: NodeStatus, now: DateTime<Utc>) -> TableStatus {
    let f = freshness_of(st, &n, now);
    TableStatus {
        status: n.last_status.clone().unwrap_or_else(|| "never".into()),
        kind: n.last_kind,
        target: n.target,
        watermark: n.watermark,
        watermark_type: n.inc_type,
        watermark_status: n.watermark_status,
        data_version: n.data_version,
        last_run_id: n.last_run_id,
        last_extracted: n.last_started_at,
        records_count: n.last_records,
        extraction_duration_seconds: n.last_duration_ms.map(|ms| ms as f64 / 1000.0),
        error_message: n.last_error,
        last_success: n.last_success_at,
        age_seconds: f.age_seconds,
        max_age_seconds: f.max_age_seconds,
        fresh: f.fresh,
        next_scheduled: None,
        table_name: n.node,
    }
}

#[utoipa::path(get, path = "/api/v1/etl/status", tag = "etl",
    responses((status = 200, body = EtlStatusResponse), (status = 503, body = ErrorBody)))]
pub async fn status(
    State(st): State<Shared>,
    q: Query,
) -> Result<axum::Json<EtlStatusResponse>, ApiError> {
    q.finish()?;
    let now = Utc::now();
    let (nodes, runs, activity) = tokio::try_join!(
        nodes(&st),
        status::recent_runs(&st.db),
        status::recent_activity(&st.db),
    )?;
    let tables: Vec<TableStatus> = nodes
        .into_iter()
        .map(|n| table_status(&st, n, now))
        .collect();
    let failed = tables.iter().filter(|t| t.status == "failed").count();
    let successful = tables.iter().filter(|t| t.status == "ok").count();
    let stale = tables.iter().filter(|t| !t.fresh).count();
    let runs: Vec<RunRow> = runs
        .into_iter()
        .map(|r| RunRow {
            run_id: r.run_id,
            pipeline: r.pipeline,
            status: r.status,
            started_at: r.started_at,
            finished_at: r.finished_at,
        })
        .collect();
    Ok(axum::Json(EtlStatusResponse {
        status: if failed == 0 && stale == 0 {
            "healthy"
        } else {
            "degraded"
        },
        last_updated: tables.iter().filter_map(|t| t.last_success).max(),
        total_tables: tables.len(),
        successful_tables: successful,
        failed_tables: failed,
        stale_tables: stale,
        running_extractions: runs.iter().filter(|r| r.status == "running").count(),
        dashboard_tables: tables
            .iter()
            .filter(|t| t.kind.as_deref() == Some("table"))
            .map(|t| t.table_name.clone())
            .collect(),
        recent_activity: activity
            .into_iter()
            .map(|a| RecentActivity {
                table_name: a.node,
                status: a.status,
                timestamp: a.started_at,
                records: a.records.unwrap_or(0),
                duration: a.duration_ms as f64 / 1000.0,
            })
            .collect(),
        tables,
        runs,
        running_refresh: st.refresh.running().map(|r| RunningRefresh {
            run_id: r.run_id,
            started_at: r.started_at,
            tables: r.nodes,
        }),
        data_version: st.version.last_known(),
    }))
}

#[utoipa::path(get, path = "/api/v1/etl/status/table/{table_name}", tag = "etl",
    params(("table_name" = String, Path, description = "A pipeline node")),
    responses((status = 200, body = TableStatus), (status = 404, body = ErrorBody)))]
pub async fn table_status_handler(
    State(st): State<Shared>,
    Path(table_name): Path<String>,
) -> Result<axum::Json<TableStatus>, ApiError> {
    let now = Utc::now();
    let node = nodes(&st)
        .await?
        .into_iter()
        .find(|n| n.node == table_name)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "table {:?} is neither in the pipeline nor in the ledger",
                crate::http::params::safe_text(&table_name)
            ))
        })?;
    Ok(axum::Json(table_status(&st, node, now)))
}

/// 401 without a bearer token, 403 with a wrong one (see [`require_bearer`]).
fn authorize(st: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    require_bearer(headers, st.cfg.refresh_token.as_deref())
}

/// Body of `POST /api/v1/etl/refresh/dashboard`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Re-read the chosen tables whole (`--full-refresh`).
    #[serde(default)]
    pub force: bool,
    /// Pipeline nodes to load; their dependants (aux/mart builds) run too. Null: everything.
    #[serde(default)]
    pub tables: Option<Vec<String>>,
    /// Nodes run at the same time (1–8).
    #[serde(default = "two")]
    pub max_concurrent: usize,
}

fn two() -> usize {
    2
}

#[derive(Serialize, ToSchema)]
pub struct RefreshResponse {
    /// The run id (as in `pulso_flow.runs` and `pulso-flow watermarks show`).
    pub pipeline_id: String,
    /// `started`, or `running` when a refresh was already running (its id is returned).
    pub status: &'static str,
    pub tables_requested: Vec<String>,
    /// Every node the run covers (the requested ones and their dependants).
    pub nodes: Vec<String>,
    #[serde(serialize_with = "crate::http::ser::ts::serialize")]
    pub started_at: DateTime<Utc>,
    pub estimated_duration_minutes: usize,
}

fn respond(started: Started, requested: Vec<String>) -> axum::Json<RefreshResponse> {
    let (status, r) = match started {
        Started::New(r) => ("started", r),
        Started::AlreadyRunning(r) => ("running", r),
    };
    axum::Json(RefreshResponse {
        pipeline_id: r.run_id,
        status,
        estimated_duration_minutes: 2 * r.nodes.len().max(1),
        tables_requested: requested,
        nodes: r.nodes,
        started_at: r.started_at,
    })
}

#[utoipa::path(post, path = "/api/v1/etl/refresh/dashboard", tag = "etl",
    request_body = RefreshRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Started, or the running refresh", body = RefreshResponse),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 403, description = "Wrong token", body = ErrorBody),
        (status = 404, description = "Unknown table", body = ErrorBody)))]
pub async fn refresh_dashboard(
    State(st): State<Shared>,
    headers: HeaderMap,
    q: Query,
    body: JsonBody<RefreshRequest>,
) -> Result<axum::Json<RefreshResponse>, ApiError> {
    authorize(&st, &headers)?;
    q.finish()?;
    let JsonBody(req) = body;
    if let Some(t) = &req.tables {
        crate::http::params::check_list_len("tables", t.len(), st.cfg.max_list)?;
    }
    if !(1..=8).contains(&req.max_concurrent) {
        return Err(ApiError::invalid(
            "max_concurrent",
            "max_concurrent must be between 1 and 8",
        ));
    }
    let started = st
        .refresh
        .start(req.tables.as_deref(), req.force, req.max_concurrent)?;
    Ok(respond(started, req.tables.unwrap_or_default()))
}

#[utoipa::path(post, path = "/api/v1/etl/refresh/table/{table_name}", tag = "etl",
    params(("table_name" = String, Path, description = "A pipeline node"),
           ("force" = Option<bool>, Query, description = "Re-read the table whole")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = RefreshResponse),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn refresh_table(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(table_name): Path<String>,
    mut q: Query,
) -> Result<axum::Json<RefreshResponse>, ApiError> {
    authorize(&st, &headers)?;
    let force = q.boolean(&["force"])?.unwrap_or(false);
    q.finish()?;
    let tables = vec![table_name];
    let started = st.refresh.start(Some(&tables), force, 2)?;
    Ok(respond(started, tables))
}

/// `POST /api/v1/refresh` (dashboard group): the same as refreshing everything, authenticated.
#[utoipa::path(post, path = "/api/v1/refresh", tag = "etl",
    params(("force" = Option<bool>, Query, description = "Full refresh")),
    security(("bearer" = [])),
    responses((status = 200, body = RefreshResponse),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn refresh_all(
    State(st): State<Shared>,
    headers: HeaderMap,
    mut q: Query,
) -> Result<axum::Json<RefreshResponse>, ApiError> {
    authorize(&st, &headers)?;
    let force = q.boolean(&["force"])?.unwrap_or(false);
    q.finish()?;
    let started = st.refresh.start(None, force, 2)?;
    Ok(respond(started, Vec::new()))
}
