//! The BigQuery source: a query (REST: jobs.insert + getQueryResults paging) or a plain table
//! read (REST, or the Storage Read API in Arrow format), typed, incremental and fault-tolerant.
//!
//! ```yaml
//! connections:
//!   bq:
//!     kind: bigquery
//!     project: "${BQ_PROJECT}"
//!     dataset: "${BQ_DATASET}"          # default dataset of queries, dataset of `table:`
//!     location: US
//!     endpoint: "${BIGQUERY_EMULATOR_HOST:-}"   # emulator: no credentials
//!     read_api: rest                    # default of the tables: rest | storage
//! tables:
//!   - name: asignaciones
//!     source:
//!       kind: bigquery
//!       connection: bq
//!       query: |
//!         SELECT CAST(cuenta AS STRING) AS cuenta, creado_el, DATE(creado_el) AS fecha_asignacion
//!         FROM `${BQ_PROJECT}.${BQ_DATASET}.batch_x_asignacion` WHERE monto > 0
//!       page_size: 10000
//! ```
//!
//! The incremental window is pushed down: the query becomes
//! `SELECT * FROM (<query>) WHERE (`col` IS NULL OR (`col` >= @lower AND `col` < @upper))` with query parameters of
//! the column's own type (DATE, DATETIME, TIMESTAMP); no value is ever spliced into SQL text.
//! `docs/pipeline.md` ("BigQuery") documents every option.

pub mod aggregate;
mod auth;
mod client;
pub mod decode;
mod error;
mod explain;
pub mod query;
mod rest;
mod results;
pub mod retry;
pub mod storage;

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use indexmap::IndexMap;

/// The client crate, for callers that handle its models (tests, benchmarks).
pub use gcp_bigquery_client;

pub use self::error::BigQueryError;
pub use self::explain::ExplainLine;
pub use self::query::{Param, ReadPlan};
pub use self::retry::RetrySpec;
use super::SourceContext;
use crate::{BatchStream, OperatorError};

/// Default rows per REST page (`maxResults`).
pub const DEFAULT_PAGE_SIZE: u32 = 10_000;
/// Default number of Storage Read streams.
pub const DEFAULT_STREAMS: u32 = 4;
/// Default on-demand price used by `explain` (USD per TiB scanned).
pub const DEFAULT_PRICE_PER_TIB_USD: f64 = 6.25;

/// Which API reads the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadApi {
    /// jobs.insert + jobs.getQueryResults pages (queries and tables).
    Rest,
    /// The Storage Read API, Arrow format, parallel streams (plain table reads only).
    Storage,
}

impl ReadApi {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadApi::Rest => "rest",
            ReadApi::Storage => "storage",
        }
    }
}

/// A `kind: bigquery` entry of `connections:`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BigQueryConnection {
    /// Project that holds the data (and runs the jobs unless `billing_project` is set).
    pub project: String,
    /// Default dataset of queries; dataset of `table:` names given without one.
    #[serde(default)]
    pub dataset: Option<String>,
    /// Location of the jobs (US, EU, southamerica-west1, ...).
    #[serde(default)]
    pub location: Option<String>,
    /// Project billed for jobs and read sessions (default: `project`).
    #[serde(default)]
    pub billing_project: Option<String>,
    /// Emulator REST endpoint (`http://host:port` or `host:port`); empty means none. Falls back
    /// to `BIGQUERY_EMULATOR_HOST`. With an endpoint no credentials are used unless
    /// `credentials:` names a key file.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Emulator gRPC endpoint of the Storage Read API; falls back to
    /// `BIGQUERY_EMULATOR_GRPC_HOST`, then to the REST emulator's host on port 9060.
    #[serde(default)]
    pub storage_endpoint: Option<String>,
    /// Service-account (or authorized-user) key file, used even with an `endpoint:`. Without
    /// it and without an endpoint: `BIGQUERY_CREDENTIALS_PATH`, then
    /// `GOOGLE_APPLICATION_CREDENTIALS`, then application default credentials.
    #[serde(default)]
    pub credentials: Option<String>,
    /// Default read path of this connection's tables (default `rest`).
    #[serde(default)]
    pub read_api: Option<ReadApi>,
    /// Default Storage Read streams per table (default 4).
    #[serde(default)]
    pub streams: Option<u32>,
    /// Default rows per REST page (default 10000).
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Retries of transient errors.
    #[serde(default)]
    pub retry: RetrySpec,
    /// Timeout of one HTTP request (default 120000 ms).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// How long a query job may run before the table fails (default 6 h).
    #[serde(default)]
    pub job_timeout_ms: Option<u64>,
    /// On-demand price per TiB scanned, for `explain`'s estimate (default 6.25 USD).
    #[serde(default)]
    pub price_per_tib_usd: Option<f64>,
    /// Query jobs that would bill more bytes fail without charge (BigQuery's
    /// `maximumBytesBilled`); default: the project's setting. A table may override it.
    #[serde(default)]
    pub maximum_bytes_billed: Option<u64>,
}

/// The BigQuery connections of a pipeline, by name. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct BigQueryConnections(Arc<IndexMap<String, BigQueryConnection>>);

impl BigQueryConnections {
    pub fn new(map: IndexMap<String, BigQueryConnection>) -> Self {
        BigQueryConnections(Arc::new(map))
    }

