//! One table load as ONE PostgreSQL transaction.
//!
//! ```text
//! BEGIN
//!   advisory lock on the target (wait, or fail fast with --no-wait)
//!   check (or create) the target table; read the watermark
//!   CREATE TEMP TABLE staging … ON COMMIT DROP
//!   COPY staging FROM STDIN (FORMAT binary)        ← Arrow batches, encoded while they stream in
//!   merge: INSERT … SELECT DISTINCT ON (pk) … ON CONFLICT (pk) DO UPDATE … WHERE … IS DISTINCT FROM …
//!          (plain sorted INSERT when the target is empty; full refresh also deletes missing keys)
//!   gates: reconcile (staged rows vs the target's rows of the window), checks
//!   commit_node: watermark (greatest incremental value loaded), changes, node_runs row, NOTIFY
//! COMMIT
//! ```
//!
//! Any error, a cancelled future or a killed process drops the connection before COMMIT, and the
//! server rolls everything back: target rows and watermark stay exactly as they were.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use futures::{SinkExt, Stream, StreamExt};
use pulso_types::IncValue;
use tokio_postgres::Client;

use crate::commit::{self, Changed, NodeCommit};
use crate::encode::{CopyEncoder, Observed};
use crate::error::{BoxError, SinkError};
use crate::lateness::Lateness;
use crate::pgtype::{PgColumn, PgType};
use crate::sql::{LoadShape, TableName};
use crate::state::{self, NodeRun, RunMode};

/// Everything a load needs besides the data.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    /// Pipeline node name: the key of its watermark and ledger rows.
    pub node: String,
    pub shape: LoadShape,
    pub mode: RunMode,
    /// Wait for a concurrent run of the same target (true) or fail at once (false, `--no-wait`).
    pub wait_for_lock: bool,
    /// Create the target from the declared columns when it does not exist.
    pub create_target: bool,
    /// Zone of zone-less timestamps loaded into timestamptz columns.
    pub time_zone: chrono_tz::Tz,
    pub run_id: String,
    /// Quality gates evaluated before commit (see [`crate::checks`]).
    pub checks: Vec<crate::checks::Check>,
    /// Per-day reconciliation with the staged source rows (see [`crate::reconcile`]).
    pub reconcile: Option<crate::reconcile::ReconcileSpec>,
}

/// Live counters a progress bar can read while the load runs.
#[derive(Debug, Default)]
pub struct LoadProgress {
    pub rows_staged: AtomicU64,
    pub bytes_sent: AtomicU64,
}

/// Numbers of a committed load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOutcome {
    pub rows_staged: u64,
    /// Staged rows that lost to a later row with the same key.
    pub duplicates: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub watermark_before: Option<IncValue>,
    pub watermark_after: Option<IncValue>,
    pub data_version: i64,
    /// Staged rows whose incremental column is NULL (see [`crate::nulls`]).
    pub null_incremental: u64,
    /// How late the inserted rows were (None when the load could not tell: first load, no
    /// incremental column).
    pub lateness: Option<Lateness>,
    /// What the load warns about (NULL incremental values, lateness reaching the lookback); also
    /// in the ledger row's `details.warnings`.
    pub warnings: Vec<String>,
    /// Results of `reconcile:` and `checks:` (also in the ledger's details).
    pub gates: crate::gates::Gates,
}

/// Memory a load's transaction may use: for the merge's sort and hash, and for index builds.
pub(crate) const LOAD_SETTINGS: &str =
    "SET LOCAL work_mem = '256MB'; SET LOCAL maintenance_work_mem = '512MB'";

/// Bytes handed to the COPY at a time: large enough to amortise the per-message cost, small
/// enough that two chunks in flight are a negligible share of memory.
const COPY_CHUNK: usize = 1 << 20;

/// A load whose transaction is open, lock held and staging table created; the window can now be
/// computed from [`OpenLoad::watermark`] and the source started.
pub struct OpenLoad {
    client: Client,
    req: LoadRequest,
    watermark: Option<IncValue>,
    started_at: DateTime<Utc>,
    t0: Instant,
    /// The window the source reads, for the reconciliation: (column, lower, upper) as ISO text.
    window: Option<(String, Option<String>, Option<String>)>,
    /// The window's lower bound: which staged days are whole (see [`crate::fingerprints`]).
    lower: Option<IncValue>,
    /// A backfill chunk: its ledger row commits with the load (see [`crate::chunks`]).
    chunk: Option<crate::chunks::ChunkCommit>,
    /// The target's lock is taken after the COPY into staging, not at `BEGIN`.
    lock_after_copy: bool,
    /// An interrupted bulk backfill this load finished first: (indexes built, duplicates deleted).
    bulk_finished: Option<(usize, u64)>,
}

