//! `/ops`: the DAG with every node coloured by its status and labelled with its last run, the
//! failures, and the latest runs.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use pulso_engine::render::Graph;
use pulso_engine::render::svg::{self, NodeDecor, SvgOptions};
use pulso_sinks::status::{NodeRun, NodeStatus, RunOverview};

use super::health::Health;
use super::page::{self, attr, badge, duration, num, seg, text};
use super::{ErrorShown, RefreshForms, error_html};

/// One node as the overview shows it.
pub struct NodeView<'a> {
    pub status: &'a NodeStatus,
    /// Its latest run, whole (counters by kind).
    pub latest: Option<&'a NodeRun>,
    pub health: Health,
}

pub struct Overview<'a> {
    pub pipeline: &'a str,
    pub graph: &'a Graph,
    /// By node name; nodes of the graph without an entry are drawn as never run.
    pub nodes: HashMap<&'a str, NodeView<'a>>,
    pub runs: &'a [RunOverview],
    pub now: DateTime<Utc>,
    pub errors: ErrorShown,
    pub refresh: RefreshForms,
    pub data_version: i64,
}

/// The lines drawn in a node of the DAG.
fn node_lines(v: &NodeView<'_>, now: DateTime<Utc>) -> Vec<String> {
    let mut lines = Vec::with_capacity(3);
    let s = v.status;
    match v.latest {
        Some(r) => {
            lines.push(format!(
                "{} · {} · {}",
                v.health.label(),
                page::ago(r.finished_at(), now),
                duration(r.duration_ms)
            ));
            lines.push(format!(
                "read {} · ins {} · upd {}",
                num(r.rows_read),
                num(r.inserted),
                num(r.updated)
            ));
        }
        None => lines.push(v.health.label().to_string()),
    }
    if let Some(w) = &s.watermark {
        lines.push(format!("watermark {w}"));
    }
    lines
}

/// The DAG as inline SVG, each node coloured by its health and linked to its page.
pub fn dag_svg(o: &Overview<'_>) -> String {
    let never = Health::Never;
    let decor: Vec<NodeDecor> = o
        .graph
        .nodes
        .iter()
        .map(|n| {
            let view = o.nodes.get(n.name.as_str());
            let health = view.map_or(never, |v| v.health);
            NodeDecor {
                fill: health.fill().into(),
                stroke: health.stroke().into(),
                class: format!("status-{}", health.as_str()),
                status: Some(health.as_str().into()),
                href: Some(format!("/ops/nodes/{}", seg(&n.name))),
                lines: Some(match view {
                    Some(v) => node_lines(v, o.now),
                    None => vec![never.label().to_string()],
                }),
            }
        })
        .collect();
    let opts = SvgOptions {
        id_prefix: "dag-".into(),
        standalone: false,
    };
    match svg::render(o.graph, &decor, &opts) {
        Ok(s) => s,
        // The pipeline's DAG is acyclic by construction; say so rather than draw nothing.
        Err(e) => format!(
            "<p class=\"muted\">the DAG cannot be drawn: {}</p>",
            text(&e.to_string())
        ),
    }
}

