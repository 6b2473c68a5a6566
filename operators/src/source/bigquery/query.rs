//! From a `source:` block and the run's window to what is sent to BigQuery.
//!
//! - `query:` → `SELECT * FROM (<query>) AS pulso_src WHERE (`col` IS NULL OR (`col` >= @lower AND `col` < @upper))`
//!   (the outer `*` is the user's explicit select list), parameters typed as the window:
//!   DATE, DATETIME or TIMESTAMP.
//! - `table:` + `columns:` (REST) → `SELECT `a`, `b` FROM `p.d.t` WHERE (<filter>) AND …` with
//!   the same parameters.
//! - `table:` + `columns:` (Storage Read) → selected fields and a row restriction. The Storage
//!   Read API takes no parameters, so the window bounds are written as typed literals
//!   (`TIMESTAMP '2025-06-01 05:00:00.000000+00:00'`) formatted from the typed bound itself
//!   (digits and separators only, checked before use), never from text read from anywhere.
//!
//! Identifiers are validated (letters, digits, `_`, and `-` in project names) and quoted with
//! backticks; values only travel as parameters.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use gcp_bigquery_client::model::query_parameter::QueryParameter;
use gcp_bigquery_client::model::query_parameter_type::QueryParameterType;
use gcp_bigquery_client::model::query_parameter_value::QueryParameterValue;

use super::error::BigQueryError;
use super::{BigQueryConnection, BigQuerySpec, DEFAULT_PAGE_SIZE, DEFAULT_STREAMS, ReadApi};
use crate::window::Window;
use pulso_types::{IncType, IncValue};

/// Names of the window parameters (reserved: `params:` cannot use them).
pub const LOWER: &str = "lower";
pub const UPPER: &str = "upper";

const PARAM_TYPES: &[&str] = &[
    "STRING",
    "INT64",
    "FLOAT64",
    "NUMERIC",
    "BIGNUMERIC",
    "BOOL",
    "DATE",
    "DATETIME",
    "TIMESTAMP",
    "TIME",
    "BYTES",
];

/// A named, typed query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    /// BigQuery type name (TIMESTAMP, DATE, STRING, ...).
    pub ty: String,
    pub value: String,
}

impl Param {
    pub fn to_query_parameter(&self) -> QueryParameter {
        QueryParameter {
            name: Some(self.name.clone()),
            parameter_type: Some(QueryParameterType {
                array_type: None,
                struct_types: None,
                r#type: self.ty.clone(),
            }),
            parameter_value: Some(QueryParameterValue {
                array_values: None,
                struct_values: None,
                value: Some(self.value.clone()),
            }),
        }
    }

    /// `@name TYPE = value` for explain (the value rendered as a JSON string, so quotes in it
    /// are visible and unambiguous).
    pub fn describe(&self) -> String {
        format!(
            "@{} {} = {}",
            self.name,
            self.ty,
            serde_json::Value::String(self.value.clone())
        )
    }
}

/// A table of BigQuery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub project: String,
    pub dataset: String,
    pub table: String,
}

impl TableRef {
    /// `` `project.dataset.table` `` for SQL.
    pub fn sql(&self) -> String {
        format!("`{}.{}.{}`", self.project, self.dataset, self.table)
    }

    /// `projects/p/datasets/d/tables/t` for the Storage Read API.
    pub fn path(&self) -> String {
        format!(
            "projects/{}/datasets/{}/tables/{}",
            self.project, self.dataset, self.table
        )
    }
}

/// Everything needed to read one table's window.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    pub api: ReadApi,
    /// REST: the SQL sent. Storage Read: the equivalent SQL, for explain only.
    pub sql: String,
    pub params: Vec<Param>,
    /// Storage Read: the table, its selected fields and the row restriction.
    pub table: Option<TableRef>,
    pub columns: Vec<String>,
    pub row_restriction: Option<String>,
    pub page_size: u32,
    pub streams: u32,
    /// The window pushed down (column, type), if any.
    pub window_column: Option<(String, IncType)>,
    /// REST query jobs: BigQuery's `maximumBytesBilled`.
    pub maximum_bytes_billed: Option<u64>,
}

fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_table_part(s: &str, project: bool) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || (c == '-' && project) || c == '$')
}

/// Quotes a column name for BigQuery SQL.
pub fn quote_column(name: &str) -> Result<String, BigQueryError> {
    if valid_identifier(name) {
        Ok(format!("`{name}`"))
    } else {
        Err(BigQueryError::config(format!(
            "column name {name:?} is not a plain BigQuery identifier (letters, digits, _)"
        )))
    }
}

/// Parses `table`, `dataset.table` or `project.dataset.table` (backticks allowed).
pub fn parse_table(name: &str, conn: &BigQueryConnection) -> Result<TableRef, BigQueryError> {
    let bare = name.trim().trim_matches('`');
    let parts: Vec<&str> = bare.split('.').map(|p| p.trim_matches('`')).collect();
    let bad = || {
        BigQueryError::config(format!(
            "bad BigQuery table {name:?}: write table, dataset.table or project.dataset.table"
        ))
    };
    let (project, dataset, table) = match parts.as_slice() {
        [t] => (
            conn.project.clone(),
            conn.dataset.clone().ok_or_else(|| {
                BigQueryError::config(format!(
                    "table {name:?} has no dataset and the connection sets none"
                ))
            })?,
            t.to_string(),
        ),
        [d, t] => (conn.project.clone(), d.to_string(), t.to_string()),
        [p, d, t] => (p.to_string(), d.to_string(), t.to_string()),
        _ => return Err(bad()),
    };
    if !valid_table_part(&project, true)
        || !valid_table_part(&dataset, false)
        || !valid_table_part(&table, false)
    {
        return Err(bad());
    }
    Ok(TableRef {
        project,
        dataset,
        table,
    })
}

/// True when the query's (first) select list is `*`: the curated column list must be explicit.
fn selects_star(query: &str) -> bool {
    let text = strip_leading_comments(query);
    let upper = text.to_ascii_uppercase();
    let Some(rest) = upper.strip_prefix("SELECT") else {
        return false;
    };
    let mut rest = rest.trim_start();
    for kw in ["DISTINCT", "ALL", "AS STRUCT", "AS VALUE"] {
        if let Some(r) = rest.strip_prefix(kw) {
            rest = r.trim_start();
        }
    }
    rest.starts_with('*')
}

fn strip_leading_comments(q: &str) -> &str {
    let mut s = q.trim_start();
    loop {
        if let Some(r) = s.strip_prefix("--").or_else(|| s.strip_prefix('#')) {
            s = r.split_once('\n').map_or("", |(_, rest)| rest).trim_start();
        } else if let Some(r) = s.strip_prefix("/*") {
            s = r.split_once("*/").map_or("", |(_, rest)| rest).trim_start();
        } else {
            return s;
        }
    }
}

