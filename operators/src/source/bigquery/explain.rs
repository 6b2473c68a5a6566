//! `explain` for BigQuery tables: the SQL with its parameters, the read path, and a dry run
//! (bytes processed, estimated cost) when BigQuery or an emulator answers.

use std::time::Duration;

use arrow::datatypes::SchemaRef;
use gcp_bigquery_client::model::dataset_reference::DatasetReference;
use gcp_bigquery_client::model::query_request::QueryRequest;
use gcp_bigquery_client::model::query_response::QueryResponse;

use super::client::Bq;
use super::decode::ResultSchema;
use super::error::BigQueryError;
use super::query::ReadPlan;
use super::retry::{RetrySpec, classify, retry};
use super::{BigQuerySpec, ReadApi, storage};
use crate::source::SourceContext;

/// Storage Read API price per TiB read (USD), for the estimate of storage reads.
const STORAGE_READ_PRICE_PER_TIB_USD: f64 = 1.1;
/// How long explain waits for BigQuery before saying it could not reach it.
pub(crate) const EXPLAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// One labelled item of a table's explanation (the value may span lines).
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainLine {
    pub label: String,
    pub value: String,
}

fn line(label: &str, value: impl Into<String>) -> ExplainLine {
    ExplainLine {
        label: label.to_string(),
        value: value.into(),
    }
}

/// A dry run of the plan's SQL: BigQuery's answer (schema, bytes processed).
pub(crate) async fn dry_run(
    bq: &Bq,
    plan: &ReadPlan,
    policy: &RetrySpec,
) -> Result<QueryResponse, BigQueryError> {
    let conn = &bq.conn;
    let params: Vec<_> = plan.params.iter().map(|p| p.to_query_parameter()).collect();
    let mut request = QueryRequest::new(plan.sql.clone());
    request.dry_run = Some(true);
    request.location = conn.location.clone();
    request.use_legacy_sql = false;
    if !params.is_empty() {
        request.parameter_mode = Some("NAMED".into());
        request.query_parameters = Some(params);
    }
    request.default_dataset = conn.dataset.as_ref().map(|d| DatasetReference {
        dataset_id: d.clone(),
        project_id: conn.project.clone(),
    });
    let project = conn.billing_project.clone();
    let resp = retry(policy, "jobs.query (dry run)", |_| {
        let (request, project) = (request.clone(), project.clone());
        async move {
            bq.client
                .job()
                .query(&project, request)
                .await
                .map_err(|e| classify(&e))
        }
    })
    .await?;
    if let Some(errors) = resp.errors.as_ref().filter(|e| !e.is_empty()) {
        return Err(super::rest::job_error(
            "dry run",
            errors
                .iter()
                .map(|e| (e.message.as_deref(), e.reason.as_deref())),
        ));
    }
    Ok(resp)
}

/// The Arrow schema of a plan without reading rows.
pub async fn schema(bq: &Bq, plan: &ReadPlan) -> Result<SchemaRef, BigQueryError> {
    match plan.api {
        ReadApi::Storage => storage::plan_schema(bq, plan).await,
        ReadApi::Rest => {
            let resp = dry_run(bq, plan, &bq.conn.retry).await?;
            let fields = resp
                .schema
                .and_then(|s| s.fields)
                .ok_or_else(|| BigQueryError::protocol("dry run", "no schema in the answer"))?;
            Ok(ResultSchema::new(&fields)?.arrow)
        }
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

/// The explanation of one BigQuery source.
pub async fn explain(spec: &BigQuerySpec, ctx: &SourceContext) -> Vec<ExplainLine> {
    let plan = match spec.plan(ctx) {
        Ok(p) => p,
        Err(e) => return vec![line("bigquery", format!("invalid: {e}"))],
    };
    let mut out = Vec::new();
    out.push(line(
        "read path",
        match plan.api {
            ReadApi::Rest => format!(
                "rest: jobs.insert + jobs.getQueryResults, {} rows per page, rows checked against totalRows",
                plan.page_size
            ),
            ReadApi::Storage => format!(
                "storage: Storage Read API session, Arrow, up to {} parallel streams",
                plan.streams
            ),
        },
    ));
    out.push(line(
        match plan.api {
            ReadApi::Rest => "bigquery sql",
            ReadApi::Storage => "bigquery equivalent sql",
        },
        plan.sql.clone(),
    ));
    if plan.api == ReadApi::Rest {
        out.push(line(
            "bigquery parameters",
            if plan.params.is_empty() {
                "none".to_string()
            } else {
                plan.params
                    .iter()
                    .map(|p| p.describe())
                    .collect::<Vec<_>>()
                    .join("\n")
            },
        ));
    } else {
        out.push(line("selected fields", plan.columns.join(", ")));
        out.push(line(
            "row restriction",
            plan.row_restriction
                .clone()
                .unwrap_or_else(|| "none".into()),
        ));
    }

    let conn = match spec.connection(ctx) {
        Ok(c) => c,
        Err(e) => {
            out.push(line("dry run", format!("could not reach BigQuery: {e}")));
            return out;
        }
    };
    let attempt = async {
        let bq = Bq::connect(conn).await?;
        // One try: explain reports, it does not insist.
        let once = RetrySpec {
            attempts: 1,
            ..RetrySpec::default()
        };
        let resp = dry_run(&bq, &plan, &once).await?;
        Ok::<_, BigQueryError>((bq, resp))
    };
    let mut processed = None;
    match tokio::time::timeout(EXPLAIN_TIMEOUT, attempt).await {
        Err(_) => out.push(line(
            "dry run",
            format!(
                "could not reach BigQuery: no answer within {} s",
                EXPLAIN_TIMEOUT.as_secs()
            ),
        )),
        Ok(Err(e)) => out.push(line("dry run", format!("could not reach BigQuery: {e}"))),
        Ok(Ok((bq, resp))) => {
            let bytes: u64 = resp
                .total_bytes_processed
                .as_deref()
                .and_then(|b| b.parse().ok())
                .unwrap_or(0);
            let (price, what) = match plan.api {
                ReadApi::Rest => (bq.conn.price_per_tib_usd, "on-demand query"),
                ReadApi::Storage => (STORAGE_READ_PRICE_PER_TIB_USD, "Storage Read"),
            };
            processed = Some(bytes);
            let tib = bytes as f64 / (1u64 << 40) as f64;
            let target = if bq.conn.emulator { " (emulator)" } else { "" };
            out.push(line(
                "dry run",
                format!(
                    "{} processed ({bytes} bytes){target}; estimated {what} cost ${:.4} at ${price}/TiB",
                    human_bytes(bytes),
                    tib * price
                ),
            ));
        }
    }
    if let (ReadApi::Rest, Some(limit)) = (plan.api, plan.maximum_bytes_billed) {
        // Billed bytes are at least the processed bytes (BigQuery rounds up per table).
        let verdict = match processed {
            Some(bytes) if bytes > limit => {
                "the query would FAIL: it processes more than the limit"
            }
            Some(_) => "the processed bytes are within the limit",
            None => "not checked (no dry run)",
        };
        out.push(line(
            "maximum bytes billed",
            format!("{} ({limit} bytes): {verdict}", human_bytes(limit)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(3 << 30), "3.00 GiB");
    }
}
