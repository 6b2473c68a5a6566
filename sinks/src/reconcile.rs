//! Reconciliation of a table with its source: per day of a date column, the row count and the
//! exact sums of some columns, source side against target side.
//!
//! The source side is the rows the load received, as staged (so with exactly the types and the
//! NUMERIC values the target gets) and deduplicated by key with the merge's own rule; the target
//! side is the target's rows of the same scope:
//!
//! * after a load's merge ([`after_merge`], `reconcile:` of a table), the scope is the load's
//!   window on the incremental column (the target's rows whose incremental value is inside it),
//!   or the whole table for a full read. A target row the source no longer delivers (deleted or
//!   moved at the source) makes its day differ. After a direct load into an empty table both
//!   sides are the same rows, counted once;
//! * on demand ([`compare_staged`], `pulso-flow reconcile`), the scope is a range of days over
//!   the whole source, and [`repair_days`] replaces exactly the differing days.
//!
//! The comparison is one query (`FULL JOIN` of the two per-day aggregates, only differing days
//! returned); sums are PostgreSQL `sum()` of the column's type, so NUMERIC sums are exact.

use serde::Serialize;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use crate::error::SinkError;
use crate::pgtype::PgType;
use crate::sql::{LoadShape, STAGING, ident};

/// The temporary table of [`Session::compare_totals`].
const SOURCE_TOTALS: &str = "pulso_source_totals";

/// `reconcile:` of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileSpec {
    /// A `date` column: the grain of the comparison.
    pub by: String,
    /// Columns summed per day.
    pub sum: Vec<String>,
    pub on_mismatch: OnMismatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMismatch {
    /// The load fails and nothing is committed.
    Fail,
    /// The load commits; the mismatch is recorded and reported as a warning.
    Warn,
}

/// One day whose aggregates differ. Sums are in `spec.sum` order, as PostgreSQL prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayDiff {
    /// `None` for rows whose day is NULL.
    pub day: Option<String>,
    pub source_rows: i64,
    pub target_rows: i64,
    pub source_sums: Vec<Option<String>>,
    pub target_sums: Vec<Option<String>>,
}

impl DayDiff {
    /// `2025-06-03: rows 120 vs 118, monto 1500.00 vs 1480.00` (source vs target).
    pub fn describe(&self, sum: &[String]) -> String {
        let mut parts = vec![format!("rows {} vs {}", self.source_rows, self.target_rows)];
        for (i, col) in sum.iter().enumerate() {
            let show = |v: Option<&Option<String>>| {
                v.and_then(|v| v.clone()).unwrap_or_else(|| "NULL".into())
            };
            parts.push(format!(
                "{col} {} vs {}",
                show(self.source_sums.get(i)),
                show(self.target_sums.get(i))
            ));
        }
        format!(
            "{}: {}",
            self.day.as_deref().unwrap_or("NULL"),
            parts.join(", ")
        )
    }
}

/// The outcome of one comparison, as stored in `node_runs.details.reconcile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    pub by: String,
    pub sum: Vec<String>,
    pub on_mismatch: OnMismatch,
    /// Days present on either side.
    pub days: i64,
    pub source_rows: i64,
    pub target_rows: i64,
    /// The differing days, in day order.
    pub mismatches: Vec<DayDiff>,
}