/// Begin the load: connect, `BEGIN`, lock, check the target, read the watermark, create staging.
pub async fn open(url: &str, req: LoadRequest) -> Result<OpenLoad, SinkError> {
    begin(url, req, None, false).await
}

/// Begin one chunk of a backfill, whose ledger row commits with it and whose watermark follows
/// the chunk ledger's contiguous-prefix rule ([`crate::chunks`]). It does not wait for the
/// backfill lock (its backfill holds it). With `lock_after_copy` the target's lock is taken only
/// after the chunk's rows are in staging, so several chunks read and COPY concurrently and only
/// their merges are serialised; such a chunk never takes the direct path.
pub async fn open_chunk(
    url: &str,
    req: LoadRequest,
    chunk: crate::chunks::ChunkCommit,
    lock_after_copy: bool,
) -> Result<OpenLoad, SinkError> {
    begin(url, req, Some(chunk), lock_after_copy).await
}

async fn begin(
    url: &str,
    req: LoadRequest,
    chunk: Option<crate::chunks::ChunkCommit>,
    lock_after_copy: bool,
) -> Result<OpenLoad, SinkError> {
    let started_at = Utc::now();
    let t0 = Instant::now();
    let client = crate::connect::connect(url).await?;
    let target = req.shape.target.to_string();
    if req.create_target {
        ensure_schema(&client, &req.shape.target.schema).await?;
    }
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| SinkError::pg("starting the load transaction", e))?;
    if chunk.is_none() {
        crate::lock::wait_for_backfill(&client, &target, req.wait_for_lock).await?;
    }
    if !lock_after_copy {
        crate::lock::lock_target(&client, &target, req.wait_for_lock).await?;
    }
    let in_bulk_mode = ensure_target(&client, &req.shape, req.create_target).await?;
    // A backfill killed in bulk mode left the target without its indexes: build them first.
    let bulk_finished = if in_bulk_mode && chunk.is_none() {
        crate::bulk::finish_in(&client, &req).await?
    } else {
        None
    };
    let watermark = state::stored_watermark(&client, &req.node).await?;
    Ok(OpenLoad {
        client,
        req,
        watermark,
        started_at,
        t0,
        window: None,
        lower: None,
        chunk,
        lock_after_copy,
        bulk_finished,
    })
}

/// Create the target's schema before the load transaction. Outside it because concurrent loads
/// of tables in the same new schema would otherwise collide on `CREATE SCHEMA IF NOT EXISTS`
/// (it is not concurrency-safe), and an empty schema left behind by a failed load is harmless.
pub(crate) async fn ensure_schema(client: &Client, schema: &str) -> Result<(), SinkError> {
    let sql = format!("CREATE SCHEMA IF NOT EXISTS {}", crate::sql::ident(schema));
    for attempt in 0..3 {
        match client.batch_execute(&sql).await {
            Ok(()) => return Ok(()),
            // A concurrent creator won the race: the schema exists now.
            Err(e)
                if attempt < 2
                    && e.code().is_some_and(|c| {
                        *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
                            || *c == tokio_postgres::error::SqlState::DUPLICATE_SCHEMA
                    }) => {}
            Err(e) => return Err(SinkError::pg(format!("creating schema {schema}"), e)),
        }
    }
    Ok(())
}

/// The target's columns and primary key as the catalog has them, or `None` if it does not exist.
pub async fn describe_target(
    client: &Client,
    target: &TableName,
) -> Result<Option<(Vec<PgColumn>, Vec<String>)>, SinkError> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, \
                    array_position(i.indkey::int2[], a.attnum) \
             FROM pg_attribute a \
             LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
             WHERE a.attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) \
               AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&target.schema, &target.table],
        )
        .await
        .map_err(|e| SinkError::pg(format!("reading the columns of {target}"), e))?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut columns = Vec::with_capacity(rows.len());
    let mut key: Vec<(i32, String)> = Vec::new();
    for r in &rows {
        let name: String = r.get(0);
        let type_name: String = r.get(1);
        let ty = PgType::parse(&type_name).map_err(|e| SinkError::TargetMismatch {
            target: target.to_string(),
            message: format!("column {name}: {e}"),
        })?;
        if let Some(pos) = r.get::<_, Option<i32>>(3) {
            key.push((pos, name.clone()));
        }
        columns.push(PgColumn {
            name,
            ty,
            nullable: r.get(2),
        });
    }
    key.sort();
    Ok(Some((columns, key.into_iter().map(|(_, n)| n).collect())))
}

