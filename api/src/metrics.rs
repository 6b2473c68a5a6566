//! Prometheus metrics, served at `/metrics` on the API port.

use std::sync::Arc;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Handles to every metric; cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

pub struct Inner {
    registry: Registry,
    /// `http_requests_total{method,endpoint,status}`; `endpoint` is the route template.
    pub requests: IntCounterVec,
    /// `http_request_duration_seconds{method,endpoint}`: time to the response head.
    pub latency: HistogramVec,
    /// `http_requests_active`.
    pub active: IntGauge,
    /// `pulso_api_cache_total{level,result}`: level `memory` or `redis`, result `hit`/`miss`/`error`.
    pub cache: IntCounterVec,
    /// `pulso_api_db_query_seconds{query}`.
    pub db_query_seconds: HistogramVec,
    /// `pulso_api_data_version`: the data version caches are keyed by.
    pub data_version: IntGauge,
    /// `pulso_api_dependency_up{dependency}`: 1 reachable, 0 not (postgres, redis, listener).
    pub up: IntGaugeVec,
    /// `pulso_api_connections_open`: client connections being served.
    pub connections_open: IntGauge,
    /// `pulso_api_connections_refused_total`: connections refused at the connection limit.
    pub connections_refused: IntCounter,
    /// `pulso_api_redis_writes_skipped_total`: answers not written to Redis because this
    /// instance reached `PULSO_API_REDIS_MAX_KEYS` for the current data version.
    pub redis_writes_skipped: IntCounter,
}

impl std::ops::Deref for Metrics {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["method", "endpoint", "status"],
        )
        .expect("metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from request to response head",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "endpoint"],
        )
        .expect("metric");
        let active = IntGauge::new("http_requests_active", "Requests in flight").expect("metric");
        let cache = IntCounterVec::new(
            Opts::new(
                "pulso_api_cache_total",
                "Cache look-ups by level (memory, redis) and result (hit, miss, error)",
            ),
            &["level", "result"],
        )
        .expect("metric");
        let db_query_seconds = HistogramVec::new(
            HistogramOpts::new("pulso_api_db_query_seconds", "PostgreSQL query time")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["query"],
        )
        .expect("metric");
        let data_version = IntGauge::new(
            "pulso_api_data_version",
            "Data version (sum of pulso_flow.watermarks.data_version) the caches are keyed by",
        )
        .expect("metric");
        let up = IntGaugeVec::new(
            Opts::new(
                "pulso_api_dependency_up",
                "Whether a dependency answered at the last check",
            ),
            &["dependency"],
        )
        .expect("metric");
        let connections_open = IntGauge::new(
            "pulso_api_connections_open",
            "Client connections being served",
        )
        .expect("metric");
        let connections_refused = IntCounter::new(
            "pulso_api_connections_refused_total",
            "Connections refused at PULSO_API_MAX_CONNECTIONS",
        )
        .expect("metric");
        let redis_writes_skipped = IntCounter::new(
            "pulso_api_redis_writes_skipped_total",
            "Answers not written to Redis: PULSO_API_REDIS_MAX_KEYS reached for this data version",
        )
        .expect("metric");
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(active.clone()),
            Box::new(cache.clone()),
            Box::new(db_query_seconds.clone()),
            Box::new(data_version.clone()),
            Box::new(up.clone()),
            Box::new(connections_open.clone()),
            Box::new(connections_refused.clone()),
            Box::new(redis_writes_skipped.clone()),
        ] {
            registry.register(m).expect("register metric");
        }
        Metrics(Arc::new(Inner {
            registry,
            requests,
            latency,
            active,
            cache,
            db_query_seconds,
            data_version,
            up,
            connections_open,
            connections_refused,
            redis_writes_skipped,
        }))
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encode metrics");
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The pipeline's quality gates as of each node's last run, in the text exposition format:
/// `pulso_flow_check_failed{node,check,severity}` (1 failed, 0 passed),
/// `pulso_flow_check_offending_rows{node,check}` and
/// `pulso_flow_reconcile_mismatched_days{node}`. Read from the run ledger at scrape time.
pub fn gate_metrics(nodes: &[pulso_sinks::status::NodeStatus]) -> String {
    use std::fmt::Write as _;
    let label = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let mut failed = String::new();
    let mut offending = String::new();
    let mut days = String::new();
    for n in nodes {
        let node = label(&n.node);
        for c in n
            .last_checks
            .as_ref()
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
        {
            let name = label(c["name"].as_str().unwrap_or_default());
            let severity = label(c["severity"].as_str().unwrap_or_default());
            let passed = c["passed"].as_bool().unwrap_or(false);
            let _ = writeln!(
                failed,
                "pulso_flow_check_failed{{node=\"{node}\",check=\"{name}\",severity=\"{severity}\"}} {}",
                u8::from(!passed)
            );
            let _ = writeln!(
                offending,
                "pulso_flow_check_offending_rows{{node=\"{node}\",check=\"{name}\"}} {}",
                c["offending"].as_i64().unwrap_or(0)
            );
        }
        if let Some(r) = &n.last_reconcile {
            let count = r["mismatches"].as_array().map_or(0, Vec::len);
            let _ = writeln!(
                days,
                "pulso_flow_reconcile_mismatched_days{{node=\"{node}\"}} {count}"
            );
        }
    }
    let mut out = String::new();
    for (name, help, body) in [
        (
            "pulso_flow_check_failed",
            "Whether a quality gate (checks:) failed in the node's last run",
            failed,
        ),
        (
            "pulso_flow_check_offending_rows",
            "Offending rows a quality gate found in the node's last run",
            offending,
        ),
        (
            "pulso_flow_reconcile_mismatched_days",
            "Days whose count or sums differ between source and target in the node's last run",
            days,
        ),
    ] {
        if !body.is_empty() {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{body}");
        }
    }
    out
}
