//! The pipeline file as written: a serde model of `pipelines.yaml`.
//!
//! Unknown keys are rejected everywhere (`deny_unknown_fields`), and values that need checking
//! later are `Spanned` so [`crate::compile`] can point at them. This module only parses; all
//! meaning (types, durations, dependencies) is checked in `compile`.

use indexmap::IndexMap;
use pulso_operators::source::{BigQueryConnection, SourceSpec};
use pulso_operators::transform::TransformSpec;
use serde::Deserialize;
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Shown in logs and the run ledger; defaults to the file name.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub connections: IndexMap<String, Spanned<ConnectionSpec>>,
    #[serde(default)]
    pub defaults: DefaultsSpec,
    #[serde(default)]
    pub tables: Vec<TableSpec>,
    /// SQL nodes run inside PostgreSQL (aux and mart builds).
    #[serde(default)]
    pub builds: Vec<BuildSpec>,
}

/// Named connections. The target database is `DATABASE_URL` unless `defaults.target` names a
/// `postgres` connection here.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConnectionSpec {
    Postgres {
        url: String,
    },
    /// A BigQuery project/dataset read by `kind: bigquery` sources (see docs/pipeline.md).
    Bigquery(Box<BigQueryConnection>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsSpec {
    /// Postgres connection to load into (a key of `connections`).
    #[serde(default)]
    pub target: Option<Spanned<String>>,
    /// Schema of targets given without one (default `public`).
    #[serde(default)]
    pub schema: Option<String>,
    /// Zone of business dates and zone-less timestamps (default America/Lima).
    #[serde(default)]
    pub time_zone: Option<Spanned<String>>,
    #[serde(default)]
    pub batch_size: Option<usize>,
    #[serde(default)]
    pub lookback: Option<Spanned<String>>,
    #[serde(default)]
    pub create_target: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    pub name: Spanned<String>,
    pub source: Spanned<SourceSpec>,
    /// `schema.table` or `table` (then in `defaults.schema`); defaults to the node name.
    #[serde(default)]
    pub target: Option<Spanned<String>>,
    /// Target columns in order: name → PostgreSQL type.
    pub columns: Spanned<IndexMap<String, Spanned<String>>>,
    #[serde(default)]
    pub primary_key: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub incremental: Option<Spanned<IncrementalSpec>>,
    #[serde(default)]
    pub mode: Option<Spanned<ModeSpec>>,
    #[serde(default)]
    pub transform: Option<TransformSpec>,
    #[serde(default)]
    pub batch_size: Option<usize>,
    #[serde(default)]
    pub create_target: Option<bool>,
    /// A `date` column: the days of the rows a load writes are recorded so that builds
    /// depending on this table recompute only those days.
    #[serde(default)]
    pub change_date: Option<Spanned<String>>,
    #[serde(default)]
    pub depends_on: Vec<Spanned<String>>,
    /// Per-day count and sums of the source against the target, after the merge.
    #[serde(default)]
    pub reconcile: Option<Spanned<ReconcileYaml>>,
    /// Quality gates on the target, before commit.
    #[serde(default)]
    pub checks: Vec<Spanned<CheckSpec>>,
}

/// `reconcile: { by: <date column>, sum: [cols], on_mismatch: fail | warn }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileYaml {
    pub by: Spanned<String>,
    #[serde(default)]
    pub sum: Vec<Spanned<String>>,
    #[serde(default)]
    pub on_mismatch: Option<OnMismatchSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMismatchSpec {
    Fail,
    Warn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeveritySpec {
    Error,
    Warn,
}

/// One entry of `checks:`: a name, a severity and exactly one kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub severity: Option<SeveritySpec>,
    /// The table checked: a table's own target by default; required for a build's checks
    /// (except `sql`).
    #[serde(default)]
    pub table: Option<Spanned<String>>,
    /// Columns that identify an offending row in messages (default: a table's primary key).
    #[serde(default)]
    pub key: Option<Vec<String>>,
    #[serde(default)]
    pub not_null: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub unique: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub accepted_values: Option<AcceptedValuesSpec>,
    #[serde(default)]
    pub range: Option<RangeSpec>,
    #[serde(default)]
    pub row_count: Option<RowCountSpec>,
    #[serde(default)]
    pub sql: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptedValuesSpec {
    pub column: Spanned<String>,
    pub values: Vec<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeSpec {
    pub column: Spanned<String>,
    #[serde(default)]
    pub min: Option<Scalar>,
    #[serde(default)]
    pub max: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowCountSpec {
    /// The day column: the latest day is compared with the previous day present.
    pub by: Spanned<String>,
    /// Count distinct values of this column instead of rows.
    #[serde(default)]
    pub count: Option<Spanned<String>>,
    #[serde(default)]
    pub min_ratio: Option<f64>,
    #[serde(default)]
    pub max_ratio: Option<f64>,
}

/// A YAML scalar, kept as the text PostgreSQL compares.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Scalar {
    pub fn text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Text(t) => t.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeSpec {
    Incremental,
    FullRefresh,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncrementalSpec {
    pub column: Spanned<String>,
    /// date | datetime | timestamp
    #[serde(rename = "type")]
    pub ty: Spanned<String>,
    /// How far before the watermark each run re-reads (late rows); default `defaults.lookback`.
    #[serde(default)]
    pub lookback: Option<Spanned<String>>,
    /// Lower bound of the very first run; without it the first run reads everything.
    #[serde(default)]
    pub initial: Option<Spanned<String>>,
    /// Rows whose column is NULL: `load` (default), `warn` or `fail` (see docs/pipeline.md).
    #[serde(default)]
    pub nulls: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    pub name: Spanned<String>,
    /// Inline SQL, or…
    #[serde(default)]
    pub sql: Option<String>,
    /// …a file of SQL, relative to the pipeline file.
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    #[serde(default)]
    pub depends_on: Vec<Spanned<String>>,
    /// Quality gates on the build's output (each names its `table:`, or is `sql:`).
    #[serde(default)]
    pub checks: Vec<Spanned<CheckSpec>>,
}
