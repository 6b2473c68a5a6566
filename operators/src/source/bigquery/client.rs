//! A connected BigQuery client: the REST client of gcp-bigquery-client (with request timeouts)
//! and what the Storage Read client needs (gRPC endpoint, authenticator).

use std::sync::Arc;
use std::time::Duration;

use gcp_bigquery_client::Client;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::client_builder::ClientBuilder;

use super::auth::{self, Credentials};
use super::error::BigQueryError;
use super::{BigQueryConnection, DEFAULT_PRICE_PER_TIB_USD, RetrySpec};

const REAL_REST: &str = "https://bigquery.googleapis.com/bigquery/v2";
const REAL_GRPC: &str = "https://bigquerystorage.googleapis.com";
/// The gRPC port of the emulators (goccy/bigquery-emulator and bqemulator alike).
const EMULATOR_GRPC_PORT: u16 = 9060;

/// A connection with its endpoints and credentials decided (environment fallbacks applied).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub project: String,
    pub billing_project: String,
    pub dataset: Option<String>,
    pub location: Option<String>,
    /// REST base URL, ending in `/bigquery/v2`.
    pub rest_base: String,
    pub grpc_endpoint: String,
    pub emulator: bool,
    pub credentials: Credentials,
    pub retry: RetrySpec,
    pub timeout: Duration,
    pub job_timeout: Duration,
    pub price_per_tib_usd: f64,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn with_scheme(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.trim_end_matches('/').to_string()
    } else {
        format!("http://{}", endpoint.trim_end_matches('/'))
    }
}

/// `http://host:port` → `http://host:9060`.
fn grpc_beside(rest: &str) -> String {
    let (scheme, rest_part) = rest.split_once("://").unwrap_or(("http", rest));
    let authority = rest_part.split('/').next().unwrap_or(rest_part);
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    format!("{scheme}://{host}:{EMULATOR_GRPC_PORT}")
}

impl Resolved {
    /// Applies the environment (`BIGQUERY_EMULATOR_HOST`, `BIGQUERY_EMULATOR_GRPC_HOST`,
    /// `BIGQUERY_CREDENTIALS_PATH`, `GOOGLE_APPLICATION_CREDENTIALS`) to a connection.
    pub fn new(conn: &BigQueryConnection, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let endpoint =
            non_empty(conn.endpoint.clone()).or_else(|| non_empty(env("BIGQUERY_EMULATOR_HOST")));
        let (rest_base, emulator) = match &endpoint {
            Some(e) => {
                let base = with_scheme(e);
                let base = if base.ends_with("/bigquery/v2") {
                    base
                } else {
                    format!("{base}/bigquery/v2")
                };
                (base, true)
            }
            None => (REAL_REST.to_string(), false),
        };
        let grpc_endpoint = non_empty(conn.storage_endpoint.clone())
            .or_else(|| non_empty(env("BIGQUERY_EMULATOR_GRPC_HOST")))
            .map(|e| with_scheme(&e))
            .unwrap_or_else(|| {
                if emulator {
                    grpc_beside(&rest_base)
                } else {
                    REAL_GRPC.to_string()
                }
            });
        // A key file named in the connection is used even with an `endpoint:` (a private or
        // proxied endpoint needs real tokens); otherwise an endpoint means an emulator, which
        // takes no credentials, and the environment's key file or ADC serve real BigQuery.
        let credentials = match non_empty(conn.credentials.clone()) {
            Some(path) => Credentials::KeyFile(path.into()),
            None if emulator => Credentials::Emulator,
            None => non_empty(env("BIGQUERY_CREDENTIALS_PATH"))
                .or_else(|| non_empty(env("GOOGLE_APPLICATION_CREDENTIALS")))
                .map(|p| Credentials::KeyFile(p.into()))
                .unwrap_or(Credentials::ApplicationDefault),
        };
        Resolved {
            project: conn.project.clone(),
            billing_project: non_empty(conn.billing_project.clone())
                .unwrap_or_else(|| conn.project.clone()),
            dataset: non_empty(conn.dataset.clone()),
            location: non_empty(conn.location.clone()),
            rest_base,
            grpc_endpoint,
            emulator,
            credentials,
            retry: conn.retry.clone(),
            timeout: Duration::from_millis(conn.timeout_ms.unwrap_or(120_000).max(1)),
            job_timeout: Duration::from_millis(conn.job_timeout_ms.unwrap_or(6 * 3_600_000)),
            price_per_tib_usd: conn.price_per_tib_usd.unwrap_or(DEFAULT_PRICE_PER_TIB_USD),
        }
    }
}

