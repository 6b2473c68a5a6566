//! The router: the route table of [`crate::routes`] with the fallbacks, CORS and the
//! [`observe`](super::middleware::observe) layer around every request.

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::middleware::observe;
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::state::Shared;

pub(super) fn router(state: Shared) -> Router {
    let cfg = state.cfg.clone();
    let routes = crate::routes::routes()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let routes = match cors(&cfg) {
        Some(c) => routes.layer(c),
        None => routes,
    };
    routes
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

fn cors(cfg: &ApiConfig) -> Option<CorsLayer> {
    if cfg.cors_origins.is_empty() {
        return None;
    }
    let origins = if cfg.cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            cfg.cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("x-process-time"),
            ])
            .allow_credentials(cfg.cors_credentials)
            .max_age(Duration::from_secs(600)),
    )
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; see /docs".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("method not allowed for this endpoint; see /docs".into())
}
