//! Per-day aggregates of a BigQuery source, computed by BigQuery: what `pulso-flow reconcile`
//! compares with the target without reading the source's rows.
//!
//! One query per table, over the table's own source (its `query:`, or `table:` + `columns:` +
//! `filter:`, whatever its read path):
//!
//! ```sql
//! SELECT CAST(pulso_day AS STRING) AS day, COUNT(*) AS n, CAST(SUM(pulso_s0) AS STRING) AS s0
//! FROM (SELECT CAST(`by` AS DATE) AS pulso_day, ROUND(CAST(`c` AS BIGNUMERIC), 2) AS pulso_s0,
//!              ROW_NUMBER() OVER (PARTITION BY `k1`, `k2` ORDER BY `inc` DESC NULLS LAST) AS pulso_rn
//!       FROM (<source>) AS pulso_src) AS pulso_rows
//! WHERE pulso_rn = 1 AND pulso_day >= @pulso_from AND pulso_day <= @pulso_to
//! GROUP BY pulso_day
//! ```
//!
//! - Rows are deduplicated by the target's key first, keeping the latest incremental value, as
//!   the sink's merge does (`LoadShape::deduplicated_source`), and only then restricted to the
//!   days: a key whose latest row lies outside the range is not counted inside it.
//! - Sums are exact: each value is cast to BIGNUMERIC and rounded to the target column's scale
//!   (the value the target stores), summed, and returned as text.
//! - The day range travels as typed `DATE` parameters; identifiers are validated and quoted.
//! - [`dry_run_bytes`] asks BigQuery what the query would process before it runs; the plan
//!   carries the source's `maximum_bytes_billed`.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use chrono::NaiveDate;
use futures::TryStreamExt;

use pulso_types::DayTotals;

use super::client::Bq;
use super::error::BigQueryError;
use super::query::{self, Param, ReadPlan, quote_column};
use super::{BigQueryConnection, BigQuerySpec, ReadApi};

/// Name of the day-range parameters.
pub const FROM: &str = "pulso_from";
pub const TO: &str = "pulso_to";

/// A column summed per day, with the scale its target column stores (`None`: an integer or an
/// unconstrained numeric, summed as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumColumn {
    pub name: String,
    pub scale: Option<u32>,
}

/// What to aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateRequest {
    /// The DATE column grouped by.
    pub by: String,
    pub sum: Vec<SumColumn>,
    /// The target's primary key: rows are deduplicated by it before aggregating.
    pub key: Vec<String>,
    /// Among rows of one key, the one with the greatest value of this column counts.
    pub latest_by: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// The aggregate query of `spec`'s source (always a REST query job).
pub fn plan(
    spec: &BigQuerySpec,
    conn: &BigQueryConnection,
    req: &AggregateRequest,
) -> Result<ReadPlan, BigQueryError> {
    // The source's rows as a query, whatever path a load reads them with.
    let rest = BigQuerySpec {
        read_api: Some(ReadApi::Rest),
        ..spec.clone()
    };
    let base = query::plan(&rest, conn, None)?;
    let by = quote_column(&req.by)?;
    let mut select = vec![format!("CAST({by} AS DATE) AS pulso_day")];
    for (i, s) in req.sum.iter().enumerate() {
        let col = quote_column(&s.name)?;
        select.push(match s.scale {
            Some(scale) => format!("ROUND(CAST({col} AS BIGNUMERIC), {scale}) AS pulso_s{i}"),
            None => format!("CAST({col} AS BIGNUMERIC) AS pulso_s{i}"),
        });
    }
    if !req.key.is_empty() {
        let key: Vec<String> = req
            .key
            .iter()
            .map(|k| quote_column(k))
            .collect::<Result<_, _>>()?;
        let order = match &req.latest_by {
            Some(c) => format!(" ORDER BY {} DESC NULLS LAST", quote_column(c)?),
            None => String::new(),
        };
        select.push(format!(
            "ROW_NUMBER() OVER (PARTITION BY {}{order}) AS pulso_rn",
            key.join(", ")
        ));
    }
    let mut params = base.params.clone();
    let mut filter = Vec::new();
    if !req.key.is_empty() {
        filter.push("pulso_rn = 1".to_string());
    }
    for (name, op, day) in [(FROM, ">=", req.from), (TO, "<=", req.to)] {
        if let Some(day) = day {
            filter.push(format!("pulso_day {op} @{name}"));
            params.push(Param {
                name: name.into(),
                ty: "DATE".into(),
                value: day.to_string(),
            });
        }
    }
    let sums: String = (0..req.sum.len())
        .map(|i| format!(", CAST(SUM(pulso_s{i}) AS STRING) AS s{i}"))
        .collect();
    let sql = format!(
        "SELECT CAST(pulso_day AS STRING) AS day, COUNT(*) AS n{sums}\nFROM (\nSELECT {}\nFROM (\n{}\n) AS pulso_src\n) AS pulso_rows{}\nGROUP BY pulso_day",
        select.join(", "),
        base.sql,
        if filter.is_empty() {
            String::new()
        } else {
            format!("\nWHERE {}", filter.join(" AND "))
        }
    );
    Ok(ReadPlan {
        sql,
        params,
        ..base
    })
}