    pub fn get(&self, name: &str) -> Option<&BigQueryConnection> {
        self.0.get(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// A typed named query parameter of `params:` (usable as `@name` in `query:`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// BigQuery type: STRING, INT64, FLOAT64, NUMERIC, BIGNUMERIC, BOOL, DATE, DATETIME,
    /// TIMESTAMP, TIME, BYTES.
    #[serde(rename = "type")]
    pub ty: String,
    pub value: ScalarText,
}

/// A YAML scalar taken as text (`42`, `true` and `"x"` all work).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum ScalarText {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl ScalarText {
    pub fn as_text(&self) -> String {
        match self {
            ScalarText::Text(s) => s.clone(),
            ScalarText::Int(i) => i.to_string(),
            ScalarText::Float(f) => f.to_string(),
            ScalarText::Bool(b) => b.to_string(),
        }
    }
}

/// The `source:` block of a BigQuery table: either `query:` (REST) or `table:` + `columns:`
/// (REST or Storage Read).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BigQuerySpec {
    /// Name of a `kind: bigquery` connection.
    pub connection: String,
    /// A query with an explicit select list (casts, derived columns, business filters).
    #[serde(default)]
    pub query: Option<String>,
    /// A table (`table`, `dataset.table` or `project.dataset.table`) read with `columns`.
    #[serde(default)]
    pub table: Option<String>,
    /// Columns of `table:` to read, in order.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Business filter of a `table:` read (BigQuery SQL boolean expression over its columns;
    /// the Storage Read API's row restriction).
    #[serde(default)]
    pub filter: Option<String>,
    /// Named query parameters of `query:` (`@name`).
    #[serde(default)]
    pub params: IndexMap<String, ParamSpec>,
    /// rest | storage (default: the connection's, else rest).
    #[serde(default)]
    pub read_api: Option<ReadApi>,
    /// Rows per REST page (maxResults).
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Storage Read streams read in parallel.
    #[serde(default)]
    pub streams: Option<u32>,
    /// Fail this table's query job if it would bill more bytes (overrides the connection's).
    #[serde(default)]
    pub maximum_bytes_billed: Option<u64>,
}

impl BigQuerySpec {
    /// The connection this source names, or a clear error listing the defined ones.
    pub fn connection<'a>(
        &self,
        ctx: &'a SourceContext,
    ) -> Result<&'a BigQueryConnection, BigQueryError> {
        ctx.bigquery.get(&self.connection).ok_or_else(|| {
            let known = ctx.bigquery.names();
            BigQueryError::config(format!(
                "unknown BigQuery connection {:?}; defined: {}",
                self.connection,
                if known.is_empty() {
                    "none (add one with `kind: bigquery` under `connections:`)".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
    }

    /// The read path: the table's `read_api`, else the connection's, else REST.
    pub fn read_api(&self, conn: Option<&BigQueryConnection>) -> ReadApi {
        self.read_api
            .or(conn.and_then(|c| c.read_api))
            .unwrap_or(ReadApi::Rest)
    }

    /// Checks the spec without I/O: query xor table, no `SELECT *`, a storage read needs a
    /// table, identifiers and parameter names are valid.
    pub fn validate(&self) -> Result<(), OperatorError> {
        query::validate_spec(self).map_err(OperatorError::from)
    }

    /// The resolved read: SQL and parameters (REST) or table, fields and row restriction
    /// (Storage Read), for the context's window.
    pub fn plan(&self, ctx: &SourceContext) -> Result<ReadPlan, BigQueryError> {
        let conn = self.connection(ctx)?;
        query::plan(self, conn, ctx.window.as_ref())
    }

    /// Opens the source: runs the query (or creates the read session) and returns the Arrow
    /// schema and the stream of batches.
    pub async fn open(
        &self,
        ctx: &SourceContext,
    ) -> Result<(SchemaRef, BatchStream), OperatorError> {
        let plan = self.plan(ctx)?;
        let conn = self.connection(ctx)?;
        let bq = client::Bq::connect(conn).await?;
        let opened = match plan.api {
            ReadApi::Rest => rest::open(bq, plan).await?,
            ReadApi::Storage => storage::open(bq, plan).await?,
        };
        Ok(opened)
    }

    /// The Arrow schema without reading rows: a dry run of the query, or the table's metadata.
    /// One try, bounded in time (it serves `explain`, which must work offline).
    pub async fn schema(&self, ctx: &SourceContext) -> Result<SchemaRef, OperatorError> {
        let plan = self.plan(ctx)?;
        let mut conn = self.connection(ctx)?.clone();
        conn.retry.attempts = 1;
        let attempt = async {
            let bq = client::Bq::connect(&conn).await?;
            explain::schema(&bq, &plan).await
        };
        match tokio::time::timeout(explain::EXPLAIN_TIMEOUT, attempt).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(BigQueryError::Api {
                call: "schema lookup".into(),
                attempts: 1,
                message: format!(
                    "could not reach BigQuery within {} s",
                    explain::EXPLAIN_TIMEOUT.as_secs()
                ),
                transient: true,
            }
            .into()),
        }
    }

    /// One line for `explain`.
    pub fn describe(&self) -> String {
        let what = match (&self.query, &self.table) {
            (Some(_), _) => "query".to_string(),
            (None, Some(t)) => format!("table {t}"),
            (None, None) => "nothing".to_string(),
        };
        let mut s = format!("bigquery {what} via connection {}", self.connection);
        if let Some(api) = self.read_api {
            s.push_str(&format!(" (read_api {})", api.as_str()));
        }
        s
    }

    /// What `explain` shows: SQL with its parameters resolved, the read path, and a dry run
    /// (bytes processed, estimated on-demand cost) or why BigQuery could not be reached.
    pub async fn explain(&self, ctx: &SourceContext) -> Vec<ExplainLine> {
        explain::explain(self, ctx).await
    }
}

impl From<BigQueryError> for OperatorError {
    fn from(e: BigQueryError) -> Self {
        OperatorError::BigQuery(Box::new(e))
    }
}
