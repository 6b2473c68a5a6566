//! One SQL build (an aux or mart table computed inside PostgreSQL) as ONE transaction.
//!
//! ```text
//! BEGIN
//!   advisory lock on the build (wait, or fail fast with --no-wait)
//!   CREATE TEMP TABLE pulso_flow_changed_days (day date PRIMARY KEY) ON COMMIT DROP
//!     ← the days its dependencies changed since this build last ran (pulso_flow.changes)
//!   set_config('pulso_flow.full_refresh', …), set_config('pulso_flow.run_id', …)
//!   unless nothing changed upstream:
//!     ANALYZE the temp table (without statistics the planner guesses thousands of days)
//!     pg_temp.full_refresh(), pg_temp.changed_days(), pg_temp.first_changed_day(): the same
//!       inputs as constants the planner folds (see below)
//!     the build's SQL
//!   its checks (quality gates; an `error` check that fails rolls everything back)
//!   commit_node: its changes, its cursor, data version, ledger row, NOTIFY
//! COMMIT
//! ```
//!
//! Incremental by days: the SQL recomputes the days in `pulso_flow_changed_days`, or everything
//! when `pulso_flow.full_refresh` is `true` (a dependency changed without day information,
//! `--full-refresh`, or the build's first run). The days left in the temp table after the SQL
//! (it may narrow or widen them to what its output actually changed) are what its own dependants
//! receive.
//!
//! Why functions as well as the setting and the table: `current_setting(…)::boolean OR day IN
//! (…)` is opaque to the planner (a stable call is never folded), so the OR hides the day
//! predicate from every index and each run reads the whole history. The build's inputs are
//! therefore also defined, on this build's own connection, as SQL functions whose bodies are
//! literals (IMMUTABLE, and honestly so: the connection serves this one build):
//!
//! - `pg_temp.full_refresh()`: `true` or `false`;
//! - `pg_temp.changed_days()`: the days received, a sorted `date[]` (empty on a full refresh);
//! - `pg_temp.first_changed_day()`: the earliest of them (NULL on a full refresh).
//!
//! The planner inlines them: `pg_temp.full_refresh() OR fecha = ANY (pg_temp.changed_days())`
//! becomes `fecha = ANY ('{…}')`, which uses the day indexes with exact estimates and is pushed
//! down into views (a semi-join with the temp table is not pushed through a `DISTINCT ON`);
//! `fecha >= pg_temp.first_changed_day()` is a range with a known bound. The temp table stays the
//! way a build reports the days its output changed.

use std::time::Instant;

use chrono::Utc;
use tokio_postgres::Client;

use crate::commit::{self, CHANGED_DAYS_TABLE, Changed, NodeCommit};
use crate::error::SinkError;
use crate::state::{NodeRun, RunMode};

/// What a build needs.
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    /// Pipeline node name: the key of its cursor, watermark and ledger rows.
    pub node: &'a str,
    /// The SQL to run (one or more statements).
    pub sql: &'a str,
    /// Where the SQL came from (a file path or "inline"), for messages and the ledger.
    pub origin: &'a str,
    /// The nodes whose changes it consumes.
    pub depends_on: &'a [String],
    /// Recompute everything whatever changed (`--full-refresh`).
    pub full_refresh: bool,
    /// Wait for a concurrent run of the same build (true) or fail at once (false, `--no-wait`).
    pub wait_for_lock: bool,
    pub run_id: &'a str,
    /// Quality gates evaluated after its SQL, before commit (see [`crate::checks`]).
    pub checks: &'a [crate::checks::Check],
}

/// What a committed build did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutcome {
    /// Whether its SQL ran (false: nothing changed upstream).
    pub ran: bool,
    pub mode: RunMode,
    pub data_version: i64,
    /// Results of its `checks:` (also in the ledger's details).
    pub gates: crate::gates::Gates,
}

/// Run the build in its own transaction on a new connection, and commit it.
pub async fn run(url: &str, req: &BuildRequest<'_>) -> Result<BuildOutcome, SinkError> {
    let started_at = Utc::now();
    let t0 = Instant::now();
    let client = crate::connect::connect(url).await?;
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| SinkError::pg("starting the build transaction", e))?;
    crate::lock::lock_for_transaction(
        &client,
        &format!("pulso-flow:build:{}", req.node),
        &format!("build {}", req.node),
        req.wait_for_lock,
    )
    .await?;

    let upstream = collect_changed_days(&client, req).await?;
    let full = req.full_refresh || upstream.first_run || upstream.undated_change;
    let mode = if full {
        RunMode::FullRefresh
    } else {
        RunMode::Incremental
    };
    client
        .execute(
            "SELECT set_config('pulso_flow.full_refresh', $1, true), \
                    set_config('pulso_flow.run_id', $2, true)",
            &[&full.to_string(), &req.run_id],
        )
        .await
        .map_err(|e| SinkError::pg("setting the build parameters", e))?;

    let ran = full || upstream.any_change;
    let received_days = list_changed_days(&client).await?;
    if ran {
        define_parameters(&client, full).await?;
        client
            .batch_execute(req.sql)
            .await
            .map_err(|e| SinkError::pg(format!("running the SQL of {}", req.origin), e))?;
    }
    let changed_days = list_changed_days(&client).await?;
    // Checks see the build's output and the changed-days table, before anything commits. A
    // build that did not run changed nothing, so there is nothing new to check.
    let gates = if ran {
        crate::gates::after_build(&client, req.node, req.checks).await?
    } else {
        crate::gates::Gates::default()
    };
    let days = |d: Vec<String>| {
        if full {
            serde_json::Value::Null
        } else {
            serde_json::json!(d)
        }
    };
    let ledger = NodeRun {
        kind: "sql",
        mode: Some(mode),
        started_at: Some(started_at),
        duration_ms: i64::try_from(t0.elapsed().as_millis()).unwrap_or(i64::MAX),
        details: serde_json::json!({
            "origin": req.origin,
            "ran": ran,
            "full": full,
            "received_days": days(received_days),
            "changed_days": days(changed_days),
            "changed_day_count": upstream.days,
        }),
        warnings: gates.warnings.clone(),
        ..NodeRun::default()
    };
    let mut ledger = ledger;
    gates.record(&mut ledger.details);
    let data_version = commit::commit_node(
        &client,
        NodeCommit {
            run_id: req.run_id,
            node: req.node,
            target: &format!("sql:{}", req.node),
            inc_column: None,
            watermark: None,
            // Propagate: this build's output changed on the same days (or everywhere).
            changed: match (ran, full) {
                (false, _) => Changed::Nothing,
                (true, true) => Changed::Everything,
                (true, false) => Changed::ChangedDaysTable,
            },
            build_cursor: Some(upstream.upto),
            ledger,
        },
    )
    .await?;
    Ok(BuildOutcome {
        ran,
        mode,
        data_version,
        gates,
    })
}

