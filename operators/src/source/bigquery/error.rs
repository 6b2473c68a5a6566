//! The typed error of the BigQuery source.
//!
//! Messages carry BigQuery's own text (job errors, quota, bad SQL, permission denied) together
//! with what pulso-flow was doing and how many attempts it made, so a failed table says why.

/// Error of the BigQuery source (REST or Storage Read).
#[derive(Debug, thiserror::Error)]
pub enum BigQueryError {
    /// The `source:` or `connections:` block is inconsistent (found without any I/O).
    #[error("{0}")]
    Config(String),

    /// No credentials could be set up (key file unreadable, no application default credentials).
    #[error("BigQuery credentials: {0}")]
    Auth(String),

    /// A call to BigQuery failed: after `attempts` tries for a transient error, or at once for
    /// a permanent one. `message` is BigQuery's own message when it sent one.
    #[error("BigQuery {call} failed after {attempts} attempt(s): {message}")]
    Api {
        call: String,
        attempts: u32,
        message: String,
        /// True when the last failure was transient (the retry budget ran out).
        transient: bool,
    },

    /// The query job finished with an error (bad SQL, permission denied, quota, ...).
    /// `transient` jobs (reason backendError, internalError, rateLimitExceeded) are re-run as a
    /// new job before this error is returned.
    #[error("BigQuery job {job_id} failed: {message}")]
    Job {
        job_id: String,
        message: String,
        transient: bool,
    },

    /// The job did not complete within the configured time.
    #[error("BigQuery job {job_id} did not complete within {seconds} s")]
    JobTimeout { job_id: String, seconds: u64 },

    /// The result does not have the rows the job reported (invariant 3: every page is read).
    #[error(
        "BigQuery job {job_id}: read {read} rows but the job reported totalRows = {total}; \
         the result is incomplete and nothing is loaded"
    )]
    RowCount {
        job_id: String,
        read: u64,
        total: u64,
    },

    /// A Storage Read stream ended cleanly while the server's progress said rows remained
    /// (the Storage Read counterpart of [`BigQueryError::RowCount`]).
    #[error(
        "BigQuery Storage Read stream {stream} ended after {read} rows with {percent:.3}% of it \
         processed, {attempts} time(s); the read is incomplete and nothing is loaded"
    )]
    ShortStream {
        stream: String,
        read: i64,
        percent: f64,
        attempts: u32,
    },

    /// A response was well-formed JSON/protobuf but not what the API promises.
    #[error("BigQuery {what}: unexpected response: {message}")]
    Protocol { what: String, message: String },

    /// A BigQuery type that has no Arrow mapping here.
    #[error("column {column:?}: BigQuery type {ty} is not supported: {hint}")]
    UnsupportedType {
        column: String,
        ty: String,
        hint: String,
    },

    /// A cell does not parse as its column's type.
    #[error("column {column:?}, row {row} of page {page}: cannot read {value:?} as {ty}: {reason}")]
    Decode {
        column: String,
        ty: String,
        page: u64,
        row: usize,
        value: String,
        reason: String,
    },

    /// Arrow failed to assemble or decode a batch (IPC from the Storage Read API, casts).
    #[error("BigQuery {what}: {source}")]
    Arrow {
        what: String,
        #[source]
        source: arrow::error::ArrowError,
    },
}

impl BigQueryError {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        BigQueryError::Config(message.into())
    }

    pub(crate) fn protocol(what: impl Into<String>, message: impl Into<String>) -> Self {
        BigQueryError::Protocol {
            what: what.into(),
            message: message.into(),
        }
    }

    pub(crate) fn arrow(what: impl Into<String>, source: arrow::error::ArrowError) -> Self {
        BigQueryError::Arrow {
            what: what.into(),
            source,
        }
    }
}
