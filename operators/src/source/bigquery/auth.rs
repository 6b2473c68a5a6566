//! Credentials: none for an emulator, a key file (service account or authorized user), or
//! application default credentials. One authenticator serves the REST client and the gRPC
//! Storage Read calls.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::yup_oauth2;
use yup_oauth2::authenticator::DefaultAuthenticator;

use super::error::BigQueryError;

const SCOPES: &[&str] = &["https://www.googleapis.com/auth/bigquery"];

/// Where credentials come from, decided without I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// An emulator: any bearer token is accepted.
    Emulator,
    /// A key file (service account or authorized user).
    KeyFile(PathBuf),
    /// Application default credentials (gcloud's file or the metadata server).
    ApplicationDefault,
}

impl Credentials {
    pub fn describe(&self) -> String {
        match self {
            Credentials::Emulator => "none (emulator)".into(),
            Credentials::KeyFile(p) => format!("key file {}", p.display()),
            Credentials::ApplicationDefault => "application default credentials".into(),
        }
    }
}

/// The emulator's authenticator: a constant dummy token.
#[derive(Clone)]
struct Dummy;

#[async_trait]
impl Authenticator for Dummy {
    async fn access_token(&self) -> Result<String, BQError> {
        Ok("pulso-flow-emulator".to_string())
    }
}

/// A yup-oauth2 authenticator (tokens cached and refreshed by yup).
#[derive(Clone)]
struct Yup(DefaultAuthenticator);

#[async_trait]
impl Authenticator for Yup {
    async fn access_token(&self) -> Result<String, BQError> {
        let token = self.0.token(SCOPES).await?;
        token.token().map(str::to_string).ok_or(BQError::NoToken)
    }
}

#[derive(serde::Deserialize)]
struct KeyKind {
    #[serde(rename = "type")]
    kind: String,
}

/// Builds the authenticator. Reads the key file but fetches no token (the first call does).
pub async fn authenticator(creds: &Credentials) -> Result<Arc<dyn Authenticator>, BigQueryError> {
    let auth_err =
        |what: &str, e: &dyn std::fmt::Display| BigQueryError::Auth(format!("{what}: {e}"));
    match creds {
        Credentials::Emulator => Ok(Arc::new(Dummy)),
        Credentials::KeyFile(path) => {
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| auth_err(&format!("cannot read {}", path.display()), &e))?;
            let kind: KeyKind = serde_json::from_str(&text).map_err(|e| {
                auth_err(&format!("{} is not a Google key file", path.display()), &e)
            })?;
            let auth = match kind.kind.as_str() {
                "service_account" => {
                    let key = yup_oauth2::parse_service_account_key(&text).map_err(|e| {
                        auth_err(&format!("bad service-account key {}", path.display()), &e)
                    })?;
                    yup_oauth2::ServiceAccountAuthenticator::builder(key)
                        .build()
                        .await
                        .map_err(|e| auth_err("service-account authenticator", &e))?
                }
                "authorized_user" => {
                    let secret = serde_json::from_str(&text).map_err(|e| {
                        auth_err(&format!("bad authorized-user file {}", path.display()), &e)
                    })?;
                    yup_oauth2::AuthorizedUserAuthenticator::builder(secret)
                        .build()
                        .await
                        .map_err(|e| auth_err("authorized-user authenticator", &e))?
                }
                other => {
                    return Err(BigQueryError::Auth(format!(
                        "{}: unsupported credential type {other:?} (service_account or authorized_user)",
                        path.display()
                    )));
                }
            };
            Ok(Arc::new(Yup(auth)))
        }
        Credentials::ApplicationDefault => {
            // gcloud's user credentials first, then the metadata server.
            if let Some(home) = std::env::var_os("HOME") {
                let path =
                    PathBuf::from(home).join(".config/gcloud/application_default_credentials.json");
                if path.exists() {
                    return Box::pin(authenticator(&Credentials::KeyFile(path))).await;
                }
            }
            let opts = yup_oauth2::ApplicationDefaultCredentialsFlowOpts::default();
            let auth = match yup_oauth2::ApplicationDefaultCredentialsAuthenticator::builder(opts)
                .await
            {
                yup_oauth2::authenticator::ApplicationDefaultCredentialsTypes::InstanceMetadata(
                    b,
                ) => b.build().await,
                yup_oauth2::authenticator::ApplicationDefaultCredentialsTypes::ServiceAccount(
                    b,
                ) => b.build().await,
            }
            .map_err(|e| auth_err("application default credentials", &e))?;
            Ok(Arc::new(Yup(auth)))
        }
    }
}
