//! `/ops/nodes/{name}`: one node — its state, its recent runs with errors, checks and
//! reconciliation results (from `node_runs.details`, keys `checks` and `reconcile`, once a run
//! records them), and a chart of rows written and duration per run.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use pulso_engine::render::GraphNode;
use pulso_sinks::status::{NodeRun, NodeStatus};
use serde_json::Value;

use super::chart::{self, RunPoint};
use super::health::Health;
use super::overview::refresh_form;
use super::page::{self, badge, duration, num, seg, text};
use super::{ErrorShown, RefreshForms, error_html};

pub struct NodePage<'a> {
    pub status: &'a NodeStatus,
    /// How the pipeline file describes it (absent when the node is only in the ledger).
    pub spec: Option<&'a GraphNode>,
    pub health: Health,
    /// Its freshness limit, seconds.
    pub max_age_seconds: i64,
    /// Newest first.
    pub runs: &'a [NodeRun],
    pub upstream: Vec<String>,
    pub downstream: Vec<String>,
    pub now: DateTime<Utc>,
    pub errors: ErrorShown,
    pub refresh: RefreshForms,
}

fn links(names: &[String]) -> String {
    if names.is_empty() {
        return "<span class=\"muted\">none</span>".into();
    }
    names
        .iter()
        .map(|n| format!("<a href=\"/ops/nodes/{}\">{}</a>", seg(n), text(n)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn render(p: &NodePage<'_>) -> String {
    let s = p.status;
    let mut out = String::with_capacity(32 * 1024);
    let _ = write!(
        out,
        "<div class=\"cards\"><div class=\"card\" id=\"health\" data-status=\"{}\"><b>{}</b>status</div>",
        p.health.as_str(),
        badge(p.health.as_str(), p.health.label())
    );
    if let Some(spec) = p.spec {
        let _ = write!(
            out,
            "<div class=\"card\"><b>{}</b>{}</div><div class=\"card\"><b>{}</b>window</div>",
            text(&spec.target),
            text(spec.shape.as_str()),
            text(&spec.window)
        );
        if let Some(k) = &spec.key {
            let _ = write!(out, "<div class=\"card\"><b>{}</b>key</div>", text(k));
        }
    }
    let _ = writeln!(
        out,
        "<div class=\"card\"><b>{}</b>watermark {}</div>\
         <div class=\"card\"><b>{}</b>last success (limit {})</div></div>",
        text(s.watermark.as_deref().unwrap_or("–")),
        text(s.inc_type.as_deref().unwrap_or("")),
        s.last_success_at
            .map(|t| text(&page::ago(t, p.now)))
            .unwrap_or_else(|| "never".into()),
        duration(p.max_age_seconds.saturating_mul(1000)),
    );
    let _ = writeln!(
        out,
        "<p>depends on: {} · feeds: {}</p>",
        links(&p.upstream),
        links(&p.downstream)
    );
    if p.refresh == RefreshForms::Shown {
        out.push_str(&refresh_form(Some(&s.node)));
    }

    if let Some(latest) = p.runs.first() {
        out.push_str("<h2>Checks and reconciliation</h2>\n");
        let mut any = false;
        for key in ["checks", "reconcile"] {
            if let Some(v) = latest.details.get(key) {
                any = true;
                let _ = writeln!(
                    out,
                    "<details open class=\"{key}\"><summary>{key} of run {}</summary>{}</details>",
                    text(&latest.run_id),
                    json_view(v)
                );
            }
        }
        if !any {
            out.push_str(
                "<p class=\"muted\">none recorded by its latest run (a run records them in \
                 <code>node_runs.details</code> under <code>checks</code> and \
                 <code>reconcile</code>)</p>\n",
            );
        }
    }

    out.push_str("<h2>Rows written and duration per run</h2>\n");
    let points: Vec<RunPoint<'_>> = p
        .runs
        .iter()
        .rev()
        .map(|r| RunPoint {
            run_id: &r.run_id,
            rows: r.inserted + r.updated,
            duration_ms: r.duration_ms,
            health: Health::of_run_status(&r.status),
        })
        .collect();
    if points.is_empty() {
        out.push_str("<p class=\"muted\">never ran</p>\n");
    } else {
        out.push_str("<div class=\"dagbox\">");
        out.push_str(&chart::runs_chart(&points));
        out.push_str("</div>\n");
    }

    out.push_str(
        "<h2>Recent runs</h2>\n<table class=\"node-runs\"><thead><tr><th>run</th><th>status</th>\
         <th>started (UTC)</th><th>duration</th><th>read</th><th>staged</th><th>inserted</th>\
         <th>updated</th><th>unchanged</th><th>deleted</th><th>watermark after</th><th>details</th>\
         </tr></thead><tbody>\n",
    );
    for r in p.runs {
        let h = Health::of_run_status(&r.status);
        let mut detail = String::new();
        if let Some(e) = &r.error {
            detail.push_str(&error_html(e, p.errors, &r.run_id));
        }
        let rest: Vec<(&String, &Value)> = r
            .details
            .as_object()
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        if !rest.is_empty() {
            let _ = write!(
                detail,
                "<details><summary>{} recorded</summary>{}</details>",
                text(
                    &rest
                        .iter()
                        .map(|(k, _)| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                json_view(&r.details)
            );
        }
        let _ = writeln!(
            out,
            "<tr data-run=\"{}\"><td><a href=\"/ops/runs/{}\">{}</a></td><td>{}</td><td>{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            page::attr(&r.run_id),
            seg(&r.run_id),
            text(&r.run_id),
            badge(h.as_str(), &r.status),
            page::ts(r.started_at),
            duration(r.duration_ms),
            num(r.rows_read),
            num(r.rows_staged),
            num(r.inserted),
            num(r.updated),
            num(r.unchanged),
            num(r.deleted),
            text(r.watermark_after.as_deref().unwrap_or("–")),
            detail
        );
    }
    out.push_str("</tbody></table>\n");
    out
}

/// A JSON value for a person: an array of flat objects as a table, anything else indented.
fn json_view(v: &Value) -> String {
    if let Some(rows) = v.as_array()
        && !rows.is_empty()
        && rows.iter().all(|r| {
            r.as_object()
                .is_some_and(|o| o.values().all(|x| !x.is_object() && !x.is_array()))
        })
    {
        let mut cols: Vec<&str> = Vec::new();
        for r in rows {
            for k in r.as_object().into_iter().flat_map(|o| o.keys()) {
                if !cols.contains(&k.as_str()) {
                    cols.push(k);
                }
            }
        }
        let mut out = String::from("<table><thead><tr>");
        for c in &cols {
            let _ = write!(out, "<th>{}</th>", text(c));
        }
        out.push_str("</tr></thead><tbody>");
        for r in rows {
            out.push_str("<tr>");
            for c in &cols {
                let cell = match r.get(*c) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(x) => x.to_string(),
                };
                let _ = write!(out, "<td>{}</td>", text(&cell));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
        return out;
    }
    let pretty = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    format!("<pre>{}</pre>", text(&pretty))
}

#[cfg(test)]
mod tests {
    use super::json_view;
    use serde_json::json;

    #[test]
    fn checks_as_a_table_other_json_indented_and_escaped() {
        let t = json_view(&json!([
            {"check": "not_null(id)", "passed": true},
            {"check": "<rows>", "passed": false, "failing": 3}
        ]));
        assert!(t.starts_with("<table>"));
        assert!(t.contains("<th>failing</th>") && t.contains("<td>&lt;rows&gt;</td>"));
        let p = json_view(&json!({"days": ["2025-06-30"]}));
        assert!(p.starts_with("<pre>") && p.contains("2025-06-30"));
    }
}
