//! Watermarks and the run ledger (`pulso_flow.watermarks`, `runs`, `node_runs`).
//!
//! Every value is a bound parameter. Watermarks are stored as canonical ISO text of their type so
//! that `watermarks show` prints them as they are and `set` accepts what `show` prints.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use tokio_postgres::{Client, GenericClient};

use crate::error::SinkError;

/// The channel every commit that changed data notifies (payload: node, target, data version);
/// the API listens on it to drop its caches. Delivered only when the transaction commits.
pub const LOADS_CHANNEL: &str = "pulso_flow_loads";

/// The type of an incremental column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatermarkKind {
    Date,
    Datetime,
    Timestamp,
}

impl WatermarkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WatermarkKind::Date => "date",
            WatermarkKind::Datetime => "datetime",
            WatermarkKind::Timestamp => "timestamp",
        }
    }

    pub fn parse_name(s: &str) -> Option<Self> {
        match s {
            "date" => Some(WatermarkKind::Date),
            "datetime" => Some(WatermarkKind::Datetime),
            "timestamp" => Some(WatermarkKind::Timestamp),
            _ => None,
        }
    }
}

/// A typed watermark value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Watermark {
    Date(NaiveDate),
    Datetime(NaiveDateTime),
    Timestamp(DateTime<Utc>),
}

impl Watermark {
    pub fn kind(&self) -> WatermarkKind {
        match self {
            Watermark::Date(_) => WatermarkKind::Date,
            Watermark::Datetime(_) => WatermarkKind::Datetime,
            Watermark::Timestamp(_) => WatermarkKind::Timestamp,
        }
    }

    /// Canonical text: `2025-06-27`, `2025-06-27T07:04:00.000001`, `2025-06-27T07:04:00.000001Z`.
    pub fn to_iso(&self) -> String {
        match self {
            Watermark::Date(d) => d.format("%Y-%m-%d").to_string(),
            Watermark::Datetime(d) => d.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            Watermark::Timestamp(t) => t.to_rfc3339_opts(SecondsFormat::Micros, true),
        }
    }

    /// Parse a watermark of `kind`. Accepts the canonical text, a space instead of `T`, fewer
    /// fraction digits, and for timestamps any RFC 3339 offset (zone-less text is taken as UTC).
    pub fn parse(kind: WatermarkKind, text: &str) -> Result<Self, SinkError> {
        let bad = |message: &str| SinkError::Watermark {
            value: text.to_string(),
            kind: kind.as_str().to_string(),
            message: message.to_string(),
        };
        let t = text.trim();
        match kind {
            WatermarkKind::Date => NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .map(Watermark::Date)
                .map_err(|_| bad("expected YYYY-MM-DD")),
            WatermarkKind::Datetime => parse_naive(t)
                .map(Watermark::Datetime)
                .ok_or_else(|| bad("expected YYYY-MM-DDTHH:MM:SS[.ffffff]")),
            WatermarkKind::Timestamp => DateTime::parse_from_rfc3339(t)
                .map(|d| d.with_timezone(&Utc))
                .ok()
                .or_else(|| parse_naive(t).map(|n| n.and_utc()))
                .map(Watermark::Timestamp)
                .ok_or_else(|| bad("expected an RFC 3339 timestamp such as 2025-06-27T07:04:00Z")),
        }
    }
}

fn parse_naive(t: &str) -> Option<NaiveDateTime> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
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

/// What a committed node run writes into `pulso_flow.watermarks`.
pub struct WatermarkUpdate<'a> {
    pub node: &'a str,
    pub target: &'a str,
    pub inc_column: Option<&'a str>,
    pub value: Option<Watermark>,
    pub run_id: &'a str,
    /// Whether the target's content changed (bumps the data version).
    pub changed: bool,
}

/// Upsert the node's watermark inside the caller's transaction. `value` is written as given: the
/// caller has already applied the monotonic rule (see `load`).
pub async fn write_watermark(
    client: &impl GenericClient,
    u: &WatermarkUpdate<'_>,
) -> Result<i64, SinkError> {
    let inc_type = u.value.map(|v| v.kind().as_str());
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
    value: Watermark,
) -> Result<(), SinkError> {
    client
        .execute(
            "INSERT INTO pulso_flow.watermarks (node, target, inc_type, value, last_status, updated_at) \
             VALUES ($1, $2, $3, $4, 'set', now()) \
             ON CONFLICT (node) DO UPDATE SET inc_type = EXCLUDED.inc_type, value = EXCLUDED.value, \
               last_status = 'set', updated_at = now()",
            &[&node, &target, &value.kind().as_str(), &value.to_iso()],
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
    pub mode: Option<String>,
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
    pub details: serde_json::Value,
}

pub async fn record_node_run(client: &impl GenericClient, r: &NodeRun) -> Result<(), SinkError> {
    let started = r.started_at.unwrap_or_else(Utc::now);
    let details = tokio_postgres::types::Json(&r.details);
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
                &r.mode,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_text_round_trips_and_orders() {
        for (kind, text) in [
            (WatermarkKind::Date, "2025-06-27"),
            (WatermarkKind::Datetime, "2025-06-27T07:04:00.000001"),
            (WatermarkKind::Timestamp, "1969-12-31T23:59:59.999999Z"),
        ] {
            let w = Watermark::parse(kind, text).unwrap();
            assert_eq!(w.to_iso(), text);
        }
        let a = Watermark::parse(WatermarkKind::Timestamp, "2025-06-27T02:00:00-05:00").unwrap();
        let b = Watermark::parse(WatermarkKind::Timestamp, "2025-06-27 06:59:59").unwrap();
        assert!(b < a);
        assert_eq!(a.to_iso(), "2025-06-27T07:00:00.000000Z");
        assert!(Watermark::parse(WatermarkKind::Date, "2025-13-01").is_err());
        assert!(Watermark::parse(WatermarkKind::Timestamp, "yesterday'; DROP").is_err());
    }
}
