//! An in-process fake of the BigQuery REST API (jobs.insert, jobs.getQueryResults with paging,
//! jobs.query for dry runs, jobs.cancel) with fault injection: HTTP 429/5xx with Google's JSON
//! error body, a 502 with an HTML body, a connection reset mid-body, a truncated JSON body, a
//! hang longer than the client's timeout, slow pages, a job that completes late, a job error,
//! and results shorter than their totalRows.
//!
//! TIMESTAMP cells are served as real BigQuery serves them: a cell stored as integer
//! microseconds goes out as such only when getQueryResults asks for
//! `formatOptions.useInt64Timestamp=true` (and [`FakeState::ignore_format_options`] is off);
//! otherwise as float seconds in scientific notation (`"1.704112496123456E9"`), computed through
//! an f64 like the server does, so far from 1970 the microseconds are lost. Cells stored in
//! another form are served as written.
//!
//! Used by the operators' BigQuery client tests, the CLI tests and the decode bench.

pub mod storage;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Json, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// Which call a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    Insert,
    /// getQueryResults of the page with this 0-based index (0 = the first page).
    Page(usize),
    /// Any getQueryResults call.
    AnyPage,
    DryRun,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// An HTTP error with Google's JSON error body (reason and message).
    Status(u16, &'static str, &'static str),
    /// An HTTP error whose body is an HTML page (a proxy's).
    Html(u16),
    /// The connection is cut in the middle of the body.
    Reset,
    /// A 200 whose JSON body is cut short.
    Truncated,
    /// No answer for this long (longer than the client's timeout), then the normal answer.
    Hang(Duration),
    /// jobs.insert creates the job, then answers this status (the retry then gets a 409).
    AfterCreate(u16),
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub on: On,
    pub kind: FaultKind,
    /// How many times it fires (u32::MAX: always).
    pub times: u32,
}

#[derive(Debug, Default)]
pub struct FakeState {
    /// Result schema (`fields`).
    pub fields: Value,
    /// Result rows in REST form (`{"f": [{"v": …}]}`).
    pub rows: Vec<Value>,
    /// totalRows to report instead of the real count (a short result).
    pub report_total: Option<u64>,
    /// Stop handing out page tokens after this page index (a short result).
    pub last_page: Option<usize>,
    pub faults: Vec<Fault>,
    /// getQueryResults answers jobComplete=false this many times per job.
    pub polls_before_complete: u32,
    /// Every getQueryResults page takes this long.
    pub page_delay: Duration,
    /// jobs.insert answers with the job DONE and this error (reason, message).
    pub job_error: Option<(String, String)>,
    /// Only this many jobs fail with `job_error` (None: every job).
    pub job_error_limit: Option<u32>,
    /// The first this many jobs succeed before `job_error` applies (a fault in a later query).
    pub job_error_skip: u32,
    /// totalBytesProcessed of a dry run.
    pub dry_run_bytes: u64,
    /// Serve TIMESTAMP cells as float seconds even when int64 timestamps are asked for (a
    /// server that ignores `formatOptions.useInt64Timestamp`).
    pub ignore_format_options: bool,

    // What the fake saw.
    /// Bodies of jobs.insert calls.
    pub inserts: Vec<Value>,
    pub created: HashSet<String>,
    /// (job id, page index) of every getQueryResults call, faulty ones included.
    pub results_calls: Vec<(String, Option<usize>)>,
    /// Pages answered successfully with rows (page index).
    pub pages_served: Vec<usize>,
    /// Whether each getQueryResults call asked for `formatOptions.useInt64Timestamp=true`.
    pub int64_timestamps_asked: Vec<bool>,
    pub dry_runs: Vec<Value>,
    pub polls: HashMap<String, u32>,
    /// `Authorization` headers of the REST calls, in order.
    pub authorizations: Vec<String>,
    /// JWT assertions posted to the OAuth token endpoint (`/token`).
    pub token_grants: Vec<String>,
}

pub type Shared = Arc<Mutex<FakeState>>;

/// A source context whose one BigQuery connection, `bq`, is `connection`.
pub fn context(
    connection: pulso_operators::source::BigQueryConnection,
    window: Option<pulso_operators::window::Window>,
) -> pulso_operators::source::SourceContext {
    pulso_operators::source::SourceContext {
        batch_size: 1000,
        base_dir: std::env::temp_dir(),
        window,
        bigquery: pulso_operators::source::BigQueryConnections::new(
            std::iter::once(("bq".to_string(), connection)).collect(),
        ),
    }
}