impl ReconcileReport {
    pub fn matches(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// One line per differing day (at most `limit`, then how many more).
    pub fn describe(&self, limit: usize) -> String {
        let mut lines: Vec<String> = self
            .mismatches
            .iter()
            .take(limit)
            .map(|d| d.describe(&self.sum))
            .collect();
        if self.mismatches.len() > limit {
            lines.push(format!(
                "… and {} more day(s)",
                self.mismatches.len() - limit
            ));
        }
        format!(
            "{} day(s) differ between source and target (by {}; source vs target): {}",
            self.mismatches.len(),
            self.by,
            lines.join("; ")
        )
    }
}

/// The scope of a comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The load's window on the incremental column: target rows with `lower <= inc < upper`
    /// (ISO text of [`pulso_types::IncValue`]; a missing bound is open).
    pub window: Option<(String, Option<String>, Option<String>)>,
    /// Days of `by` compared: `from <= day <= to` (ISO dates; a missing bound is open).
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The source side of a comparison.
#[derive(Debug, Clone, Copy)]
pub enum SourceSide<'a> {
    /// A `SELECT` of the source's rows, aggregated here.
    Rows(&'a str),
    /// A table of per-day totals the source computed (columns `by`, `n`, `s0`…, as
    /// [`Session::compare_totals`] creates it); the target's sums are compared as `numeric`.
    Totals(&'a str),
}

/// The comparison query: per-day aggregates of the source side and of the target within the
/// scope. Returns (0, day, source rows, target rows, NULL, source sums…, target sums…) for each
/// differing day, then one row (1, 'total', source rows, target rows, days compared, NULL…);
/// the differing days' rows carry NULL in the days column.
///
/// Rows with a NULL day are grouped as day `infinity` (hash-joinable) and reported as NULL.
///
/// Parameters: `$1`, `$2` window bounds (text), `$3`, `$4` day range (text dates).
pub fn compare_sql(
    shape: &LoadShape,
    spec: &ReconcileSpec,
    source: SourceSide<'_>,
    scope: &Scope,
) -> String {
    let by = ident(&spec.by);
    let k = spec.sum.len();
    let sums_of = |alias: &str| -> String {
        spec.sum
            .iter()
            .enumerate()
            .map(|(i, c)| format!(", sum({alias}.{}) AS s{i}", ident(c)))
            .collect()
    };
    let days = |a: &str| {
        format!(
            "($3::text IS NULL OR {a}.{by} >= $3::text::date) AND ($4::text IS NULL OR {a}.{by} <= $4::text::date)"
        )
    };
    let window = match &scope.window {
        Some((col, _, _)) => {
            let ty = shape
                .columns
                .iter()
                .find(|c| &c.name == col)
                .map(|c| c.ty.sql())
                .unwrap_or_else(|| PgType::Timestamptz.sql());
            format!(
                " AND ($1::text IS NULL OR t.{c} >= $1::text::{ty}) AND ($2::text IS NULL OR t.{c} < $2::text::{ty})",
                c = ident(col)
            )
        }
        // No window: the bounds are NULL, kept only so the parameters stay typed.
        None => " AND ($1::text IS NULL OR true) AND ($2::text IS NULL OR true)".into(),
    };
    let list = |f: &dyn Fn(usize) -> String| -> String { (0..k).map(f).collect() };
    let (source_cte, tsum) = match source {
        SourceSide::Rows(select) => (
            format!(
                "SELECT coalesce(s.{by}, 'infinity'::date) AS day, count(*)::bigint AS n{} FROM ({select}) AS s \
                 WHERE {} GROUP BY 1",
                sums_of("s"),
                days("s")
            ),
            sums_of("t"),
        ),
        SourceSide::Totals(table) => (
            format!(
                "SELECT coalesce(s.{by}, 'infinity'::date) AS day, s.n{} FROM {table} AS s WHERE {}",
                list(&|i| format!(", s.s{i}")),
                days("s")
            ),
            list(&|i| format!(", sum(t.{})::numeric AS s{i}", ident(&spec.sum[i]))),
        ),
    };
    format!(
        "WITH s AS ({source_cte}), \
              t AS (SELECT coalesce(t.{by}, 'infinity'::date) AS day, count(*)::bigint AS n{tsum} FROM {target} AS t \
                    WHERE {tdays}{window} GROUP BY 1), \
              j AS (SELECT coalesce(s.day, t.day) AS day, coalesce(s.n, 0) AS sn, coalesce(t.n, 0) AS tn{js}{jt} \
                    FROM s FULL JOIN t ON s.day = t.day) \
         SELECT 0 AS ord, nullif(day, 'infinity'::date)::text AS day, sn, tn, NULL::bigint AS days{os}{ot} FROM j \
         WHERE (sn{cs}) IS DISTINCT FROM (tn{ct}) \
         UNION ALL SELECT 1, 'total', coalesce(sum(sn), 0)::bigint, coalesce(sum(tn), 0)::bigint, \
                          count(*)::bigint{nulls} FROM j \
         ORDER BY 1, 2 NULLS FIRST",
        tdays = days("t"),
        target = shape.target.quoted(),
        js = list(&|i| format!(", s.s{i} AS ss{i}")),
        jt = list(&|i| format!(", t.s{i} AS ts{i}")),
        os = list(&|i| format!(", ss{i}::text")),
        ot = list(&|i| format!(", ts{i}::text")),
        cs = list(&|i| format!(", ss{i}")),
        ct = list(&|i| format!(", ts{i}")),
        nulls = (0..2 * k).map(|_| ", NULL::text").collect::<String>(),
    )
}

/// Run the comparison inside the caller's transaction.
pub async fn compare(
    client: &Client,
    shape: &LoadShape,
    spec: &ReconcileSpec,
    source: SourceSide<'_>,
    scope: &Scope,
) -> Result<ReconcileReport, SinkError> {
    let sql = compare_sql(shape, spec, source, scope);
    let (lower, upper) = match &scope.window {
        Some((_, l, u)) => (l.clone(), u.clone()),
        None => (None, None),
    };
    let params: [&(dyn ToSql + Sync); 4] = [&lower, &upper, &scope.from, &scope.to];
    let rows = client
        .query(&sql, &params)
        .await
        .map_err(|e| SinkError::pg(format!("reconciling {}", shape.target), e))?;
    let k = spec.sum.len();
    let mut report = ReconcileReport {
        by: spec.by.clone(),
        sum: spec.sum.clone(),
        on_mismatch: spec.on_mismatch,
        days: 0,
        source_rows: 0,
        target_rows: 0,
        mismatches: Vec::new(),
    };
    let Some((total, diffs)) = rows.split_last() else {
        return Ok(report);
    };
    report.source_rows = total.get(2);
    report.target_rows = total.get(3);
    report.days = total.get::<_, Option<i64>>(4).unwrap_or(0);
    for r in diffs {
        report.mismatches.push(DayDiff {
            day: r.get(1),
            source_rows: r.get(2),
            target_rows: r.get(3),
            source_sums: (0..k).map(|i| r.get(5 + i)).collect(),
            target_sums: (0..k).map(|i| r.get(5 + k + i)).collect(),
        });
    }
    Ok(report)
}

/// After a load's merge: compare the staged rows (deduplicated as the merge does; as they are
/// when no key repeated) with the target's rows of the window.
///
/// After a direct load into an empty table the target holds exactly the copied rows (COPY's
/// count is checked, duplicates were resolved by the merge's rule): both sides are the same rows,
/// so they are aggregated once and reported equal.
pub async fn after_merge(
    client: &Client,
    shape: &LoadShape,
    spec: &ReconcileSpec,
    scope: &crate::gates::LoadScope,
) -> Result<ReconcileReport, SinkError> {
    if let Some(appended) = &scope.appended {
        // A bulk chunk, like a direct load, is compared with itself: the rows it sent are the
        // rows it wrote. Counted from what the COPY observed, not by scanning the target.
        return Ok(counted_once(
            spec,
            i64::try_from(appended.rows).unwrap_or(i64::MAX),
            i64::try_from(appended.observed.distinct_days(&spec.by)).unwrap_or(i64::MAX),
        ));
    }
    if !scope.staged {
        return direct_load_report(client, shape, spec).await;
    }
    let source = if scope.unique {
        // No key repeated: the staged rows are the deduplicated source, without its sort.
        format!("SELECT * FROM {}", ident(STAGING))
    } else {
        shape.deduplicated_source()
    };
    let scope = Scope {
        window: scope.window.clone(),
        ..Scope::default()
    };
    compare(client, shape, spec, SourceSide::Rows(&source), &scope).await
}

/// The report of a direct load: the target's rows and days, counted once, as both sides.
async fn direct_load_report(
    client: &Client,
    shape: &LoadShape,
    spec: &ReconcileSpec,
) -> Result<ReconcileReport, SinkError> {
    let row = client
        .query_one(
            &format!(
                "SELECT count(*)::bigint, count(DISTINCT coalesce({by}, 'infinity'::date))::bigint FROM {target}",
                by = ident(&spec.by),
                target = shape.target.quoted()
            ),
            &[],
        )
        .await
        .map_err(|e| SinkError::pg(format!("reconciling {}", shape.target), e))?;
    Ok(counted_once(spec, row.get(0), row.get(1)))
}

/// The report of rows that are their own source (a direct load, a bulk chunk): `rows` on both
/// sides over `days` days, nothing differing.
fn counted_once(spec: &ReconcileSpec, rows: i64, days: i64) -> ReconcileReport {
    ReconcileReport {
        by: spec.by.clone(),
        sum: spec.sum.clone(),
        on_mismatch: spec.on_mismatch,
        days,
        source_rows: rows,
        target_rows: rows,
        mismatches: Vec::new(),
    }
}

/// On demand: compare the staging table (the whole source, deduplicated) with the target over a
/// range of days.
pub async fn compare_staged(
    client: &Client,
    shape: &LoadShape,
    spec: &ReconcileSpec,
    from: Option<String>,
    to: Option<String>,
) -> Result<ReconcileReport, SinkError> {
    let scope = Scope {
        window: None,
        from,
        to,
    };
    compare(
        client,
        shape,
        spec,
        SourceSide::Rows(&shape.deduplicated_source()),
        &scope,
    )
    .await
}

/// Rows written by [`repair_days`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repaired {
    pub deleted: u64,
    pub inserted: u64,
}

/// Replace the target's rows of `days` by the staged (deduplicated) source rows of those days,
/// recording the days (and the days rows move away from) as changes of node `$1` in run `$2`.
/// Inside the caller's transaction, after the staging table is filled.
pub async fn repair_days(
    client: &Client,
    shape: &LoadShape,
    spec: &ReconcileSpec,
    node: &str,
    run_id: &str,
    days: &[chrono::NaiveDate],
) -> Result<Repaired, SinkError> {
    let by = ident(&spec.by);
    let target = shape.target.quoted();
    let keys: Vec<String> = shape.primary_key.iter().map(|k| ident(k)).collect();
    let on: Vec<String> = keys.iter().map(|k| format!("s.{k} = t.{k}")).collect();
    let pg = |what: &str, e| SinkError::pg(format!("repairing {} ({what})", shape.target), e);
    // Keys staged on a repaired day that the target holds on another day move: that day changes.
    client
        .execute(
            &format!(
                "INSERT INTO pulso_flow.changes (node, run_id, day) \
                 SELECT DISTINCT $1::text, $2::text, t.{by} FROM {target} AS t \
                 JOIN {stg} AS s ON {on} \
                 WHERE s.{by} = ANY($3::date[]) AND t.{by} IS DISTINCT FROM s.{by} \
                 UNION SELECT $1::text, $2::text, d FROM unnest($3::date[]) AS d",
                stg = ident(STAGING),
                on = on.join(" AND "),
            ),
            &[&node, &run_id, &days],
        )
        .await
        .map_err(|e| pg("recording changes", e))?;
    let deleted = client
        .execute(
            &format!("DELETE FROM {target} AS t WHERE t.{by} = ANY($1::date[])"),
            &[&days],
        )
        .await
        .map_err(|e| pg("deleting the days", e))?;
    let cols: Vec<String> = shape.columns.iter().map(|c| ident(&c.name)).collect();
    let set: Vec<String> = shape
        .columns
        .iter()
        .filter(|c| !shape.primary_key.contains(&c.name))
        .map(|c| format!("{0} = EXCLUDED.{0}", ident(&c.name)))
        .collect();
    let conflict = if set.is_empty() {
        "DO NOTHING".to_string()
    } else {
        format!("DO UPDATE SET {}", set.join(", "))
    };
    let inserted = client
        .execute(
            &format!(
                "INSERT INTO {target} ({cols}) SELECT {cols} FROM ({src}) AS s \
                 WHERE s.{by} = ANY($1::date[]) ON CONFLICT ({keys}) {conflict}",
                cols = cols.join(", "),
                src = shape.deduplicated_source(),
                keys = keys.join(", "),
            ),
            &[&days],
        )
        .await
        .map_err(|e| pg("inserting the source rows of the days", e))?;
    Ok(Repaired { deleted, inserted })
}

/// `pulso-flow reconcile` on one table: a transaction with the target's lock held, the whole
/// source staged, compared per day and, with `--repair`, the differing days replaced and
/// committed through [`crate::commit::commit_node`] (checks first). Dropped without
/// [`Session::repair`], it rolls back and changes nothing.
pub struct Session {
    client: Client,
    req: crate::load::LoadRequest,
    started_at: chrono::DateTime<chrono::Utc>,
    t0: std::time::Instant,
    rows: u64,
}

/// What [`Session::repair`] committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairOutcome {
    pub repaired: Repaired,
    pub gates: crate::gates::Gates,
    pub data_version: i64,
}

