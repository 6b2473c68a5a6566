//! The end of every successful node run — a table load or a SQL build — in one function:
//! [`commit_node`] writes what the run changed (`pulso_flow.changes`), the build's cursor, the
//! watermark and data version, the ledger row and the NOTIFY, then COMMITs, all in the run's own
//! transaction. So a ledger row with status `ok`, a moved watermark, a bumped data version and a
//! notification exist if and only if the data they describe was committed.

use pulso_types::IncValue;
use tokio_postgres::Client;

use crate::error::SinkError;
use crate::state::{self, NodeRun, WatermarkUpdate};

/// The session's temp table of the days a build recomputes (see [`crate::build`]); what is left
/// in it at commit is what the build's dependants receive.
pub const CHANGED_DAYS_TABLE: &str = "pulso_flow_changed_days";

/// What a run changed, for its dependants (`pulso_flow.changes`) and for caches (data version,
/// NOTIFY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// Nothing: no change row, the data version stays, no NOTIFY.
    Nothing,
    /// The run's own statements already recorded the days they changed (a table with a
    /// `change_date` column: see [`crate::sql`]).
    DaysRecorded,
    /// The days in the session's changed-days table (an incremental build: the days its
    /// dependencies changed, as narrowed or widened by its SQL).
    ChangedDaysTable,
    /// Anything may have changed (a table without `change_date`, a full build): one NULL day,
    /// which makes every dependant rebuild everything.
    Everything,
}

impl Changed {
    pub fn any(self) -> bool {
        self != Changed::Nothing
    }
}

/// Everything [`commit_node`] writes besides the run's data.
#[derive(Debug)]
pub struct NodeCommit<'a> {
    pub run_id: &'a str,
    pub node: &'a str,
    /// `schema.table` of a table, `sql:<node>` of a build.
    pub target: &'a str,
    pub inc_column: Option<&'a str>,
    /// The watermark to store; `None` keeps the stored one.
    pub watermark: Option<IncValue>,
    pub changed: Changed,
    /// How far a build has consumed `pulso_flow.changes` (greatest change id seen).
    pub build_cursor: Option<i64>,
    /// The ledger row; run id, node, target and status are filled in here, and the data version
    /// is added to its details.
    pub ledger: NodeRun,
}

/// Write the run's bookkeeping and COMMIT the caller's open transaction. Returns the node's data
/// version after the commit. On error nothing is committed (the caller drops the connection).
pub async fn commit_node(client: &Client, c: NodeCommit<'_>) -> Result<i64, SinkError> {
    let record_changes = match c.changed {
        Changed::Nothing | Changed::DaysRecorded => None,
        Changed::Everything => {
            Some("INSERT INTO pulso_flow.changes (node, run_id, day) VALUES ($1, $2, NULL)".into())
        }
        Changed::ChangedDaysTable => Some(format!(
            "INSERT INTO pulso_flow.changes (node, run_id, day) \
             SELECT $1, $2, day FROM {CHANGED_DAYS_TABLE}"
        )),
    };
    if let Some(sql) = record_changes {
        client
            .execute(&sql, &[&c.node, &c.run_id])
            .await
            .map_err(|e| SinkError::pg("recording changes", e))?;
    }
    if let Some(upto) = c.build_cursor {
        client
            .execute(
                "INSERT INTO pulso_flow.build_cursors (node, last_change_id) VALUES ($1, $2) \
                 ON CONFLICT (node) DO UPDATE SET last_change_id = EXCLUDED.last_change_id, \
                   updated_at = now()",
                &[&c.node, &upto],
            )
            .await
            .map_err(|e| SinkError::pg("moving the build cursor", e))?;
    }
    let data_version = state::write_watermark(
        client,
        &WatermarkUpdate {
            node: c.node,
            target: c.target,
            inc_column: c.inc_column,
            value: c.watermark,
            run_id: c.run_id,
            changed: c.changed.any(),
        },
    )
    .await?;

    let mut ledger = c.ledger;
    ledger.run_id = c.run_id.to_string();
    ledger.node = c.node.to_string();
    ledger.target = Some(c.target.to_string());
    ledger.status = "ok";
    if !ledger.details.is_object() {
        ledger.details = serde_json::json!({});
    }
    ledger.details["data_version"] = serde_json::json!(data_version);
    state::record_node_run(client, &ledger).await?;

    if c.changed.any() {
        let payload = serde_json::json!({
            "node": c.node, "target": c.target, "data_version": data_version
        })
        .to_string();
        // Delivered to listeners only when the transaction commits.
        client
            .execute(
                "SELECT pg_notify($1, $2)",
                &[&state::LOADS_CHANNEL, &payload],
            )
            .await
            .map_err(|e| SinkError::pg("notifying listeners", e))?;
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| SinkError::pg(format!("committing the run of {}", c.node), e))?;
    Ok(data_version)
}