/// A connected client (no network I/O has happened yet).
#[derive(Clone)]
pub struct Bq {
    pub conn: Arc<Resolved>,
    pub client: Client,
    pub auth: Arc<dyn Authenticator>,
    /// The HTTP client inside `client` (same timeouts), for the calls made without it
    /// (getQueryResults with `formatOptions`, see `results.rs`).
    pub http: reqwest::Client,
}

impl Bq {
    pub async fn connect(conn: &BigQueryConnection) -> Result<Self, BigQueryError> {
        let env = |k: &str| std::env::var(k).ok();
        let resolved = Resolved::new(conn, &env);
        if resolved.project.trim().is_empty() {
            return Err(BigQueryError::config(
                "the BigQuery connection has an empty `project`",
            ));
        }
        let auth = auth::authenticator(&resolved.credentials).await?;
        let http = reqwest::Client::builder()
            .timeout(resolved.timeout)
            .connect_timeout(Duration::from_secs(20).min(resolved.timeout))
            .build()
            .map_err(|e| BigQueryError::config(format!("HTTP client: {e}")))?;
        let client = ClientBuilder::new()
            .with_v2_base_url(resolved.rest_base.clone())
            .with_client(http.clone())
            .build_from_authenticator(auth.clone())
            .await
            .map_err(|e| BigQueryError::config(format!("BigQuery client: {e}")))?;
        tracing::debug!(rest = %resolved.rest_base, grpc = %resolved.grpc_endpoint, credentials = %resolved.credentials.describe(), "BigQuery client ready");
        Ok(Bq {
            conn: Arc::new(resolved),
            client,
            auth,
            http,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(v: serde_json::Value) -> BigQueryConnection {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn endpoints_and_credentials_resolve_with_env_fallbacks() {
        let none = |_: &str| None;
        let r = Resolved::new(&conn(serde_json::json!({"project": "p"})), &none);
        assert_eq!(r.rest_base, REAL_REST);
        assert_eq!(r.grpc_endpoint, REAL_GRPC);
        assert_eq!(r.credentials, Credentials::ApplicationDefault);

        let env = |k: &str| match k {
            "BIGQUERY_EMULATOR_HOST" => Some("127.0.0.1:9050".to_string()),
            "GOOGLE_APPLICATION_CREDENTIALS" => Some("/k.json".to_string()),
            _ => None,
        };
        let r = Resolved::new(
            &conn(serde_json::json!({"project": "p", "endpoint": ""})),
            &env,
        );
        assert_eq!(r.rest_base, "http://127.0.0.1:9050/bigquery/v2");
        assert_eq!(r.grpc_endpoint, "http://127.0.0.1:9060");
        assert_eq!(r.credentials, Credentials::Emulator);

        let r = Resolved::new(
            &conn(serde_json::json!({"project": "p", "credentials": "/sa.json"})),
            &env,
        );
        assert!(r.emulator);
        assert_eq!(r.credentials, Credentials::KeyFile("/sa.json".into()));
        let no_emulator = |k: &str| match k {
            "GOOGLE_APPLICATION_CREDENTIALS" => Some("/k.json".to_string()),
            "BIGQUERY_CREDENTIALS_PATH" => Some("/b.json".to_string()),
            _ => None,
        };
        let r = Resolved::new(&conn(serde_json::json!({"project": "p"})), &no_emulator);
        assert_eq!(r.credentials, Credentials::KeyFile("/b.json".into()));
        let r = Resolved::new(
            &conn(
                serde_json::json!({"project": "p", "endpoint": "http://h:1/bigquery/v2", "storage_endpoint": "h:2"}),
            ),
            &none,
        );
        assert_eq!(r.rest_base, "http://h:1/bigquery/v2");
        assert_eq!(r.grpc_endpoint, "http://h:2");
    }
}
