//! A backfill into an empty target: every chunk appends with the target's indexes dropped, and
//! the indexes are built once at the end. This module owns `pulso_flow.backfill_bulk`.
//!
//! A chunk merged into an indexed table costs three to four times a COPY into a bare one (index
//! maintenance and conflict checks, row by row), so a backfill that merged all its chunks would
//! cost several times the single-transaction load, whose direct path builds the indexes once.
//! In bulk mode:
//!
//! ```text
//! begin   (one transaction)  lock the empty target, drop its indexes, record their definitions
//! chunk k (one transaction)  COPY the chunk's rows into the target, chunk ledger, watermark, COMMIT
//! finish  (one transaction)  build the indexes (deleting the rows that lose the merge's rule when
//!                            the primary key finds duplicates), delete the record, COMMIT
//! ```
//!
//! Each chunk still commits atomically and the watermark still follows the chunk ledger's prefix
//! rule. Between `begin` and `finish` the table has no primary key, and a key delivered in two
//! chunks is present twice; the finish keeps the row with the greatest incremental value, as the
//! merges would have. The record outlives a killed backfill: a rerun continues in bulk mode, and
//! a normal load of the table finishes the build first ([`finish_in`], called by
//! [`crate::load::open`]), so the table never stays without its key.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_postgres::Client;

use crate::commit::{Changed, NodeCommit};
use crate::error::SinkError;
use crate::indexes::{self, IndexDef};
use crate::load::LoadRequest;
use crate::state::{NodeRun, RunMode};

/// What [`finish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Indexes and constraints built.
    pub indexes: usize,
    /// Rows deleted because a later chunk delivered the same key.
    pub duplicates: u64,
    pub duration: Duration,
    pub data_version: i64,
}

/// Put the target in bulk mode, or find it already there (a rerun of an interrupted backfill).
/// `start` false only continues an existing bulk mode. Returns whether the chunks append.
/// Bulk mode is started only when the target is empty and eligible for the direct path
/// ([`indexes::lock_if_empty`]).
pub async fn begin(url: &str, req: &LoadRequest, start: bool) -> Result<bool, SinkError> {
    let client = crate::connect::connect(url).await?;
    let target = req.shape.target.to_string();
    if req.create_target {
        crate::load::ensure_schema(&client, &req.shape.target.schema).await?;
    }
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| SinkError::pg("starting the bulk backfill", e))?;
    crate::lock::lock_target(&client, &target, true).await?;
    if crate::load::ensure_target(&client, &req.shape, req.create_target).await? {
        commit(&client).await?;
        return Ok(true);
    }
    if !start {
        commit(&client).await?;
        return Ok(false);
    }
    let Some(defs) = indexes::lock_if_empty(&client, &req.shape).await? else {
        commit(&client).await?;
        return Ok(false);
    };
    indexes::drop(&client, &req.shape, &defs).await?;
    client
        .execute(
            "INSERT INTO pulso_flow.backfill_bulk (target, node, run_id, indexes) VALUES ($1, $2, $3, $4)",
            &[
                &target,
                &req.node,
                &req.run_id,
                &tokio_postgres::types::Json(&defs),
            ],
        )
        .await
        .map_err(|e| SinkError::pg(format!("recording the bulk backfill of {target}"), e))?;
    commit(&client).await?;
    tracing::info!(target = %target, indexes = defs.len(), "bulk backfill: indexes dropped until the last chunk");
    Ok(true)
}

/// Whether `target` is in bulk mode (its indexes dropped by a backfill not yet finished).
pub async fn pending(client: &Client, target: &str) -> Result<bool, SinkError> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM pulso_flow.backfill_bulk WHERE target = $1",
            &[&target],
        )
        .await
        .map_err(|e| SinkError::pg(format!("reading the bulk state of {target}"), e))?
        .is_some())
}

/// Inside the caller's transaction, with the target's advisory lock held: if the target is in
/// bulk mode, build its indexes and leave bulk mode. Returns (indexes, duplicates deleted).
pub(crate) async fn finish_in(
    client: &Client,
    req: &LoadRequest,
) -> Result<Option<(usize, u64)>, SinkError> {
    let target = req.shape.target.to_string();
    let row = client
        .query_opt(
            "DELETE FROM pulso_flow.backfill_bulk WHERE target = $1 RETURNING indexes",
            &[&target],
        )
        .await
        .map_err(|e| SinkError::pg(format!("reading the bulk state of {target}"), e))?;
    let Some(row) = row else { return Ok(None) };
    let tokio_postgres::types::Json(defs): tokio_postgres::types::Json<Vec<IndexDef>> = row
        .try_get(0)
        .map_err(|e| SinkError::pg(format!("reading the dropped indexes of {target}"), e))?;
    client
        .batch_execute(&format!(
            "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            req.shape.target.quoted()
        ))
        .await
        .map_err(|e| SinkError::pg(format!("locking {target}"), e))?;
    let duplicates = indexes::rebuild(client, &req.shape, &defs).await?;
    tracing::info!(target = %target, indexes = defs.len(), duplicates, "bulk backfill finished: indexes built");
    Ok(Some((defs.len(), duplicates)))
}

/// The end of a bulk backfill, as a node run of its own: build the indexes and COMMIT. `None`
/// when the target was not in bulk mode.
pub async fn finish(url: &str, req: &LoadRequest) -> Result<Option<Finished>, SinkError> {
    let t0 = Instant::now();
    let started_at = chrono::Utc::now();
    let client = crate::connect::connect(url).await?;
    let target = req.shape.target.to_string();
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| SinkError::pg("starting the index build", e))?;
    client
        .batch_execute(crate::load::LOAD_SETTINGS)
        .await
        .map_err(|e| SinkError::pg("configuring the index build", e))?;
    crate::lock::lock_target(&client, &target, true).await?;
    let Some((built, duplicates)) = finish_in(&client, req).await? else {
        commit(&client).await?;
        return Ok(None);
    };
    let duration_ms = i64::try_from(t0.elapsed().as_millis()).unwrap_or(i64::MAX);
    let ledger = NodeRun {
        kind: "table",
        mode: Some(RunMode::Incremental),
        deleted: i64::try_from(duplicates).unwrap_or(i64::MAX),
        started_at: Some(started_at),
        duration_ms,
        details: json!({ "bulk_finish": { "indexes": built, "duplicates": duplicates } }),
        ..NodeRun::default()
    };
    let data_version = crate::commit::commit_node(
        &client,
        NodeCommit {
            run_id: &req.run_id,
            node: &req.node,
            target: &target,
            inc_column: req.shape.incremental.as_deref(),
            watermark: None,
            // The deleted rows' days were recorded by the chunks that loaded them.
            changed: match (duplicates > 0, req.shape.change_day.is_some()) {
                (false, _) => Changed::Nothing,
                (true, true) => Changed::DaysRecorded,
                (true, false) => Changed::Everything,
            },
            build_cursor: None,
            ledger,
        },
    )
    .await?;
    Ok(Some(Finished {
        indexes: built,
        duplicates,
        duration: t0.elapsed(),
        data_version,
    }))
}

async fn commit(client: &Client) -> Result<(), SinkError> {
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| SinkError::pg("committing the bulk state", e))
}