/// Make sure the target exists with the declared columns (same types) and primary key. Returns
/// whether a bulk backfill holds it without its key (see [`crate::bulk`]): the only case where a
/// missing primary key is accepted.
pub(crate) async fn ensure_target(
    client: &Client,
    shape: &LoadShape,
    create: bool,
) -> Result<bool, SinkError> {
    let target = shape.target.to_string();
    let mismatch = |message: String| SinkError::TargetMismatch {
        target: target.clone(),
        message,
    };
    let Some((columns, key)) = describe_target(client, &shape.target).await? else {
        if !create {
            return Err(mismatch(
                "the table does not exist (create it with `pulso-flow migrate`, or set create_target: true)".into(),
            ));
        }
        client
            .batch_execute(&shape.create_target())
            .await
            .map_err(|e| SinkError::pg(format!("creating {target}"), e))?;
        return Ok(false);
    };
    for declared in &shape.columns {
        let Some(actual) = columns.iter().find(|c| c.name == declared.name) else {
            return Err(mismatch(format!(
                "column {} is declared in the pipeline but does not exist in the table",
                declared.name
            )));
        };
        if actual.ty != declared.ty {
            return Err(mismatch(format!(
                "column {} is {} in the pipeline but {} in the table",
                declared.name,
                declared.ty.sql(),
                actual.ty.sql()
            )));
        }
    }
    let mut declared_key = shape.primary_key.clone();
    let mut actual_key = key.clone();
    declared_key.sort();
    actual_key.sort();
    // A bulk backfill drops the key until after its last chunk (see crate::bulk).
    let dropped_by_backfill =
        actual_key.is_empty() && crate::bulk::pending(client, &target).await?;
    if declared_key != actual_key && !dropped_by_backfill {
        return Err(mismatch(format!(
            "primary key is ({}) in the pipeline but ({}) in the table",
            shape.primary_key.join(", "),
            key.join(", ")
        )));
    }
    Ok(dropped_by_backfill)
}

impl OpenLoad {
    /// The node's watermark as committed by the last successful load (None on the first load).
    pub fn watermark(&self) -> Option<IncValue> {
        self.watermark
    }

    pub fn request(&self) -> &LoadRequest {
        &self.req
    }

    /// The window the source reads (lower inclusive, upper exclusive), so the reconciliation
    /// compares the target's rows of that window only.
    pub fn set_window(&mut self, column: &str, lower: Option<IncValue>, upper: Option<IncValue>) {
        self.window = Some((
            column.to_string(),
            lower.map(|v| v.to_iso()),
            upper.map(|v| v.to_iso()),
        ));
        self.lower = lower;
    }

