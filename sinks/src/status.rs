//! Read queries on pulso-flow's state for status reporting: freshness per node, recent runs, the
//! data version, the last successful commit, and the run history (runs with their node counts,
//! every node run of a run, the recent runs of a node). The API (`/api/v1/etl/status`, `/ready`,
//! the operations page `/ops`, the cache's data version) and the CLI's `pulso-flow runs` read
//! `pulso_flow.*` only through this module, so the statements on those tables have one owner
//! (this crate) and the callers only shape typed rows.
//!
//! Each statement is served by an index of `migrations/` (the API's `api_explain` test checks the
//! plans of [`NODES_SQL`], [`RUNS_SQL`] and [`ACTIVITY_SQL`]).
//!
//! The functions run through a [`StatusReader`] rather than a client, so that a caller keeps its
//! own way of running a statement: the API runs them on its read pool with cached prepared
//! statements, timing metrics and its own error type; a plain [`tokio_postgres::Client`] is a
//! reader too (the API's LISTEN connection uses one).

use std::future::Future;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// Runs one read statement with bound parameters.
pub trait StatusReader: Sync {
    /// What a failed statement or an undecodable row becomes for the caller.
    type Error: From<tokio_postgres::Error>;

    /// Run `sql` (one of this module's statements; `name` labels it, e.g. for timing metrics).
    fn query(
        &self,
        name: &'static str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, Self::Error>> + Send;
}

impl StatusReader for tokio_postgres::Client {
    type Error = tokio_postgres::Error;

    fn query(
        &self,
        _name: &'static str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, Self::Error>> + Send {
        tokio_postgres::Client::query(self, sql, params)
    }
}

/// Every node of the pipeline file (`$1`) plus every node with a watermark, with its last run and
/// last success (each one index probe on `node_runs (node, started_at DESC)`).
pub const NODES_SQL: &str = "\
WITH n AS (SELECT node FROM pulso_flow.watermarks UNION SELECT unnest($1::text[])) \
SELECT n.node, w.target, w.inc_type, w.value, w.last_status, w.data_version, w.updated_at, \
       last.run_id, last.kind, last.status, last.started_at, last.duration_ms, last.rows_read, \
       last.records, last.error, ok.finished_at, last.details -> 'checks', \
       last.details -> 'reconcile' \
FROM n \
LEFT JOIN pulso_flow.watermarks w ON w.node = n.node \
LEFT JOIN LATERAL (SELECT r.run_id, r.kind, r.status, r.started_at, r.duration_ms, r.rows_read, \
                          r.inserted + r.updated AS records, r.error, r.details \
                   FROM pulso_flow.node_runs r WHERE r.node = n.node \
                   ORDER BY r.started_at DESC LIMIT 1) last ON true \
LEFT JOIN LATERAL (SELECT r.started_at + r.duration_ms * interval '1 millisecond' AS finished_at \
                   FROM pulso_flow.node_runs r WHERE r.node = n.node AND r.status = 'ok' \
                   ORDER BY r.started_at DESC LIMIT 1) ok ON true \
ORDER BY n.node";

/// The last ten runs: run ids start with their UTC start time, so the primary key orders them.
pub const RUNS_SQL: &str = "SELECT run_id, pipeline, status, started_at, finished_at \
FROM pulso_flow.runs ORDER BY run_id DESC LIMIT 10";

/// The ten latest node runs of the last five runs (primary-key probes), most recent first.
pub const ACTIVITY_SQL: &str = "SELECT node, status, started_at, inserted + updated, duration_ms \
FROM pulso_flow.node_runs \
WHERE run_id = ANY (ARRAY(SELECT run_id FROM pulso_flow.runs ORDER BY run_id DESC LIMIT 5)) \
ORDER BY started_at DESC LIMIT 10";

/// The database's oid and the sum of every node's data version. Before `pulso-flow migrate` the
/// sum is 0, so a fresh database is a valid (empty) version rather than an error.
pub const VERSION_SQL: &str = "SELECT (SELECT oid::bigint FROM pg_database WHERE datname = current_database()), \
       CASE WHEN to_regclass('pulso_flow.watermarks') IS NULL THEN 0::bigint \
            ELSE (SELECT coalesce(sum(data_version), 0)::bigint FROM pulso_flow.watermarks) END";

/// When the latest successful load or build committed (UTC).
pub const LAST_COMMIT_SQL: &str =
    "SELECT max(updated_at) FROM pulso_flow.watermarks WHERE last_status = 'ok'";

/// One pipeline node as the state tables know it: its watermark, its last run, its last success.
/// Every field but `node` is empty for a node of the pipeline file that never ran.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeStatus {
    pub node: String,
    /// The target table (from the watermark row).
    pub target: Option<String>,
    /// `date`, `datetime` or `timestamp`: the type of `watermark`.
    pub inc_type: Option<String>,
    /// The greatest incremental value loaded, as canonical text.
    pub watermark: Option<String>,
    /// `ok`, `set` or `reset` (an operator changed the watermark).
    pub watermark_status: Option<String>,
    pub data_version: Option<i64>,
    pub watermark_updated_at: Option<DateTime<Utc>>,
    pub last_run_id: Option<String>,
    /// `table` or `sql`.
    pub last_kind: Option<String>,
    /// `ok`, `failed`, `skipped` or `cancelled`.
    pub last_status: Option<String>,
    pub last_started_at: Option<DateTime<Utc>>,
    pub last_duration_ms: Option<i64>,
    pub last_rows_read: Option<i64>,
    /// Rows inserted + updated by the last run.
    pub last_records: Option<i64>,
    pub last_error: Option<String>,
    /// When the last successful run finished.
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last run's quality gates (`node_runs.details.checks`: name, kind, severity, passed,
    /// offending, sample), also when they failed it.
    pub last_checks: Option<serde_json::Value>,
    /// The last run's reconciliation (`node_runs.details.reconcile`).
    pub last_reconcile: Option<serde_json::Value>,
}

