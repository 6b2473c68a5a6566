//! `/ops/runs/{run_id}`: one run — its nodes on a Gantt timeline (what ran in parallel, which
//! chain of dependencies held the run up), their counters, windows, watermarks and errors.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use pulso_sinks::status::{NodeRun, RunOverview};

use super::chart::{self, GanttBar};
use super::health::Health;
use super::page::{self, attr, badge, duration, num, seg, text};
use super::{ErrorShown, error_html};

pub struct RunPage<'a> {
    pub run: &'a RunOverview,
    /// In start order.
    pub nodes: &'a [NodeRun],
    /// Each node's dependencies (the pipeline's edges), by name.
    pub deps: &'a HashMap<String, Vec<String>>,
    pub now: DateTime<Utc>,
    pub errors: ErrorShown,
}

/// The chain of nodes that held the run up, first to last: the node that finished last, then
/// (repeatedly) the dependency in this run that finished last before it started.
pub fn critical_path<'a>(
    nodes: &'a [NodeRun],
    deps: &HashMap<String, Vec<String>>,
) -> Vec<&'a str> {
    let by_name: HashMap<&str, &NodeRun> = nodes.iter().map(|n| (n.node.as_str(), n)).collect();
    let Some(mut current) = nodes
        .iter()
        .max_by_key(|n| (n.finished_at(), n.node.as_str()))
    else {
        return Vec::new();
    };
    let mut chain = vec![current.node.as_str()];
    let mut seen: HashSet<&str> = chain.iter().copied().collect();
    loop {
        let next = deps
            .get(&current.node)
            .into_iter()
            .flatten()
            .filter_map(|d| by_name.get(d.as_str()).copied())
            .filter(|d| !seen.contains(d.node.as_str()))
            .max_by_key(|d| (d.finished_at(), d.node.as_str()));
        match next {
            Some(d) => {
                seen.insert(d.node.as_str());
                chain.push(d.node.as_str());
                current = d;
            }
            None => break,
        }
    }
    chain.reverse();
    chain
}