    /// Stream the batches into staging, merge, write watermark and ledger, and COMMIT.
    /// `ledger` carries the run's window for the `node_runs` row; `rows_read` reports how many
    /// rows the source produced (before filters), asked once the stream has ended.
    pub async fn load<S, E>(
        self,
        batches: S,
        mut ledger: NodeRun,
        progress: Arc<LoadProgress>,
        rows_read: impl FnOnce() -> u64 + Send,
    ) -> Result<LoadOutcome, SinkError>
    where
        S: Stream<Item = Result<RecordBatch, E>> + Send,
        E: Into<BoxError>,
    {
        let OpenLoad {
            client,
            req,
            mut watermark,
            started_at,
            t0,
            window,
            lower,
            chunk,
            lock_after_copy,
            bulk_finished,
        } = self;
        let shape = &req.shape;
        client
            .batch_execute(LOAD_SETTINGS)
            .await
            .map_err(|e| SinkError::pg("configuring the load", e))?;
        // Statements that record changed days bind the node and run id.
        let tracked = shape.change_day.is_some();
        let change_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
            [&req.node, &req.run_id];
        let params: &[&(dyn tokio_postgres::types::ToSql + Sync)] =
            if tracked { &change_params } else { &[] };

        // A chunk of a bulk backfill appends into the target whose indexes it dropped.
        let bulk = chunk.as_ref().is_some_and(|c| c.bulk);
        // Scheduled loads and full refreshes fingerprint their days; a backfill chunk does not
        // (its commit makes the stored ones stale, see crate::fingerprints).
        let prints = match (&chunk, &shape.incremental) {
            (None, Some(column)) => Some(crate::fingerprints::Fingerprinting {
                column: column.clone(),
                first_whole: crate::fingerprints::first_whole_day(lower.as_ref()),
            }),
            _ => None,
        };
        let direct = if lock_after_copy || bulk {
            None
        } else {
            crate::indexes::lock_if_empty(&client, shape).await?
        };
        let written = if bulk {
            append_load(&client, &req, batches, &progress, params, lock_after_copy).await?
        } else if let Some(indexes) = direct {
            direct_load(&client, &req, batches, &progress, indexes, params, prints).await?
        } else {
            staged_merge(
                &client,
                &req,
                batches,
                &progress,
                params,
                Prior {
                    watermark,
                    prints,
                    lock_after_copy,
                },
            )
            .await?
        };
        let Written {
            staged,
            distinct,
            inserted,
            updated,
            deleted,
            max_loaded,
            null_incremental,
            null_warning,
            lateness,
            mut phases,
            through_staging,
            appended,
            skipped,
            keys_distinct,
        } = written;
        let gates = crate::gates::after_load(
            &client,
            &req.node,
            shape,
            req.reconcile.as_ref(),
            &req.checks,
            crate::gates::LoadScope {
                staged: through_staging,
                // A load that merged nothing did not look for repeated keys.
                unique: distinct == staged && !skipped.as_ref().is_some_and(|s| s.merge_skipped),
                window,
                appended,
            },
            &req.run_id,
        )
        .await?;
        phases.mark("gates");
        let bulk_warning = bulk_finished.map(|(built, duplicates)| {
            format!(
                "an interrupted backfill had left {} without its indexes: built {built} of them \
                 first ({duplicates} rows delivered again by a later chunk removed)",
                shape.target
            )
        });
        let warnings = null_warning
            .into_iter()
            .chain(bulk_warning)
            .chain(crate::lateness::warning(shape, lateness.as_ref()))
            .collect::<Vec<_>>();
        for w in &warnings {
            tracing::warn!(node = %req.node, "{w}");
        }
        ledger.warnings.extend(warnings.iter().cloned());
        // Watermarks only move forward on incremental loads (a lookback re-read must not pull
        // them back); a full refresh re-derives it from what the table now holds.
        let rows_read = rows_read();
        let watermark_after = match (&chunk, req.mode) {
            (Some(c), _) => {
                // The lock is held: re-read what earlier chunks committed meanwhile.
                watermark = state::stored_watermark(&client, &req.node).await?;
                let stats = crate::chunks::ChunkStats {
                    rows_read,
                    rows_loaded: staged,
                    inserted,
                    updated,
                    bytes: progress.bytes_sent.load(Ordering::Relaxed),
                    max_loaded,
                    duration_ms: i64::try_from(t0.elapsed().as_millis()).unwrap_or(i64::MAX),
                };
                let prefix = crate::chunks::commit_chunk(&client, c, &req.run_id, &stats).await?;
                watermark.max(prefix)
            }
            (None, RunMode::Incremental) => watermark.max(max_loaded),
            (None, RunMode::FullRefresh) => max_loaded,
        };
        let changed = match (inserted + updated + deleted > 0, tracked) {
            (false, _) => Changed::Nothing,
            (true, true) => Changed::DaysRecorded,
            // No day column to say what changed: dependants must treat everything as changed.
            (true, false) => Changed::Everything,
        };
        let unchanged = distinct.saturating_sub(inserted + updated);
        let duplicates = staged.saturating_sub(distinct);
        ledger.kind = "table";
        ledger.mode = Some(req.mode);
        ledger.watermark_before = watermark.map(|w| w.to_iso());
        ledger.watermark_after = watermark_after.map(|w| w.to_iso());
        ledger.rows_read = to_i64(rows_read);
        ledger.rows_staged = to_i64(staged);
        ledger.inserted = to_i64(inserted);
        ledger.updated = to_i64(updated);
        ledger.unchanged = to_i64(unchanged);
        ledger.deleted = to_i64(deleted);
        ledger.started_at = Some(started_at);
        ledger.duration_ms = i64::try_from(t0.elapsed().as_millis()).unwrap_or(i64::MAX);
        phases.mark("check");
        ledger.details = serde_json::json!({
            "phases_ms": phases.to_json(),
            "duplicates": duplicates,
            "null_incremental": null_incremental,
            "lateness": lateness.as_ref().map(|l| l.to_json(shape.lookback.map(|d| d.num_seconds()))),
            "unchanged_days": skipped.as_ref().map(Skipped::to_json),
            "keys_distinct": keys_distinct,
        });
        gates.record(&mut ledger.details);
        ledger.warnings.extend(gates.warnings.iter().cloned());
        let data_version = commit::commit_node(
            &client,
            NodeCommit {
                run_id: &req.run_id,
                node: &req.node,
                target: &shape.target.to_string(),
                inc_column: shape.incremental.as_deref(),
                watermark: watermark_after,
                changed,
                build_cursor: None,
                ledger,
            },
        )
        .await?;
        Ok(LoadOutcome {
            rows_staged: staged,
            duplicates,
            inserted,
            updated,
            unchanged,
            deleted,
            watermark_before: watermark,
            watermark_after,
            data_version,
            null_incremental,
            lateness,
            warnings,
            gates,
        })
    }
}

/// Rows written by an INSERT/DELETE: its row count, or the `count(*)` it selects when it is
/// wrapped in a change-recording CTE.
async fn written_rows(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    wrapped: bool,
) -> Result<u64, tokio_postgres::Error> {
    if wrapped {
        let row = client.query_one(sql, params).await?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    } else {
        client.execute(sql, params).await
    }
}