/// One row of `pulso_flow.runs`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub run_id: String,
    pub pipeline: String,
    /// `running`, `ok`, `failed` or `cancelled`.
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One node run of a recent run.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeActivity {
    pub node: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    /// Rows inserted + updated.
    pub records: Option<i64>,
    pub duration_ms: i64,
}

/// What the API keys its caches by: which database, and how many commits changed data in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionSum {
    /// `pg_database.oid` of the current database (0 if it could not be read).
    pub database_oid: i64,
    /// Sum of `pulso_flow.watermarks.data_version`: grows by one per commit that changed data.
    pub sum: i64,
}

/// Every node of `pipeline_nodes` and every node with a watermark, ordered by name.
pub async fn node_status<R: StatusReader>(
    reader: &R,
    pipeline_nodes: &[String],
) -> Result<Vec<NodeStatus>, R::Error> {
    let rows = reader
        .query("etl_nodes", NODES_SQL, &[&pipeline_nodes])
        .await?;
    rows.iter()
        .map(|r| {
            Ok(NodeStatus {
                node: r.try_get(0)?,
                target: r.try_get(1)?,
                inc_type: r.try_get(2)?,
                watermark: r.try_get(3)?,
                watermark_status: r.try_get(4)?,
                data_version: r.try_get(5)?,
                watermark_updated_at: r.try_get(6)?,
                last_run_id: r.try_get(7)?,
                last_kind: r.try_get(8)?,
                last_status: r.try_get(9)?,
                last_started_at: r.try_get(10)?,
                last_duration_ms: r.try_get(11)?,
                last_rows_read: r.try_get(12)?,
                last_records: r.try_get(13)?,
                last_error: r.try_get(14)?,
                last_success_at: r.try_get(15)?,
                last_checks: r.try_get(16)?,
                last_reconcile: r.try_get(17)?,
            })
        })
        .collect()
}

/// The ten latest runs, newest first.
pub async fn recent_runs<R: StatusReader>(reader: &R) -> Result<Vec<RunSummary>, R::Error> {
    let rows = reader.query("etl_runs", RUNS_SQL, &[]).await?;
    rows.iter()
        .map(|r| {
            Ok(RunSummary {
                run_id: r.try_get(0)?,
                pipeline: r.try_get(1)?,
                status: r.try_get(2)?,
                started_at: r.try_get(3)?,
                finished_at: r.try_get(4)?,
            })
        })
        .collect()
}

/// The ten latest node runs of the five latest runs, newest first.
pub async fn recent_activity<R: StatusReader>(reader: &R) -> Result<Vec<NodeActivity>, R::Error> {
    let rows = reader.query("etl_activity", ACTIVITY_SQL, &[]).await?;
    rows.iter()
        .map(|r| {
            Ok(NodeActivity {
                node: r.try_get(0)?,
                status: r.try_get(1)?,
                started_at: r.try_get(2)?,
                records: r.try_get(3)?,
                duration_ms: r.try_get(4)?,
            })
        })
        .collect()
}

