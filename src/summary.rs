//! The end-of-run summary: a table for people, JSON for machines.

use std::fmt::Write as _;

use pulso_engine::executor::{NodeStatus, RunReport};
use serde_json::{Value, json};

pub fn table(r: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<26} {:<5} {:<9} {:>10} {:>10} {:>9} {:>9} {:>10} {:>8} {:>9}",
        "NODE",
        "KIND",
        "STATUS",
        "READ",
        "STAGED",
        "INSERTED",
        "UPDATED",
        "UNCHANGED",
        "DELETED",
        "SECONDS"
    );
    for n in &r.nodes {
        let o = n.outcome.as_ref();
        let num = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:<26} {:<5} {:<9} {:>10} {:>10} {:>9} {:>9} {:>10} {:>8} {:>9.2}",
            n.name,
            n.kind,
            n.status.as_str(),
            if n.kind == "table" {
                n.rows_read.to_string()
            } else {
                "-".into()
            },
            num(o.map(|o| o.rows_staged)),
            num(o.map(|o| o.inserted)),
            num(o.map(|o| o.updated)),
            num(o.map(|o| o.unchanged)),
            num(o.map(|o| o.deleted)),
            n.duration.as_secs_f64()
        );
    }
    for n in r.nodes.iter().filter(|n| !n.gates.is_empty()) {
        let g = &n.gates;
        let mut parts = Vec::new();
        if !g.checks.is_empty() {
            let passed = g.checks.iter().filter(|c| c.passed).count();
            parts.push(format!("checks {passed}/{} passed", g.checks.len()));
        }
        if let Some(rec) = &g.reconcile {
            parts.push(format!(
                "reconcile by {}: {} day(s), {} differ",
                rec.by,
                rec.days,
                rec.mismatches.len()
            ));
        }
        let _ = writeln!(out, "\ngates {}: {}", n.name, parts.join("; "));
    }
    for n in &r.nodes {
        let Some(o) = n.outcome.as_ref() else {
            continue;
        };
        if o.null_incremental > 0 {
            let _ = writeln!(
                out,
                "\nnote {}: {} staged rows have a NULL incremental value (loaded; re-read every run)",
                n.name, o.null_incremental
            );
        }
        if let Some(max) = o.lateness.as_ref().and_then(|l| l.max_seconds) {
            let _ = writeln!(
                out,
                "\nnote {}: {} new rows below the previous watermark, up to {} late",
                n.name,
                o.lateness.as_ref().map_or(0, |l| l.rows),
                pulso_sinks::lateness::human(max)
            );
        }
    }
    for n in &r.nodes {
        for w in &n.warnings {
            let _ = writeln!(out, "\nwarning {}: {w}", n.name);
        }
    }
    for n in r.nodes.iter().filter(|n| n.status != NodeStatus::Ok) {
        if let Some(e) = &n.error {
            let _ = writeln!(out, "\n{} {}: {e}", n.status.as_str(), n.name);
        }
    }
    let count = |s: NodeStatus| r.nodes.iter().filter(|n| n.status == s).count();
    let read: u64 = r.nodes.iter().map(|n| n.rows_read).sum();
    let loaded: u64 = r
        .nodes
        .iter()
        .filter_map(|n| n.outcome.as_ref())
        .map(|o| o.inserted + o.updated)
        .sum();
    let _ = writeln!(
        out,
        "\nrun {}: {} ok, {} failed, {} skipped, {} cancelled; {read} rows read, {loaded} rows written; {:.2}s",
        r.run_id,
        count(NodeStatus::Ok),
        count(NodeStatus::Failed),
        count(NodeStatus::Skipped),
        count(NodeStatus::Cancelled),
        r.duration.as_secs_f64()
    );
    out
}

pub fn json(r: &RunReport) -> Value {
    json!({
        "run_id": r.run_id,
        "ok": r.all_ok(),
        "duration_s": r.duration.as_secs_f64(),
        "nodes": r.nodes.iter().map(|n| {
            let o = n.outcome.as_ref();
            json!({
                "name": n.name,
                "kind": n.kind,
                "status": n.status.as_str(),
                "error": n.error,
                "warnings": n.warnings,
                "rows_read": n.rows_read,
                "rows_staged": o.map(|o| o.rows_staged),
                "duplicates": o.map(|o| o.duplicates),
                "inserted": o.map(|o| o.inserted),
                "updated": o.map(|o| o.updated),
                "unchanged": o.map(|o| o.unchanged),
                "deleted": o.map(|o| o.deleted),
                "null_incremental": o.map(|o| o.null_incremental),
                "lateness": o.and_then(|o| o.lateness.as_ref().map(|l| l.to_json(None))),
                "window_lower": n.window_lower,
                "window_upper": n.window_upper,
                "watermark_before": o.and_then(|o| o.watermark_before.map(|w| w.to_iso())),
                "watermark_after": o.and_then(|o| o.watermark_after.map(|w| w.to_iso())),
                "data_version": o.map(|o| o.data_version),
                "duration_s": n.duration.as_secs_f64(),
                "checks": n.gates.checks,
                "reconcile": n.gates.reconcile,
            })
        }).collect::<Vec<_>>(),
    })
}
