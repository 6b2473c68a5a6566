//! The PostgreSQL read pool.
//!
//! Connections are opened read-only (`default_transaction_read_only`), in UTC, with a server-side
//! `statement_timeout`; the settings travel in the startup packet, so they cost no round trip.
//! Every query goes through [`Db::query`]: a cached prepared statement with bound parameters (no
//! value is ever spliced into SQL text) and its time recorded in `pulso_api_db_query_seconds`.
//! The same path runs the status reads of `pulso_sinks::status` (the pool is their
//! [`StatusReader`]).

use std::future::Future;
use std::time::{Duration, Instant};

use deadpool_postgres::{Connect, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::future::BoxFuture;
use pulso_sinks::connect::{PgConnectConfig, PgConnector};
use pulso_sinks::status::StatusReader;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::{ApiError, ServeError};
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct Db {
    pool: Pool,
    metrics: Metrics,
}

impl Db {
    pub fn new(
        url: &str,
        size: usize,
        statement_timeout: Duration,
        wait: Duration,
        metrics: Metrics,
    ) -> Result<Self, ServeError> {
        // The one place that resolves URLs, the PG* environment and TLS (pulso_sinks::connect).
        let mut config = PgConnectConfig::from_env(url)
            .map_err(|e| ServeError::Database(format!("DATABASE_URL: {e}")))?;
        config.fallback_application_name("pulso-flow-api");
        let connector = PgConnector::new(config)
            .map_err(|e| ServeError::Database(format!("DATABASE_URL: {e}")))?;
        let mut pg = connector.config().tokio_config().clone();
        let ours = format!(
            "-c statement_timeout={} -c default_transaction_read_only=on -c TimeZone=UTC",
            statement_timeout.as_millis()
        );
        // PGOPTIONS / options= first, ours last: they win where both set the same thing.
        pg.options(match pg.get_options() {
            Some(theirs) => format!("{theirs} {ours}"),
            None => ours,
        });
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(Duration::from_secs(5));
        }
        let manager = Manager::from_connect(
            pg,
            PoolConnect(connector),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(size)
            .wait_timeout(Some(wait))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| ServeError::Database(e.to_string()))?;
        Ok(Db { pool, metrics })
    }

    /// Run `sql` (a static statement) with bound `params`; `name` labels the timing metric.
    ///
    /// Every statement here is a read on a read-only connection, so it is idempotent: when the
    /// connection is lost under it (the backend terminated, a failover, a restart) it is retried
    /// once on a fresh connection, and the broken one is dropped from the pool rather than
    /// returned to it. A second loss answers 503 (see [`crate::error::connection_lost`]).
    pub async fn query(
        &self,
        name: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, ApiError> {
        match self.query_once(name, sql, params).await {
            Err(Attempt::Lost(first)) => {
                tracing::info!(query = name, error = %first, "connection lost; retrying the read once");
                self.query_once(name, sql, params)
                    .await
                    .map_err(Attempt::into_error)
            }
            other => other.map_err(Attempt::into_error),
        }
    }

    async fn query_once(
        &self,
        name: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Attempt> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| Attempt::Failed(e.into()))?;
        let t0 = Instant::now();
        let result = async {
            let stmt = client.prepare_cached(sql).await?;
            client.query(&stmt, params).await
        }
        .await;
        self.metrics
            .db_query_seconds
            .with_label_values(&[name])
            .observe(t0.elapsed().as_secs_f64());
        result.map_err(|e| {
            if crate::error::connection_lost(&e) {
                // Never hand a broken connection to the next request.
                drop(deadpool_postgres::Object::take(client));
                Attempt::Lost(e.into())
            } else {
                Attempt::Failed(e.into())
            }
        })
    }

    /// `SELECT 1` with a deadline: is the database reachable?
    pub async fn ping(&self, deadline: Duration) -> Result<Duration, String> {
        let t0 = Instant::now();
        let work = async {
            let client = self.pool.get().await.map_err(|e| match &e {
                // The server's or the TLS layer's reason, not just "db error".
                deadpool_postgres::PoolError::Backend(pg) => {
                    pulso_sinks::error::describe_pg_error(pg)
                }
                other => other.to_string(),
            })?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| pulso_sinks::error::describe_pg_error(&e))?;
            Ok::<_, String>(())
        };
        match tokio::time::timeout(deadline, work).await {
            Ok(Ok(())) => Ok(t0.elapsed()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {} ms", deadline.as_millis())),
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

/// How one try of a read ended: the connection was lost (worth one retry) or anything else.
enum Attempt {
    Lost(ApiError),
    Failed(ApiError),
}

impl Attempt {
    fn into_error(self) -> ApiError {
        match self {
            Attempt::Lost(e) | Attempt::Failed(e) => e,
        }
    }
}

impl StatusReader for Db {
    type Error = ApiError;

    fn query(
        &self,
        name: &'static str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, ApiError>> + Send {
        Db::query(self, name, sql, params)
    }
}

/// The pool opens its connections through pulso_sinks' connector (sslmode fallbacks included).
struct PoolConnect(PgConnector);

impl Connect for PoolConnect {
    fn connect(
        &self,
        pg: &tokio_postgres::Config,
    ) -> BoxFuture<
        '_,
        Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        let pg = pg.clone();
        Box::pin(async move {
            let (client, connection) = self.0.connect_with(&pg).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "pool connection ended");
                }
            });
            Ok((client, task))
        })
    }
}
