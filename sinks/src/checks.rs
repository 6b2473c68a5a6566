//! Quality gates (`checks:` of a table or build), evaluated inside the node's transaction just
//! before [`crate::commit::commit_node`].
//!
//! Every check is one query that selects its *offending rows* as one text column `k` (a row's
//! key, or a sentence for `row_count`); [`evaluate`] counts them and keeps up to
//! [`SAMPLE`] of them. A failed check of severity `error` fails the node (the caller returns the
//! error before COMMIT, so the server rolls everything back); one of severity `warn` is recorded
//! in the ledger (`node_runs.details.checks`) and the run goes on.
//!
//! The SQL is pure ([`Check::offending_sql`]) so `explain` prints exactly what `run` executes.
//! Identifiers are quoted; values from the pipeline file (accepted values, range bounds, ratios)
//! are bound parameters.

use serde::Serialize;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use crate::error::SinkError;
use crate::sql::{TableName, ident};

/// How many offending keys a result keeps (and an error message shows).
pub const SAMPLE: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The node fails and nothing it wrote is committed.
    Error,
    /// The node commits; the failure is recorded and reported as a warning.
    Warn,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warn => "warn",
        }
    }
}

/// What a check tests.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// None of the columns is NULL.
    NotNull { columns: Vec<String> },
    /// No two rows share the values of the columns.
    Unique { columns: Vec<String> },
    /// The column's text is one of the values (NULL passes; combine with `not_null`).
    AcceptedValues { column: String, values: Vec<String> },
    /// The column, read as numeric, lies in `[min, max]` (either bound optional; decimal text).
    Range {
        column: String,
        min: Option<String>,
        max: Option<String>,
    },
    /// The latest day of `by` holds at least `min_ratio` (and at most `max_ratio`) times the rows
    /// (or distinct values of `count`) of the previous day present in the table.
    RowCount {
        by: String,
        count: Option<String>,
        min_ratio: Option<f64>,
        max_ratio: Option<f64>,
    },
    /// A query returning the offending rows.
    Sql { sql: String },
}

impl CheckKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckKind::NotNull { .. } => "not_null",
            CheckKind::Unique { .. } => "unique",
            CheckKind::AcceptedValues { .. } => "accepted_values",
            CheckKind::Range { .. } => "range",
            CheckKind::RowCount { .. } => "row_count",
            CheckKind::Sql { .. } => "sql",
        }
    }
}

/// One compiled check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub kind: CheckKind,
    pub severity: Severity,
    /// The table it reads (a table node's target; required for a build's non-`sql` checks).
    pub table: Option<TableName>,
    /// Columns that identify an offending row in messages (a table's primary key, or `key:`).
    pub key: Vec<String>,
    /// A table's `change_date` column: row checks (not_null, unique, accepted_values, range)
    /// then read only the rows of the days the load wrote ([`CHECK_DAYS_TABLE`]), so a check
    /// costs what the load costs, not a scan of the whole history.
    pub scope_day: Option<String>,
}

/// The session's temp table of the days a load wrote, filled before its scoped checks run.
pub const CHECK_DAYS_TABLE: &str = "pulso_flow_check_days";

/// A bound parameter of a check's query.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckParam {
    Texts(Vec<String>),
    Text(Option<String>),
    Float(Option<f64>),
}

impl CheckParam {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            CheckParam::Texts(v) => v,
            CheckParam::Text(v) => v,
            CheckParam::Float(v) => v,
        }
    }
}

/// The outcome of one check, as stored in `node_runs.details.checks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub kind: &'static str,
    pub severity: Severity,
    pub passed: bool,
    /// How many offending rows the query returned.
    pub offending: i64,
    /// Up to [`SAMPLE`] of them (keys, or the `row_count` sentence).
    pub sample: Vec<String>,
}

impl CheckResult {
    /// `check <name> (<kind>): <n> offending row(s), e.g. <keys>`.
    pub fn describe(&self) -> String {
        format!(
            "check {} ({}): {} offending row(s){}",
            self.name,
            self.kind,
            self.offending,
            if self.sample.is_empty() {
                String::new()
            } else {
                format!(": {}", self.sample.join("; "))
            }
        )
    }
}

impl Check {
    fn table_sql(&self) -> String {
        self.table
            .as_ref()
            .map(TableName::quoted)
            .unwrap_or_else(|| "(SELECT 1)".into())
    }

