//! What runs between a node's writes and its commit: the reconciliation (`reconcile:`) and the
//! quality gates (`checks:`). A failure (an `error` check, a mismatch with `on_mismatch: fail`)
//! is returned as [`SinkError::Gate`] before COMMIT, so the server rolls everything back; the
//! rest become warnings. Both results go into the ledger's details (`reconcile`, `checks`).

use serde::Serialize;
use tokio_postgres::Client;

use crate::checks::{self, Check, CheckResult};
use crate::error::SinkError;
use crate::reconcile::{self, OnMismatch, ReconcileReport, ReconcileSpec};
use crate::sql::LoadShape;

/// The results of a node's gates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Gates {
    pub checks: Vec<CheckResult>,
    pub reconcile: Option<ReconcileReport>,
    /// Failed `warn` checks and a reconciliation mismatch with `on_mismatch: warn`.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl Gates {
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty() && self.reconcile.is_none()
    }

    /// Add the results to a ledger row's details (an object).
    pub fn record(&self, details: &mut serde_json::Value) {
        if !details.is_object() {
            *details = serde_json::json!({});
        }
        if !self.checks.is_empty() {
            details["checks"] = serde_json::json!(self.checks);
        }
        if let Some(r) = &self.reconcile {
            details["reconcile"] = serde_json::json!(r);
        }
    }

    /// Failed checks (any severity) plus 1 for a reconciliation mismatch.
    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|c| !c.passed).count()
            + usize::from(self.reconcile.as_ref().is_some_and(|r| !r.matches()))
    }
}

/// How the load wrote its rows, for the reconciliation's source side.
#[derive(Debug, Clone)]
pub struct LoadScope {
    /// The rows went through the staging table (false: a direct COPY into the empty target).
    pub staged: bool,
    /// The staged rows held no duplicate key (the merge's dedup had nothing to drop).
    pub unique: bool,
    /// The load's window: (incremental column, lower, upper) as ISO text.
    pub window: Option<(String, Option<String>, Option<String>)>,
    /// A bulk chunk appended its rows to a target that holds every earlier chunk too.
    pub appended: Option<Appended>,
}

/// A bulk chunk's rows, as the COPY observed them (see [`crate::bulk`]): the source side of its
/// reconciliation, which is also the target side (the chunk's rows are what it appended).
#[derive(Debug, Clone)]
pub struct Appended {
    pub rows: u64,
    pub observed: crate::encode::Observed,
}

/// Reconcile (if asked) and check a table load, inside its transaction.
pub async fn after_load(
    client: &Client,
    node: &str,
    shape: &LoadShape,
    spec: Option<&ReconcileSpec>,
    checks: &[Check],
    scope: LoadScope,
    run_id: &str,
) -> Result<Gates, SinkError> {
    let mut gates = Gates::default();
    let mut failures = Vec::new();
    if let Some(spec) = spec {
        let report = reconcile::after_merge(client, shape, spec, &scope).await?;
        if !report.matches() {
            let text = format!("reconciliation failed: {}", report.describe(5));
            match spec.on_mismatch {
                OnMismatch::Fail => failures.push(text),
                OnMismatch::Warn => gates.warnings.push(text),
            }
        }
        gates.reconcile = Some(report);
    }
    if checks.iter().any(|c| c.scope_day.is_some()) {
        fill_check_days(client, node, run_id).await?;
    }
    check(client, node, checks, &mut gates, &mut failures).await?;
    finish(node, gates, failures)
}

/// Check a table after a repair (`pulso-flow reconcile --repair`), inside its transaction.
pub async fn after_repair(
    client: &Client,
    node: &str,
    run_id: &str,
    checks: &[Check],
) -> Result<Gates, SinkError> {
    if checks.iter().any(|c| c.scope_day.is_some()) {
        fill_check_days(client, node, run_id).await?;
    }
    after_build(client, node, checks).await
}

/// Check a build's output, inside its transaction.
pub async fn after_build(
    client: &Client,
    node: &str,
    checks: &[Check],
) -> Result<Gates, SinkError> {
    let mut gates = Gates::default();
    let mut failures = Vec::new();
    check(client, node, checks, &mut gates, &mut failures).await?;
    finish(node, gates, failures)
}

/// The days this load wrote (as its own statements recorded them in `pulso_flow.changes`), for
/// the checks scoped to them.
async fn fill_check_days(client: &Client, node: &str, run_id: &str) -> Result<(), SinkError> {
    let t = crate::checks::CHECK_DAYS_TABLE;
    client
        .batch_execute(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {t} (day date) ON COMMIT DROP"
        ))
        .await
        .map_err(|e| SinkError::pg(format!("creating {t}"), e))?;
    client
        .execute(
            &format!(
                "INSERT INTO {t} SELECT DISTINCT day FROM pulso_flow.changes \
                 WHERE node = $1 AND run_id = $2 AND day IS NOT NULL"
            ),
            &[&node, &run_id],
        )
        .await
        .map_err(|e| SinkError::pg(format!("filling {t}"), e))?;
    Ok(())
}

async fn check(
    client: &Client,
    node: &str,
    checks: &[Check],
    gates: &mut Gates,
    failures: &mut Vec<String>,
) -> Result<(), SinkError> {
    if checks.is_empty() {
        return Ok(());
    }
    gates.checks = checks::evaluate(client, node, checks).await?;
    let (failed, warnings) = checks::verdict(&gates.checks);
    failures.extend(failed);
    gates.warnings.extend(warnings);
    Ok(())
}

fn finish(node: &str, gates: Gates, failures: Vec<String>) -> Result<Gates, SinkError> {
    if failures.is_empty() {
        Ok(gates)
    } else {
        Err(SinkError::Gate {
            node: node.to_string(),
            message: failures.join("; "),
            gates: Box::new(gates),
        })
    }
}