/// What a load wrote, whichever path it took.
struct Written {
    staged: u64,
    distinct: u64,
    inserted: u64,
    updated: u64,
    deleted: u64,
    max_loaded: Option<IncValue>,
    null_incremental: u64,
    /// The NULL-incremental policy's warning (see [`crate::nulls`]).
    null_warning: Option<String>,
    lateness: Option<Lateness>,
    /// Milliseconds per step, for `details.phases_ms` (where a load's time goes).
    phases: Phases,
    /// The rows are still in the staging table (false after a direct load).
    through_staging: bool,
    /// A bulk chunk's rows, appended to the target: what the COPY observed of them.
    appended: Option<crate::gates::Appended>,
    /// What the day fingerprints left out of the merge (loads that compared them).
    skipped: Option<Skipped>,
    /// Whether the encoder saw every staged key once (staged merges; `None`: not checked).
    keys_distinct: Option<bool>,
}

/// The unchanged days a load left out of its merge (see [`crate::fingerprints`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Skipped {
    /// Whole days staged, and how many of them were unchanged.
    whole_days: usize,
    days: usize,
    rows: u64,
    /// Every staged row was in an unchanged day: no merge ran.
    merge_skipped: bool,
}

impl Skipped {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "whole_days": self.whole_days,
            "days": self.days,
            "rows": self.rows,
            "merge_skipped": self.merge_skipped,
        })
    }
}

/// What a staged merge knows from before its COPY.
struct Prior {
    /// The previous watermark.
    watermark: Option<IncValue>,
    /// Fingerprint the staged days (and compare them with the stored ones).
    prints: Option<crate::fingerprints::Fingerprinting>,
    /// Take the target's lock after the COPY (see [`open_chunk`]).
    lock_after_copy: bool,
}

type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];