/// The data version (see [`VersionSum`]).
pub async fn data_version<R: StatusReader>(reader: &R) -> Result<VersionSum, R::Error> {
    let rows = reader.query("data_version", VERSION_SQL, &[]).await?;
    let Some(row) = rows.first() else {
        // The statement always returns one row; none would mean nothing is loaded.
        return Ok(VersionSum {
            database_oid: 0,
            sum: 0,
        });
    };
    Ok(VersionSum {
        database_oid: row.try_get::<_, Option<i64>>(0)?.unwrap_or(0),
        sum: row.try_get(1)?,
    })
}

/// When the latest successful load or build committed; `None` before the first.
pub async fn last_successful_commit<R: StatusReader>(
    reader: &R,
) -> Result<Option<DateTime<Utc>>, R::Error> {
    let rows = reader.query("last_refresh", LAST_COMMIT_SQL, &[]).await?;
    match rows.first() {
        Some(row) => Ok(row.try_get(0)?),
        None => Ok(None),
    }
}

// ---- run history: `pulso-flow runs`, the API's operations page ------------------------------

/// The latest `$1` runs with their node counts (primary-key order, then one probe of
/// `node_runs`' primary key per run), newest first. Run ids start with their start second, so
/// the primary key finds the latest runs; two runs of the same second are then ordered by their
/// start instant (the id's suffix after the second is random).
pub const RUN_HISTORY_SQL: &str = "\
SELECT r.run_id, r.pipeline, r.status, r.started_at, r.finished_at, \
       count(n.node), count(n.node) FILTER (WHERE n.status = 'ok'), \
       count(n.node) FILTER (WHERE n.status = 'failed'), \
       coalesce(sum(n.rows_read), 0)::bigint, coalesce(sum(n.inserted), 0)::bigint, \
       coalesce(sum(n.updated), 0)::bigint \
FROM (SELECT * FROM pulso_flow.runs ORDER BY run_id DESC LIMIT $1) r \
LEFT JOIN pulso_flow.node_runs n ON n.run_id = r.run_id \
GROUP BY r.run_id, r.pipeline, r.status, r.started_at, r.finished_at \
ORDER BY r.started_at DESC, r.run_id DESC";

/// One run by id, with its node counts.
pub const RUN_SQL: &str = "\
SELECT r.run_id, r.pipeline, r.status, r.started_at, r.finished_at, \
       count(n.node), count(n.node) FILTER (WHERE n.status = 'ok'), \
       count(n.node) FILTER (WHERE n.status = 'failed'), \
       coalesce(sum(n.rows_read), 0)::bigint, coalesce(sum(n.inserted), 0)::bigint, \
       coalesce(sum(n.updated), 0)::bigint \
FROM pulso_flow.runs r \
LEFT JOIN pulso_flow.node_runs n ON n.run_id = r.run_id \
WHERE r.run_id = $1 \
GROUP BY r.run_id, r.pipeline, r.status, r.started_at, r.finished_at";

/// The columns of a [`NodeRun`], in its field order.
macro_rules! node_run_columns {
    () => {
        "run_id, node, kind, target, mode, window_lower, window_upper, watermark_before, \
         watermark_after, rows_read, rows_staged, inserted, updated, unchanged, deleted, \
         bytes_billed, started_at, duration_ms, status, error, details"
    };
}

/// Every node run of run `$1`, in start order (primary-key range).
pub const RUN_NODES_SQL: &str = concat!(
    "SELECT ",
    node_run_columns!(),
    " FROM pulso_flow.node_runs WHERE run_id = $1 ORDER BY started_at, node"
);

/// The latest `$2` runs of node `$1`, newest first (`node_runs (node, started_at DESC)`).
pub const NODE_HISTORY_SQL: &str = concat!(
    "SELECT ",
    node_run_columns!(),
    " FROM pulso_flow.node_runs WHERE node = $1 ORDER BY started_at DESC LIMIT $2"
);

/// The latest run of each node of `$1` (one index probe each); nodes that never ran are absent.
pub const LATEST_NODE_RUNS_SQL: &str = concat!(
    "SELECT r.* FROM unnest($1::text[]) AS n(node) CROSS JOIN LATERAL (SELECT ",
    node_run_columns!(),
    " FROM pulso_flow.node_runs x WHERE x.node = n.node ORDER BY x.started_at DESC LIMIT 1) r"
);

/// One run with what its nodes did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOverview {
    pub run_id: String,
    pub pipeline: String,
    /// `running`, `ok`, `failed` or `cancelled`.
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Node runs recorded (skipped and cancelled ones included).
    pub nodes: i64,
    pub nodes_ok: i64,
    pub nodes_failed: i64,
    pub rows_read: i64,
    pub inserted: i64,
    pub updated: i64,
}

