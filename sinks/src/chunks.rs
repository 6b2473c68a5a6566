//! The chunk ledger of `pulso-flow backfill` (`pulso_flow.backfill_chunks`): this module owns
//! every statement on that table, reads and writes.
//!
//! A backfill splits `[from, to)` of one table into half-open chunks `lo <= column < hi`. The plan
//! is registered first ([`register`]: one `pending` row per chunk, existing rows keep their
//! status), so a rerun of the same command finds what is already `committed` and loads only the
//! rest. Each chunk is one load transaction ([`crate::load::open_chunk`]); its ledger row turns
//! `committed` inside that transaction ([`commit_chunk`]), together with the rows, the watermark
//! and the `node_runs` row. So a kill loses at most the chunks in flight, and a `committed` row
//! exists if and only if the chunk's data does.
//!
//! The watermark rule: a chunk's commit moves the watermark to the greatest value loaded by the
//! *contiguous prefix* of committed chunks of the plan (and never backwards), never past a chunk
//! that is not committed. So a normal `run` after an interrupted backfill starts at or before the
//! first gap and can never skip a range.

use chrono::{DateTime, Utc};
use pulso_types::{IncType, IncValue};
use tokio_postgres::{Client, GenericClient};

use crate::error::SinkError;

/// A chunk's state in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkStatus {
    Pending,
    Running,
    Committed,
    Failed,
}

impl ChunkStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkStatus::Pending => "pending",
            ChunkStatus::Running => "running",
            ChunkStatus::Committed => "committed",
            ChunkStatus::Failed => "failed",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "pending" => ChunkStatus::Pending,
            "running" => ChunkStatus::Running,
            "committed" => ChunkStatus::Committed,
            "failed" => ChunkStatus::Failed,
            _ => return None,
        })
    }
}

/// One table's backfill plan: its chunks in order.
#[derive(Debug, Clone)]
pub struct ChunkPlan {
    pub node: String,
    pub target: String,
    pub column: String,
    pub ty: IncType,
    /// `<from>..<to>/<chunk>`: which plan a chunk last belonged to.
    pub plan: String,
    /// `(lo, hi)` of every chunk, in order; contiguous (`hi` of one is `lo` of the next).
    pub chunks: Vec<(IncValue, IncValue)>,
}

/// One row of `pulso_flow.backfill_chunks`.
#[derive(Debug, Clone)]
pub struct ChunkRow {
    pub node: String,
    pub target: String,
    pub column: String,
    pub ty: IncType,
    pub lo: IncValue,
    pub hi: IncValue,
    pub plan: String,
    pub seq: i32,
    pub status: ChunkStatus,
    pub rows_read: i64,
    pub rows_loaded: i64,
    pub inserted: i64,
    pub updated: i64,
    pub bytes: i64,
    pub max_loaded: Option<String>,
    pub attempts: i32,
    pub run_id: Option<String>,
    pub load_run_id: Option<String>,
    pub error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
}

const COLUMNS: &str = "node, target, chunk_column, chunk_type, lo, hi, plan, seq, status, \
                       rows_read, rows_loaded, inserted, updated, bytes, max_loaded, attempts, \
                       run_id, load_run_id, error, started_at, finished_at, duration_ms";

fn chunk_row(r: &tokio_postgres::Row) -> Result<ChunkRow, SinkError> {
    let node: String = r.get(0);
    let bad = |message: String| SinkError::ChunkLedger {
        node: node.clone(),
        message,
    };
    let type_name: String = r.get(3);
    let ty = IncType::from_name(&type_name)
        .ok_or_else(|| bad(format!("unknown chunk type {type_name:?}")))?;
    let parse = |text: String| {
        IncValue::parse(ty, &text).map_err(|e| bad(format!("chunk bound {text:?}: {e}")))
    };
    let status: String = r.get(8);
    Ok(ChunkRow {
        target: r.get(1),
        column: r.get(2),
        ty,
        lo: parse(r.get(4))?,
        hi: parse(r.get(5))?,
        plan: r.get(6),
        seq: r.get(7),
        status: ChunkStatus::from_name(&status)
            .ok_or_else(|| bad(format!("unknown chunk status {status:?}")))?,
        rows_read: r.get(9),
        rows_loaded: r.get(10),
        inserted: r.get(11),
        updated: r.get(12),
        bytes: r.get(13),
        max_loaded: r.get(14),
        attempts: r.get(15),
        run_id: r.get(16),
        load_run_id: r.get(17),
        error: r.get(18),
        started_at: r.get(19),
        finished_at: r.get(20),
        duration_ms: r.get(21),
        node,
    })
}

