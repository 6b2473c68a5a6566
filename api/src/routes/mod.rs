//! The route table: every path to its handler. Every data path is served with and without a
//! trailing slash.
//!
//! Route modules hold handlers, request types, parameter validation and OpenAPI annotations; what
//! they serve comes from the layers below ([`crate::marts`], [`crate::freshness`],
//! [`pulso_sinks::status`], [`crate::refresh`]). No module outside `routes/` and the router
//! ([`crate::app`]) names a route (`scripts/check-architecture.sh`).

use axum::Router;
use axum::routing::{MethodRouter, get, post};

use crate::error::ApiError;
use crate::marts::known::Dim;
use crate::state::Shared;

pub mod access;
pub mod assignment;
pub mod dashboard;
pub mod docs;
pub mod etl;
pub mod etl_refresh;
pub mod evolution;
pub mod filters;
pub mod operation;
pub mod ops;
pub mod productivity;
pub mod system;

/// 422 for a filter value that exists nowhere in the marts, before any cache key is made (the
/// known values are read only when some value is given).
pub(crate) async fn check_known(
    st: &Shared,
    checks: &[(Dim, &str, &[String])],
) -> Result<(), ApiError> {
    if checks.iter().all(|(_, _, values)| values.is_empty()) {
        return Ok(());
    }
    let known = st.known_values().await?;
    for (dim, parameter, values) in checks {
        known.check(*dim, parameter, values)?;
    }
    Ok(())
}

/// `path` and `path/` (or the reverse) to the same handlers.
fn both(router: Router<Shared>, path: &str, handler: MethodRouter<Shared>) -> Router<Shared> {
    let other = match path.strip_suffix('/') {
        Some(p) => p.to_string(),
        None => format!("{path}/"),
    };
    router.route(path, handler.clone()).route(&other, handler)
}

pub fn routes() -> Router<Shared> {
    let r = Router::new()
        .route("/", get(ops::root))
        .route("/health", get(system::health))
        .route("/ready", get(system::ready))
        .route("/metrics", get(system::metrics))
        .route("/api/v1/openapi.json", get(docs::openapi))
        .route("/docs", get(docs::docs))
        .route("/docs/", get(docs::docs))
        .route("/redoc", get(docs::redoc))
        .route(docs::SCALAR_JS, get(docs::scalar_js))
        .route(docs::REDOC_JS, get(docs::redoc_js));
    // The operations page (HTML for people; `/` answers it only to clients preferring HTML).
    let r = r
        .route("/ops", get(ops::ops))
        .route("/ops/", get(ops::ops))
        .route("/ops/nodes/{name}", get(ops::node_page))
        .route("/ops/runs/{run_id}", get(ops::run_page))
        .route("/ops/refresh", post(ops::refresh));
    let table: Vec<(&str, MethodRouter<Shared>)> = vec![
        ("/api/v1/health", get(system::api_health)),
        (
            "/api/v1/dashboard",
            get(dashboard::get_dashboard).post(dashboard::post_dashboard),
        ),
        ("/api/v1/filters", get(filters::filters)),
        (
            "/api/v1/evolution",
            get(evolution::get_evolution).post(evolution::post_evolution),
        ),
        ("/api/v1/evolution/carteras", get(evolution::carteras)),
        ("/api/v1/evolution/metrics", get(evolution::metrics)),
        (
            "/api/v1/assignment",
            get(assignment::get_assignment).post(assignment::post_assignment),
        ),
        ("/api/v1/assignment/summary", get(assignment::summary)),
        (
            "/api/v1/operation",
            get(operation::get_operation).post(operation::post_operation),
        ),
        ("/api/v1/operation/kpis", get(operation::kpis)),
        ("/api/v1/operation/channels", get(operation::channels)),
        (
            "/api/v1/productivity",
            get(productivity::get_productivity).post(productivity::post_productivity),
        ),
        ("/api/v1/productivity/agents", get(productivity::agents)),
        (
            "/api/v1/productivity/agents/{agent_id}",
            get(productivity::agent_detail),
        ),
        ("/api/v1/productivity/metrics", get(productivity::metrics)),
        ("/api/v1/etl/status", get(etl::status)),
        (
            "/api/v1/etl/status/table/{table_name}",
            get(etl::table_status_handler),
        ),
        (
            "/api/v1/etl/refresh/dashboard",
            post(etl_refresh::refresh_dashboard),
        ),
        (
            "/api/v1/etl/refresh/table/{table_name}",
            post(etl_refresh::refresh_table),
        ),
        ("/api/v1/refresh", post(etl_refresh::refresh_all)),
        // Per-group liveness aliases of Pulso-Back.
        ("/api/v1/evolution/health", get(system::group_health)),
        ("/api/v1/assignment/health", get(system::group_health)),
        ("/api/v1/operation/health", get(system::group_health)),
        ("/api/v1/productivity/health", get(system::group_health)),
        ("/api/v1/etl/health", get(system::group_health)),
    ];
    table
        .into_iter()
        .fold(r, |r, (path, handler)| both(r, path, handler))
}
