//! jobs.getQueryResults, asking for TIMESTAMP cells as integer microseconds.
//!
//! By default BigQuery renders the TIMESTAMP cells of getQueryResults as float seconds
//! (`"1.704112496123456E9"`). A double holds about 16 significant digits, so a microsecond is
//! lost far from 1970: `9999-12-31 23:59:59.999999` arrives as `2.534023008E11`, i.e.
//! `10000-01-01 00:00:00`, and `0001-01-01 00:00:00.000001` loses its microsecond. The request
//! parameter `formatOptions.useInt64Timestamp=true` makes them integer microseconds, exact from
//! year 1 to 9999.
//!
//! gcp-bigquery-client 0.28 cannot send that parameter: its `GetQueryResultsParameters` holds it
//! as a nested struct, which reqwest's query-string encoder refuses. So this one call is made
//! here, with the connection's own HTTP client (its timeouts), authenticator and REST base URL,
//! and its failures become the client's `BQError`s, classified by [`classify`] exactly as the
//! client's own calls are. A server that ignores the option sends float or scientific seconds,
//! which the decoder still reads (as exactly as they are written).

use gcp_bigquery_client::error::{BQError, ResponseError};
use gcp_bigquery_client::model::get_query_results_response::GetQueryResultsResponse;

use super::client::Bq;
use super::retry::{Failure, classify};

/// What one getQueryResults call asks for.
#[derive(Debug, Clone)]
pub struct ResultsRequest<'a> {
    pub project: &'a str,
    pub job_id: &'a str,
    pub location: Option<&'a str>,
    pub page_token: Option<&'a str>,
    pub max_results: u32,
    /// Long-poll wait while the job runs.
    pub timeout_ms: u32,
}

impl ResultsRequest<'_> {
    /// The query-string parameters, `formatOptions.useInt64Timestamp=true` always among them.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("formatOptions.useInt64Timestamp", "true".to_string()),
            ("maxResults", self.max_results.to_string()),
            ("timeoutMs", self.timeout_ms.to_string()),
        ];
        if let Some(location) = self.location {
            q.push(("location", location.to_string()));
        }
        if let Some(token) = self.page_token {
            q.push(("pageToken", token.to_string()));
        }
        q
    }
}

/// `GET {rest_base}/projects/{project}/queries/{job}` (path segments percent-encoded).
fn url(rest_base: &str, project: &str, job_id: &str) -> Result<reqwest::Url, Failure> {
    let bad = |why: String| Failure::permanent(format!("REST base URL {rest_base:?}: {why}"));
    let mut url = reqwest::Url::parse(rest_base).map_err(|e| bad(e.to_string()))?;
    url.path_segments_mut()
        .map_err(|()| bad("cannot be a base URL".into()))?
        .pop_if_empty()
        .extend(["projects", project, "queries", job_id]);
    Ok(url)
}

/// One getQueryResults call; a failure is classified (transient or not) for the retry loop.
pub async fn get_query_results(
    bq: &Bq,
    req: &ResultsRequest<'_>,
) -> Result<GetQueryResultsResponse, Failure> {
    let url = url(&bq.conn.rest_base, req.project, req.job_id)?;
    let token = bq.auth.access_token().await.map_err(|e| classify(&e))?;
    let request_error = |e: reqwest::Error| classify(&BQError::RequestError(e));
    let resp = bq
        .http
        .get(url)
        .query(&req.query())
        .bearer_auth(token)
        .send()
        .await
        .map_err(request_error)?;
    // As the client's own calls do: a JSON body on success, Google's JSON error body otherwise
    // (a body that is not JSON, e.g. a proxy's HTML page, is a decode error).
    if resp.status().is_success() {
        resp.json::<GetQueryResultsResponse>()
            .await
            .map_err(request_error)
    } else {
        let error: ResponseError = resp.json().await.map_err(request_error)?;
        Err(classify(&BQError::ResponseError { error }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_asks_for_int64_timestamps() {
        let req = ResultsRequest {
            project: "p-1",
            job_id: "job 1/x",
            location: Some("US"),
            page_token: Some("tok=1&2"),
            max_results: 500,
            timeout_ms: 10_000,
        };
        let q = req.query();
        assert!(q.contains(&("formatOptions.useInt64Timestamp", "true".into())));
        assert!(q.contains(&("pageToken", "tok=1&2".into())));
        let u = url("http://h:9050/bigquery/v2/", "p-1", "job 1/x").unwrap();
        assert_eq!(
            u.as_str(),
            "http://h:9050/bigquery/v2/projects/p-1/queries/job%201%2Fx"
        );
        assert!(url("not a url", "p", "j").is_err());
    }
}
