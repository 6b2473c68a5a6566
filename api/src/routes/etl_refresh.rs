//! ETL refreshes started over HTTP (authenticated): `POST /api/v1/etl/refresh/dashboard`,
//! `/etl/refresh/table/{table_name}` and `/api/v1/refresh`, run by [`crate::refresh`].
//!
//! The token is checked before anything else of the request is read ([`RefreshAuth`] is an
//! extractor of the head); one run at a time per API process: while one runs, a request for
//! another is answered 409 with the running run's id — the tables asked for were not refreshed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::RefreshAuth;
use crate::error::{ApiError, ErrorBody};
use crate::http::params::{JsonBody, JsonObject, PathParam, Query};
use crate::refresh::{Running, Started};
use crate::state::Shared;

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

impl JsonObject for RefreshRequest {}

fn two() -> usize {
    2
}

#[derive(Serialize, ToSchema)]
pub struct RefreshResponse {
    /// The run id (as in `pulso_flow.runs` and `pulso-flow watermarks show`).
    pub pipeline_id: String,
    /// `started`.
    pub status: &'static str,
    pub tables_requested: Vec<String>,
    /// Every node the run covers (the requested ones and their dependants).
    pub nodes: Vec<String>,
    #[serde(serialize_with = "crate::http::ser::ts::serialize")]
    pub started_at: DateTime<Utc>,
    pub estimated_duration_minutes: usize,
}

/// The run that is already running (in a 409 answer).
#[derive(Serialize, ToSchema)]
pub struct RunningRun {
    pub run_id: String,
    #[serde(serialize_with = "crate::http::ser::ts::serialize")]
    pub started_at: DateTime<Utc>,
    /// The nodes it covers.
    pub tables: Vec<String>,
}

/// 409: another refresh is running; nothing was started. The error answer's fields plus the
/// running run.
#[derive(Serialize, ToSchema)]
pub struct RefreshConflict {
    /// Always `error`.
    pub status: &'static str,
    /// 409.
    pub code: u16,
    pub message: String,
    pub running: RunningRun,
}

fn respond(started: Started, requested: Vec<String>) -> Response {
    match started {
        Started::New(r) => axum::Json(RefreshResponse {
            pipeline_id: r.run_id,
            status: "started",
            estimated_duration_minutes: 2 * r.nodes.len().max(1),
            tables_requested: requested,
            nodes: r.nodes,
            started_at: r.started_at,
        })
        .into_response(),
        Started::AlreadyRunning(Running {
            run_id,
            started_at,
            nodes,
        }) => (
            StatusCode::CONFLICT,
            axum::Json(RefreshConflict {
                status: "error",
                code: 409,
                message: format!(
                    "refresh {run_id} is running; nothing was started, the tables asked for were \
                     not refreshed (retry when it has finished)"
                ),
                running: RunningRun {
                    run_id,
                    started_at,
                    tables: nodes,
                },
            }),
        )
            .into_response(),
    }
}

#[utoipa::path(post, path = "/api/v1/etl/refresh/dashboard", tag = "etl",
    request_body = RefreshRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Started", body = RefreshResponse),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 403, description = "Wrong token", body = ErrorBody),
        (status = 404, description = "Unknown table", body = ErrorBody),
        (status = 409, description = "Another refresh is running; nothing started", body = RefreshConflict),
        (status = 422, description = "An empty table list", body = ErrorBody),
        (status = 429, description = "Too many wrong tokens", body = ErrorBody)))]
pub async fn refresh_dashboard(
    State(st): State<Shared>,
    _auth: RefreshAuth,
    q: Query,
    body: JsonBody<RefreshRequest>,
) -> Result<Response, ApiError> {
    q.finish()?;
    let JsonBody(req) = body;
    if let Some(t) = &req.tables {
        crate::http::params::check_list_len("tables", t.len(), st.cfg.max_list)?;
        if t.is_empty() {
            return Err(ApiError::invalid(
                "tables",
                "tables: an empty list refreshes nothing; omit it (or null) to refresh everything",
            ));
        }
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
        (status = 404, body = ErrorBody), (status = 409, body = RefreshConflict),
        (status = 429, body = ErrorBody)))]
pub async fn refresh_table(
    State(st): State<Shared>,
    _auth: RefreshAuth,
    PathParam(table_name): PathParam,
    mut q: Query,
) -> Result<Response, ApiError> {
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
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = RefreshConflict), (status = 429, body = ErrorBody)))]
pub async fn refresh_all(
    State(st): State<Shared>,
    _auth: RefreshAuth,
    mut q: Query,
) -> Result<Response, ApiError> {
    let force = q.boolean(&["force"])?.unwrap_or(false);
    q.finish()?;
    let started = st.refresh.start(None, force, 2)?;
    Ok(respond(started, Vec::new()))
}