/// Offline checks of a BigQuery `source:` block.
pub fn validate_spec(spec: &BigQuerySpec) -> Result<(), BigQueryError> {
    match (&spec.query, &spec.table) {
        (Some(_), Some(_)) => {
            return Err(BigQueryError::config(
                "give either `query:` or `table:` (with `columns:`), not both",
            ));
        }
        (None, None) => {
            return Err(BigQueryError::config(
                "a bigquery source needs `query:` (an explicit select list) or `table:` with `columns:`",
            ));
        }
        (Some(q), None) => {
            if q.trim().is_empty() {
                return Err(BigQueryError::config("`query:` is empty"));
            }
            if selects_star(q) {
                return Err(BigQueryError::config(
                    "`query:` must list its columns (casts, renames, derived columns), not SELECT *: \
                     the curated select list is the contract with the target table",
                ));
            }
            if !spec.columns.is_empty() || spec.filter.is_some() {
                return Err(BigQueryError::config(
                    "`columns:` and `filter:` go with `table:`; with `query:` write them in the query",
                ));
            }
            if spec.read_api == Some(ReadApi::Storage) {
                return Err(BigQueryError::config(
                    "read_api: storage reads a plain table: use `table:` and `columns:` \
                     (queries, e.g. with joins, go through read_api: rest)",
                ));
            }
        }
        (None, Some(_)) => {
            if spec.columns.is_empty() {
                return Err(BigQueryError::config(
                    "`table:` needs `columns:`, the list of columns to read (never all of them implicitly)",
                ));
            }
            for c in &spec.columns {
                quote_column(c)?;
            }
            if !spec.params.is_empty() {
                return Err(BigQueryError::config(
                    "`params:` are for `query:`; a table read has no parameters besides the window",
                ));
            }
        }
    }
    for (name, p) in &spec.params {
        if !valid_identifier(name) {
            return Err(BigQueryError::config(format!(
                "parameter name {name:?} must be letters, digits and _"
            )));
        }
        if name.eq_ignore_ascii_case(LOWER) || name.eq_ignore_ascii_case(UPPER) {
            return Err(BigQueryError::config(format!(
                "parameter name {name:?} is reserved for the incremental window (@lower, @upper)"
            )));
        }
        let ty = p.ty.to_ascii_uppercase();
        if !PARAM_TYPES.contains(&ty.as_str()) {
            return Err(BigQueryError::config(format!(
                "parameter {name}: unknown type {:?}; use one of {}",
                p.ty,
                PARAM_TYPES.join(", ")
            )));
        }
    }
    if spec.page_size == Some(0) {
        return Err(BigQueryError::config("page_size must be positive"));
    }
    if matches!(spec.streams, Some(0)) {
        return Err(BigQueryError::config("streams must be positive"));
    }
    Ok(())
}

/// The BigQuery type of a window bound.
pub fn param_type(ty: IncType) -> &'static str {
    match ty {
        IncType::Date => "DATE",
        IncType::Datetime => "DATETIME",
        IncType::Timestamp => "TIMESTAMP",
    }
}

/// The canonical parameter text of a bound: `2025-06-01`, `2025-06-01 05:00:00.000000`,
/// `2025-06-01 05:00:00.000000+00:00`.
pub fn param_value(v: &IncValue) -> String {
    match v {
        IncValue::Date(d) => format_date(d),
        IncValue::Datetime(dt) => format_datetime(dt),
        IncValue::Timestamp(ts) => format_timestamp(ts),
    }
}

fn format_date(d: &NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn format_datetime(dt: &NaiveDateTime) -> String {
    dt.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

fn format_timestamp(ts: &DateTime<Utc>) -> String {
    ts.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
}

/// A typed SQL literal of a bound, for the Storage Read row restriction. The text comes from
/// the typed value (chrono formatting) and is checked to contain only digits, `-`, `:`, `.`,
/// `+` and spaces before it is wrapped in quotes.
pub fn typed_literal(v: &IncValue) -> Result<String, BigQueryError> {
    let value = param_value(v);
    if !value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | ':' | '.' | '+' | ' '))
    {
        return Err(BigQueryError::config(format!(
            "window bound {value:?} cannot be written as a literal"
        )));
    }
    Ok(format!("{} '{value}'", param_type(v.ty())))
}

