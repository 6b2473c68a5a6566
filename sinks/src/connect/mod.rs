//! Every PostgreSQL connection of pulso-flow is opened here: loads, builds, migrations, the CLI,
//! and the API's pool and LISTEN connection.
//!
//! * [`PgConnectConfig`] — a connection string (URI, keyword/value, or empty) resolved with the
//!   libpq environment (`PGHOST`, `PGSSLMODE`, …) and the password file, as psql would.
//! * [`PgConnector`] — opens connections for a config: TLS through rustls with libpq's sslmode
//!   semantics (`prefer` falls back to plain text, `allow` to TLS), what a pool plugs into.
//! * [`connect`] — one session configured for loading, its connection driven on its own task.
//! * [`redact`] — connection strings made safe to show; [`from_env_or_file`] — `NAME_FILE`
//!   secrets.

mod config;
mod params;
mod pgpass;
mod redact;
mod secret;
mod tls;

use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

pub use config::{ENV_VARS, PgConnectConfig, SslMode, env_names_a_database};
pub use params::ParamsError;
pub use redact::redact;
pub use secret::{SecretError, from_env_or_file};
pub use tls::{RootCert, TlsSettings, Verify};

use crate::error::{SinkError, describe_pg_error};

/// Why a connection could not even be attempted. Messages never hold a password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("TLS: {0}")]
    Tls(String),
}

impl ConnectError {
    pub(crate) fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConnectError::Invalid {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

impl From<ConnectError> for SinkError {
    fn from(e: ConnectError) -> Self {
        SinkError::Connect(e.to_string())
    }
}

/// The stream of a connection, TLS or not (tokio-postgres decides per connection).
pub type TlsStream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;
/// A connection to drive (`.await` it on a task) next to its [`Client`].
pub type PgConnection = tokio_postgres::Connection<Socket, TlsStream>;

/// Opens connections for one [`PgConnectConfig`]. The certificate files are read once, here.
#[derive(Clone)]
pub struct PgConnector {
    config: PgConnectConfig,
    tls: MakeRustlsConnect,
}

impl PgConnector {
    pub fn new(config: PgConnectConfig) -> Result<Self, ConnectError> {
        let tls = MakeRustlsConnect::new(tls::client_config(config.tls_settings())?);
        Ok(PgConnector { config, tls })
    }

    pub fn config(&self) -> &PgConnectConfig {
        &self.config
    }

    /// The TLS connector alone, for code that drives tokio-postgres itself (it then gets
    /// tokio-postgres' own `disable`/`prefer`/`require` handling, without the fallbacks below).
    pub fn make_tls(&self) -> MakeRustlsConnect {
        self.tls.clone()
    }

    /// Connect with `pg` (normally [`PgConnectConfig::tokio_config`], perhaps with settings a
    /// caller added) using this config's sslmode:
    ///
    /// * `disable` — plain text; Unix sockets are always plain text, as in libpq;
    /// * `allow` — plain text, and TLS if the server refuses the plain-text attempt;
    /// * `prefer` — TLS if the server offers it, plain text if it does not, if the TLS
    ///   handshake fails or if the server refuses the TLS session;
    /// * `require`, `verify-ca`, `verify-full` — TLS or nothing.
    pub async fn connect_with(
        &self,
        pg: &tokio_postgres::Config,
    ) -> Result<(Client, PgConnection), tokio_postgres::Error> {
        use tokio_postgres::config::SslMode as Tokio;
        let attempt = |mode: Tokio| {
            let mut pg = pg.clone();
            pg.ssl_mode(mode);
            let tls = self.tls.clone();
            async move { pg.connect(tls).await }
        };
        if self.config.is_unix_socket_only() {
            return attempt(Tokio::Disable).await;
        }
        match self.config.ssl_mode() {
            SslMode::Disable => attempt(Tokio::Disable).await,
            SslMode::Allow => match attempt(Tokio::Disable).await {
                Err(e) if e.as_db_error().is_some() => {
                    tracing::debug!(error = %describe_pg_error(&e),
                        "sslmode=allow: plain-text connection refused; trying TLS");
                    attempt(Tokio::Require).await
                }
                other => other,
            },
            // libpq retries without TLS when the handshake fails and when the server refuses
            // the TLS session (pg_hba.conf `hostnossl`).
            SslMode::Prefer => match attempt(Tokio::Prefer).await {
                Err(e) if is_tls_failure(&e) || e.as_db_error().is_some() => {
                    tracing::debug!(error = %describe_pg_error(&e),
                        "sslmode=prefer: refused over TLS; trying without TLS");
                    attempt(Tokio::Disable).await
                }
                other => other,
            },
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                attempt(Tokio::Require).await
            }
        }
    }
}

/// Make ring rustls' process-wide provider, for libraries that use the process default (the
/// Redis client). Our own configurations name their provider and do not need it.
pub fn ensure_crypto_provider() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Whether the failure happened in the TLS handshake (rather than in the network or the login).
fn is_tls_failure(e: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// Connect to `conninfo` (a URI, a keyword/value string, or empty for the `PG*` environment)
/// and configure the session for loading. See [`connect_config`].
pub async fn connect(conninfo: &str) -> Result<Client, SinkError> {
    let mut config = PgConnectConfig::from_env(conninfo)?;
    config.fallback_application_name("pulso-flow");
    connect_config(&config).await
}

/// Connect and drive the connection on its own task. Dropping the returned client closes the
/// connection, which makes the server roll back any open transaction: this is how a cancelled or
/// failed load leaves nothing behind.
pub async fn connect_config(config: &PgConnectConfig) -> Result<Client, SinkError> {
    let connector = PgConnector::new(config.clone())?;
    let (client, connection) = connector
        .connect_with(config.tokio_config())
        .await
        .map_err(|e| {
            SinkError::Connect(format!("{}: {}", config.describe(), describe_pg_error(&e)))
        })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    // UTC so that timestamptz text is unambiguous in logs; temp_buffers must be set before the
    // session's first temp table, and a large one keeps the staging table in memory.
    client
        .batch_execute("SET TimeZone = 'UTC'; SET temp_buffers = '256MB'")
        .await
        .map_err(|e| SinkError::pg("configuring the session", e))?;
    Ok(client)
}