/// Register the plan's chunks (`pending` unless already in the ledger; a known chunk keeps its
/// status and moves to this plan) and return them in order, as the ledger now has them.
pub async fn register(client: &Client, plan: &ChunkPlan) -> Result<Vec<ChunkRow>, SinkError> {
    let ty = plan.ty.as_str();
    for (seq, (lo, hi)) in plan.chunks.iter().enumerate() {
        let seq = i32::try_from(seq).unwrap_or(i32::MAX);
        client
            .execute(
                "INSERT INTO pulso_flow.backfill_chunks \
                   (node, target, chunk_column, chunk_type, lo, hi, plan, seq, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending') \
                 ON CONFLICT (node, lo, hi) DO UPDATE SET plan = EXCLUDED.plan, seq = EXCLUDED.seq, \
                   target = EXCLUDED.target",
                &[
                    &plan.node,
                    &plan.target,
                    &plan.column,
                    &ty,
                    &lo.to_iso(),
                    &hi.to_iso(),
                    &plan.plan,
                    &seq,
                ],
            )
            .await
            .map_err(|e| SinkError::pg(format!("registering the chunks of {}", plan.node), e))?;
    }
    plan_rows(client, &plan.node, &plan.plan).await
}

/// The chunks of one plan, in order.
pub async fn plan_rows(
    client: &impl GenericClient,
    node: &str,
    plan: &str,
) -> Result<Vec<ChunkRow>, SinkError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM pulso_flow.backfill_chunks WHERE node = $1 AND plan = $2 ORDER BY seq"
    );
    let rows = client
        .query(&sql, &[&node, &plan])
        .await
        .map_err(|e| SinkError::pg(format!("reading the chunks of {node}"), e))?;
    rows.iter().map(chunk_row).collect()
}

/// Every chunk in the ledger (of `node` only, if given), by node, plan and position: what
/// `backfill status` reports.
pub async fn list(client: &Client, node: Option<&str>) -> Result<Vec<ChunkRow>, SinkError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM pulso_flow.backfill_chunks WHERE $1::text IS NULL OR node = $1 \
         ORDER BY node, plan, seq"
    );
    let rows = client
        .query(&sql, &[&node])
        .await
        .map_err(|e| SinkError::pg("listing backfill chunks", e))?;
    rows.iter().map(chunk_row).collect()
}

/// A chunk starts loading (on its own connection, committed at once): `running`, one more
/// attempt. Returns the attempt number.
pub async fn mark_running(
    client: &Client,
    node: &str,
    lo: &IncValue,
    hi: &IncValue,
    run_id: &str,
    load_run_id: &str,
) -> Result<i32, SinkError> {
    let row = client
        .query_opt(
            "UPDATE pulso_flow.backfill_chunks SET status = 'running', attempts = attempts + 1, \
               run_id = $4, load_run_id = $5, error = NULL, started_at = now(), finished_at = NULL \
             WHERE node = $1 AND lo = $2 AND hi = $3 AND status <> 'committed' RETURNING attempts",
            &[&node, &lo.to_iso(), &hi.to_iso(), &run_id, &load_run_id],
        )
        .await
        .map_err(|e| SinkError::pg(format!("marking a chunk of {node} running"), e))?;
    row.map(|r| r.get(0)).ok_or_else(|| SinkError::ChunkLedger {
        node: node.to_string(),
        message: format!("chunk [{lo}, {hi}) is not registered or already committed"),
    })
}

/// A chunk's load failed or was cancelled (its transaction rolled back): `failed` with the
/// message. Written on a connection of its own.
pub async fn mark_failed(
    client: &Client,
    node: &str,
    lo: &IncValue,
    hi: &IncValue,
    error: &str,
) -> Result<(), SinkError> {
    client
        .execute(
            "UPDATE pulso_flow.backfill_chunks SET status = 'failed', error = $4, finished_at = clock_timestamp(), \
               duration_ms = (extract(epoch FROM clock_timestamp() - started_at) * 1000)::bigint \
             WHERE node = $1 AND lo = $2 AND hi = $3 AND status <> 'committed'",
            &[&node, &lo.to_iso(), &hi.to_iso(), &error],
        )
        .await
        .map_err(|e| SinkError::pg(format!("marking a chunk of {node} failed"), e))?;
    Ok(())
}

/// Which chunk a load is: given to [`crate::load::open_chunk`], written by [`commit_chunk`].
#[derive(Debug, Clone)]
pub struct ChunkCommit {
    pub node: String,
    pub plan: String,
    pub lo: IncValue,
    pub hi: IncValue,
    /// The backfill's run id (`pulso_flow.runs`).
    pub run_id: String,
    /// The target is in bulk mode ([`crate::bulk`]): the chunk appends instead of merging.
    pub bulk: bool,
}