/// The read plan of a spec for a window.
pub fn plan(
    spec: &BigQuerySpec,
    conn: &BigQueryConnection,
    window: Option<&Window>,
) -> Result<ReadPlan, BigQueryError> {
    validate_spec(spec)?;
    let api = spec.read_api(Some(conn));
    let page_size = spec
        .page_size
        .or(conn.page_size)
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .max(1);
    let streams = spec
        .streams
        .or(conn.streams)
        .unwrap_or(DEFAULT_STREAMS)
        .max(1);
    let maximum_bytes_billed = spec.maximum_bytes_billed.or(conn.maximum_bytes_billed);

    let mut params: Vec<Param> = spec
        .params
        .iter()
        .map(|(name, p)| Param {
            name: name.clone(),
            ty: p.ty.to_ascii_uppercase(),
            value: p.value.as_text(),
        })
        .collect();
    let mut predicates: Vec<String> = Vec::new();
    let mut literal_predicates: Vec<String> = Vec::new();
    let mut window_column = None;
    if let Some(w) = window {
        w.validate()
            .map_err(|e| BigQueryError::config(e.to_string()))?;
        let col = quote_column(&w.column)?;
        window_column = Some((w.column.clone(), w.ty));
        let ty = param_type(w.ty);
        if let Some(lower) = &w.lower {
            predicates.push(format!("{col} >= @{LOWER}"));
            literal_predicates.push(format!("{col} >= {}", typed_literal(lower)?));
            params.push(Param {
                name: LOWER.into(),
                ty: ty.into(),
                value: param_value(lower),
            });
        }
        if let Some(upper) = &w.upper {
            predicates.push(format!("{col} < @{UPPER}"));
            literal_predicates.push(format!("{col} < {}", typed_literal(upper)?));
            params.push(Param {
                name: UPPER.into(),
                ty: ty.into(),
                value: param_value(upper),
            });
        }
    }

    // Rows whose window column is NULL are in every window (not yet seen; the sink counts them
    // and applies `incremental.nulls`).
    if let Some(w) = window.filter(|_| !predicates.is_empty()) {
        let col = quote_column(&w.column)?;
        predicates = vec![format!("({col} IS NULL OR ({}))", predicates.join(" AND "))];
        literal_predicates = vec![format!(
            "({col} IS NULL OR ({}))",
            literal_predicates.join(" AND ")
        )];
    }
    match (&spec.query, &spec.table) {
        (Some(query), _) => {
            if api == ReadApi::Storage {
                return Err(BigQueryError::config(format!(
                    "connection {:?} reads with read_api: storage, which reads plain tables; \
                     set `read_api: rest` on this table (it has a query)",
                    spec.connection
                )));
            }
            let body = query.trim().trim_end_matches(';').trim_end();
            let sql = if predicates.is_empty() {
                body.to_string()
            } else {
                format!(
                    "SELECT * FROM (\n{body}\n) AS pulso_src\nWHERE {}",
                    predicates.join(" AND ")
                )
            };
            Ok(ReadPlan {
                api,
                sql,
                params,
                table: None,
                columns: Vec::new(),
                row_restriction: None,
                page_size,
                streams,
                window_column,
                maximum_bytes_billed,
            })
        }
        (None, Some(table)) => {
            let table = parse_table(table, conn)?;
            let cols: Vec<String> = spec
                .columns
                .iter()
                .map(|c| quote_column(c))
                .collect::<Result<_, _>>()?;
            let filter = spec
                .filter
                .as_deref()
                .map(str::trim)
                .filter(|f| !f.is_empty());
            let mut conditions: Vec<String> =
                filter.map(|f| format!("({f})")).into_iter().collect();
            let (sql, row_restriction) = match api {
                ReadApi::Rest => {
                    conditions.extend(predicates);
                    let mut sql = format!("SELECT {} FROM {}", cols.join(", "), table.sql());
                    if !conditions.is_empty() {
                        sql.push_str(&format!("\nWHERE {}", conditions.join(" AND ")));
                    }
                    (sql, None)
                }
                ReadApi::Storage => {
                    conditions.extend(literal_predicates);
                    params.clear();
                    let restriction = conditions.join(" AND ");
                    let mut sql = format!("SELECT {} FROM {}", cols.join(", "), table.sql());
                    if !restriction.is_empty() {
                        sql.push_str(&format!("\nWHERE {restriction}"));
                    }
                    (sql, Some(restriction).filter(|r| !r.is_empty()))
                }
            };
            Ok(ReadPlan {
                api,
                sql,
                params,
                table: Some(table),
                columns: spec.columns.clone(),
                row_restriction,
                page_size,
                streams,
                window_column,
                maximum_bytes_billed,
            })
        }
        (None, None) => Err(BigQueryError::config("no query and no table")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> BigQueryConnection {
        serde_json::from_value(serde_json::json!({"project": "p-1", "dataset": "ds"})).unwrap()
    }

    fn spec(v: serde_json::Value) -> BigQuerySpec {
        serde_json::from_value(v).unwrap()
    }

    fn window(ty: IncType, lower: &str, upper: &str) -> Window {
        Window {
            column: "creado_el".into(),
            ty,
            lower: Some(IncValue::parse(ty, lower).unwrap()),
            upper: Some(IncValue::parse(ty, upper).unwrap()),
        }
    }

    #[test]
    fn a_query_is_wrapped_and_the_window_travels_as_typed_parameters() {
        let s = spec(serde_json::json!({
            "connection": "bq",
            "query": "SELECT CAST(cuenta AS STRING) AS cuenta, creado_el FROM `p-1.ds.t` WHERE monto > 0;",
            "params": {"cliente": {"type": "string", "value": "x' OR 1=1 --"}}
        }));
        let w = window(
            IncType::Timestamp,
            "2025-06-01T00:00:00Z",
            "2025-06-08T12:00:00.5Z",
        );
        let p = plan(&s, &conn(), Some(&w)).unwrap();
        assert_eq!(
            p.sql,
            "SELECT * FROM (\nSELECT CAST(cuenta AS STRING) AS cuenta, creado_el FROM `p-1.ds.t` WHERE monto > 0\n) AS pulso_src\nWHERE (`creado_el` IS NULL OR (`creado_el` >= @lower AND `creado_el` < @upper))"
        );
        assert_eq!(
            p.params,
            vec![
                Param {
                    name: "cliente".into(),
                    ty: "STRING".into(),
                    value: "x' OR 1=1 --".into()
                },
                Param {
                    name: "lower".into(),
                    ty: "TIMESTAMP".into(),
                    value: "2025-06-01 00:00:00.000000+00:00".into()
                },
                Param {
                    name: "upper".into(),
                    ty: "TIMESTAMP".into(),
                    value: "2025-06-08 12:00:00.500000+00:00".into()
                },
            ]
        );
        // No value ever appears in the SQL text.
        assert!(!p.sql.contains("2025") && !p.sql.contains("OR 1=1"));
        let qp = p.params[0].to_query_parameter();
        assert_eq!(
            serde_json::to_value(&qp).unwrap(),
            serde_json::json!({"name": "cliente", "parameterType": {"type": "STRING"},
                               "parameterValue": {"value": "x' OR 1=1 --"}})
        );
    }

    #[test]
    fn date_and_datetime_windows_use_their_own_types() {
        let s =
            spec(serde_json::json!({"connection": "bq", "query": "SELECT a, creado_el FROM t"}));
        let p = plan(
            &s,
            &conn(),
            Some(&window(IncType::Date, "2025-01-01", "2025-01-09")),
        )
        .unwrap();
        assert_eq!(p.params[0].ty, "DATE");
        assert_eq!(p.params[1].value, "2025-01-09");
        let p = plan(
            &s,
            &conn(),
            Some(&window(
                IncType::Datetime,
                "2025-01-01T05:00:00",
                "2025-01-09T00:00:00.25",
            )),
        )
        .unwrap();
        assert_eq!(p.params[0].ty, "DATETIME");
        assert_eq!(p.params[0].value, "2025-01-01 05:00:00.000000");
        assert_eq!(p.params[1].value, "2025-01-09 00:00:00.250000");
        // Without a window the query is sent as written.
        let p = plan(&s, &conn(), None).unwrap();
        assert_eq!(p.sql, "SELECT a, creado_el FROM t");
        assert!(p.params.is_empty());
    }

    #[test]
    fn a_storage_read_gets_fields_and_a_typed_row_restriction() {
        let s = spec(serde_json::json!({
            "connection": "bq", "table": "batch_x", "columns": ["cuenta", "creado_el"],
            "filter": "monto > 0", "read_api": "storage", "streams": 3
        }));
        let p = plan(
            &s,
            &conn(),
            Some(&window(
                IncType::Timestamp,
                "2025-06-01T00:00:00Z",
                "2025-06-02T00:00:00Z",
            )),
        )
        .unwrap();
        assert_eq!(
            p.table.as_ref().unwrap().path(),
            "projects/p-1/datasets/ds/tables/batch_x"
        );
        assert_eq!(p.columns, vec!["cuenta", "creado_el"]);
        assert_eq!(
            p.row_restriction.as_deref(),
            Some(
                "(monto > 0) AND (`creado_el` IS NULL OR (`creado_el` >= TIMESTAMP '2025-06-01 00:00:00.000000+00:00' AND `creado_el` < TIMESTAMP '2025-06-02 00:00:00.000000+00:00'))"
            )
        );
        assert!(p.params.is_empty());
        assert_eq!(p.streams, 3);
        // The same table through REST: parameters, not literals.
        let s = spec(serde_json::json!({
            "connection": "bq", "table": "other.batch_x", "columns": ["cuenta", "creado_el"]
        }));
        let p = plan(
            &s,
            &conn(),
            Some(&window(IncType::Date, "2025-06-01", "2025-06-02")),
        )
        .unwrap();
        assert_eq!(
            p.sql,
            "SELECT `cuenta`, `creado_el` FROM `p-1.other.batch_x`\nWHERE (`creado_el` IS NULL OR (`creado_el` >= @lower AND `creado_el` < @upper))"
        );
    }

    #[test]
    fn bad_specs_are_rejected_with_a_reason() {
        let cases = [
            (
                serde_json::json!({"connection": "bq", "query": "  SELECT * FROM t"}),
                "not SELECT *",
            ),
            (
                serde_json::json!({"connection": "bq", "query": "-- x\nselect distinct * from t"}),
                "not SELECT *",
            ),
            (
                serde_json::json!({"connection": "bq", "table": "t"}),
                "needs `columns:`",
            ),
            (
                serde_json::json!({"connection": "bq", "table": "t", "columns": ["a`b"]}),
                "not a plain BigQuery identifier",
            ),
            (
                serde_json::json!({"connection": "bq", "query": "SELECT a FROM t", "read_api": "storage"}),
                "reads a plain table",
            ),
            (
                serde_json::json!({"connection": "bq", "query": "SELECT a FROM t", "params": {"lower": {"type": "DATE", "value": "2025-01-01"}}}),
                "reserved",
            ),
            (
                serde_json::json!({"connection": "bq", "query": "SELECT a FROM t", "params": {"x": {"type": "WHATEVER", "value": 1}}}),
                "unknown type",
            ),
            (serde_json::json!({"connection": "bq"}), "needs `query:`"),
        ];
        for (v, want) in cases {
            let e = validate_spec(&spec(v.clone())).unwrap_err().to_string();
            assert!(e.contains(want), "{v}: {e}");
        }
        assert!(parse_table("p.d.t`; DROP", &conn()).is_err());
        assert!(parse_table("a.b.c.d", &conn()).is_err());
        assert_eq!(
            parse_table("`p-2.d.t`", &conn()).unwrap().sql(),
            "`p-2.d.t`"
        );
        // A window column that is not an identifier cannot reach the SQL.
        let s = spec(serde_json::json!({"connection": "bq", "query": "SELECT a FROM t"}));
        let mut w = window(IncType::Date, "2025-01-01", "2025-01-02");
        w.column = "x` OR TRUE --".into();
        assert!(plan(&s, &conn(), Some(&w)).is_err());
    }
}
