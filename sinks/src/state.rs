//! Watermarks and the run ledger (`pulso_flow.watermarks`, `runs`, `node_runs`).
//!
//! Every value is a bound parameter. Watermarks are stored as the canonical text of their
//! [`IncValue`] (`IncValue::to_iso`) and read back with its one strict parser, so that
//! `watermarks show` prints them as they are and `set` accepts what `show` prints. What a
//! committed run writes goes through [`crate::commit`].

use chrono::{DateTime, Utc};
use pulso_types::{IncType, IncValue};
use tokio_postgres::{Client, GenericClient};

use crate::error::SinkError;

/// The channel every commit that changed data notifies (payload: node, target, data version);
/// the API listens on it to drop its caches. Delivered only when the transaction commits.
pub const LOADS_CHANNEL: &str = "pulso_flow_loads";

/// How a node run relates to its target's previous content; the ledger's `node_runs.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// A table upserts the window's rows (rows outside it are untouched); a build recomputes the
    /// days its dependencies changed.
    Incremental,
    /// A table's loaded rows become the whole table: upsert them and delete every other key, in
    /// the same transaction (readers see the old table until the commit, then the new one). A
    /// build recomputes everything.
    FullRefresh,
}

impl RunMode {
    /// The stored name (`node_runs.mode`, `explain`, `list`).
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Incremental => "incremental",
            RunMode::FullRefresh => "full_refresh",
        }
    }
}

/// One row of `pulso_flow.watermarks`.
#[derive(Debug, Clone)]
pub struct WatermarkRow {
    pub node: String,
    pub target: String,
    pub inc_column: Option<String>,
    pub inc_type: Option<String>,
    pub value: Option<String>,
    pub last_run_id: Option<String>,
    pub last_status: String,
    pub data_version: i64,
    pub updated_at: DateTime<Utc>,
}

const WATERMARK_COLUMNS: &str = "node, target, inc_column, inc_type, value, last_run_id, \
                                 last_status, data_version, updated_at";

fn watermark_row(r: &tokio_postgres::Row) -> WatermarkRow {
    WatermarkRow {
        node: r.get(0),
        target: r.get(1),
        inc_column: r.get(2),
        inc_type: r.get(3),
        value: r.get(4),
        last_run_id: r.get(5),
        last_status: r.get(6),
        data_version: r.get(7),
        updated_at: r.get(8),
    }
}

pub async fn read_watermark(
    client: &impl GenericClient,
    node: &str,
) -> Result<Option<WatermarkRow>, SinkError> {
    let sql = format!("SELECT {WATERMARK_COLUMNS} FROM pulso_flow.watermarks WHERE node = $1");
    let row = client
        .query_opt(&sql, &[&node])
        .await
        .map_err(|e| SinkError::pg(format!("reading the watermark of {node}"), e))?;
    Ok(row.as_ref().map(watermark_row))
}

pub async fn list_watermarks(client: &Client) -> Result<Vec<WatermarkRow>, SinkError> {
    let sql = format!("SELECT {WATERMARK_COLUMNS} FROM pulso_flow.watermarks ORDER BY node");
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(|e| SinkError::pg("listing watermarks", e))?;
    Ok(rows.iter().map(watermark_row).collect())
}

/// The node's watermark as its last successful run committed it, typed (`None` when it has none:
/// first run, reset, or a node without incremental column).
pub async fn stored_watermark(
    client: &impl GenericClient,
    node: &str,
) -> Result<Option<IncValue>, SinkError> {
    let Some(row) = read_watermark(client, node).await? else {
        return Ok(None);
    };
    let (Some(inc_type), Some(value)) = (row.inc_type, row.value) else {
        return Ok(None);
    };
    let ty = IncType::from_name(&inc_type).ok_or_else(|| SinkError::StoredWatermarkType {
        node: node.to_string(),
        inc_type: inc_type.clone(),
    })?;
    IncValue::parse(ty, &value)
        .map(Some)
        .map_err(|source| SinkError::StoredWatermark {
            node: node.to_string(),
            source,
        })
}

/// Whether the database has pulso-flow's state tables (it was migrated); `explain` asks before
/// reading watermarks so that a fresh database is "no watermarks yet", not an error.
pub async fn has_state(client: &impl GenericClient) -> Result<bool, SinkError> {
    Ok(client
        .query_one(
            "SELECT to_regclass('pulso_flow.watermarks') IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| SinkError::pg("looking for pulso_flow.watermarks", e))?
        .get(0))
}

/// What a committed node run writes into `pulso_flow.watermarks`.
pub(crate) struct WatermarkUpdate<'a> {
    pub node: &'a str,
    pub target: &'a str,
    pub inc_column: Option<&'a str>,
    pub value: Option<IncValue>,
    pub run_id: &'a str,
    /// Whether the target's content changed (bumps the data version).
    pub changed: bool,
}

