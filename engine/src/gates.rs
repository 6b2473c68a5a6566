//! What the engine keeps of a node's gates (`reconcile:`, `checks:`) when they failed it.

use pulso_sinks::SinkError;
use pulso_sinks::gates::Gates;

use crate::error::EngineError;

/// The ledger details of a failed node: the gates' results when a gate failed it (they are then
/// also copied into `gates` for the run report), else an empty object.
pub fn failed_details(e: &EngineError, gates: &mut Gates) -> serde_json::Value {
    let mut details = serde_json::json!({});
    if let EngineError::Sink(SinkError::Gate { gates: g, .. }) = e {
        g.record(&mut details);
        *gates = (**g).clone();
    }
    details
}

/// `explain`'s lines for a node's gates: (title, SQL) of its reconciliation and of each check.
pub fn explain(
    table: Option<&crate::pipeline::TableNode>,
    checks: &[pulso_sinks::checks::Check],
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(t) = table
        && let Some(spec) = &t.reconcile
    {
        let scope = pulso_sinks::reconcile::Scope {
            window: t
                .incremental
                .as_ref()
                .map(|i| (i.column.clone(), None, None)),
            ..Default::default()
        };
        out.push((
            format!(
                "reconcile by {} (count{}{}), on mismatch {}",
                spec.by,
                if spec.sum.is_empty() { "" } else { ", sum " },
                spec.sum.join(", "),
                match spec.on_mismatch {
                    pulso_sinks::reconcile::OnMismatch::Fail => "fail",
                    pulso_sinks::reconcile::OnMismatch::Warn => "warn",
                }
            ),
            pulso_sinks::reconcile::compare_sql(
                &t.shape,
                spec,
                pulso_sinks::reconcile::SourceSide::Rows(&t.shape.deduplicated_source()),
                &scope,
            ),
        ));
    }
    for c in checks {
        out.push((
            format!(
                "check {} ({}, severity {}{})",
                c.name,
                c.kind.as_str(),
                c.severity.as_str(),
                c.table
                    .as_ref()
                    .map(|t| format!(", on {t}"))
                    .unwrap_or_default()
            ),
            c.counting_sql().0,
        ));
    }
    out
}