/// What a chunk's load wrote.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChunkStats {
    pub rows_read: u64,
    pub rows_loaded: u64,
    pub inserted: u64,
    pub updated: u64,
    pub bytes: u64,
    pub max_loaded: Option<IncValue>,
    pub duration_ms: i64,
}

/// Inside the chunk's load transaction, with the target's lock held: mark the chunk `committed`
/// and return the greatest value loaded by the contiguous prefix of committed chunks of its plan
/// (`None` when the prefix is empty or loaded no incremental value). The caller stores the
/// greater of that and the stored watermark.
pub(crate) async fn commit_chunk(
    client: &Client,
    c: &ChunkCommit,
    load_run_id: &str,
    s: &ChunkStats,
) -> Result<Option<IncValue>, SinkError> {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let updated = client
        .execute(
            "UPDATE pulso_flow.backfill_chunks SET status = 'committed', rows_read = $4, \
               rows_loaded = $5, inserted = $6, updated = $7, bytes = $8, max_loaded = $9, \
               run_id = $10, load_run_id = $11, error = NULL, finished_at = clock_timestamp(), duration_ms = $12 \
             WHERE node = $1 AND lo = $2 AND hi = $3 AND status <> 'committed'",
            &[
                &c.node,
                &c.lo.to_iso(),
                &c.hi.to_iso(),
                &n(s.rows_read),
                &n(s.rows_loaded),
                &n(s.inserted),
                &n(s.updated),
                &n(s.bytes),
                &s.max_loaded.map(|v| v.to_iso()),
                &c.run_id,
                &load_run_id,
                &s.duration_ms,
            ],
        )
        .await
        .map_err(|e| SinkError::pg(format!("committing a chunk of {}", c.node), e))?;
    if updated != 1 {
        // Another process committed it meanwhile (two backfills of one table are refused by
        // the backfill lock, so this means the ledger was edited): keep the data unwritten.
        return Err(SinkError::ChunkLedger {
            node: c.node.clone(),
            message: format!(
                "chunk [{}, {}) is not registered or was committed by another run",
                c.lo, c.hi
            ),
        });
    }
    let rows = plan_rows(client, &c.node, &c.plan).await?;
    prefix_watermark(&rows)
}

/// The greatest `max_loaded` over the contiguous prefix of committed chunks.
pub fn prefix_watermark(rows: &[ChunkRow]) -> Result<Option<IncValue>, SinkError> {
    let mut best: Option<IncValue> = None;
    for r in rows {
        if r.status != ChunkStatus::Committed {
            break;
        }
        if let Some(text) = &r.max_loaded {
            let v = IncValue::parse(r.ty, text).map_err(|e| SinkError::ChunkLedger {
                node: r.node.clone(),
                message: format!("max_loaded {text:?} of chunk [{}, {}): {e}", r.lo, r.hi),
            })?;
            best = best.max(Some(v));
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i32, status: ChunkStatus, max_loaded: Option<&str>) -> ChunkRow {
        let d = |s: &str| IncValue::parse(IncType::Date, s).unwrap();
        ChunkRow {
            node: "t".into(),
            target: "s.t".into(),
            column: "d".into(),
            ty: IncType::Date,
            lo: d("2025-01-01"),
            hi: d("2025-01-02"),
            plan: "p".into(),
            seq,
            status,
            rows_read: 0,
            rows_loaded: 0,
            inserted: 0,
            updated: 0,
            bytes: 0,
            max_loaded: max_loaded.map(str::to_string),
            attempts: 1,
            run_id: None,
            load_run_id: None,
            error: None,
            started_at: None,
            finished_at: None,
            duration_ms: None,
        }
    }

    #[test]
    fn the_watermark_stops_at_the_first_chunk_not_committed() {
        use ChunkStatus::*;
        let rows = [
            row(0, Committed, Some("2025-01-03")),
            row(1, Committed, None), // an empty chunk does not break the prefix
            row(2, Committed, Some("2025-01-09")),
            row(3, Failed, None),
            row(4, Committed, Some("2025-01-20")),
        ];
        let w = prefix_watermark(&rows).unwrap();
        assert_eq!(w.map(|v| v.to_iso()).as_deref(), Some("2025-01-09"));
        let gap_first = [row(0, Running, None), row(1, Committed, Some("2025-01-05"))];
        assert_eq!(prefix_watermark(&gap_first).unwrap(), None);
    }
}
