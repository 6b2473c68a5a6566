//! Errors of the Postgres sink.

use crate::encode::EncodeError;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    /// A statement failed; `context` says which step of the load it was.
    #[error("{context}: {message}")]
    Postgres { context: String, message: String },
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(
        "table {target} is being loaded by another run (advisory lock held); \
         it was not loaded (run again later, or without --no-wait to wait for it)"
    )]
    Locked { target: String },
    #[error("target {target}: {message}")]
    TargetMismatch { target: String, message: String },
    #[error("source failed: {0}")]
    Source(String),
    #[error("migrations failed: {0}")]
    Migrate(String),
    #[error("bad watermark {value:?} for type {kind}: {message}")]
    Watermark {
        value: String,
        kind: String,
        message: String,
    },
}

impl SinkError {
    /// Wrap a tokio-postgres error with the step it happened in, keeping the server's message,
    /// detail and hint (tokio-postgres' own Display only says "db error").
    pub fn pg(context: impl Into<String>, err: tokio_postgres::Error) -> Self {
        SinkError::Postgres {
            context: context.into(),
            message: describe_pg_error(&err),
        }
    }
}

/// The most useful one-line description of a tokio-postgres error.
pub fn describe_pg_error(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut msg = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                msg.push_str("; detail: ");
                msg.push_str(detail);
            }
            if let Some(hint) = db.hint() {
                msg.push_str("; hint: ");
                msg.push_str(hint);
            }
            msg
        }
        None => {
            // Closed connections, I/O errors: the source chain has the reason.
            let mut msg = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            msg
        }
    }
}
