//! `explain`: the dry run. What each node would do, without loading anything.
//!
//! Works offline: with no reachable database every window is "unknown: no database", and the
//! rest (nodes, edges, source, DataFusion plan, the exact staging and merge SQL) is still shown.

use std::fmt::Write as _;
use std::time::Duration;

use pulso_operators::source::SourceContext;
use pulso_operators::transform;
use pulso_operators::window::Window;
use pulso_sinks::state::{self, RunMode};
use serde_json::{Value, json};

use crate::pipeline::{NodeKind, Pipeline, TableNode};
use crate::window::window_for;

#[derive(Debug, Clone)]
pub struct NodeExplain {
    pub name: String,
    pub kind: &'static str,
    pub depends_on: Vec<String>,
    pub target: Option<String>,
    pub mode: Option<&'static str>,
    pub source: Option<String>,
    pub window: String,
    pub plan: String,
    /// What the source itself explains (label, text): for BigQuery the SQL with its parameters
    /// resolved, the read path and a dry run (bytes, estimated cost) or why it was not reached.
    pub source_details: Vec<(String, String)>,
    /// (step, SQL) in execution order.
    pub sql: Vec<(&'static str, String)>,
    /// Its gates: `reconcile:` and each check (name, kind, severity, table), with their SQL.
    pub gates: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Explain {
    pub pipeline: String,
    /// `Ok(())` when the database answered, else why not.
    pub database: Result<(), String>,
    pub nodes: Vec<NodeExplain>,
    pub edges: Vec<(String, String)>,
}

/// Build the explanation. `database_url` is tried with a short timeout; failure is not an error.
pub async fn explain(
    pipeline: &Pipeline,
    database_url: Option<&str>,
    full_refresh: bool,
) -> Explain {
    let client = match database_url {
        None => Err("no DATABASE_URL".to_string()),
        Some(url) => {
            match tokio::time::timeout(Duration::from_secs(3), pulso_sinks::connect::connect(url))
                .await
            {
                Ok(Ok(c)) => Ok(c),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("connection timed out".to_string()),
            }
        }
    };
    let run_start = chrono::Utc::now();
    let mut nodes = Vec::with_capacity(pipeline.nodes.len());
    for &i in &pipeline.dag.order {
        let node = &pipeline.nodes[i];
        let mut ex = NodeExplain {
            name: node.name.clone(),
            kind: node.kind.as_str(),
            depends_on: node.depends_on.clone(),
            target: None,
            mode: None,
            source: None,
            window: String::new(),
            plan: String::new(),
            source_details: Vec::new(),
            sql: Vec::new(),
            gates: Vec::new(),
        };
        match &node.kind {
            NodeKind::Table(t) => {
                let mode = if full_refresh {
                    RunMode::FullRefresh
                } else {
                    t.mode
                };
                let full = mode == RunMode::FullRefresh;
                ex.target = Some(t.shape.target.to_string());
                ex.mode = Some(mode.as_str());
                ex.source = Some(t.source.describe());
                let window = match &client {
                    Ok(c) => {
                        resolve_window(c, &node.name, t, full, run_start, pipeline.time_zone).await
                    }
                    Err(reason) => Err(format!("unknown: no database ({reason})")),
                };
                ex.window = match &window {
                    Ok(w) => describe_window(w.as_ref()),
                    Err(text) => text.clone(),
                };
                let window = window.ok().flatten();
                let ctx = source_context(pipeline, t, window.as_ref());
                ex.source_details = t.source.explain(&ctx).await;
                ex.plan = plan_text(&ctx, t, window.as_ref()).await;
                let s = &t.shape;
                ex.sql
                    .push(("direct_load_if_target_empty", s.copy_into_target()));
                ex.sql.push((
                    "direct_load_dedup_if_key_collides",
                    s.delete_duplicates_in_target(),
                ));
                ex.sql.push(("staging", s.create_staging()));
                ex.sql.push(("copy", s.copy_into_staging()));
                ex.sql
                    .push(("insert_into_empty_target", s.insert_into_empty(false)));
                ex.sql.push(("merge", s.merge(false)));
                // When the encoder saw no key twice (sinks::encode::keys): no dedup.
                ex.sql
                    .push(("merge_if_staged_keys_distinct", s.merge(true)));
                if full {
                    ex.sql.push(("delete_missing", s.delete_missing()));
                }
                if t.create_target {
                    ex.sql.push(("create_target_if_missing", s.create_target()));
                }
                ex.gates = crate::gates::explain(Some(t), &t.checks);
            }
            NodeKind::Build(b) => {
                ex.source = Some(format!("SQL ({})", b.origin));
                ex.window = "n/a".into();
                ex.sql.push(("build", b.sql.trim().to_string()));
                ex.gates = crate::gates::explain(None, &b.checks);
            }
        }
        nodes.push(ex);
    }
    let edges = pipeline
        .dag
        .edges
        .iter()
        .map(|&(a, b)| {
            (
                pipeline.nodes[a].name.clone(),
                pipeline.nodes[b].name.clone(),
            )
        })
        .collect();
    Explain {
        pipeline: pipeline.name.clone(),
        database: client.map(|_| ()),
        nodes,
        edges,
    }
}

async fn resolve_window(
    client: &tokio_postgres::Client,
    node: &str,
    table: &TableNode,
    full: bool,
    run_start: chrono::DateTime<chrono::Utc>,
    time_zone: chrono_tz::Tz,
) -> Result<Option<Window>, String> {
    // A database that was never migrated simply has no watermarks yet.
    let unknown = |e: pulso_sinks::SinkError| format!("unknown: {e}");
    let watermark = if state::has_state(client).await.map_err(unknown)? {
        state::stored_watermark(client, node)
            .await
            .map_err(unknown)?
    } else {
        None
    };
    window_for(table, watermark, full, run_start, time_zone).map_err(|e| format!("unknown: {e}"))
}

fn describe_window(w: Option<&Window>) -> String {
    match w {
        None => "everything (no incremental window)".into(),
        Some(w) => {
            let mut parts = Vec::new();
            if let Some(l) = &w.lower {
                parts.push(format!("{} >= {}", w.column, l.to_iso()));
            }
            if let Some(u) = &w.upper {
                parts.push(format!("{} < {}", w.column, u.to_iso()));
            }
            if parts.is_empty() {
                format!("everything (first load of {}; no initial bound)", w.column)
            } else {
                parts.join(" AND ")
            }
        }
    }
}

fn source_context(pipeline: &Pipeline, t: &TableNode, window: Option<&Window>) -> SourceContext {
    SourceContext {
        batch_size: t.batch_size,
        base_dir: pipeline.base_dir.clone(),
        window: window.cloned(),
        bigquery: pipeline.bigquery.clone(),
    }
}

async fn plan_text(ctx: &SourceContext, t: &TableNode, window: Option<&Window>) -> String {
    match t.source.schema(ctx).await {
        Ok(schema) => transform::explain(schema, &t.transform, window)
            .await
            .unwrap_or_else(|e| format!("unknown: {e}")),
        Err(e) => format!("unknown: source schema not available offline ({e})"),
    }
}

impl Explain {
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "pipeline {}: {} nodes, {} edges\n",
            self.pipeline,
            self.nodes.len(),
            self.edges.len()
        );
        if let Err(e) = &self.database {
            let _ = writeln!(out, "database: unreachable ({e}); windows are unknown");
        }
        for n in &self.nodes {
            let _ = writeln!(out, "\n== {} [{}]", n.name, n.kind);
            if !n.depends_on.is_empty() {
                let _ = writeln!(out, "  depends on: {}", n.depends_on.join(", "));
            }
            if let Some(t) = &n.target {
                let _ = writeln!(out, "  target: {t} ({})", n.mode.unwrap_or(""));
            }
            if let Some(s) = &n.source {
                let _ = writeln!(out, "  source: {s}");
            }
            for (label, text) in &n.source_details {
                if text.contains('\n') {
                    let _ = writeln!(out, "  {label}:");
                    for line in text.lines() {
                        let _ = writeln!(out, "    {line}");
                    }
                } else {
                    let _ = writeln!(out, "  {label}: {text}");
                }
            }
            let _ = writeln!(out, "  window: {}", n.window);
            if !n.plan.is_empty() {
                let _ = writeln!(out, "  transform plan:");
                for line in n.plan.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            for (step, sql) in &n.sql {
                let _ = writeln!(out, "  {step}:");
                for line in sql.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            for (gate, sql) in &n.gates {
                let _ = writeln!(out, "  {gate}:");
                for line in sql.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
        out
    }

    pub fn to_json(&self) -> Value {
        json!({
            "pipeline": self.pipeline,
            "database": match &self.database { Ok(()) => json!("reachable"), Err(e) => json!({"unreachable": e}) },
            "nodes": self.nodes.iter().map(|n| json!({
                "name": n.name,
                "kind": n.kind,
                "depends_on": n.depends_on,
                "target": n.target,
                "mode": n.mode,
                "source": n.source,
                "source_details": n.source_details.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "window": n.window,
                "plan": n.plan,
                "sql": n.sql.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "gates": n.gates.iter().map(|(k, v)| json!({"gate": k, "sql": v})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "edges": self.edges.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
        })
    }

    pub fn to_dot(&self) -> String {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let q = |s: &str| format!("\"{}\"", esc(s));
        let mut out = format!("digraph {} {{\n  rankdir=LR;\n", q(&self.pipeline));
        for n in &self.nodes {
            let shape = if n.kind == "table" { "box" } else { "ellipse" };
            // `\n` is DOT's line break inside a label, so escape the parts, not the joined text.
            let label = match &n.target {
                Some(t) => format!("{}\\n{}", esc(&n.name), esc(t)),
                None => esc(&n.name),
            };
            let _ = writeln!(out, "  {} [shape={shape}, label=\"{label}\"];", q(&n.name));
        }
        for (a, b) in &self.edges {
            let _ = writeln!(out, "  {} -> {};", q(a), q(b));
        }
        out.push_str("}\n");
        out
    }
}