/// An aggregate query, planned and dry-run: what it sends and what it would cost, and the
/// client that dry-ran it (and runs it).
#[derive(Clone)]
pub struct AggregateQuery {
    pub plan: ReadPlan,
    /// Bytes BigQuery's dry run says the query processes.
    pub bytes_processed: u64,
    /// On-demand cost of those bytes at the connection's price.
    pub estimated_cost_usd: f64,
    /// The connection is an emulator (its byte counts mean little).
    pub emulator: bool,
    sums: usize,
    bq: Bq,
}

/// Plans the aggregate query and dry-runs it. A query whose processed bytes exceed the source's
/// `maximum_bytes_billed` is refused here, before anything is billed.
pub async fn prepare(
    spec: &BigQuerySpec,
    conn: &BigQueryConnection,
    req: &AggregateRequest,
) -> Result<AggregateQuery, BigQueryError> {
    let plan = plan(spec, conn, req)?;
    let bq = Bq::connect(conn).await?;
    let resp = super::explain::dry_run(&bq, &plan, &bq.conn.retry).await?;
    let bytes_processed = resp
        .total_bytes_processed
        .as_deref()
        .and_then(|b| b.parse().ok())
        .unwrap_or(0);
    if let Some(limit) = plan.maximum_bytes_billed
        && bytes_processed > limit
    {
        return Err(BigQueryError::config(format!(
            "the reconciliation query would process {bytes_processed} bytes, more than \
             maximum_bytes_billed ({limit}); narrow it with --from/--to or raise the limit"
        )));
    }
    Ok(AggregateQuery {
        estimated_cost_usd: bytes_processed as f64 / (1u64 << 40) as f64
            * bq.conn.price_per_tib_usd,
        emulator: bq.conn.emulator,
        bytes_processed,
        sums: req.sum.len(),
        plan,
        bq,
    })
}

/// Runs a prepared aggregate query (REST, the totalRows check included) and reads its rows,
/// in day order (NULL day first).
pub async fn run(query: AggregateQuery) -> Result<Vec<DayTotals>, BigQueryError> {
    let sums = query.sums;
    let (_, stream) = super::rest::open(query.bq, query.plan).await?;
    let batches: Vec<_> = stream
        .try_collect()
        .await
        .map_err(|e| BigQueryError::protocol("aggregate query", e.to_string()))?;
    let mut out = Vec::new();
    for b in &batches {
        let bad = |what: &str| BigQueryError::protocol("aggregate query", what.to_string());
        if b.num_columns() != 2 + sums {
            return Err(bad("unexpected number of columns"));
        }
        let text = |i: usize| {
            let col = b.column(i);
            match col.data_type() {
                DataType::Utf8 => Ok(col.as_string::<i32>().clone()),
                other => Err(bad(&format!("column {i} is {other}, not text"))),
            }
        };
        let days = text(0)?;
        let n = b.column(1);
        if n.data_type() != &DataType::Int64 {
            return Err(bad("the row count is not INT64"));
        }
        let n = n.as_primitive::<Int64Type>();
        let sum_cols: Vec<_> = (0..sums).map(|i| text(2 + i)).collect::<Result<_, _>>()?;
        for row in 0..b.num_rows() {
            let day = if days.is_null(row) {
                None
            } else {
                Some(
                    days.value(row)
                        .parse::<NaiveDate>()
                        .map_err(|e| bad(&format!("day {:?}: {e}", days.value(row))))?,
                )
            };
            out.push(DayTotals {
                day,
                rows: if n.is_null(row) { 0 } else { n.value(row) },
                sums: sum_cols
                    .iter()
                    .map(|c| (!c.is_null(row)).then(|| c.value(row).to_string()))
                    .collect(),
            });
        }
    }
    out.sort_by_key(|d| d.day);
    Ok(out)
}

