//! ETL status: `GET /api/v1/etl/status` and `/etl/status/table/{table_name}` — watermarks, the
//! run ledger and freshness per node, from [`pulso_sinks::status`].
//!
//! Field names follow the Pulso-Back contract of these endpoints (snake_case, api.md §9).

use axum::extract::State;
use chrono::{DateTime, Utc};
use pulso_sinks::status::{self, NodeLateness, NodeStatus};
use serde::Serialize;
use utoipa::ToSchema;

use super::access::Access;
use crate::error::{ApiError, ErrorBody};
use crate::freshness;
use crate::http::params::{PathParam, Query};
use crate::state::Shared;

/// The class of a ledger error text (owned by the sinks crate, which writes the ledger).
pub use pulso_sinks::status::error_class;

async fn nodes(st: &Shared) -> Result<Vec<NodeStatus>, ApiError> {
    status::node_status(&st.db, &st.refresh.pipeline_nodes()).await
}

/// One node in `/api/v1/etl/status`.
#[derive(Serialize, ToSchema)]
pub struct TableStatus {
    pub table_name: String,
    /// `table` or `sql` (aux/mart build); null if it never ran.
    pub kind: Option<String>,
    pub target: Option<String>,
    /// Status of its last run: `ok`, `failed`, `skipped`, `cancelled`, or `never`.
    pub status: String,
    /// Watermark (greatest incremental value loaded) and its type.
    pub watermark: Option<String>,
    pub watermark_type: Option<String>,
    /// `ok`, `set` or `reset` (an operator changed it).
    pub watermark_status: Option<String>,
    pub data_version: Option<i64>,
    pub last_run_id: Option<String>,
    /// When its last run started.
    #[serde(serialize_with = "crate::http::ser::ts_opt::serialize")]
    pub last_extracted: Option<DateTime<Utc>>,
    /// Rows inserted + updated by its last run.
    pub records_count: Option<i64>,
    pub extraction_duration_seconds: Option<f64>,
    /// Short class of the last run's error (`source`, `file`, `connection`, `locked`, `target`,
    /// `watermark`, `timeout`, `data`, `sql`, `error`); null when it did not fail.
    pub error_class: Option<&'static str>,
    /// The error of the last run. Without a token (unless `PULSO_API_PUBLIC_ERROR_DETAIL=full`)
    /// only its class and node: the full text may hold row keys, cell values and file paths.
    pub error_message: Option<String>,
    /// When its last successful run finished.
    #[serde(serialize_with = "crate::http::ser::ts_opt::serialize")]
    pub last_success: Option<DateTime<Utc>>,
    pub age_seconds: Option<i64>,
    pub max_age_seconds: i64,
    pub fresh: bool,
    /// The last run's quality gates (`checks:`): name, kind, severity, passed, offending count
    /// and up to 5 offending keys; null when the node has none.
    #[schema(value_type = Option<Vec<Object>>)]
    pub checks: Option<serde_json::Value>,
    /// The last run's reconciliation with the source (`reconcile:`): days compared, row counts
    /// and the differing days; null when the node has none.
    #[schema(value_type = Option<Object>)]
    pub reconcile: Option<serde_json::Value>,
    /// No schedule is known to the API: always null.
    #[serde(serialize_with = "crate::http::ser::ts_opt::serialize")]
    pub next_scheduled: Option<DateTime<Utc>>,
    /// Lateness observed by its loads of the last 30 days (tables whose loads saw a previous
    /// watermark; null otherwise).
    pub lateness: Option<LatenessStatus>,
}