/// The usual path: COPY into a TEMP staging table, then one merge statement into the target
/// (a plain sorted INSERT when the target is empty, e.g. a first load the direct path cannot
/// take). Full refresh also deletes the keys that were not loaded.
async fn staged_merge<S, E>(
    client: &Client,
    req: &LoadRequest,
    batches: S,
    progress: &LoadProgress,
    params: Params<'_>,
    prior: Prior,
) -> Result<Written, SinkError>
where
    S: Stream<Item = Result<RecordBatch, E>> + Send,
    E: Into<BoxError>,
{
    let shape = &req.shape;
    let tracked = !params.is_empty();
    client
        .batch_execute(&shape.create_staging())
        .await
        .map_err(|e| SinkError::pg("creating the staging table", e))?;
    let Prior {
        watermark,
        prints,
        lock_after_copy,
    } = prior;
    let mut phases = Phases::start();
    let (staged, observed) = copy_then_lock(
        client,
        req,
        &shape.copy_into_staging(),
        batches,
        progress,
        Observe {
            prints: prints.is_some(),
            unique_keys: true,
            ..Observe::default()
        },
        lock_after_copy,
    )
    .await?;
    phases.mark("copy");
    let (max_loaded, null_incremental) =
        max_incremental(client, shape, shape.max_incremental()).await?;
    let target_empty: bool = client
        .query_one(&shape.is_target_empty(), &[])
        .await
        .map_err(|e| SinkError::pg("checking whether the target is empty", e))?
        .get(0);
    phases.mark("stats");
    let mut lateness = None;
    let nulls = crate::nulls::apply(
        client,
        shape,
        &crate::sql::ident(crate::sql::STAGING),
        null_incremental,
    )
    .await?;
    // The whole days staged exactly as the previous load staged them (a re-read with a known
    // watermark into a target that holds rows; a full refresh merges everything).
    let skipped = match (&prints, watermark) {
        (Some(p), Some(_)) if !target_empty && req.mode == RunMode::Incremental => {
            let stored = crate::fingerprints::stored(client, &req.node, &p.column).await?;
            let days = crate::fingerprints::unchanged(&observed.prints, &stored, p.first_whole);
            let whole_days = observed
                .prints
                .keys()
                .filter(|d| p.first_whole.is_none_or(|f| **d >= f))
                .count();
            Some(Skipped {
                whole_days,
                rows: crate::fingerprints::rows_in(&observed.prints, &days),
                merge_skipped: !days.is_empty()
                    && days.len() == observed.prints.len()
                    && null_incremental == 0,
                days: days.len(),
            })
            .map(|s| (s, days))
        }
        _ => None,
    };
    let skip_sql = skipped.as_ref().and_then(|(_, days)| {
        let ty = &shape
            .columns
            .iter()
            .find(|c| Some(&c.name) == shape.incremental.as_ref())?
            .ty;
        crate::fingerprints::in_days("src", shape.incremental.as_deref()?, ty, days)
    });
    let merge_skipped = skipped.as_ref().is_some_and(|(s, _)| s.merge_skipped);
    // The encoder saw no key twice: the merge needs no deduplication and every staged row is a
    // distinct key (crate::encode::keys).
    let unique_keys = observed.unique_keys == Some(true);
    let (distinct, inserted, updated) = if merge_skipped {
        // Nothing but unchanged days: nothing to merge, nothing late. Their repeated keys were
        // counted when they were first loaded.
        lateness = Some(crate::lateness::Lateness::none());
        (staged, 0, 0)
    } else if target_empty {
        let n = written_rows(
            client,
            &shape.insert_into_empty(unique_keys),
            params,
            tracked,
        )
        .await
        .map_err(|e| SinkError::pg(format!("inserting into {}", shape.target), e))?;
        (n, n, 0)
    } else {
        if let Some(sql) = shape.record_moved_days() {
            client
                .execute(&sql, params)
                .await
                .map_err(|e| SinkError::pg("recording the days rows move away from", e))?;
        }
        // With a previous watermark and staged rows below it (a lookback's re-read, or NULL
        // incremental values): skip unchanged re-read rows, measure lateness. With none below
        // it, nothing can be skipped or late: the plain merge, and a lateness of zero.
        let merged = match watermark {
            Some(w) if crate::reread::rows_below(client, shape, &w.to_iso()).await? => {
                crate::reread::merge(
                    client,
                    shape,
                    &w.to_iso(),
                    params,
                    skip_sql.as_deref(),
                    unique_keys.then_some(staged),
                )
                .await?
            }
            Some(_) => {
                lateness = Some(crate::lateness::Lateness::none());
                None
            }
            None => None,
        };
        match merged {
            Some(m) => {
                lateness = Some(m.lateness);
                (m.distinct, m.inserted, m.updated)
            }
            None => {
                let row = client
                    .query_one(&shape.merge(unique_keys), params)
                    .await
                    .map_err(|e| SinkError::pg(format!("merging into {}", shape.target), e))?;
                let decode =
                    |e| SinkError::pg(format!("reading the merge counts of {}", shape.target), e);
                let get = |i: usize| -> Result<u64, SinkError> {
                    Ok(u64::try_from(row.try_get::<_, i64>(i).map_err(decode)?).unwrap_or(0))
                };
                let distinct = if unique_keys { staged } else { get(0)? };
                (distinct, get(1)?, get(2)?)
            }
        }
    };
    phases.mark("merge");
    let deleted = if req.mode == RunMode::FullRefresh && !target_empty {
        written_rows(client, &shape.delete_missing(), params, tracked)
            .await
            .map_err(|e| SinkError::pg(format!("deleting stale rows of {}", shape.target), e))?
    } else {
        0
    };
    if let Some(p) = &prints {
        crate::fingerprints::save(client, &req.node, p, &req.run_id, &observed.prints).await?;
    }
    Ok(Written {
        staged,
        distinct,
        inserted,
        updated,
        deleted,
        max_loaded,
        null_incremental,
        null_warning: nulls,
        lateness,
        phases: phases.marked("delete_missing"),
        through_staging: true,
        appended: None,
        skipped: skipped.map(|(s, _)| s),
        keys_distinct: observed.unique_keys,
    })
}

/// Elapsed milliseconds per named step of a load (the commit itself is not included: it is
/// the ledger row's `duration_ms` minus their sum).
struct Phases {
    last: Instant,
    steps: Vec<(&'static str, u64)>,
}

impl Phases {
    fn start() -> Self {
        Phases {
            last: Instant::now(),
            steps: Vec::new(),
        }
    }

    fn mark(&mut self, step: &'static str) {
        let now = Instant::now();
        let ms = u64::try_from((now - self.last).as_millis()).unwrap_or(u64::MAX);
        self.steps.push((step, ms));
        self.last = now;
    }

    fn marked(mut self, step: &'static str) -> Self {
        self.mark(step);
        self
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.steps
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
                .collect(),
        )
    }
}