    /// Text identifying a row of the table: its key columns, or the whole row when none is known.
    fn key_expr(&self) -> String {
        if self.key.is_empty() {
            "left(row_to_json(t)::text, 200)".into()
        } else {
            let cols: Vec<String> = self.key.iter().map(|k| format!("{}={}", k, "%s")).collect();
            let args: Vec<String> = self
                .key
                .iter()
                .map(|k| format!("coalesce(t.{}::text, 'NULL')", ident(k)))
                .collect();
            format!(
                "format('{}', {})",
                cols.join(" ").replace('\'', "''"),
                args.join(", ")
            )
        }
    }

    /// `AND t.<day> IN (days the load wrote)` for a scoped check, else nothing.
    fn scope(&self) -> String {
        self.scope_day
            .as_ref()
            .map(|d| {
                format!(
                    " AND t.{} IN (SELECT day FROM {CHECK_DAYS_TABLE})",
                    ident(d)
                )
            })
            .unwrap_or_default()
    }

    /// The query selecting the offending rows as one text column `k`, and its parameters.
    pub fn offending_sql(&self) -> (String, Vec<CheckParam>) {
        let table = self.table_sql();
        let key = self.key_expr();
        let scope = self.scope();
        match &self.kind {
            CheckKind::NotNull { columns } => {
                let cond: Vec<String> = columns
                    .iter()
                    .map(|c| format!("t.{} IS NULL", ident(c)))
                    .collect();
                (
                    format!(
                        "SELECT {key} AS k FROM {table} AS t WHERE ({}){scope}",
                        cond.join(" OR ")
                    ),
                    vec![],
                )
            }
            CheckKind::Unique { columns } => {
                let cols: Vec<String> = columns.iter().map(|c| format!("t.{}", ident(c))).collect();
                let shown: Vec<String> = columns
                    .iter()
                    .map(|c| {
                        format!(
                            "'{}=' || coalesce(t.{}::text, 'NULL')",
                            c.replace('\'', "''"),
                            ident(c)
                        )
                    })
                    .collect();
                (
                    format!(
                        "SELECT concat_ws(' ', {}) || ' (' || count(*) || ' rows)' AS k \
                         FROM {table} AS t WHERE true{scope} GROUP BY {} HAVING count(*) > 1",
                        shown.join(", "),
                        cols.join(", ")
                    ),
                    vec![],
                )
            }
            CheckKind::AcceptedValues { column, values } => (
                format!(
                    "SELECT {key} || ' ' || {lit} || '=' || t.{col}::text AS k FROM {table} AS t \
                     WHERE t.{col} IS NOT NULL AND NOT (t.{col}::text = ANY($1::text[])){scope}",
                    col = ident(column),
                    lit = quote_literal(column),
                ),
                vec![CheckParam::Texts(values.clone())],
            ),
            CheckKind::Range { column, min, max } => (
                format!(
                    "SELECT {key} || ' ' || {lit} || '=' || t.{col}::text AS k FROM {table} AS t \
                     WHERE (t.{col}::numeric < $1::text::numeric OR t.{col}::numeric > $2::text::numeric){scope}",
                    col = ident(column),
                    lit = quote_literal(column),
                ),
                vec![CheckParam::Text(min.clone()), CheckParam::Text(max.clone())],
            ),
            CheckKind::RowCount {
                by,
                count,
                min_ratio,
                max_ratio,
            } => {
                let by = ident(by);
                let what = match count {
                    Some(c) => format!("count(DISTINCT t.{})", ident(c)),
                    None => "count(*)".into(),
                };
                (
                    format!(
                        "WITH c AS (SELECT max(t.{by}) AS day FROM {table} AS t), \
                              p AS (SELECT max(t.{by}) AS day FROM {table} AS t WHERE t.{by} < (SELECT day FROM c)), \
                              n AS (SELECT (SELECT {what} FROM {table} AS t WHERE t.{by} = (SELECT day FROM c)) AS cn, \
                                           (SELECT {what} FROM {table} AS t WHERE t.{by} = (SELECT day FROM p)) AS pn) \
                         SELECT format('%s has %s, %s%% of the %s of %s', c.day, n.cn, \
                                       round(100.0 * n.cn / n.pn, 1), n.pn, p.day) AS k \
                         FROM c, p, n WHERE p.day IS NOT NULL AND n.pn > 0 \
                           AND (n.cn < n.pn * $1::float8 OR n.cn > n.pn * $2::float8)"
                    ),
                    vec![CheckParam::Float(*min_ratio), CheckParam::Float(*max_ratio)],
                )
            }
            CheckKind::Sql { sql } => (
                format!(
                    "SELECT left(row_to_json(q)::text, 200) AS k FROM ({}) AS q",
                    sql.trim().trim_end_matches(';')
                ),
                vec![],
            ),
        }
    }

