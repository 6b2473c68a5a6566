//! A node's one status on the operations page, from its last run and its freshness.

use pulso_sinks::status::NodeStatus;

/// What the colour of a node says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Last run ok and the last success within the node's freshness limit.
    Ok,
    /// Last run failed or was cancelled.
    Failed,
    /// No success within the freshness limit, or the last run was skipped (an upstream node
    /// failed): the data is older than it should be.
    Stale,
    /// No run recorded.
    Never,
}

impl Health {
    pub const ALL: [Health; 4] = [Health::Ok, Health::Failed, Health::Stale, Health::Never];

    /// `fresh`: the last success is within the node's limit (see `crate::freshness`).
    pub fn of(n: &NodeStatus, fresh: bool) -> Health {
        match n.last_status.as_deref() {
            None => Health::Never,
            Some("failed" | "cancelled") => Health::Failed,
            Some("ok") if fresh => Health::Ok,
            Some(_) => Health::Stale,
        }
    }

    /// Of one node run (the runs tables and the Gantt chart).
    pub fn of_run_status(status: &str) -> Health {
        match status {
            "ok" => Health::Ok,
            "failed" | "cancelled" => Health::Failed,
            _ => Health::Stale,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Failed => "failed",
            Health::Stale => "stale",
            Health::Never => "never",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Failed => "failed",
            Health::Stale => "stale",
            Health::Never => "never run",
        }
    }

    /// SVG fill of a node or bar in this state.
    pub fn fill(self) -> &'static str {
        match self {
            Health::Ok => "#c8e6c9",
            Health::Failed => "#ffcdd2",
            Health::Stale => "#ffe0b2",
            Health::Never => "#eceff1",
        }
    }

    /// SVG stroke (and text colour of badges).
    pub fn stroke(self) -> &'static str {
        match self {
            Health::Ok => "#2e7d32",
            Health::Failed => "#c62828",
            Health::Stale => "#e65100",
            Health::Never => "#607d8b",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(status: Option<&str>) -> NodeStatus {
        NodeStatus {
            node: "n".into(),
            target: None,
            inc_type: None,
            watermark: None,
            watermark_status: None,
            data_version: None,
            watermark_updated_at: None,
            last_run_id: None,
            last_kind: None,
            last_status: status.map(str::to_string),
            last_started_at: None,
            last_duration_ms: None,
            last_rows_read: None,
            last_records: None,
            last_error: None,
            last_success_at: None,
            last_checks: None,
            last_reconcile: None,
        }
    }

    #[test]
    fn status_precedence() {
        assert_eq!(Health::of(&node(None), false), Health::Never);
        assert_eq!(Health::of(&node(Some("ok")), true), Health::Ok);
        assert_eq!(Health::of(&node(Some("ok")), false), Health::Stale);
        // A failure shows as failed even while the last success is still fresh.
        assert_eq!(Health::of(&node(Some("failed")), true), Health::Failed);
        assert_eq!(Health::of(&node(Some("cancelled")), true), Health::Failed);
        assert_eq!(Health::of(&node(Some("skipped")), true), Health::Stale);
        let fills: std::collections::BTreeSet<_> = Health::ALL.iter().map(|h| h.fill()).collect();
        assert_eq!(fills.len(), 4, "every state has its own colour");
    }
}