/// The direct path: drop the empty target's indexes, COPY into it, rebuild them (deleting the
/// rows that lose the dedup rule if the primary key finds duplicates, see [`crate::indexes`]).
async fn direct_load<S, E>(
    client: &Client,
    req: &LoadRequest,
    batches: S,
    progress: &LoadProgress,
    indexes: Vec<crate::indexes::IndexDef>,
    params: Params<'_>,
    prints: Option<crate::fingerprints::Fingerprinting>,
) -> Result<Written, SinkError>
where
    S: Stream<Item = Result<RecordBatch, E>> + Send,
    E: Into<BoxError>,
{
    let shape = &req.shape;
    crate::indexes::drop(client, shape, &indexes).await?;
    let mut phases = Phases::start();
    let (copied, observed) = copy_batches(
        client,
        req,
        &shape.copy_into_target(),
        batches,
        progress,
        Observe {
            prints: prints.is_some(),
            ..Observe::default()
        },
    )
    .await?;
    phases.mark("copy");
    let duplicates = crate::indexes::rebuild(client, shape, &indexes).await?;
    if let Some(sql) = shape.record_all_target_days() {
        client
            .execute(&sql, params)
            .await
            .map_err(|e| SinkError::pg(format!("recording changes ({})", shape.target), e))?;
    }
    phases.mark("rebuild_indexes");
    let (max_loaded, null_incremental) =
        max_incremental(client, shape, shape.max_incremental_in_target()).await?;
    let null_warning =
        crate::nulls::apply(client, shape, &shape.target.quoted(), null_incremental).await?;
    if let Some(p) = &prints {
        crate::fingerprints::save(client, &req.node, p, &req.run_id, &observed.prints).await?;
    }
    let inserted = copied - duplicates;
    Ok(Written {
        staged: copied,
        distinct: inserted,
        inserted,
        updated: 0,
        deleted: 0,
        max_loaded,
        null_incremental,
        null_warning,
        lateness: None,
        phases: phases.marked("stats"),
        through_staging: false,
        appended: None,
        skipped: None,
        keys_distinct: None,
    })
}

/// A chunk of a bulk backfill ([`crate::bulk`]): COPY straight into the target, whose indexes
/// are dropped until the backfill ends. Nothing is read back from the target, which grows with
/// every chunk: the watermark candidate, the NULL count and the changed days come from the
/// values the COPY sent. Keys repeated within the chunk or across chunks are resolved once, when
/// the indexes are built.
async fn append_load<S, E>(
    client: &Client,
    req: &LoadRequest,
    batches: S,
    progress: &LoadProgress,
    params: Params<'_>,
    lock_after_copy: bool,
) -> Result<Written, SinkError>
where
    S: Stream<Item = Result<RecordBatch, E>> + Send,
    E: Into<BoxError>,
{
    let shape = &req.shape;
    let mut phases = Phases::start();
    let (copied, observed) = copy_then_lock(
        client,
        req,
        &shape.copy_into_target(),
        batches,
        progress,
        Observe {
            appended: true,
            ..Observe::default()
        },
        lock_after_copy,
    )
    .await?;
    phases.mark("copy");
    if let (Some(day), false) = (&shape.change_day, params.is_empty()) {
        let days = observed.days_of(day);
        client
            .execute(&shape.record_days(), &[params[0], params[1], &days])
            .await
            .map_err(|e| SinkError::pg(format!("recording changes ({})", shape.target), e))?;
    }
    let max_loaded = shape
        .incremental
        .as_ref()
        .and_then(|inc| shape.columns.iter().find(|c| &c.name == inc))
        .and_then(|c| observed.max_incremental_value(&c.ty));
    let null_incremental = observed.null_incremental;
    let null_warning =
        crate::nulls::apply(client, shape, &shape.target.quoted(), null_incremental).await?;
    phases.mark("stats");
    Ok(Written {
        staged: copied,
        distinct: copied,
        inserted: copied,
        updated: 0,
        deleted: 0,
        max_loaded,
        null_incremental,
        null_warning,
        lateness: None,
        phases,
        through_staging: false,
        appended: Some(crate::gates::Appended {
            rows: copied,
            observed,
        }),
        skipped: None,
        keys_distinct: None,
    })
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// COPY every batch into the staging table. Encoding happens here while the connection task
/// writes the previous chunk, so reading, encoding and the server's COPY overlap.
pub(crate) async fn copy_batches<S, E>(
    client: &Client,
    req: &LoadRequest,
    copy_sql: &str,
    batches: S,
    progress: &LoadProgress,
    observe: Observe,
) -> Result<(u64, Observed), SinkError>
where
    S: Stream<Item = Result<RecordBatch, E>> + Send,
    E: Into<BoxError>,
{
    let shape = &req.shape;
    let mut encoder = CopyEncoder::new(
        shape.target.to_string(),
        shape.columns.clone(),
        shape.primary_key.clone(),
        req.time_zone,
    )?;
    if observe.prints
        && let Some(inc) = &shape.incremental
    {
        encoder.fingerprint(inc)?;
    }
    if observe.unique_keys {
        encoder.check_unique_keys();
    }
    if observe.appended {
        // The incremental column, the change day and the reconciliation's day: the date and
        // timestamp columns a bulk chunk must report without reading the target back.
        let is = |name: &&str, types: &[PgType]| {
            shape
                .columns
                .iter()
                .any(|c| c.name == *name && types.contains(&c.ty))
        };
        let inc = shape
            .incremental
            .as_deref()
            .filter(|c| is(c, &[PgType::Date, PgType::Timestamp, PgType::Timestamptz]));
        let days: Vec<&str> = shape
            .change_day
            .iter()
            .map(String::as_str)
            .chain(req.reconcile.iter().map(|r| r.by.as_str()))
            .filter(|c| is(c, &[PgType::Date]))
            .collect();
        encoder.observe(inc, &days)?;
    }
    let copy = client
        .copy_in::<_, bytes::Bytes>(copy_sql)
        .await
        .map_err(|e| SinkError::pg("starting COPY", e))?;
    futures::pin_mut!(copy);
    futures::pin_mut!(batches);
    let mut buf = BytesMut::with_capacity(COPY_CHUNK * 2);
    CopyEncoder::write_header(&mut buf);
    let mut rows = 0u64;
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(|e| SinkError::Source(e.into()))?;
        let n = encoder.encode_batch(&batch, &mut buf)? as u64;
        rows += n;
        progress.rows_staged.fetch_add(n, Ordering::Relaxed);
        if buf.len() >= COPY_CHUNK {
            progress
                .bytes_sent
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            copy.send(buf.split().freeze())
                .await
                .map_err(|e| SinkError::pg("COPY into staging", e))?;
        }
    }
    CopyEncoder::write_trailer(&mut buf);
    progress
        .bytes_sent
        .fetch_add(buf.len() as u64, Ordering::Relaxed);
    copy.send(buf.freeze())
        .await
        .map_err(|e| SinkError::pg("COPY into staging", e))?;
    let copied = copy
        .as_mut()
        .finish()
        .await
        .map_err(|e| SinkError::pg("finishing COPY into staging", e))?;
    if copied != rows {
        return Err(SinkError::CopyCount {
            sent: rows,
            stored: copied,
        });
    }
    let mut observed = encoder.observed().clone();
    observed.unique_keys = encoder.unique_keys();
    Ok((rows, observed))
}

