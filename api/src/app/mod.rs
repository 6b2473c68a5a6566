//! The top of the crate: the application ([`Api`]: state, router, background tasks) and the server
//! loop. Its parts: `router.rs` (the route table of [`crate::routes`] with fallbacks and CORS),
//! `middleware.rs` (request id, timeout, metrics, security headers and access log around every
//! request) and [`openapi`] (the document). Only this module and [`crate::routes`] name routes.

mod middleware;
pub mod openapi;
mod router;
pub mod server;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cache::{Cache, RedisCache};
use crate::config::ApiConfig;
use crate::db::Db;
use crate::error::ServeError;
use crate::marts::Marts;
use crate::metrics::Metrics;
use crate::refresh::Refresher;
use crate::state::{AppState, Shared};
use crate::version::DataVersion;

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
        if let Some(r) = &redis {
            r.set_max_keys(cfg.redis_max_keys);
        }
        let cache = Cache::new(
            cfg.cache_max_bytes,
            cfg.cache_ttl,
            redis.clone(),
            metrics.clone(),
        );
        let version = DataVersion::new(db.clone(), &cfg.database_url, metrics.clone());
        let refresh = Refresher::new(cfg.pipeline_file.clone(), cfg.database_url.clone());
        let openapi = Bytes::from(openapi::json());
        let state = Arc::new(AppState {
            marts: Marts::new(db.clone(), &cfg.mart_schema, cfg.time_zone),
            cfg: cfg.clone(),
            db,
            cache,
            version: version.clone(),
            metrics,
            refresh,
            openapi,
            auth_failures: crate::http::auth::FailureLimiter::new(cfg.auth_failures_per_minute),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(
            version.listen(cfg.database_url.clone(), shutdown_rx.clone()),
        )];
        if let Some(r) = redis {
            tasks.push(tokio::spawn(r.watch_health(shutdown_rx.clone())));
        }
        let router = router::router(state.clone());
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
        let cfg = &self.state.cfg;
        let limits = server::ConnLimits {
            header_timeout: cfg.header_timeout,
            idle_timeout: cfg.idle_timeout,
            max_connections: cfg.max_connections,
            grace: cfg.shutdown_grace,
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            signal.await;
            let _ = stop_tx.send(true);
        });
        let outcome = server::run(
            listener,
            self.router.clone(),
            limits,
            stop_rx,
            self.state.metrics.clone(),
        )
        .await
        .map_err(ServeError::Io);
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