pub fn render(p: &RunPage<'_>) -> String {
    let r = p.run;
    let mut out = String::with_capacity(32 * 1024);
    let class = match r.status.as_str() {
        "ok" => "ok",
        "running" => "running",
        _ => "failed",
    };
    let _ = writeln!(
        out,
        "<div class=\"cards\"><div class=\"card\"><b>{}</b>status</div>\
         <div class=\"card\"><b>{}</b>started (UTC) {}</div>\
         <div class=\"card\"><b>{}</b>duration</div>\
         <div class=\"card\"><b>{} / {}</b>nodes ok / failed of {}</div>\
         <div class=\"card\"><b>{}</b>rows read</div>\
         <div class=\"card\"><b>{} / {}</b>inserted / updated</div></div>",
        badge(class, &r.status),
        page::ts(r.started_at),
        text(&page::ago(r.started_at, p.now)),
        r.duration_ms()
            .map(duration)
            .unwrap_or_else(|| "running".into()),
        r.nodes_ok,
        r.nodes_failed,
        r.nodes,
        num(r.rows_read),
        num(r.inserted),
        num(r.updated)
    );
    let chain = critical_path(p.nodes, p.deps);
    let critical: HashSet<&str> = chain.iter().copied().collect();
    out.push_str("<h2>Timeline</h2>\n");
    if p.nodes.is_empty() {
        out.push_str("<p class=\"muted\">no node of this run is recorded</p>\n");
    } else {
        let held: i64 = chain
            .iter()
            .filter_map(|c| p.nodes.iter().find(|n| n.node == *c))
            .map(|n| n.duration_ms)
            .sum();
        let _ = writeln!(
            out,
            "<p id=\"critical\">held up by: {} <span class=\"muted\">({} of work in a chain of \
             dependencies; bold bars)</span></p>",
            chain
                .iter()
                .map(|c| format!("<a href=\"/ops/nodes/{}\">{}</a>", seg(c), text(c)))
                .collect::<Vec<_>>()
                .join(" → "),
            duration(held)
        );
        let bars: Vec<GanttBar<'_>> = p
            .nodes
            .iter()
            .map(|n| GanttBar {
                node: &n.node,
                start_ms: (n.started_at - r.started_at).num_milliseconds().max(0),
                duration_ms: n.duration_ms,
                health: Health::of_run_status(&n.status),
                status: &n.status,
            })
            .collect();
        out.push_str("<div class=\"dagbox\">");
        out.push_str(&chart::gantt(&bars, &critical));
        out.push_str("</div>\n");
    }

    out.push_str(
        "<h2>Nodes</h2>\n<table class=\"nodes\"><thead><tr><th>node</th><th>kind</th>\
         <th>status</th><th>start</th><th>duration</th><th>read</th><th>staged</th>\
         <th>inserted</th><th>updated</th><th>unchanged</th><th>deleted</th><th>window</th>\
         <th>watermark</th></tr></thead><tbody>\n",
    );
    for n in p.nodes {
        let h = Health::of_run_status(&n.status);
        let window = match (&n.window_lower, &n.window_upper) {
            (None, None) => "–".to_string(),
            (l, u) => format!(
                "{} … {}",
                l.as_deref().unwrap_or("−∞"),
                u.as_deref().unwrap_or("+∞")
            ),
        };
        let watermark = match (&n.watermark_before, &n.watermark_after) {
            (Some(b), Some(a)) if a != b => format!("{b} → {a}"),
            (_, Some(a)) => a.clone(),
            (Some(b), None) => b.clone(),
            (None, None) => "–".into(),
        };
        let _ = writeln!(
            out,
            "<tr data-node=\"{}\"><td><a href=\"/ops/nodes/{}\">{}</a></td><td>{}</td><td>{}</td>\
             <td class=\"n\">+{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            attr(&n.node),
            seg(&n.node),
            text(&n.node),
            text(&n.kind),
            badge(h.as_str(), &n.status),
            duration((n.started_at - r.started_at).num_milliseconds()),
            duration(n.duration_ms),
            num(n.rows_read),
            num(n.rows_staged),
            num(n.inserted),
            num(n.updated),
            num(n.unchanged),
            num(n.deleted),
            text(&window),
            text(&watermark)
        );
    }
    out.push_str("</tbody></table>\n");
    let errors: Vec<&NodeRun> = p.nodes.iter().filter(|n| n.error.is_some()).collect();
    if !errors.is_empty() {
        out.push_str("<h2>Errors</h2>\n");
        for n in errors {
            let _ = write!(
                out,
                "<div class=\"failure\" data-node=\"{}\"><b>{}</b> {}",
                attr(&n.node),
                text(&n.node),
                badge("failed", &n.status)
            );
            if let Some(e) = &n.error {
                out.push_str(&error_html(e, p.errors, &n.run_id));
            }
            out.push_str("</div>\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(node: &str, start_s: i64, dur_s: i64) -> NodeRun {
        let t0: DateTime<Utc> = "2025-06-30T08:00:00Z".parse().unwrap();
        NodeRun {
            run_id: "r".into(),
            node: node.into(),
            kind: "sql".into(),
            target: None,
            mode: None,
            window_lower: None,
            window_upper: None,
            watermark_before: None,
            watermark_after: None,
            rows_read: 0,
            rows_staged: 0,
            inserted: 0,
            updated: 0,
            unchanged: 0,
            deleted: 0,
            bytes_billed: None,
            started_at: t0 + chrono::Duration::seconds(start_s),
            duration_ms: dur_s * 1000,
            status: "ok".into(),
            error: None,
            details: serde_json::json!({}),
        }
    }

    #[test]
    fn the_critical_path_follows_the_latest_dependency() {
        // a (0–10) and b (0–3) feed c (10–12); d (0–5) is independent.
        let nodes = vec![
            run("a", 0, 10),
            run("b", 0, 3),
            run("d", 0, 5),
            run("c", 10, 2),
        ];
        let deps: HashMap<String, Vec<String>> =
            [("c".to_string(), vec!["a".to_string(), "b".to_string()])]
                .into_iter()
                .collect();
        assert_eq!(critical_path(&nodes, &deps), vec!["a", "c"]);
        assert!(critical_path(&[], &deps).is_empty());
    }
}