impl Session {
    /// Connect, BEGIN, take the target's lock (as a load does) and create the staging table.
    pub async fn open(url: &str, req: crate::load::LoadRequest) -> Result<Session, SinkError> {
        let started_at = chrono::Utc::now();
        let t0 = std::time::Instant::now();
        let client = crate::connect::connect(url).await?;
        let target = req.shape.target.to_string();
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| SinkError::pg("starting the reconciliation transaction", e))?;
        crate::lock::lock_target(&client, &target, req.wait_for_lock).await?;
        if crate::load::describe_target(&client, &req.shape.target)
            .await?
            .is_none()
        {
            return Err(SinkError::TargetMismatch {
                target,
                message: "the table does not exist: load it before reconciling it".into(),
            });
        }
        if crate::bulk::pending(&client, &target).await? {
            return Err(SinkError::TargetMismatch {
                target,
                message: "a backfill into it has not built its indexes yet (a key delivered in \
                          two chunks may be there twice): finish the backfill, or `pulso-flow \
                          run` the table, before reconciling it"
                    .into(),
            });
        }
        client
            .batch_execute(&req.shape.create_staging())
            .await
            .map_err(|e| SinkError::pg("creating the staging table", e))?;
        Ok(Session {
            client,
            req,
            started_at,
            t0,
            rows: 0,
        })
    }

    /// COPY the source's batches into the staging table (encoded exactly as a load encodes them).
    pub async fn stage<S, E>(&mut self, batches: S) -> Result<u64, SinkError>
    where
        S: futures::Stream<Item = Result<arrow::record_batch::RecordBatch, E>> + Send,
        E: Into<crate::error::BoxError>,
    {
        let progress = crate::load::LoadProgress::default();
        let sql = self.req.shape.copy_into_staging();
        let n = crate::load::copy_batches(
            &self.client,
            &self.req,
            &sql,
            batches,
            &progress,
            crate::load::Observe::default(),
        )
        .await?
        .0;
        self.rows += n;
        Ok(n)
    }

    /// Rows staged so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Compare the staged source with the target over `from ..= to` (ISO dates, open if None).
    pub async fn compare(
        &self,
        spec: &ReconcileSpec,
        from: Option<String>,
        to: Option<String>,
    ) -> Result<ReconcileReport, SinkError> {
        compare_staged(&self.client, &self.req.shape, spec, from, to).await
    }

    /// Compare per-day totals computed by the source (BigQuery's aggregate query) with the
    /// target over `from ..= to`: the totals go into a temporary table of the transaction.
    pub async fn compare_totals(
        &self,
        spec: &ReconcileSpec,
        totals: &[pulso_types::DayTotals],
        from: Option<String>,
        to: Option<String>,
    ) -> Result<ReconcileReport, SinkError> {
        let k = spec.sum.len();
        if let Some(bad) = totals.iter().find(|t| t.sums.len() != k) {
            return Err(SinkError::SourceTotals {
                target: self.req.shape.target.to_string(),
                message: format!(
                    "day {:?} has {} sums, the reconciliation sums {k} columns",
                    bad.day,
                    bad.sums.len()
                ),
            });
        }
        let pg = |what: &str, e| SinkError::pg(format!("reconciling ({what})"), e);
        let columns: String = (0..k).map(|i| format!(", s{i} numeric")).collect();
        self.client
            .batch_execute(&format!(
                "CREATE TEMPORARY TABLE {SOURCE_TOTALS} ({} date, n bigint{columns}) ON COMMIT DROP",
                ident(&spec.by)
            ))
            .await
            .map_err(|e| pg("creating the source totals table", e))?;
        let days: Vec<Option<chrono::NaiveDate>> = totals.iter().map(|t| t.day).collect();
        let rows: Vec<i64> = totals.iter().map(|t| t.rows).collect();
        let sums: Vec<Vec<Option<String>>> = (0..k)
            .map(|i| totals.iter().map(|t| t.sums[i].clone()).collect())
            .collect();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&days, &rows];
        params.extend(sums.iter().map(|s| s as &(dyn ToSql + Sync)));
        let arrays: String = (0..k)
            .map(|i| format!(", ${}::text[]::numeric[]", i + 3))
            .collect();
        self.client
            .execute(
                &format!(
                    "INSERT INTO {SOURCE_TOTALS} SELECT * FROM unnest($1::date[], $2::bigint[]{arrays})"
                ),
                &params,
            )
            .await
            .map_err(|e| pg("storing the source totals", e))?;
        let scope = Scope {
            window: None,
            from,
            to,
        };
        compare(
            &self.client,
            &self.req.shape,
            spec,
            SourceSide::Totals(SOURCE_TOTALS),
            &scope,
        )
        .await
    }

    /// Replace the target's rows of `days` by the staged source rows of those days, run the
    /// table's checks, and commit with a ledger row (the watermark is kept).
    pub async fn repair(
        self,
        spec: &ReconcileSpec,
        days: &[chrono::NaiveDate],
    ) -> Result<RepairOutcome, SinkError> {
        let Session {
            client,
            req,
            started_at,
            t0,
            rows,
        } = self;
        let shape = &req.shape;
        let repaired = repair_days(&client, shape, spec, &req.node, &req.run_id, days).await?;
        let gates =
            crate::gates::after_repair(&client, &req.node, &req.run_id, &req.checks).await?;
        let mut ledger = crate::state::NodeRun {
            kind: "table",
            rows_read: i64::try_from(rows).unwrap_or(i64::MAX),
            rows_staged: i64::try_from(rows).unwrap_or(i64::MAX),
            inserted: i64::try_from(repaired.inserted).unwrap_or(i64::MAX),
            deleted: i64::try_from(repaired.deleted).unwrap_or(i64::MAX),
            started_at: Some(started_at),
            duration_ms: i64::try_from(t0.elapsed().as_millis()).unwrap_or(i64::MAX),
            details: serde_json::json!({
                "repair": {
                    "days": days.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                    "deleted": repaired.deleted,
                    "inserted": repaired.inserted,
                }
            }),
            warnings: gates.warnings.clone(),
            ..Default::default()
        };
        gates.record(&mut ledger.details);
        let data_version = crate::commit::commit_node(
            &client,
            crate::commit::NodeCommit {
                run_id: &req.run_id,
                node: &req.node,
                target: &shape.target.to_string(),
                inc_column: shape.incremental.as_deref(),
                watermark: None,
                // repair_days recorded the days it replaced (and the days rows left).
                changed: crate::commit::Changed::DaysRecorded,
                build_cursor: None,
                ledger,
            },
        )
        .await?;
        Ok(RepairOutcome {
            repaired,
            gates,
            data_version,
        })
    }
}