/// An in-process fake served on a free loopback port, with its shared state; dropping it stops
/// the server.
pub struct Served<S> {
    /// Base URL for the connection (`http://127.0.0.1:port`).
    pub url: String,
    pub state: Arc<Mutex<S>>,
    server: tokio::task::JoinHandle<()>,
}

impl<S> Drop for Served<S> {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl<S: Send + 'static> Served<S> {
    /// Serves `app(state)` (HTTP/1 and h2c) on 127.0.0.1 and a free port.
    pub async fn start(state: S, app: impl FnOnce(Arc<Mutex<S>>) -> Router) -> Self {
        let state = Arc::new(Mutex::new(state));
        let app = app(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Served {
            url: format!("http://{addr}"),
            state,
            server,
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.state.lock().expect("fake state"))
    }
}

/// The REST API fake; its `url` is the connection's `endpoint:`.
pub type FakeBigQuery = Served<FakeState>;

impl FakeBigQuery {
    pub async fn start_rest(state: FakeState) -> FakeBigQuery {
        Served::start(state, |state| {
            Router::new()
                .route("/bigquery/v2/projects/{project}/jobs", post(insert))
                .route(
                    "/bigquery/v2/projects/{project}/jobs/{job}/cancel",
                    post(cancel),
                )
                .route("/bigquery/v2/projects/{project}/queries", post(query))
                .route(
                    "/bigquery/v2/projects/{project}/datasets/{dataset}/tables/{table}",
                    get(table_get),
                )
                .route("/token", post(token))
                .route(
                    "/bigquery/v2/projects/{project}/queries/{job}",
                    get(results),
                )
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    record_authorization,
                ))
                .with_state(state)
        })
        .await
    }
}

/// Google's JSON error body.
pub fn error_body(code: u16, reason: &str, message: &str) -> Value {
    let status = match code {
        400 => "INVALID_ARGUMENT",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    json!({"error": {"code": code, "message": message, "status": status,
        "errors": [{"domain": "global", "reason": reason, "message": message}]}})
}

fn status_response(code: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response()
}

/// Takes the first fault that matches `on` (and counts it down).
fn take_fault(state: &mut FakeState, on: On) -> Option<FaultKind> {
    let i = state.faults.iter().position(|f| {
        f.times > 0 && (f.on == on || (f.on == On::AnyPage && matches!(on, On::Page(_))))
    })?;
    let f = &mut state.faults[i];
    if f.times != u32::MAX {
        f.times -= 1;
    }
    Some(f.kind.clone())
}

/// Answers a fault, or `None` to continue normally (after a hang).
async fn fault_response(kind: FaultKind, ok_body: impl FnOnce() -> Value) -> Option<Response> {
    match kind {
        FaultKind::Status(code, reason, message) => {
            Some(status_response(code, error_body(code, reason, message)))
        }
        FaultKind::AfterCreate(code) => Some(status_response(
            code,
            error_body(code, "backendError", "Backend error"),
        )),
        FaultKind::Html(code) => Some(
            Response::builder()
                .status(code)
                .header(header::CONTENT_TYPE, "text/html")
                .body(Body::from("<html><body>502 Bad Gateway</body></html>"))
                .expect("response"),
        ),
        FaultKind::Reset => {
            let text = ok_body().to_string();
            let half = text.as_bytes()[..text.len() / 2].to_vec();
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection reset by fake",
                )),
            ];
            Some(
                Response::builder()
                    .status(200)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from_stream(futures::stream::iter(chunks)))
                    .expect("response"),
            )
        }
        FaultKind::Truncated => {
            let text = ok_body().to_string();
            let half = text[..text.len() / 2].to_string();
            Some(
                Response::builder()
                    .status(200)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(half))
                    .expect("response"),
            )
        }
        FaultKind::Hang(d) => {
            tokio::time::sleep(d).await;
            None
        }
    }
}

