//! Errors of the Postgres sink, and the classification of PostgreSQL failures.
//!
//! A [`SinkError`] keeps its cause: the `tokio_postgres::Error` (or the source's error, or the
//! migration error) is its [`std::error::Error::source`], so a caller asks the error — connection
//! lost? which SQLSTATE? which [`PgErrorClass`]? — instead of parsing its text. Its message already
//! contains the cause's useful text (the server's message, detail and hint, and the step that
//! failed), so printing the message alone is enough.

use tokio_postgres::error::SqlState;

use crate::encode::EncodeError;

/// The source's error as the sink received it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The server could not be reached or refused the session. `target` says which server, as
    /// `PgConnectConfig::describe` shows it (never a password).
    #[error(
        "cannot connect to PostgreSQL: {target}: {}",
        describe_pg_error(source)
    )]
    Connect {
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// The connection could not even be attempted: bad connection parameters or TLS files (a
    /// `connect::ConnectError`, boxed so that this module does not depend on `connect`).
    #[error("cannot connect to PostgreSQL: {0}")]
    ConnectSettings(#[source] BoxError),
    /// A statement failed; `context` says which step of the load or build it was.
    #[error("{context}: {}", describe_pg_error(source))]
    Postgres {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// COPY stored another number of rows than it was sent (a server or protocol fault).
    #[error("COPY into staging: sent {sent} rows but the server stored {stored}")]
    CopyCount { sent: u64, stored: u64 },
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(
        "table {target} is being loaded by another run (advisory lock held); \
         it was not loaded (run again later, or without --no-wait to wait for it)"
    )]
    Locked { target: String },
    #[error("target {target}: {message}")]
    TargetMismatch { target: String, message: String },
    /// `pulso_flow.backfill_chunks` does not hold what a backfill expects.
    #[error("backfill chunk ledger of {node}: {message}")]
    ChunkLedger { node: String, message: String },
    /// The per-day totals a source computed for a reconciliation do not fit its `reconcile:`.
    #[error("source totals of {target}: {message}")]
    SourceTotals { target: String, message: String },
    /// The stream of batches failed (source or transform).
    #[error("source failed: {0}")]
    Source(#[source] BoxError),
    #[error("migrations failed: {}", describe_migration_error(.0))]
    Migrate(#[source] refinery::Error),
    /// `pulso_flow.watermarks` holds a value its type does not parse (edited by hand?).
    #[error(
        "stored watermark of {node}: {source} (fix it with `pulso-flow watermarks set` or `reset`)"
    )]
    StoredWatermark {
        node: String,
        #[source]
        source: pulso_types::ValueError,
    },
    /// `pulso_flow.watermarks.inc_type` names no incremental type.
    #[error(
        "stored watermark of {node} has unknown type {inc_type:?} \
         (fix it with `pulso-flow watermarks set` or `reset`)"
    )]
    StoredWatermarkType { node: String, inc_type: String },
    /// Rows with a NULL incremental value in a table whose `incremental.nulls` is `fail`.
    #[error(
        "target {target}: {rows} rows have a NULL incremental value in column {column} \
         (first keys: {keys}); incremental.nulls is fail, so nothing was loaded \
         (fill the column in the source or in transform.derive, or set incremental.nulls: load)"
    )]
    NullIncremental {
        target: String,
        column: String,
        rows: u64,
        keys: String,
    },
    /// A quality gate (`checks:` of severity error) or a reconciliation (`reconcile:` with
    /// `on_mismatch: fail`) failed: nothing was committed. `gates` holds every result, for the
    /// ledger's details and the run summary.
    #[error("{message}; nothing was committed")]
    Gate {
        node: String,
        message: String,
        gates: Box<crate::gates::Gates>,
    },
}

impl SinkError {
    /// Wrap a tokio-postgres error with the step it happened in. The message keeps the server's
    /// message, detail and hint (tokio-postgres' own Display only says "db error").
    pub fn pg(context: impl Into<String>, source: tokio_postgres::Error) -> Self {
        SinkError::Postgres {
            context: context.into(),
            source,
        }
    }

    /// The PostgreSQL error behind this one, if it is one.
    pub fn pg_error(&self) -> Option<&tokio_postgres::Error> {
        match self {
            SinkError::Connect { source, .. } | SinkError::Postgres { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The server's SQLSTATE, when the server answered with an error.
    pub fn sqlstate(&self) -> Option<&SqlState> {
        self.pg_error().and_then(tokio_postgres::Error::code)
    }

    /// What kind of PostgreSQL failure this is, when it is one.
    pub fn pg_class(&self) -> Option<PgErrorClass> {
        self.pg_error().map(PgErrorClass::of)
    }

    /// The session is gone (closed, reset, terminated by the server, or never established):
    /// nothing was committed, and retrying on a new connection may succeed.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, SinkError::Connect { .. })
            || self
                .pg_class()
                .is_some_and(PgErrorClass::is_connection_lost)
    }
}

/// What kind of failure a `tokio_postgres::Error` is, from its SQLSTATE or its cause — the
/// questions callers ask (answer 503 or 500? retry?), in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgErrorClass {
    /// The connection is closed or its socket failed (reset, broken pipe, refused).
    Closed,
    /// The server ended the session: `pg_terminate_backend`, a shutdown, a crash restart, a
    /// dropped database or an idle-session timeout (SQLSTATE 57P01–57P05), or another connection
    /// exception (class 08).
    Terminated,
    /// The statement was cancelled: `statement_timeout` or `pg_cancel_backend` (57014).
    Cancelled,
    /// Lost to a concurrent transaction: serialization failure (40001), deadlock (40P01) or a
    /// lock that was not available (55P03). Retrying may succeed.
    Conflict,
    /// The data is at fault: a data exception (class 22) or an integrity violation (class 23).
    Data,
    /// Anything else: syntax, undefined object, permissions, resources, internal.
    Other,
}

impl PgErrorClass {
    pub fn of(err: &tokio_postgres::Error) -> Self {
        if let Some(code) = err.code() {
            return Self::of_sqlstate(code);
        }
        if err.is_closed() || io_cause(err) {
            return PgErrorClass::Closed;
        }
        PgErrorClass::Other
    }