/// What changed upstream since the build's last successful run.
struct Upstream {
    /// The build never ran (no cursor).
    first_run: bool,
    /// Greatest change id consumed now (the build's next cursor).
    upto: i64,
    /// Distinct days copied into the changed-days table.
    days: i64,
    /// A dependency changed without day information.
    undated_change: bool,
    any_change: bool,
}

/// Create the changed-days table and fill it with the days the build's dependencies changed
/// since its cursor.
async fn collect_changed_days(
    client: &Client,
    req: &BuildRequest<'_>,
) -> Result<Upstream, SinkError> {
    let cursor: Option<i64> = client
        .query_opt(
            "SELECT last_change_id FROM pulso_flow.build_cursors WHERE node = $1",
            &[&req.node],
        )
        .await
        .map_err(|e| SinkError::pg("reading the build cursor", e))?
        .map(|r| r.get(0));
    let upto: i64 = client
        .query_one("SELECT coalesce(max(id), 0) FROM pulso_flow.changes", &[])
        .await
        .map_err(|e| SinkError::pg("reading the change log", e))?
        .get(0);
    client
        .batch_execute(&format!(
            "CREATE TEMP TABLE {CHANGED_DAYS_TABLE} (day date PRIMARY KEY) ON COMMIT DROP"
        ))
        .await
        .map_err(|e| SinkError::pg(format!("creating {CHANGED_DAYS_TABLE}"), e))?;
    let row = client
        .query_one(
            &format!(
                "WITH c AS (SELECT day FROM pulso_flow.changes \
                            WHERE node = ANY($1) AND id > $2 AND id <= $3), \
                      ins AS (INSERT INTO {CHANGED_DAYS_TABLE} \
                              SELECT DISTINCT day FROM c WHERE day IS NOT NULL RETURNING 1) \
                 SELECT (SELECT count(*) FROM ins), EXISTS (SELECT 1 FROM c WHERE day IS NULL), \
                        EXISTS (SELECT 1 FROM c)"
            ),
            &[&req.depends_on, &cursor.unwrap_or(0), &upto],
        )
        .await
        .map_err(|e| SinkError::pg("collecting changed days", e))?;
    Ok(Upstream {
        first_run: cursor.is_none(),
        upto,
        days: row.get(0),
        undated_change: row.get(1),
        any_change: row.get(2),
    })
}

/// Analyse the filled changed-days table and define the build's inputs as constant functions
/// (see the module doc), in one round trip; only for a build whose SQL runs. The days are read
/// from the table and quoted by the server (`format('%L')`).
async fn define_parameters(client: &Client, full: bool) -> Result<(), SinkError> {
    client
        .batch_execute(&format!(
            "ANALYZE {CHANGED_DAYS_TABLE}; \
             CREATE OR REPLACE FUNCTION pg_temp.full_refresh() RETURNS boolean \
               LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT {full}'; \
             DO $pf$ DECLARE days date[]; BEGIN \
               SELECT coalesce(array_agg(day ORDER BY day), '{{}}') INTO days \
                 FROM {CHANGED_DAYS_TABLE} WHERE NOT {full}; \
               EXECUTE format('CREATE OR REPLACE FUNCTION pg_temp.changed_days() RETURNS date[] \
                 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L', \
                 format('SELECT %L::date[]', days)); \
               EXECUTE format('CREATE OR REPLACE FUNCTION pg_temp.first_changed_day() RETURNS date \
                 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L', \
                 format('SELECT %L::date', days[1])); \
             END $pf$"
        ))
        .await
        .map_err(|e| SinkError::pg("defining the build parameters (pg_temp functions)", e))
}

async fn list_changed_days(client: &Client) -> Result<Vec<String>, SinkError> {
    Ok(client
        .query(
            &format!("SELECT day::text FROM {CHANGED_DAYS_TABLE} ORDER BY day"),
            &[],
        )
        .await
        .map_err(|e| SinkError::pg("listing changed days", e))?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