impl RunOverview {
    /// From start to finish; `None` while it runs (or if it died without finishing).
    pub fn duration_ms(&self) -> Option<i64> {
        self.finished_at
            .map(|f| (f - self.started_at).num_milliseconds().max(0))
    }
}

/// One row of `pulso_flow.node_runs`: what one node did in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRun {
    pub run_id: String,
    pub node: String,
    /// `table` or `sql`.
    pub kind: String,
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
    pub bytes_billed: Option<i64>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    /// `ok`, `failed`, `skipped` or `cancelled`.
    pub status: String,
    pub error: Option<String>,
    /// What the node recorded besides the counters (builds: the days recomputed; later: `checks`
    /// and `reconcile` results).
    pub details: serde_json::Value,
}

impl NodeRun {
    pub fn finished_at(&self) -> DateTime<Utc> {
        self.started_at + chrono::Duration::milliseconds(self.duration_ms)
    }
}

fn run_overview(r: &Row) -> Result<RunOverview, tokio_postgres::Error> {
    Ok(RunOverview {
        run_id: r.try_get(0)?,
        pipeline: r.try_get(1)?,
        status: r.try_get(2)?,
        started_at: r.try_get(3)?,
        finished_at: r.try_get(4)?,
        nodes: r.try_get(5)?,
        nodes_ok: r.try_get(6)?,
        nodes_failed: r.try_get(7)?,
        rows_read: r.try_get(8)?,
        inserted: r.try_get(9)?,
        updated: r.try_get(10)?,
    })
}

fn node_run(r: &Row) -> Result<NodeRun, tokio_postgres::Error> {
    Ok(NodeRun {
        run_id: r.try_get(0)?,
        node: r.try_get(1)?,
        kind: r.try_get(2)?,
        target: r.try_get(3)?,
        mode: r.try_get(4)?,
        window_lower: r.try_get(5)?,
        window_upper: r.try_get(6)?,
        watermark_before: r.try_get(7)?,
        watermark_after: r.try_get(8)?,
        rows_read: r.try_get(9)?,
        rows_staged: r.try_get(10)?,
        inserted: r.try_get(11)?,
        updated: r.try_get(12)?,
        unchanged: r.try_get(13)?,
        deleted: r.try_get(14)?,
        bytes_billed: r.try_get(15)?,
        started_at: r.try_get(16)?,
        duration_ms: r.try_get(17)?,
        status: r.try_get(18)?,
        error: r.try_get(19)?,
        details: r.try_get(20)?,
    })
}

/// The latest `limit` runs with their node counts, newest first.
pub async fn run_history<R: StatusReader>(
    reader: &R,
    limit: i64,
) -> Result<Vec<RunOverview>, R::Error> {
    let rows = reader
        .query("run_history", RUN_HISTORY_SQL, &[&limit])
        .await?;
    Ok(rows.iter().map(run_overview).collect::<Result<_, _>>()?)
}

/// Run `run_id` with its node counts; `None` if the ledger has no such run.
pub async fn run<R: StatusReader>(
    reader: &R,
    run_id: &str,
) -> Result<Option<RunOverview>, R::Error> {
    let rows = reader.query("run", RUN_SQL, &[&run_id]).await?;
    Ok(rows.first().map(run_overview).transpose()?)
}

/// Every node run of `run_id`, in start order.
pub async fn run_nodes<R: StatusReader>(
    reader: &R,
    run_id: &str,
) -> Result<Vec<NodeRun>, R::Error> {
    let rows = reader.query("run_nodes", RUN_NODES_SQL, &[&run_id]).await?;
    Ok(rows.iter().map(node_run).collect::<Result<_, _>>()?)
}

/// The latest `limit` runs of `node`, newest first.
pub async fn node_history<R: StatusReader>(
    reader: &R,
    node: &str,
    limit: i64,
) -> Result<Vec<NodeRun>, R::Error> {
    let rows = reader
        .query("node_history", NODE_HISTORY_SQL, &[&node, &limit])
        .await?;
    Ok(rows.iter().map(node_run).collect::<Result<_, _>>()?)
}

/// The latest run of each of `nodes` that ever ran.
pub async fn latest_node_runs<R: StatusReader>(
    reader: &R,
    nodes: &[String],
) -> Result<Vec<NodeRun>, R::Error> {
    let rows = reader
        .query("latest_node_runs", LATEST_NODE_RUNS_SQL, &[&nodes])
        .await?;
    Ok(rows.iter().map(node_run).collect::<Result<_, _>>()?)
}