    /// The query [`evaluate`] runs: the number of offending rows and up to [`SAMPLE`] of them.
    pub fn counting_sql(&self) -> (String, Vec<CheckParam>) {
        let (offending, params) = self.offending_sql();
        (
            format!(
                "WITH o AS MATERIALIZED ({offending}) \
                 SELECT (SELECT count(*) FROM o)::bigint, \
                        ARRAY(SELECT k FROM o ORDER BY k LIMIT {SAMPLE})"
            ),
            params,
        )
    }
}

/// A string literal (for column names shown in messages; never for values).
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Run every check inside the caller's open transaction. A check whose query fails is an error
/// (a typo in a `sql:` check must not pass silently).
pub async fn evaluate(
    client: &Client,
    node: &str,
    checks: &[Check],
) -> Result<Vec<CheckResult>, SinkError> {
    let mut results = Vec::with_capacity(checks.len());
    for check in checks {
        let (sql, params) = check.counting_sql();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(CheckParam::as_sql).collect();
        let row = client
            .query_one(&sql, &refs)
            .await
            .map_err(|e| SinkError::pg(format!("{node}: evaluating check {}", check.name), e))?;
        let offending: i64 = row.get(0);
        let sample: Vec<Option<String>> = row.get(1);
        let result = CheckResult {
            name: check.name.clone(),
            kind: check.kind.as_str(),
            severity: check.severity,
            passed: offending == 0,
            offending,
            sample: sample
                .into_iter()
                .map(|k| k.unwrap_or_else(|| "NULL".into()))
                .collect(),
        };
        if !result.passed {
            tracing::warn!(node, check = %check.name, severity = check.severity.as_str(), offending, "check failed");
        }
        results.push(result);
    }
    Ok(results)
}

/// The failures (failed `error` checks: the node must not commit) and the warnings (failed
/// `warn` checks) among the results.
pub fn verdict(results: &[CheckResult]) -> (Vec<String>, Vec<String>) {
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    for r in results.iter().filter(|r| !r.passed) {
        match r.severity {
            Severity::Error => failures.push(format!("quality gate failed: {}", r.describe())),
            Severity::Warn => warnings.push(r.describe()),
        }
    }
    (failures, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: CheckKind) -> Check {
        Check {
            name: "c".into(),
            kind,
            severity: Severity::Error,
            table: Some(TableName::new("raw", "t")),
            key: vec!["id".into()],
            scope_day: None,
        }
    }

    #[test]
    fn offending_sql_quotes_identifiers_and_binds_values() {
        let (sql, params) = check(CheckKind::AcceptedValues {
            column: "es\"tado".into(),
            values: vec!["A'".into()],
        })
        .offending_sql();
        assert!(sql.contains("t.\"es\"\"tado\""), "{sql}");
        assert!(!sql.contains("A'"), "values are bound, not inlined: {sql}");
        assert_eq!(params, vec![CheckParam::Texts(vec!["A'".into()])]);
        let (sql, _) = check(CheckKind::NotNull {
            columns: vec!["a".into(), "b".into()],
        })
        .offending_sql();
        assert!(sql.contains("t.\"a\" IS NULL OR t.\"b\" IS NULL"), "{sql}");
        let mut scoped = check(CheckKind::Range {
            column: "monto".into(),
            min: Some("0".into()),
            max: None,
        });
        scoped.scope_day = Some("dia".into());
        let (sql, _) = scoped.offending_sql();
        assert!(
            sql.ends_with("AND t.\"dia\" IN (SELECT day FROM pulso_flow_check_days)"),
            "{sql}"
        );
    }

    #[test]
    fn error_checks_fail_and_warn_checks_warn() {
        let r = |severity, passed| CheckResult {
            name: "x".into(),
            kind: "not_null",
            severity,
            passed,
            offending: if passed { 0 } else { 2 },
            sample: if passed {
                vec![]
            } else {
                vec!["id=1".into(), "id=2".into()]
            },
        };
        let (failures, warnings) = verdict(&[r(Severity::Warn, false), r(Severity::Error, true)]);
        assert!(failures.is_empty());
        assert_eq!(
            warnings,
            vec!["check x (not_null): 2 offending row(s): id=1; id=2"]
        );
        let (failures, warnings) = verdict(&[r(Severity::Error, false)]);
        assert!(warnings.is_empty());
        assert_eq!(
            failures,
            vec!["quality gate failed: check x (not_null): 2 offending row(s): id=1; id=2"]
        );
    }
}