async fn insert(
    State(state): State<Shared>,
    Path(project): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let job_id = body["jobReference"]["jobId"]
        .as_str()
        .unwrap_or("anonymous")
        .to_string();
    let (fault, duplicate, job_error) = {
        let mut s = state.lock().expect("state");
        s.inserts.push(body.clone());
        let fault = take_fault(&mut s, On::Insert);
        let duplicate = s.created.contains(&job_id);
        let creates = !matches!(
            fault,
            Some(FaultKind::Status(..) | FaultKind::Html(_) | FaultKind::Hang(_))
        );
        if creates && !duplicate {
            s.created.insert(job_id.clone());
        }
        let skip = creates && !duplicate && s.job_error_skip > 0;
        if skip {
            s.job_error_skip -= 1;
        }
        let job_error = match s.job_error_limit.as_mut() {
            _ if skip => None,
            Some(0) => None,
            Some(n) => {
                *n -= 1;
                s.job_error.clone()
            }
            None => s.job_error.clone(),
        };
        (fault, duplicate, job_error)
    };
    let job = |error: Option<(String, String)>| {
        let mut status = json!({"state": "DONE"});
        if let Some((reason, message)) = error {
            status["errorResult"] = json!({"reason": reason, "message": message});
            status["errors"] = json!([{"reason": reason, "message": message}]);
        }
        json!({"kind": "bigquery#job", "id": format!("{project}:{job_id}"),
            "jobReference": {"projectId": project, "jobId": job_id, "location": "US"},
            "configuration": body["configuration"], "status": status})
    };
    if let Some(kind) = fault
        && let Some(resp) = fault_response(kind, || job(None)).await
    {
        return resp;
    }
    if duplicate {
        return status_response(
            409,
            error_body(
                409,
                "duplicate",
                &format!("Already Exists: Job {project}:US.{job_id}"),
            ),
        );
    }
    axum::Json(job(job_error)).into_response()
}

/// Records the `Authorization` header of every BigQuery call.
async fn record_authorization(
    State(state): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.uri().path().starts_with("/bigquery/") {
        let value = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        state.lock().expect("state").authorizations.push(value);
    }
    next.run(request).await
}

/// The OAuth 2.0 token endpoint of a service-account key (`token_uri`): a JWT-bearer grant in,
/// an access token out.
async fn token(State(state): State<Shared>, body: String) -> Response {
    let field = |name: &str| {
        body.split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    if field("grant_type").as_deref()
        != Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
        && field("grant_type").as_deref() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return status_response(
            400,
            json!({"error": "unsupported_grant_type", "body": body}),
        );
    }
    let Some(assertion) = field("assertion") else {
        return status_response(400, json!({"error": "invalid_request"}));
    };
    let n = {
        let mut s = state.lock().expect("state");
        s.token_grants.push(assertion);
        s.token_grants.len()
    };
    axum::Json(
        json!({"access_token": format!("ya29.fake-token-{n}"), "expires_in": 3600,
        "token_type": "Bearer"}),
    )
    .into_response()
}

/// tables.get: the table's schema is the result schema (`fields`).
async fn table_get(
    State(state): State<Shared>,
    Path((project, dataset, table)): Path<(String, String, String)>,
) -> Response {
    let fields = state.lock().expect("state").fields.clone();
    axum::Json(json!({"kind": "bigquery#table",
        "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
        "schema": {"fields": fields}}))
    .into_response()
}

async fn cancel(Path((_project, job)): Path<(String, String)>) -> Response {
    axum::Json(
        json!({"kind": "bigquery#jobCancelResponse", "job": {"jobReference": {"jobId": job}}}),
    )
    .into_response()
}

async fn query(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    let (fault, fields, bytes) = {
        let mut s = state.lock().expect("state");
        s.dry_runs.push(body.clone());
        (
            take_fault(&mut s, On::DryRun),
            s.fields.clone(),
            s.dry_run_bytes,
        )
    };
    let ok = || {
        json!({"kind": "bigquery#queryResponse", "jobComplete": true,
            "totalBytesProcessed": bytes.to_string(), "schema": {"fields": fields},
            "jobReference": {"projectId": "p"}})
    };
    if let Some(kind) = fault
        && let Some(resp) = fault_response(kind, ok).await
    {
        return resp;
    }
    axum::Json(ok()).into_response()
}

