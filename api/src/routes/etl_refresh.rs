//! ETL refreshes started over HTTP (authenticated): `POST /api/v1/etl/refresh/dashboard`,
//! `/etl/refresh/table/{table_name}` and `/api/v1/refresh`, run by [`crate::refresh`].

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::http::auth::require_bearer;
use crate::http::params::{JsonBody, Query};
use crate::refresh::Started;
use crate::state::Shared;

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