    fn of_sqlstate(code: &SqlState) -> Self {
        if *code == SqlState::QUERY_CANCELED {
            return PgErrorClass::Cancelled;
        }
        if [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
        ]
        .contains(code)
        {
            return PgErrorClass::Conflict;
        }
        if code.code().starts_with("57P0") {
            return PgErrorClass::Terminated;
        }
        match code.code().get(..2) {
            Some("08") => PgErrorClass::Terminated,
            Some("22" | "23") => PgErrorClass::Data,
            _ => PgErrorClass::Other,
        }
    }

    /// Closed or terminated: the session cannot be used any more.
    pub fn is_connection_lost(self) -> bool {
        matches!(self, PgErrorClass::Closed | PgErrorClass::Terminated)
    }
}

/// Whether an I/O error is in the error's cause chain (a socket that failed).
fn io_cause(err: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// refinery's message names the migration but ends its cause at "db error": add the server's
/// message from the cause chain.
fn describe_migration_error(err: &refinery::Error) -> String {
    let mut msg = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        msg.push_str(": ");
        if let Some(pg) = s.downcast_ref::<tokio_postgres::Error>() {
            msg.push_str(&describe_pg_error(pg));
            break;
        }
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_fall_into_their_class() {
        for (code, class) in [
            ("57014", PgErrorClass::Cancelled),
            ("57P01", PgErrorClass::Terminated),
            ("57P02", PgErrorClass::Terminated),
            ("57P03", PgErrorClass::Terminated),
            ("57P05", PgErrorClass::Terminated),
            ("08006", PgErrorClass::Terminated),
            ("40001", PgErrorClass::Conflict),
            ("40P01", PgErrorClass::Conflict),
            ("55P03", PgErrorClass::Conflict),
            ("22P02", PgErrorClass::Data),
            ("23505", PgErrorClass::Data),
            ("42P01", PgErrorClass::Other),
            ("53100", PgErrorClass::Other),
        ] {
            assert_eq!(
                PgErrorClass::of_sqlstate(&SqlState::from_code(code)),
                class,
                "{code}"
            );
        }
        assert!(PgErrorClass::Terminated.is_connection_lost());
        assert!(!PgErrorClass::Cancelled.is_connection_lost());
    }

    fn database_url() -> String {
        std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
    }

    /// Against the real server: the error keeps the server's answer as its source, its message
    /// names the step and the server's message, and callers ask it instead of reading it.
    #[tokio::test]
    async fn a_failed_statement_keeps_its_cause() {
        let client = crate::connect::connect(&database_url()).await.unwrap();
        let e = client
            .batch_execute("SELECT * FROM pulso_no_such_table")
            .await
            .map_err(|e| SinkError::pg("reading the thing", e))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "reading the thing: relation \"pulso_no_such_table\" does not exist (SQLSTATE 42P01)"
        );
        assert_eq!(e.sqlstate(), Some(&SqlState::UNDEFINED_TABLE));
        assert_eq!(e.pg_class(), Some(PgErrorClass::Other));
        assert!(!e.is_connection_lost());
        let cause = std::error::Error::source(&e).expect("a source");
        assert!(cause.is::<tokio_postgres::Error>(), "{cause:?}");

        // The server ends the session (what a failover or pg_terminate_backend does).
        let e = client
            .batch_execute("SELECT pg_terminate_backend(pg_backend_pid())")
            .await
            .map_err(|e| SinkError::pg("terminating", e))
            .unwrap_err();
        assert_eq!(e.pg_class(), Some(PgErrorClass::Terminated), "{e}");
        assert!(e.is_connection_lost());
        let e = client
            .batch_execute("SELECT 1")
            .await
            .map_err(|e| SinkError::pg("after", e))
            .unwrap_err();
        assert_eq!(e.pg_class(), Some(PgErrorClass::Closed), "{e}");
        assert!(e.is_connection_lost());
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_lost_connection_with_its_reason() {
        let e = crate::connect::connect("postgres://postgres@127.0.0.1:1/postgres")
            .await
            .unwrap_err();
        assert!(matches!(e, SinkError::Connect { .. }), "{e:?}");
        assert!(e.is_connection_lost());
        assert!(
            e.to_string().starts_with("cannot connect to PostgreSQL: ")
                && e.to_string().contains("refused"),
            "{e}"
        );
    }
}