/// Lateness observed by each table's successful loads of the last [`LATENESS_DAYS`] days (see
/// [`crate::lateness`]): the greatest, the late rows per histogram bucket, and the lookback of the
/// latest load that recorded it. One pass over those days' ledger rows (a few per run and node).
pub const LATENESS_SQL: &str = "\
WITH l AS (SELECT node, started_at, details->'lateness' AS l FROM pulso_flow.node_runs \
           WHERE status = 'ok' AND kind = 'table' AND started_at > now() - interval '30 days' \
             AND jsonb_typeof(details->'lateness') = 'object') \
SELECT node, max((l->>'max_seconds')::bigint), coalesce(sum((l->>'rows')::bigint), 0)::bigint, \
       (array_agg((l->>'lookback_seconds')::bigint ORDER BY started_at DESC))[1], count(*), \
       coalesce((SELECT jsonb_object_agg(key, n) FROM \
                   (SELECT h.key, sum(h.value::bigint)::bigint AS n FROM l AS l2, \
                           jsonb_each_text(l2.l->'histogram') AS h \
                    WHERE l2.node = l.node GROUP BY h.key) AS b), '{}'::jsonb)::text \
FROM l GROUP BY node ORDER BY node";

/// The window of [`LATENESS_SQL`].
pub const LATENESS_DAYS: i64 = 30;

/// The lateness one table's recent loads observed.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLateness {
    pub node: String,
    /// The greatest lateness in seconds (None: no new row was below the watermark).
    pub max_seconds: Option<i64>,
    /// New rows below the previous watermark, over all those loads.
    pub late_rows: i64,
    /// The lookback of the latest of those loads, in seconds.
    pub lookback_seconds: Option<i64>,
    /// Loads that recorded lateness.
    pub loads: i64,
    /// Late rows per bucket name of [`crate::lateness::BUCKETS`] (empty buckets left out).
    pub histogram: serde_json::Value,
}

impl NodeLateness {
    /// The warning of a lookback that an observed lateness reaches (see
    /// [`crate::lateness::lookback_warning`]).
    pub fn warning(&self) -> Option<String> {
        crate::lateness::lookback_warning(
            &self.node,
            "incremental column",
            self.max_seconds?,
            self.lookback_seconds?,
        )
    }
}

/// Every table's observed lateness over the last [`LATENESS_DAYS`] days, by node name.
pub async fn lateness<R: StatusReader>(reader: &R) -> Result<Vec<NodeLateness>, R::Error> {
    let rows = reader.query("lateness", LATENESS_SQL, &[]).await?;
    rows.iter()
        .map(|r| {
            let histogram: String = r.try_get(5)?;
            Ok(NodeLateness {
                node: r.try_get(0)?,
                max_seconds: r.try_get(1)?,
                late_rows: r.try_get(2)?,
                lookback_seconds: r.try_get(3)?,
                loads: r.try_get(4)?,
                histogram: serde_json::from_str(&histogram).unwrap_or(serde_json::Value::Null),
            })
        })
        .collect()
}

/// The class of a ledger error text (`<kind> <node>: <error>`), from the engine's and the
/// sink's error wordings; `error` when none is recognised.
pub fn error_class(text: &str) -> &'static str {
    let t = text.to_ascii_lowercase();
    let body = t.split_once(": ").map(|(_, b)| b).unwrap_or(&t);
    const CLASSES: &[(&str, &str)] = &[
        ("quality gate failed", "check"),
        ("reconciliation failed", "reconcile"),
        ("statement timeout", "timeout"),
        ("canceling statement", "timeout"),
        ("source failed", "source"),
        ("cannot read ", "file"),
        ("cannot connect", "connection"),
        ("connection", "connection"),
        ("is being loaded by another run", "locked"),
        ("target ", "target"),
        ("bad watermark", "watermark"),
        ("migrations failed", "migration"),
        ("duplicate key", "data"),
        ("violates", "data"),
        ("invalid input", "data"),
        ("out of range", "data"),
        ("syntax error", "sql"),
    ];
    CLASSES
        .iter()
        .find(|(needle, _)| body.starts_with(needle) || t.contains(needle))
        .map(|(_, class)| *class)
        .unwrap_or("error")
}

#[cfg(test)]
mod tests {
    use super::error_class;

    #[test]
    fn classes_of_ledger_errors() {
        assert_eq!(
            error_class("table trandeuda: source failed: arrow: Parser error at row 3"),
            "source"
        );
        assert_eq!(
            error_class("table gestion: cannot read /data/x.csv: No such file"),
            "file"
        );
        assert_eq!(
            error_class(
                "sql dashboard: build: ERROR: canceling statement due to statement timeout"
            ),
            "timeout"
        );
        assert_eq!(error_class("something else entirely"), "error");
    }
}
