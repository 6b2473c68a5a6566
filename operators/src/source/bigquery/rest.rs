//! The REST read path: jobs.insert, then jobs.getQueryResults page by page.
//!
//! - The job gets a client-chosen id, so a retried jobs.insert cannot start a second job (a
//!   409 "already exists" on a retry means the first try went through).
//! - getQueryResults is polled (long poll) until the job completes; the completing response
//!   carries the schema, totalRows and the first page. Every getQueryResults call asks for
//!   TIMESTAMP cells as integer microseconds (`results.rs`: float seconds lose the microsecond
//!   far from 1970).
//! - One RecordBatch per page. While a page flows downstream, the next one is fetched and
//!   decoded (bounded prefetch: at most two pages ahead of the consumer).
//! - Each call retries transient errors with backoff, resuming at the failed page (its page
//!   token), never restarting the result.
//! - After the last page the rows read must equal the job's totalRows, else the stream fails
//!   with [`BigQueryError::RowCount`] and nothing is loaded.

use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use gcp_bigquery_client::model::dataset_reference::DatasetReference;
use gcp_bigquery_client::model::get_query_results_response::GetQueryResultsResponse;
use gcp_bigquery_client::model::job::Job;
use gcp_bigquery_client::model::job_configuration::JobConfiguration;
use gcp_bigquery_client::model::job_configuration_query::JobConfigurationQuery;
use gcp_bigquery_client::model::job_reference::JobReference;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::client::Bq;
use super::decode::ResultSchema;
use super::error::BigQueryError;
use super::query::ReadPlan;
use super::results::{ResultsRequest, get_query_results};
use super::retry::{classify, retry};
use crate::{BatchStream, OperatorError};

/// Long-poll wait of one getQueryResults call while the job runs.
const POLL_TIMEOUT_MS: u32 = 10_000;

/// A running or finished query job.
#[derive(Debug, Clone)]
pub struct JobHandle {
    pub job_id: String,
    pub location: Option<String>,
}

fn new_job_id() -> String {
    let n: u128 = rand::rng().random();
    format!("pulso_flow_{n:032x}")
}

/// The job resource of a query (also used for dry runs).
pub fn query_job(bq: &Bq, plan: &ReadPlan, job_id: Option<&str>, dry_run: bool) -> Job {
    let conn = &bq.conn;
    let params: Vec<_> = plan.params.iter().map(|p| p.to_query_parameter()).collect();
    Job {
        job_reference: Some(JobReference {
            job_id: job_id.map(str::to_string),
            location: conn.location.clone(),
            project_id: Some(conn.billing_project.clone()),
        }),
        configuration: Some(JobConfiguration {
            dry_run: dry_run.then_some(true),
            // Jobs are found (and billed) by this label in BigQuery's job history.
            labels: Some(std::collections::HashMap::from([(
                "app".to_string(),
                "pulso-flow".to_string(),
            )])),
            query: Some(JobConfigurationQuery {
                query: plan.sql.clone(),
                use_legacy_sql: Some(false),
                maximum_bytes_billed: plan.maximum_bytes_billed.map(|b| b.to_string()),
                parameter_mode: (!params.is_empty()).then(|| "NAMED".to_string()),
                query_parameters: (!params.is_empty()).then_some(params),
                default_dataset: conn.dataset.as_ref().map(|d| DatasetReference {
                    dataset_id: d.clone(),
                    project_id: conn.project.clone(),
                }),
                ..JobConfigurationQuery::default()
            }),
            ..JobConfiguration::default()
        }),
        ..Job::default()
    }
}

/// Job error reasons that BigQuery documents as retryable by re-running the job (a new job id).
fn transient_job_reason(reason: &str) -> bool {
    matches!(
        reason,
        "backendError" | "internalError" | "rateLimitExceeded"
    )
}

/// A failed job's error from its (message, reason) pairs. It is transient only when every
/// reason is: a job that failed for bad SQL and a backend hiccup still has bad SQL.
pub(crate) fn job_error<'a>(
    job_id: &str,
    errors: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BigQueryError {
    let mut messages = Vec::new();
    let mut transient = true;
    for (message, reason) in errors {
        let mut m = message.unwrap_or("unknown error").to_string();
        match reason {
            Some(r) => {
                m.push_str(&format!(" (reason {r})"));
                transient &= transient_job_reason(r);
            }
            None => transient = false,
        }
        messages.push(m);
    }
    BigQueryError::Job {
        job_id: job_id.to_string(),
        transient: transient && !messages.is_empty(),
        message: messages.join("; "),
    }
}

