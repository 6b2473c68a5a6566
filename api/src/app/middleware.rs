//! The layer around every request: request id, timeout, metrics, security headers, access log.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Response, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use tracing::Instrument;

use crate::error::ApiError;
use crate::state::Shared;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_PROCESS_TIME: HeaderName = HeaderName::from_static("x-process-time");

/// Request id, timeout, metrics, security headers and the access log, in one layer.
pub(super) async fn observe(State(st): State<Shared>, req: Request, next: Next) -> Response<Body> {
    let t0 = Instant::now();
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty()
                && b.len() <= 64
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("uuid header")
        });
    let method = method_label(req.method());
    let endpoint: Arc<str> = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| Arc::from(p.as_str()))
        .unwrap_or_else(|| Arc::from("unmatched"));
    // Logged truncated: an invented method name may be kilobytes long.
    let logged_method = st
        .cfg
        .access_log
        .then(|| crate::http::params::safe_text(req.method().as_str()));
    let path_and_query = st
        .cfg
        .access_log
        .then(|| req.uri().path_and_query().map(|p| p.as_str().to_string()))
        .flatten();
    st.metrics.active.inc();
    let span = tracing::info_span!("request", request_id = %request_id.to_str().unwrap_or(""));
    let timeout = st.cfg.request_timeout;
    let result = tokio::time::timeout(timeout, next.run(req))
        .instrument(span)
        .await;
    st.metrics.active.dec();
    let mut response = match result {
        Ok(r) => r,
        Err(_) => ApiError::Unavailable(format!(
            "the request did not finish within {} ms",
            timeout.as_millis()
        ))
        .into_response(),
    };
    let elapsed = t0.elapsed();
    let status = response.status();
    st.metrics
        .requests
        .with_label_values(&[method, &endpoint, status.as_str()])
        .inc();
    st.metrics
        .latency
        .with_label_values(&[method, &endpoint])
        .observe(elapsed.as_secs_f64());
    let h = response.headers_mut();
    h.insert(X_REQUEST_ID.clone(), request_id.clone());
    if let Ok(v) = HeaderValue::from_str(&format!("{:.6}", elapsed.as_secs_f64())) {
        h.insert(X_PROCESS_TIME.clone(), v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(pq) = path_and_query {
        tracing::info!(
            target: "pulso_api::access",
            request_id = %request_id.to_str().unwrap_or(""),
            method = %logged_method.as_deref().unwrap_or(method),
            path = %crate::http::params::safe_text(&pq),
            endpoint = %endpoint,
            status = status.as_u16(),
            duration_us = elapsed.as_micros() as u64,
            "request"
        );
    }
    response
}

/// The method as a metrics label: the standard methods by name, anything else `OTHER`, so a
/// client inventing method names cannot grow `/metrics` (each label value is a new series).
/// The endpoint label is already bounded: the matched route template, or `unmatched`.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}
