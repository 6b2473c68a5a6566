//! Errors: configuration errors at startup, and the JSON error answers of the API.
//!
//! Every error answer has the same body, `{"status":"error","code":…,"message":…,"parameter"?:…}`,
//! and never echoes internal details (SQL, driver messages): those are logged with the request id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A bad configuration value, named by its environment variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

/// Why `serve` could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Database(String),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// An error answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be parsed (bad date, not a number, malformed JSON, forbidden
    /// characters).
    #[error("{message}")]
    BadRequest {
        parameter: Option<String>,
        message: String,
    },
    /// 422: well-formed but not acceptable (unknown dimension, list too long, end before start).
    #[error("{message}")]
    Unprocessable { parameter: String, message: String },
    #[error("{0}")]
    NotFound(String),
    /// 401: no credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: wrong credentials.
    #[error("{0}")]
    Forbidden(String),
    /// 413: the body is larger than the limit (bytes).
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 409: conflicting state (e.g. a refresh is already running).
    #[error("{0}")]
    Conflict(String),
    /// 503: a dependency is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 500: logged in full, answered without details.
    #[error("internal error: {0}")]
    Internal(String),
    /// 405: the path exists, the method does not.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 415: a body that is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429: too many wrong tokens from one client; retry after the given seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always `error`.
    pub status: &'static str,
    /// The HTTP status code.
    pub code: u16,
    /// What went wrong, for a person.
    pub message: String,
    /// The request parameter (query parameter, body field path or path segment) at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

impl ApiError {
    pub fn bad(parameter: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            parameter: Some(parameter.into()),
            message: message.into(),
        }
    }

    pub fn invalid(parameter: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Unprocessable {
            parameter: parameter.into(),
            message: message.into(),
        }
    }

    pub fn internal(context: impl std::fmt::Display) -> Self {
        ApiError::Internal(context.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (message, parameter) = match self {
            ApiError::BadRequest { parameter, message } => (message.clone(), parameter.clone()),
            ApiError::Unprocessable { parameter, message } => {
                (message.clone(), Some(parameter.clone()))
            }
            ApiError::Internal(_) => (
                "internal error; the request id in X-Request-ID identifies it in the logs".into(),
                None,
            ),
            other => (other.to_string(), None),
        };
        ErrorBody {
            status: "error",
            code: self.status().as_u16(),
            message,
            parameter,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            // The request id is attached to this event by the access-log span.
            tracing::error!(error = %detail, "request failed");
        }
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"pulso-flow\""),
            );
        }
        // Unavailability is transient (a restart, a failover, a busy pool): say when to retry.
        let retry_after = match &self {
            ApiError::Unavailable(_) => Some(1),
            ApiError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error()
            && db.code() == &tokio_postgres::error::SqlState::QUERY_CANCELED
        {
            return ApiError::Unavailable("the query took too long (statement timeout)".into());
        }
        if connection_lost(&e) {
            tracing::warn!(error = %pulso_sinks::error::describe_pg_error(&e), "database connection lost");
            return ApiError::Unavailable("the database connection was lost".into());
        }
        ApiError::Internal(pulso_sinks::error::describe_pg_error(&e))
    }
}

/// Whether `e` says the connection (not the statement) failed: the backend was terminated
/// (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now — a restart, a
/// failover, `pg_terminate_backend`), a connection-exception class 08 error, the socket broke,
/// or the client is closed. Such a read can be retried on another connection.
pub fn connection_lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return code.starts_with("57P0") || code.starts_with("08");
    }
    // No server error and not closed: an I/O error of the socket (reset, broken pipe, EOF).
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            deadpool_postgres::PoolError::Timeout(_) => {
                ApiError::Unavailable("the database is busy or unreachable".into())
            }
            other => ApiError::Unavailable(format!("database unavailable: {other}")),
        }
    }
}