/// Upsert the node's watermark inside the caller's transaction. `value` is written as given: the
/// caller has already applied the monotonic rule (see `load`).
pub(crate) async fn write_watermark(
    client: &impl GenericClient,
    u: &WatermarkUpdate<'_>,
) -> Result<i64, SinkError> {
    let inc_type = u.value.map(|v| v.ty().as_str());
    let value = u.value.map(|v| v.to_iso());
    let bump: i64 = i64::from(u.changed);
    let row = client
        .query_one(
            "INSERT INTO pulso_flow.watermarks AS w \
               (node, target, inc_column, inc_type, value, last_run_id, last_status, data_version, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'ok', $7, now()) \
             ON CONFLICT (node) DO UPDATE SET target = EXCLUDED.target, inc_column = EXCLUDED.inc_column, \
               inc_type = COALESCE(EXCLUDED.inc_type, w.inc_type), value = COALESCE(EXCLUDED.value, w.value), \
               last_run_id = EXCLUDED.last_run_id, last_status = 'ok', \
               data_version = w.data_version + $7, updated_at = now() \
             RETURNING data_version",
            &[&u.node, &u.target, &u.inc_column, &inc_type, &value, &u.run_id, &bump],
        )
        .await
        .map_err(|e| SinkError::pg(format!("writing the watermark of {}", u.node), e))?;
    Ok(row.get(0))
}

/// `watermarks set`: put a value regardless of the current one (an operator's decision).
pub async fn set_watermark(
    client: &Client,
    node: &str,
    target: &str,
    value: IncValue,
) -> Result<(), SinkError> {
    client
        .execute(
            "INSERT INTO pulso_flow.watermarks (node, target, inc_type, value, last_status, updated_at) \
             VALUES ($1, $2, $3, $4, 'set', now()) \
             ON CONFLICT (node) DO UPDATE SET inc_type = EXCLUDED.inc_type, value = EXCLUDED.value, \
               last_status = 'set', updated_at = now()",
            &[&node, &target, &value.ty().as_str(), &value.to_iso()],
        )
        .await
        .map_err(|e| SinkError::pg(format!("setting the watermark of {node}"), e))?;
    Ok(())
}

/// `watermarks reset`: forget the value, so the next run starts from the table's initial window.
pub async fn reset_watermark(client: &Client, node: &str) -> Result<bool, SinkError> {
    let n = client
        .execute(
            "UPDATE pulso_flow.watermarks SET value = NULL, last_status = 'reset', updated_at = now() \
             WHERE node = $1",
            &[&node],
        )
        .await
        .map_err(|e| SinkError::pg(format!("resetting the watermark of {node}"), e))?;
    Ok(n > 0)
}

/// One row of `pulso_flow.node_runs`.
#[derive(Debug, Clone, Default)]
pub struct NodeRun {
    pub run_id: String,
    pub node: String,
    pub kind: &'static str,
    pub target: Option<String>,
    pub mode: Option<RunMode>,
    pub window_lower: Option<String>,
    pub window_upper: Option<String>,
    pub watermark_before: Option<String>,
    pub watermark_after: Option<String>,
    pub rows_read: i64,
    pub rows_staged: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub deleted: i64,
    pub started_at: Option<DateTime<Utc>>,
    pub duration_ms: i64,
    pub status: &'static str,
    pub error: Option<String>,
    /// Things an operator should look at although the run went through (e.g. a watermark ahead
    /// of the window's upper bound); stored as `details.warnings`.
    pub warnings: Vec<String>,
    pub details: serde_json::Value,
}

pub async fn record_node_run(client: &impl GenericClient, r: &NodeRun) -> Result<(), SinkError> {
    let started = r.started_at.unwrap_or_else(Utc::now);
    let mode = r.mode.map(RunMode::as_str);
    let mut details = r.details.clone();
    if !r.warnings.is_empty() {
        if !details.is_object() {
            details = serde_json::json!({});
        }
        details["warnings"] = serde_json::json!(r.warnings);
    }
    let details = tokio_postgres::types::Json(&details);
    client
        .execute(
            "INSERT INTO pulso_flow.node_runs (run_id, node, kind, target, mode, window_lower, window_upper, \
               watermark_before, watermark_after, rows_read, rows_staged, inserted, updated, unchanged, deleted, \
               started_at, duration_ms, status, error, details) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20) \
             ON CONFLICT (run_id, node) DO UPDATE SET status = EXCLUDED.status, error = EXCLUDED.error, \
               duration_ms = EXCLUDED.duration_ms",
            &[
                &r.run_id,
                &r.node,
                &r.kind,
                &r.target,
                &mode,
                &r.window_lower,
                &r.window_upper,
                &r.watermark_before,
                &r.watermark_after,
                &r.rows_read,
                &r.rows_staged,
                &r.inserted,
                &r.updated,
                &r.unchanged,
                &r.deleted,
                &started,
                &r.duration_ms,
                &r.status,
                &r.error,
                &details,
            ],
        )
        .await
        .map_err(|e| SinkError::pg(format!("recording the run of {}", r.node), e))?;
    Ok(())
}

pub async fn start_run(
    client: &Client,
    run_id: &str,
    pipeline: &str,
    args: &serde_json::Value,
) -> Result<(), SinkError> {
    client
        .execute(
            "INSERT INTO pulso_flow.runs (run_id, pipeline, status, args) VALUES ($1, $2, 'running', $3)",
            &[&run_id, &pipeline, &tokio_postgres::types::Json(args)],
        )
        .await
        .map_err(|e| SinkError::pg("recording the run start", e))?;
    Ok(())
}

pub async fn finish_run(client: &Client, run_id: &str, status: &str) -> Result<(), SinkError> {
    client
        .execute(
            "UPDATE pulso_flow.runs SET status = $2, finished_at = now() WHERE run_id = $1",
            &[&run_id, &status],
        )
        .await
        .map_err(|e| SinkError::pg("recording the run end", e))?;
    Ok(())
}