/// The same source restricted to the rows whose `by` day is in `from ..= to`: what a repair
/// of those days reads. A `query:` is wrapped and takes the bounds as typed DATE parameters; a
/// `table:` read gets them in its filter as DATE literals (the Storage Read API takes no
/// parameters), written from the dates themselves.
pub fn restricted_to_days(
    spec: &BigQuerySpec,
    by: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BigQuerySpec, BigQueryError> {
    let col = quote_column(by)?;
    let mut out = spec.clone();
    match (&spec.query, &spec.table) {
        (Some(q), _) => {
            let body = q.trim().trim_end_matches(';').trim_end();
            out.query = Some(format!(
                "SELECT pulso_days.* FROM (\n{body}\n) AS pulso_days\nWHERE CAST(pulso_days.{col} AS DATE) BETWEEN @{FROM} AND @{TO}"
            ));
            for (name, day) in [(FROM, from), (TO, to)] {
                out.params.insert(
                    name.to_string(),
                    super::ParamSpec {
                        ty: "DATE".into(),
                        value: super::ScalarText::Text(day.to_string()),
                    },
                );
            }
        }
        _ => {
            let days = format!(
                "CAST({col} AS DATE) BETWEEN DATE '{}' AND DATE '{}'",
                from.format("%Y-%m-%d"),
                to.format("%Y-%m-%d")
            );
            out.filter = Some(match spec.filter.as_deref().map(str::trim) {
                Some(f) if !f.is_empty() => format!("({f}) AND {days}"),
                _ => days,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> BigQueryConnection {
        serde_json::from_value(serde_json::json!({"project": "p", "dataset": "d"}))
            .expect("connection")
    }

    fn spec(v: serde_json::Value) -> BigQuerySpec {
        serde_json::from_value(v).expect("spec")
    }

    fn request() -> AggregateRequest {
        AggregateRequest {
            by: "dia".into(),
            sum: vec![SumColumn {
                name: "monto".into(),
                scale: Some(2),
            }],
            key: vec!["doc".into(), "archivo".into()],
            latest_by: Some("creado_el".into()),
            from: NaiveDate::from_ymd_opt(2025, 6, 1),
            to: None,
        }
    }

    #[test]
    fn the_query_deduplicates_by_key_then_filters_days_with_typed_parameters() {
        let s = spec(serde_json::json!({
            "connection": "bq", "query": "SELECT doc, archivo, dia, monto, creado_el FROM t"
        }));
        let p = plan(&s, &conn(), &request()).expect("plan");
        assert!(
            p.sql
                .contains("FROM (\nSELECT doc, archivo, dia, monto, creado_el FROM t\n)")
        );
        assert!(p.sql.contains(
            "ROW_NUMBER() OVER (PARTITION BY `doc`, `archivo` ORDER BY `creado_el` DESC NULLS LAST)"
        ));
        assert!(
            p.sql
                .contains("ROUND(CAST(`monto` AS BIGNUMERIC), 2) AS pulso_s0")
        );
        assert!(
            p.sql
                .contains("WHERE pulso_rn = 1 AND pulso_day >= @pulso_from\n")
        );
        assert!(!p.sql.contains("2025-06-01"), "values travel as parameters");
        assert_eq!(
            p.params,
            vec![Param {
                name: FROM.into(),
                ty: "DATE".into(),
                value: "2025-06-01".into()
            }]
        );
        assert_eq!(p.api, ReadApi::Rest);
    }

    #[test]
    fn a_storage_table_source_is_aggregated_by_a_query_with_its_filter() {
        let s = spec(serde_json::json!({
            "connection": "bq", "table": "deuda",
            "columns": ["doc", "archivo", "dia", "monto", "creado_el"],
            "filter": "monto > 0", "read_api": "storage", "maximum_bytes_billed": 1000
        }));
        let p = plan(&s, &conn(), &request()).expect("plan");
        assert!(
            p.sql.contains("FROM `p.d.deuda`\nWHERE (monto > 0)"),
            "{}",
            p.sql
        );
        assert_eq!(p.api, ReadApi::Rest);
        assert_eq!(p.maximum_bytes_billed, Some(1000));
    }

    #[test]
    fn identifiers_are_checked() {
        let s = spec(serde_json::json!({"connection": "bq", "query": "SELECT a FROM t"}));
        let mut r = request();
        r.by = "dia`; DROP TABLE x; --".into();
        assert!(plan(&s, &conn(), &r).is_err());
    }
}
