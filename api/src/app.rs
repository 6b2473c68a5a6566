//! The application: shared state, router, middleware and the server loop.

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, Response, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use bytes::Bytes;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

use crate::cache::{Cache, RedisCache};
use crate::config::ApiConfig;
use crate::db::Db;
use crate::error::{ApiError, ServeError};
use crate::metrics::Metrics;
use crate::params::Limits;
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

/// A serialised JSON answer.
pub struct JsonBytes(pub Bytes);

impl IntoResponse for JsonBytes {
    fn into_response(self) -> axum::response::Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.0,
        )
            .into_response()
    }
}

/// A built application: its router and handles to stop its background tasks.
pub struct Api {
    pub router: Router,
    pub state: Shared,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Api {
    /// Connect nothing eagerly: the pool, Redis and the listener all connect lazily or in the
    /// background, so the API starts (and `/health` answers) even while a dependency is down.
    pub async fn build(cfg: ApiConfig) -> Result<Api, ServeError> {
        cfg.validate()?;
        let cfg = Arc::new(cfg);
        let metrics = Metrics::new();
        let db = Db::new(
            &cfg.database_url,
            cfg.pool_size,
            cfg.statement_timeout,
            cfg.pool_wait,
            metrics.clone(),
        )?;
        let redis = match &cfg.redis_url {
            Some(url) => Some(
                RedisCache::new(
                    url,
                    &cfg.redis_tls,
                    cfg.redis_ttl,
                    cfg.redis_timeout,
                    metrics.clone(),
                )
                .map_err(|message| crate::error::ConfigError {
                    var: "REDIS_URL",
                    message,
                })?,
            ),
            None => None,
        };
        let cache = Cache::new(
            cfg.cache_max_bytes,
            cfg.cache_ttl,
            redis.clone(),
            metrics.clone(),
        );
        let version = DataVersion::new(db.clone(), &cfg.database_url, metrics.clone());
        let refresh = Refresher::new(cfg.pipeline_file.clone(), cfg.database_url.clone());
        let openapi = Bytes::from(crate::openapi::json());
        let state = Arc::new(AppState {
            sql: crate::marts::Sql::new(&cfg.mart_schema),
            cfg: cfg.clone(),
            db,
            cache,
            version: version.clone(),
            metrics,
            refresh,
            openapi,
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(
            version.listen(cfg.database_url.clone(), shutdown_rx.clone()),
        )];
        if let Some(r) = redis {
            tasks.push(tokio::spawn(r.watch_health(shutdown_rx.clone())));
        }
        let router = router(state.clone());
        Ok(Api {
            router,
            state,
            shutdown,
            tasks,
        })
    }

    /// Serve on `listener` until `signal` resolves, then stop accepting, let in-flight requests
    /// finish (at most the configured grace period), cancel a running refresh and stop the
    /// background tasks.
    pub async fn serve(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let grace = self.state.cfg.shutdown_grace;
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let mut graceful_rx = stop_rx.clone();
        tokio::spawn(async move {
            signal.await;
            let _ = stop_tx.send(true);
        });
        let server = axum::serve(listener, self.router.clone())
            .with_graceful_shutdown(async move {
                let _ = graceful_rx.wait_for(|s| *s).await;
                tracing::info!("shutting down: finishing in-flight requests");
            })
            .into_future();
        tokio::pin!(server);
        let outcome = tokio::select! {
            r = &mut server => r.map_err(ServeError::Io),
            _ = async {
                let _ = stop_rx.wait_for(|s| *s).await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(grace_secs = grace.as_secs(), "grace period over; dropping open connections");
                Ok(())
            }
        };
        self.state.refresh.close();
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        outcome
    }
}

/// Bind `cfg.bind` and serve until SIGINT/SIGTERM.
pub async fn serve(cfg: ApiConfig) -> Result<(), ServeError> {
    let addr = cfg.bind;
    let api = Api::build(cfg).await?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    tracing::info!(%addr, "pulso-flow API listening");
    api.serve(listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn router(state: Shared) -> Router {
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

async fn method_not_allowed() -> impl IntoResponse {
    let mut r = ApiError::BadRequest {
        parameter: None,
        message: "method not allowed for this endpoint; see /docs".into(),
    }
    .into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_PROCESS_TIME: HeaderName = HeaderName::from_static("x-process-time");

/// Request id, timeout, metrics, security headers and the access log, in one layer.
async fn observe(State(st): State<Shared>, req: Request, next: Next) -> Response<Body> {
    let t0 = Instant::now();
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty()
                && b.len() <= 64
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("uuid header")
        });
    let method = req.method().clone();
    let endpoint: Arc<str> = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| Arc::from(p.as_str()))
        .unwrap_or_else(|| Arc::from("unmatched"));
    let path_and_query = st
        .cfg
        .access_log
        .then(|| req.uri().path_and_query().map(|p| p.as_str().to_string()))
        .flatten();
    st.metrics.active.inc();
    let span = tracing::info_span!("request", request_id = %request_id.to_str().unwrap_or(""));
    let timeout = st.cfg.request_timeout;
    let result = tokio::time::timeout(timeout, next.run(req))
        .instrument(span)
        .await;
    st.metrics.active.dec();
    let mut response = match result {
        Ok(r) => r,
        Err(_) => ApiError::Unavailable(format!(
            "the request did not finish within {} ms",
            timeout.as_millis()
        ))
        .into_response(),
    };
    let elapsed = t0.elapsed();
    let status = response.status();
    st.metrics
        .requests
        .with_label_values(&[method.as_str(), &endpoint, status.as_str()])
        .inc();
    st.metrics
        .latency
        .with_label_values(&[method.as_str(), &endpoint])
        .observe(elapsed.as_secs_f64());
    let h = response.headers_mut();
    h.insert(X_REQUEST_ID.clone(), request_id.clone());
    if let Ok(v) = HeaderValue::from_str(&format!("{:.6}", elapsed.as_secs_f64())) {
        h.insert(X_PROCESS_TIME.clone(), v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(pq) = path_and_query {
        tracing::info!(
            target: "pulso_api::access",
            request_id = %request_id.to_str().unwrap_or(""),
            method = %method,
            path = %crate::params::safe_text(&pq),
            endpoint = %endpoint,
            status = status.as_u16(),
            duration_us = elapsed.as_micros() as u64,
            "request"
        );
    }
    response
}
