//! Liveness (`/health`, `/api/v1/health`, the per-group aliases), readiness (`/ready`) and
//! Prometheus metrics (`/metrics`).

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::access::Access;
use crate::error::{ApiError, ErrorBody};
use crate::freshness::{self, TableFreshness};
use crate::http::envelope::{Envelope, envelope};
use crate::state::Shared;

/// `/health`: the process is up. Never touches a dependency.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `healthy`.
    pub status: &'static str,
    pub service: &'static str,
    pub version: &'static str,
}

#[utoipa::path(get, path = "/health", tag = "system",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub async fn health() -> axum::Json<Health> {
    axum::Json(Health {
        status: "healthy",
        service: "pulso-flow",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// State of one dependency.
#[derive(Serialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase")]
pub struct DependencyCheck {
    /// `up`, `down` or `disabled`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadyChecks {
    pub postgres: DependencyCheck,
    /// Down means degraded: answers come from memory and PostgreSQL.
    pub redis: DependencyCheck,
    /// The LISTEN connection that learns of committed loads.
    pub listener: DependencyCheck,
}

/// `/ready`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ready {
    /// `ready`; `degraded` (Redis down, listener down or stale tables: answers still served);
    /// `unavailable` (PostgreSQL unreachable or not migrated: HTTP 503).
    pub status: &'static str,
    pub checks: ReadyChecks,
    /// The data version caches are keyed by.
    pub data_version: i64,
    pub tables: Vec<TableFreshness>,
    pub stale_tables: Vec<String>,
}

#[utoipa::path(get, path = "/ready", tag = "system",
    responses(
        (status = 200, description = "Ready or degraded", body = Ready),
        (status = 401, description = "Private on this server (PULSO_API_PRIVATE_ENDPOINTS) and no token", body = ErrorBody),
        (status = 503, description = "PostgreSQL unreachable", body = Ready)))]
pub async fn ready(State(st): State<Shared>, access: Access) -> Result<Response, ApiError> {
    access.require(st.cfg.private_endpoints.ready)?;
    let full = access.full_errors(&st);
    // Driver messages name hosts and ports: shown with the token only.
    let detail = |e: String| {
        if full {
            e
        } else {
            "unreachable (details in the server log, or send the monitor token)".to_string()
        }
    };
    let deadline = Duration::from_secs(2);
    let (pg, redis) = tokio::join!(st.db.ping(deadline), async {
        match st.cache.redis() {
            None => None,
            Some(r) => Some(r.ping().await),
        }
    });
    st.metrics
        .up
        .with_label_values(&["postgres"])
        .set(i64::from(pg.is_ok()));
    let postgres = match &pg {
        Ok(d) => DependencyCheck {
            status: "up",
            latency_ms: Some(d.as_secs_f64() * 1000.0),
            error: None,
        },
        Err(e) => DependencyCheck {
            status: "down",
            latency_ms: None,
            error: Some(detail(e.clone())),
        },
    };
    let redis = match redis {
        None => DependencyCheck {
            status: "disabled",
            latency_ms: None,
            error: None,
        },
        Some(Ok(d)) => DependencyCheck {
            status: "up",
            latency_ms: Some(d.as_secs_f64() * 1000.0),
            error: None,
        },
        Some(Err(e)) => DependencyCheck {
            status: "down",
            latency_ms: None,
            error: Some(detail(e)),
        },
    };
    let listener = DependencyCheck {
        status: if st.version.is_live() { "up" } else { "down" },
        latency_ms: None,
        error: None,
    };
    let mut unavailable = pg.is_err();
    let mut postgres = postgres;
    let tables = if pg.is_ok() {
        match freshness::of_every_node(&st.db, &st.cfg, &st.refresh.pipeline_nodes()).await {
            Ok(t) => t,
            Err(e) => {
                unavailable = true;
                postgres.error = Some(match e {
                    ApiError::Internal(_) => {
                        "pulso_flow state tables unreadable (run `pulso-flow migrate`)".into()
                    }
                    other => detail(other.to_string()),
                });
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let stale_tables: Vec<String> = tables
        .iter()
        .filter(|t| !t.fresh)
        .map(|t| t.node.clone())
        .collect();
    let degraded = redis.status == "down" || listener.status == "down" || !stale_tables.is_empty();
    let status = if unavailable {
        "unavailable"
    } else if degraded {
        "degraded"
    } else {
        "ready"
    };
    let body = Ready {
        status,
        checks: ReadyChecks {
            postgres,
            redis,
            listener,
        },
        data_version: st.version.last_known(),
        tables,
        stale_tables,
    };
    let code = if unavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok((code, axum::Json(body)).into_response())
}

#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain"),
        (status = 401, description = "Private on this server (PULSO_API_PRIVATE_ENDPOINTS) and no token", body = ErrorBody)))]
pub async fn metrics(
    State(st): State<Shared>,
    access: Access,
) -> Result<impl IntoResponse, ApiError> {
    access.require(st.cfg.private_endpoints.metrics)?;
    let mut text = st.metrics.render();
    // The gates of each node's last run, from the ledger; a scrape without them beats none.
    match pulso_sinks::status::node_status(&st.db, &st.refresh.pipeline_nodes()).await {
        Ok(nodes) => text.push_str(&crate::metrics::gate_metrics(&nodes)),
        Err(e) => tracing::warn!(error = %e, "metrics: could not read the run ledger"),
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    ))
}

/// `GET /api/v1/health` (and the per-group `…/health` aliases): static, like `/health`.
#[derive(Serialize, ToSchema)]
pub struct ApiHealth {
    pub status: &'static str,
    pub api_version: &'static str,
    pub openapi_docs: &'static str,
    #[serde(serialize_with = "crate::http::ser::ts::serialize")]
    pub timestamp: DateTime<Utc>,
}

#[utoipa::path(get, path = "/api/v1/health", tag = "system",
    responses((status = 200, description = "Static liveness of the API", body = ApiHealth)))]
pub async fn api_health() -> axum::Json<ApiHealth> {
    axum::Json(ApiHealth {
        status: "healthy",
        api_version: "v1",
        openapi_docs: "/docs",
        timestamp: Utc::now(),
    })
}

/// `…/health` of each endpoint group (Pulso-Back's aliases): static.
pub async fn group_health(uri: axum::http::Uri) -> axum::Json<Envelope<serde_json::Value>> {
    let service = uri
        .path()
        .trim_end_matches('/')
        .trim_end_matches("/health")
        .rsplit('/')
        .next()
        .unwrap_or("api")
        .to_string();
    axum::Json(envelope(
        "Service is healthy",
        serde_json::json!({
            "status": "healthy",
            "service": service,
            "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }),
    ))
}