async fn results(
    State(state): State<Shared>,
    Path((project, job)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let max: usize = q
        .get("maxResults")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000)
        .max(1);
    let offset: usize = q
        .get("pageToken")
        .and_then(|t| t.strip_prefix("offset-"))
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let page = offset / max;
    let int64_asked = q
        .get("formatOptions.useInt64Timestamp")
        .is_some_and(|v| v == "true");
    let (fault, complete, delay) = {
        let mut s = state.lock().expect("state");
        if !s.created.contains(&job) {
            return status_response(
                404,
                error_body(404, "notFound", &format!("Not found: Job {project}:{job}")),
            );
        }
        s.results_calls.push((job.clone(), Some(page)));
        s.int64_timestamps_asked.push(int64_asked);
        let fault = take_fault(&mut s, On::Page(page));
        let needed = s.polls_before_complete;
        let polls = s.polls.entry(job.clone()).or_insert(0);
        let complete = *polls >= needed;
        *polls += 1;
        (fault, complete, s.page_delay)
    };
    if !complete {
        return axum::Json(json!({"kind": "bigquery#getQueryResultsResponse",
            "jobReference": {"projectId": project, "jobId": job}, "jobComplete": false}))
        .into_response();
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let body = {
        let s = state.lock().expect("state");
        let end = (offset + max).min(s.rows.len());
        let int64 = int64_asked && !s.ignore_format_options;
        let timestamps = timestamp_columns(&s.fields);
        let rows: Vec<Value> = s.rows[offset.min(end)..end]
            .iter()
            .map(|r| served_row(r, &timestamps, int64))
            .collect();
        let more = end < s.rows.len() && s.last_page.is_none_or(|l| page < l);
        let mut body = json!({"kind": "bigquery#getQueryResultsResponse",
            "jobReference": {"projectId": project, "jobId": job, "location": "US"},
            "jobComplete": true,
            "schema": {"fields": s.fields},
            "totalRows": s.report_total.unwrap_or(s.rows.len() as u64).to_string(),
            "rows": rows});
        if more {
            body["pageToken"] = json!(format!("offset-{end}"));
        }
        body
    };
    if let Some(kind) = fault {
        let b = body.clone();
        if let Some(resp) = fault_response(kind, move || b).await {
            return resp;
        }
    }
    state.lock().expect("state").pages_served.push(page);
    axum::Json(body).into_response()
}

/// Indexes of the top-level TIMESTAMP columns of a result schema.
fn timestamp_columns(fields: &Value) -> Vec<usize> {
    fields
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .enumerate()
                .filter(|(_, f)| f["type"] == "TIMESTAMP" && f["mode"] != "REPEATED")
                .map(|(i, _)| i)
                .collect()
        })
        .unwrap_or_default()
}

/// A stored row as served: its integer-microsecond TIMESTAMP cells as they are when int64
/// timestamps are served, else as the float seconds real BigQuery sends by default.
fn served_row(row: &Value, timestamps: &[usize], int64: bool) -> Value {
    let mut row = row.clone();
    if int64 {
        return row;
    }
    for &c in timestamps {
        let cell = &mut row["f"][c]["v"];
        let micros = cell.as_str().and_then(|s| s.parse::<i64>().ok());
        if let Some(micros) = micros {
            *cell = json!(float_seconds(micros));
        }
    }
    row
}

/// A TIMESTAMP as BigQuery renders it without `useInt64Timestamp`: seconds as a double, in
/// scientific notation.
pub fn float_seconds(micros: i64) -> String {
    format!("{:E}", micros as f64 / 1e6)
}

/// TIMESTAMP values far from 1970 with microseconds (and two near it), as (RFC 3339, µs since the
/// epoch): the values a float-seconds rendering cannot carry exactly.
pub fn far_timestamps() -> Vec<(&'static str, i64)> {
    [
        "0001-01-01T00:00:00.000001Z",
        "1600-02-29T12:34:56.789012Z",
        "1969-12-31T23:59:59.999999Z",
        "2024-01-01T12:34:56.123456Z",
        "2500-07-04T01:02:03.000004Z",
        "9999-12-31T23:59:59.999999Z",
    ]
    .into_iter()
    .map(|t| {
        let micros = chrono::DateTime::parse_from_rfc3339(t)
            .expect("RFC 3339")
            .timestamp_micros();
        (t, micros)
    })
    .collect()
}

/// A REST row from cell values (`None` = NULL).
pub fn rest_row(cells: Vec<Option<Value>>) -> Value {
    json!({"f": cells.into_iter().map(|c| json!({"v": c.unwrap_or(Value::Null)})).collect::<Vec<_>>()})
}
