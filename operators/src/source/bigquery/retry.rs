//! Bounded retries with exponential backoff and jitter, and which failures are transient.
//!
//! Transient (retried): HTTP 429, 500, 502, 503, 504; 403 with reason `rateLimitExceeded`;
//! connection failures, resets, truncated bodies and timeouts; gRPC UNAVAILABLE,
//! RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED, INTERNAL and transport errors. Everything else
//! (bad SQL, permission denied, not found, quota exceeded) fails at once with BigQuery's message.

use std::future::Future;
use std::time::Duration;

use gcp_bigquery_client::error::BQError;
use rand::Rng;

use super::error::BigQueryError;

/// The `retry:` block of a BigQuery connection.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySpec {
    /// Tries per call, the first included (default 6).
    pub attempts: u32,
    /// Backoff before the second try, doubled each time (default 500 ms).
    pub initial_backoff_ms: u64,
    /// Backoff ceiling (default 30 s).
    pub max_backoff_ms: u64,
}

impl Default for RetrySpec {
    fn default() -> Self {
        RetrySpec {
            attempts: 6,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
        }
    }
}

impl RetrySpec {
    /// The pause before try `attempt + 1` (attempt ≥ 1): "equal jitter", i.e. half of the
    /// exponential delay plus a random share of the other half, so that concurrent readers
    /// do not retry in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.max_backoff_ms.max(self.initial_backoff_ms));
        let half = capped / 2;
        let jitter = if half > 0 {
            rand::rng().random_range(0..=half)
        } else {
            0
        };
        Duration::from_millis(capped - half + jitter)
    }

    pub fn attempts(&self) -> u32 {
        self.attempts.max(1)
    }
}

/// A failure of one try, classified.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub transient: bool,
    /// HTTP status (or 0 when there was no response).
    pub status: u16,
}

impl Failure {
    pub fn permanent(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            transient: false,
            status: 0,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            transient: true,
            status: 0,
        }
    }
}

fn transient_status(code: u16) -> bool {
    matches!(code, 429 | 500 | 502 | 503 | 504)
}

/// Classifies an error of gcp-bigquery-client.
pub fn classify(e: &BQError) -> Failure {
    match e {
        BQError::ResponseError { error } => {
            let code = u16::try_from(error.error.code).unwrap_or(0);
            let reasons: Vec<&str> = error
                .error
                .errors
                .iter()
                .filter_map(|m| m.get("reason").map(String::as_str))
                .collect();
            let rate_limited = reasons
                .iter()
                .any(|r| matches!(*r, "rateLimitExceeded" | "backendError" | "internalError"));
            let mut message = error.error.message.clone();
            let mut extra = vec![format!("HTTP {code}")];
            if !error.error.status.is_empty() {
                extra.push(error.error.status.clone());
            }
            if !reasons.is_empty() {
                extra.push(format!("reason {}", reasons.join(", ")));
            }
            message.push_str(&format!(" ({})", extra.join(", ")));
            Failure {
                message,
                transient: transient_status(code) || (code == 403 && rate_limited),
                status: code,
            }
        }
        BQError::RequestError(re) => {
            let status = re.status().map(|s| s.as_u16()).unwrap_or(0);
            // A status without a JSON error body (a proxy's HTML page) arrives as a decode error
            // without status; a cut connection as a body/request error; both are transient.
            let transient = transient_status(status)
                || re.is_timeout()
                || re.is_connect()
                || re.is_request()
                || re.is_body()
                || re.is_decode();
            let mut message = re.to_string();
            let mut source = std::error::Error::source(re);
            while let Some(s) = source {
                message.push_str(&format!(": {s}"));
                source = s.source();
            }
            Failure {
                message,
                transient,
                status,
            }
        }
        BQError::TonicStatusError(status) => classify_status(status),
        BQError::TonicTransportError(t) => Failure::transient(format!("gRPC transport: {t}")),
        other => Failure::permanent(other.to_string()),
    }
}

/// Classifies a gRPC status of the Storage Read API.
pub fn classify_status(status: &tonic::Status) -> Failure {
    use tonic::Code;
    let transient = matches!(
        status.code(),
        Code::Unavailable
            | Code::ResourceExhausted
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Internal
            | Code::Unknown
            | Code::Cancelled
    );
    Failure {
        message: format!("{} (gRPC {:?})", status.message(), status.code()),
        transient,
        status: 0,
    }
}

/// Runs `f` until it succeeds, fails permanently, or `policy.attempts` tries are used.
/// `call` names the call in logs and in the final error.
pub async fn retry<T, F, Fut>(policy: &RetrySpec, call: &str, mut f: F) -> Result<T, BigQueryError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let attempts = policy.attempts();
    let mut attempt = 1;
    loop {
        match f(attempt).await {
            Ok(v) => {
                if attempt > 1 {
                    tracing::info!(call, attempt, "BigQuery call succeeded after retrying");
                }
                return Ok(v);
            }
            Err(failure) => {
                if failure.transient && attempt < attempts {
                    let pause = policy.backoff(attempt);
                    tracing::warn!(
                        call,
                        attempt,
                        of = attempts,
                        pause_ms = pause.as_millis() as u64,
                        error = %failure.message,
                        "transient BigQuery error; retrying"
                    );
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                    continue;
                }
                return Err(BigQueryError::Api {
                    call: call.to_string(),
                    attempts: attempt,
                    message: failure.message,
                    transient: failure.transient,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetrySpec {
            attempts: 10,
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
        };
        for _ in 0..50 {
            let b1 = p.backoff(1).as_millis();
            assert!((50..=100).contains(&b1), "{b1}");
            let b3 = p.backoff(3).as_millis();
            assert!((200..=400).contains(&b3), "{b3}");
            let b9 = p.backoff(9).as_millis();
            assert!((500..=1_000).contains(&b9), "{b9}");
        }
    }

    #[tokio::test]
    async fn retries_transient_failures_then_gives_up_with_the_message() {
        let p = RetrySpec {
            attempts: 3,
            initial_backoff_ms: 1,
            max_backoff_ms: 2,
        };
        let mut calls = 0;
        let r: Result<(), _> = retry(&p, "jobs.getQueryResults", |_| {
            calls += 1;
            async { Err(Failure::transient("Backend error (HTTP 503)")) }
        })
        .await;
        assert_eq!(calls, 3);
        assert_eq!(
            r.unwrap_err().to_string(),
            "BigQuery jobs.getQueryResults failed after 3 attempt(s): Backend error (HTTP 503)"
        );
        let mut calls = 0;
        let r: Result<(), _> = retry(&p, "jobs.insert", |_| {
            calls += 1;
            async { Err(Failure::permanent("Access Denied (HTTP 403)")) }
        })
        .await;
        assert_eq!(calls, 1);
        assert!(r.unwrap_err().to_string().contains("Access Denied"));
        let mut calls = 0;
        let r = retry(&p, "x", |attempt| {
            calls += 1;
            async move {
                if attempt < 2 {
                    Err(Failure::transient("reset"))
                } else {
                    Ok(7)
                }
            }
        })
        .await;
        assert_eq!((r.unwrap(), calls), (7, 2));
    }
}