/// [`copy_batches`], then the target's lock when the load deferred it (`lock_after_copy`: chunks
/// that read and COPY concurrently lock only for their merge and commit).
#[allow(clippy::too_many_arguments)]
async fn copy_then_lock<S, E>(
    client: &Client,
    req: &LoadRequest,
    copy_sql: &str,
    batches: S,
    progress: &LoadProgress,
    observe: Observe,
    lock_after_copy: bool,
) -> Result<(u64, Observed), SinkError>
where
    S: Stream<Item = Result<RecordBatch, E>> + Send,
    E: Into<BoxError>,
{
    let copied = copy_batches(client, req, copy_sql, batches, progress, observe).await?;
    if lock_after_copy {
        let target = req.shape.target.to_string();
        crate::lock::lock_target(client, &target, req.wait_for_lock).await?;
    }
    Ok(copied)
}

/// What [`copy_batches`] observes of the rows it sends (see [`CopyEncoder::observe`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Observe {
    /// A bulk chunk's rows: the incremental column and the day columns.
    pub appended: bool,
    /// The day fingerprints of the incremental column ([`crate::fingerprints`]).
    pub prints: bool,
    /// Whether the keys are distinct, so a staged merge can leave out its SQL deduplication
    /// ([`CopyEncoder::unique_keys`]).
    pub unique_keys: bool,
}

/// The greatest incremental value among the staged rows, typed by the column's PostgreSQL type,
/// and how many rows have none. `sql` selects them from the staging table or, after a direct
/// load, from the target.
async fn max_incremental(
    client: &Client,
    shape: &LoadShape,
    sql: Option<String>,
) -> Result<(Option<IncValue>, u64), SinkError> {
    let (Some(sql), Some(inc)) = (sql, shape.incremental.as_ref()) else {
        return Ok((None, 0));
    };
    let ty = shape
        .columns
        .iter()
        .find(|c| &c.name == inc)
        .map(|c| c.ty.clone());
    let row = client
        .query_one(&sql, &[])
        .await
        .map_err(|e| SinkError::pg("reading the greatest incremental value", e))?;
    let nulls = u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
    let value = match ty {
        Some(PgType::Date) => row.get::<_, Option<NaiveDate>>(0).map(IncValue::Date),
        Some(PgType::Timestamp) => row
            .get::<_, Option<NaiveDateTime>>(0)
            .map(IncValue::Datetime),
        Some(PgType::Timestamptz) => row
            .get::<_, Option<DateTime<Utc>>>(0)
            .map(IncValue::Timestamp),
        other => {
            return Err(SinkError::TargetMismatch {
                target: shape.target.to_string(),
                message: format!(
                    "incremental column {inc} must be date, timestamp or timestamptz, not {}",
                    other.map(|t| t.sql()).unwrap_or_else(|| "missing".into())
                ),
            });
        }
    };
    Ok((value, nulls))
}