/// Runs the plan's query to its first page. A job that fails for a transient reason is re-run
/// as a new job (with backoff) within the retry budget; its partial work is never read.
async fn run_query(
    bq: &Bq,
    plan: &ReadPlan,
) -> Result<(JobHandle, GetQueryResultsResponse), BigQueryError> {
    let policy = &bq.conn.retry;
    let mut attempt = 1;
    loop {
        let outcome = async {
            let job = insert_job(bq, plan).await?;
            let first = wait_for_first_page(bq, &job, plan.page_size).await?;
            Ok((job, first))
        };
        match outcome.await {
            Err(BigQueryError::Job {
                job_id,
                message,
                transient: true,
            }) => {
                if attempt >= policy.attempts() {
                    return Err(BigQueryError::Job {
                        job_id,
                        message: format!("{message}; gave up after {attempt} job(s)"),
                        transient: true,
                    });
                }
                tracing::warn!(%job_id, attempt, error = %message, "BigQuery job failed for a transient reason; running it again");
                tokio::time::sleep(policy.backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// jobs.insert with retries; a failed job (bad SQL, permission denied) is a [`BigQueryError::Job`].
pub async fn insert_job(bq: &Bq, plan: &ReadPlan) -> Result<JobHandle, BigQueryError> {
    let job_id = new_job_id();
    let job = query_job(bq, plan, Some(&job_id), false);
    let project = bq.conn.billing_project.clone();
    tracing::debug!(job_id = %job_id, sql = %plan.sql, "inserting BigQuery query job");
    let inserted = retry(&bq.conn.retry, "jobs.insert", |attempt| {
        let job = job.clone();
        let project = project.clone();
        async move {
            match bq.client.job().insert(&project, job).await {
                Ok(j) => Ok(Some(j)),
                Err(e) => {
                    let failure = classify(&e);
                    // A retried insert of a job that the first try created.
                    if attempt > 1 && failure.status == 409 {
                        Ok(None)
                    } else {
                        Err(failure)
                    }
                }
            }
        }
    })
    .await?;
    if let Some(status) = inserted.as_ref().and_then(|j| j.status.as_ref())
        && let Some(err) = &status.error_result
    {
        return Err(job_error(
            &job_id,
            std::iter::once((err.message.as_deref(), err.reason.as_deref())),
        ));
    }
    let location = inserted
        .as_ref()
        .and_then(|j| j.job_reference.as_ref())
        .and_then(|r| r.location.clone())
        .or_else(|| bq.conn.location.clone());
    Ok(JobHandle { job_id, location })
}

async fn get_results(
    bq: &Bq,
    job: &JobHandle,
    page_token: Option<String>,
    max_results: u32,
    call: &str,
) -> Result<GetQueryResultsResponse, BigQueryError> {
    let project = bq.conn.billing_project.clone();
    let req = ResultsRequest {
        project: &project,
        job_id: &job.job_id,
        location: job.location.as_deref(),
        page_token: page_token.as_deref(),
        max_results,
        timeout_ms: POLL_TIMEOUT_MS,
    };
    retry(&bq.conn.retry, call, |_| get_query_results(bq, &req)).await
}

/// Polls until the job completes; returns the completing response (schema, totalRows, first
/// page).
pub async fn wait_for_first_page(
    bq: &Bq,
    job: &JobHandle,
    page_size: u32,
) -> Result<GetQueryResultsResponse, BigQueryError> {
    let started = Instant::now();
    loop {
        let resp = get_results(bq, job, None, page_size, "jobs.getQueryResults").await?;
        if resp.job_complete == Some(true) {
            let no_schema = resp
                .schema
                .as_ref()
                .and_then(|s| s.fields.as_ref())
                .is_none_or(Vec::is_empty);
            if no_schema && let Some(errors) = resp.errors.as_ref().filter(|e| !e.is_empty()) {
                return Err(job_error(
                    &job.job_id,
                    errors
                        .iter()
                        .map(|e| (e.message.as_deref(), e.reason.as_deref())),
                ));
            }
            return Ok(resp);
        }
        if started.elapsed() > bq.conn.job_timeout {
            let project = bq.conn.billing_project.clone();
            if let Err(e) = bq
                .client
                .job()
                .cancel_job(&project, &job.job_id, job.location.as_deref())
                .await
            {
                tracing::warn!(job_id = %job.job_id, error = %e, "could not cancel the timed-out job");
            }
            return Err(BigQueryError::JobTimeout {
                job_id: job.job_id.clone(),
                seconds: bq.conn.job_timeout.as_secs(),
            });
        }
        tracing::debug!(job_id = %job.job_id, "BigQuery job still running");
    }
}

fn parse_total(resp: &GetQueryResultsResponse, job: &JobHandle) -> Result<u64, BigQueryError> {
    let text = resp.total_rows.as_deref().ok_or_else(|| {
        BigQueryError::protocol(
            format!("job {}", job.job_id),
            "the completed job reports no totalRows",
        )
    })?;
    text.parse::<u64>().map_err(|_| {
        BigQueryError::protocol(
            format!("job {}", job.job_id),
            format!("totalRows {text:?} is not a count"),
        )
    })
}

/// Aborts a task when dropped (the consumer went away).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the plan's query and streams its pages.
pub async fn open(bq: Bq, plan: ReadPlan) -> Result<(SchemaRef, BatchStream), BigQueryError> {
    let (job, first) = run_query(&bq, &plan).await?;
    let fields = first
        .schema
        .as_ref()
        .and_then(|s| s.fields.clone())
        .ok_or_else(|| {
            BigQueryError::protocol(
                format!("job {}", job.job_id),
                "the first page has no schema",
            )
        })?;
    let schema = Arc::new(ResultSchema::new(&fields)?);
    let total = parse_total(&first, &job)?;
    tracing::info!(job_id = %job.job_id, total_rows = total, page_size = plan.page_size, "BigQuery query complete; reading pages");
    let arrow = schema.arrow.clone();

    let (tx, rx) = mpsc::channel::<Result<RecordBatch, OperatorError>>(1);
    let producer = tokio::spawn(produce(bq, job, plan.page_size, schema, total, first, tx));
    Ok((
        arrow,
        into_stream(rx, vec![producer], "BigQuery REST reader".into()),
    ))
}

async fn produce(
    bq: Bq,
    job: JobHandle,
    page_size: u32,
    schema: Arc<ResultSchema>,
    total: u64,
    first: GetQueryResultsResponse,
    tx: mpsc::Sender<Result<RecordBatch, OperatorError>>,
) {
    // The producer runs concurrently with the consumer: while the consumer works on page j,
    // page j+1 waits in the channel and page j+2 is fetched and decoded here; then this task
    // waits for room. At most two pages are read ahead.
    let mut current = first;
    let mut page: u64 = 0;
    let mut read: u64 = 0;
    loop {
        let token = current.page_token.take().filter(|t| !t.is_empty());
        let rows = current.rows.take().unwrap_or_default();
        let n = rows.len();
        let decoder = schema.clone();
        let decoded = tokio::task::spawn_blocking(move || decoder.decode(&rows, page)).await;
        let batch = match decoded {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
            Err(join) => {
                let _ = tx
                    .send(Err(OperatorError::Task {
                        what: "BigQuery page decoder".into(),
                        message: join.to_string(),
                    }))
                    .await;
                return;
            }
        };
        read += n as u64;
        tracing::debug!(job_id = %job.job_id, page, rows = n, read, total, "BigQuery page");
        if n > 0 && tx.send(Ok(batch)).await.is_err() {
            tracing::debug!(job_id = %job.job_id, "consumer dropped the stream; reader stops");
            return;
        }
        page += 1;
        let Some(token) = token else {
            break;
        };
        if read > total {
            break;
        }
        let call = format!("jobs.getQueryResults (page {page})");
        match get_results(&bq, &job, Some(token), page_size, &call).await {
            Ok(resp) => current = resp,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        }
    }
    if read != total {
        let _ = tx
            .send(Err(BigQueryError::RowCount {
                job_id: job.job_id.clone(),
                read,
                total,
            }
            .into()))
            .await;
        return;
    }
    tracing::info!(job_id = %job.job_id, pages = page, rows = read, "BigQuery result read completely");
}

/// The consumer side: batches from the channel; when the channel closes, a producer that died
/// (panic) becomes an error instead of a silent end. Dropping the stream aborts the producers.
pub(crate) fn into_stream(
    rx: mpsc::Receiver<Result<RecordBatch, OperatorError>>,
    producers: Vec<JoinHandle<()>>,
    what: String,
) -> BatchStream {
    struct State {
        rx: mpsc::Receiver<Result<RecordBatch, OperatorError>>,
        producers: Vec<JoinHandle<()>>,
        _guards: Vec<AbortOnDrop>,
        what: String,
        done: bool,
    }
    let guards = producers
        .iter()
        .map(|h| AbortOnDrop(h.abort_handle()))
        .collect();
    let state = State {
        rx,
        producers,
        _guards: guards,
        what,
        done: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        if let Some(item) = state.rx.recv().await {
            if item.is_err() {
                state.done = true;
            }
            return Some((item, state));
        }
        state.done = true;
        for handle in std::mem::take(&mut state.producers) {
            if let Err(join) = handle.await {
                let message = if join.is_panic() {
                    "reader panicked".to_string()
                } else {
                    "reader was cancelled".to_string()
                };
                let err = OperatorError::Task {
                    what: state.what.clone(),
                    message,
                };
                return Some((Err(err), state));
            }
        }
        None
    })
    .boxed()
}