/// How far below the previous watermark a table's new rows were (docs/pipeline.md, "Lateness").
#[derive(Serialize, ToSchema)]
pub struct LatenessStatus {
    /// The greatest lateness, seconds; null when no new row was below the watermark.
    pub max_seconds: Option<i64>,
    /// New rows that were below the previous watermark.
    pub late_rows: i64,
    /// The table's lookback at its latest load, seconds.
    pub lookback_seconds: Option<i64>,
    /// An observed lateness reached the lookback: rows later than it are missed by incremental
    /// runs.
    pub lookback_too_short: bool,
    /// Late rows per bucket (`le_1m`, `le_1h`, `le_6h`, `le_1d`, `le_3d`, `le_7d`, `le_14d`,
    /// `le_30d`, `gt_30d`); empty buckets are left out.
    #[schema(value_type = Object)]
    pub histogram: serde_json::Value,
}

impl From<&NodeLateness> for LatenessStatus {
    fn from(l: &NodeLateness) -> Self {
        LatenessStatus {
            max_seconds: l.max_seconds,
            late_rows: l.late_rows,
            lookback_seconds: l.lookback_seconds,
            lookback_too_short: l.warning().is_some(),
            histogram: l.histogram.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RecentActivity {
    pub table_name: String,
    pub status: String,
    #[serde(serialize_with = "crate::http::ser::ts::serialize")]
    pub timestamp: DateTime<Utc>,
    pub records: i64,
    /// Seconds.
    pub duration: f64,
}

#[derive(Serialize, ToSchema)]
pub struct RunRow {
    pub run_id: String,
    pub pipeline: String,
    /// `running`, `ok`, `failed` or `cancelled`.
    pub status: String,
    #[serde(serialize_with = "crate::http::ser::ts::serialize")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::http::ser::ts_opt::serialize")]
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct RunningRefresh {
    pub run_id: String,
    #[serde(serialize_with = "crate::http::ser::ts::serialize")]
    pub started_at: DateTime<Utc>,
    pub tables: Vec<String>,
}

/// `GET /api/v1/etl/status`.
#[derive(Serialize, ToSchema)]
pub struct EtlStatusResponse {
    /// `healthy` (no node's last run failed and all fresh) or `degraded`.
    pub status: &'static str,
    #[serde(serialize_with = "crate::http::ser::ts_opt::serialize")]
    pub last_updated: Option<DateTime<Utc>>,
    pub total_tables: usize,
    pub successful_tables: usize,
    pub failed_tables: usize,
    pub stale_tables: usize,
    /// Runs marked `running` in the ledger.
    pub running_extractions: usize,
    /// The source tables (table nodes).
    pub dashboard_tables: Vec<String>,
    pub recent_activity: Vec<RecentActivity>,
    pub tables: Vec<TableStatus>,
    pub runs: Vec<RunRow>,
    /// The refresh this API instance started, while it runs.
    pub running_refresh: Option<RunningRefresh>,
    pub data_version: i64,
}

fn table_status(
    st: &Shared,
    n: NodeStatus,
    lateness: &[NodeLateness],
    now: DateTime<Utc>,
    full: bool,
) -> TableStatus {
    let f = freshness::of_node(&st.cfg, &n, now);
    let error_class = n.last_error.as_deref().map(error_class);
    let error_message = match (&n.last_error, error_class) {
        (Some(e), _) if full => Some(e.clone()),
        (Some(_), Some(class)) => Some(format!(
            "{class} error in {}; the full message is in the server log (or send the monitor \
             token)",
            n.node
        )),
        _ => None,
    };
    TableStatus {
        status: n.last_status.clone().unwrap_or_else(|| "never".into()),
        kind: n.last_kind,
        target: n.target,
        watermark: n.watermark,
        watermark_type: n.inc_type,
        watermark_status: n.watermark_status,
        data_version: n.data_version,
        last_run_id: n.last_run_id,
        last_extracted: n.last_started_at,
        records_count: n.last_records,
        extraction_duration_seconds: n.last_duration_ms.map(|ms| ms as f64 / 1000.0),
        error_class,
        error_message,
        last_success: n.last_success_at,
        age_seconds: f.age_seconds,
        max_age_seconds: f.max_age_seconds,
        fresh: f.fresh,
        next_scheduled: None,
        lateness: lateness
            .iter()
            .find(|l| l.node == n.node)
            .map(LatenessStatus::from),
        checks: n
            .last_checks
            .map(|c| if full { c } else { without_samples(c) }),
        reconcile: n.last_reconcile,
        table_name: n.node,
    }
}

/// The checks without their offending keys (row keys are shown only with the monitor token, like
/// full error messages).
fn without_samples(mut checks: serde_json::Value) -> serde_json::Value {
    if let Some(list) = checks.as_array_mut() {
        for c in list.iter_mut().filter_map(|c| c.as_object_mut()) {
            c.remove("sample");
        }
    }
    checks
}

#[utoipa::path(get, path = "/api/v1/etl/status", tag = "etl",
    responses((status = 200, body = EtlStatusResponse), (status = 400, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn status(
    State(st): State<Shared>,
    access: Access,
    q: Query,
) -> Result<axum::Json<EtlStatusResponse>, ApiError> {
    access.require(st.cfg.private_endpoints.status)?;
    q.finish()?;
    let full = access.full_errors(&st);
    let now = Utc::now();
    let (nodes, runs, activity, lateness) = tokio::try_join!(
        nodes(&st),
        status::recent_runs(&st.db),
        status::recent_activity(&st.db),
        status::lateness(&st.db),
    )?;
    let tables: Vec<TableStatus> = nodes
        .into_iter()
        .map(|n| table_status(&st, n, &lateness, now, full))
        .collect();
    let failed = tables.iter().filter(|t| t.status == "failed").count();
    let successful = tables.iter().filter(|t| t.status == "ok").count();
    let stale = tables.iter().filter(|t| !t.fresh).count();
    let runs: Vec<RunRow> = runs
        .into_iter()
        .map(|r| RunRow {
            run_id: r.run_id,
            pipeline: r.pipeline,
            status: r.status,
            started_at: r.started_at,
            finished_at: r.finished_at,
        })
        .collect();
    Ok(axum::Json(EtlStatusResponse {
        status: if failed == 0 && stale == 0 {
            "healthy"
        } else {
            "degraded"
        },
        last_updated: tables.iter().filter_map(|t| t.last_success).max(),
        total_tables: tables.len(),
        successful_tables: successful,
        failed_tables: failed,
        stale_tables: stale,
        running_extractions: runs.iter().filter(|r| r.status == "running").count(),
        dashboard_tables: tables
            .iter()
            .filter(|t| t.kind.as_deref() == Some("table"))
            .map(|t| t.table_name.clone())
            .collect(),
        recent_activity: activity
            .into_iter()
            .map(|a| RecentActivity {
                table_name: a.node,
                status: a.status,
                timestamp: a.started_at,
                records: a.records.unwrap_or(0),
                duration: a.duration_ms as f64 / 1000.0,
            })
            .collect(),
        tables,
        runs,
        running_refresh: st.refresh.running().map(|r| RunningRefresh {
            run_id: r.run_id,
            started_at: r.started_at,
            tables: r.nodes,
        }),
        data_version: st.version.last_known(),
    }))
}

#[utoipa::path(get, path = "/api/v1/etl/status/table/{table_name}", tag = "etl",
    params(("table_name" = String, Path, description = "A pipeline node")),
    responses((status = 200, body = TableStatus), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn table_status_handler(
    State(st): State<Shared>,
    access: Access,
    PathParam(table_name): PathParam,
    q: Query,
) -> Result<axum::Json<TableStatus>, ApiError> {
    access.require(st.cfg.private_endpoints.status)?;
    q.finish()?;
    let full = access.full_errors(&st);
    let now = Utc::now();
    let (nodes, lateness) = tokio::try_join!(nodes(&st), status::lateness(&st.db))?;
    let node = nodes
        .into_iter()
        .find(|n| n.node == table_name)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "table {:?} is neither in the pipeline nor in the ledger",
                crate::http::params::safe_text(&table_name)
            ))
        })?;
    Ok(axum::Json(table_status(&st, node, &lateness, now, full)))
}