pub fn render(o: &Overview<'_>) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let mut counts = [0usize; 4];
    for n in &o.graph.nodes {
        let h = o
            .nodes
            .get(n.name.as_str())
            .map_or(Health::Never, |v| v.health);
        counts[Health::ALL.iter().position(|x| *x == h).unwrap_or(3)] += 1;
    }
    out.push_str("<div class=\"cards\">");
    let _ = write!(
        out,
        "<div class=\"card\"><b>{}</b>nodes</div>",
        o.graph.nodes.len()
    );
    for (h, c) in Health::ALL.iter().zip(counts) {
        let _ = write!(
            out,
            "<div class=\"card\" id=\"count-{}\"><b>{c}</b>{}</div>",
            h.as_str(),
            badge(h.as_str(), h.label())
        );
    }
    if let Some(r) = o.runs.first() {
        let _ = write!(
            out,
            "<div class=\"card\"><b><a href=\"/ops/runs/{}\">{}</a></b>latest run {}</div>",
            seg(&r.run_id),
            text(&r.status),
            page::ago(r.started_at, o.now)
        );
    }
    let _ = writeln!(
        out,
        "<div class=\"card\"><b>{}</b>data version</div></div>",
        o.data_version
    );

    if o.refresh == RefreshForms::Shown {
        out.push_str(&refresh_form(None));
    }

    out.push_str("<h2>Pipeline</h2>\n<div class=\"legend\">");
    for h in Health::ALL {
        out.push_str(&badge(h.as_str(), h.label()));
    }
    out.push_str(
        "<span class=\"muted\">cylinders: source tables · boxes: SQL builds · click a node for \
         its runs</span></div>\n<div class=\"dagbox\">\n",
    );
    out.push_str(&dag_svg(o));
    out.push_str("</div>\n");

    let mut failed: Vec<&NodeView<'_>> = o
        .nodes
        .values()
        .filter(|v| v.health == Health::Failed)
        .collect();
    failed.sort_by(|a, b| a.status.node.cmp(&b.status.node));
    if !failed.is_empty() {
        out.push_str("<h2>Failures</h2>\n");
        for v in failed {
            let s = v.status;
            let _ = write!(
                out,
                "<div class=\"failure\" data-node=\"{}\"><a href=\"/ops/nodes/{}\">{}</a> {} ",
                attr(&s.node),
                seg(&s.node),
                text(&s.node),
                badge("failed", s.last_status.as_deref().unwrap_or("failed")),
            );
            if let (Some(run), Some(at)) = (&s.last_run_id, s.last_started_at) {
                let _ = write!(
                    out,
                    "in run <a href=\"/ops/runs/{}\">{}</a>, {}",
                    seg(run),
                    text(run),
                    page::when(at, o.now)
                );
            }
            if let Some(e) = &s.last_error {
                out.push_str(&error_html(
                    e,
                    o.errors,
                    s.last_run_id.as_deref().unwrap_or("RUN_ID"),
                ));
            }
            out.push_str("</div>\n");
        }
    }

    out.push_str("<h2>Latest runs</h2>\n");
    out.push_str(&runs_table(o.runs, o.now));
    out
}

/// The runs as a table, newest first.
pub fn runs_table(runs: &[RunOverview], now: DateTime<Utc>) -> String {
    if runs.is_empty() {
        return "<p class=\"muted\">no runs yet</p>\n".into();
    }
    let mut out = String::from(
        "<table class=\"runs\"><thead><tr><th>run</th><th>status</th><th>started (UTC)</th>\
         <th>duration</th><th>nodes ok</th><th>failed</th><th>of</th><th>rows read</th>\
         <th>inserted</th><th>updated</th></tr></thead><tbody>\n",
    );
    for r in runs {
        let class = match r.status.as_str() {
            "ok" => "ok",
            "running" => "running",
            _ => "failed",
        };
        let _ = writeln!(
            out,
            "<tr data-run=\"{}\"><td><a href=\"/ops/runs/{}\">{}</a></td><td>{}</td><td>{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            attr(&r.run_id),
            seg(&r.run_id),
            text(&r.run_id),
            badge(class, &r.status),
            page::when(r.started_at, now),
            r.duration_ms().map(duration).unwrap_or_else(|| "–".into()),
            r.nodes_ok,
            r.nodes_failed,
            r.nodes,
            num(r.rows_read),
            num(r.inserted),
            num(r.updated)
        );
    }
    out.push_str("</tbody></table>\n");
    out
}

/// The refresh form: the operator pastes the token; it is posted in the body to
/// `/ops/refresh` and never written into a page.
pub fn refresh_form(node: Option<&str>) -> String {
    let (hidden, label) = match node {
        Some(n) => (
            format!(
                "<input type=\"hidden\" name=\"node\" value=\"{}\">",
                attr(n)
            ),
            format!("Refresh {} and downstream", text(n)),
        ),
        None => (String::new(), "Refresh everything".to_string()),
    };
    format!(
        "<form class=\"refresh\" method=\"post\" action=\"/ops/refresh\">{hidden}\
         <input type=\"password\" name=\"token\" required autocomplete=\"off\" \
         placeholder=\"refresh token\" aria-label=\"refresh token\">\
         <label><input type=\"checkbox\" name=\"full_refresh\" value=\"true\"> full refresh</label>\
         <button type=\"submit\">{label}</button></form>\n"
    )
}
