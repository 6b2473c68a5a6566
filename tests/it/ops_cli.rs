//! Pictures and history in the terminal (issue 13): `explain --format svg|mermaid` for the demo
//! and production pipelines (valid SVG with one element per node and edge; Mermaid that parses
//! back to the same edges), and `pulso-flow runs` / `runs show` after an ok and a failed run.

use pulso_testkit as common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::*;

/// Environment that `pipelines.yaml` interpolates (no BigQuery is reached: explain is offline).
const PROD_ENV: [(&str, &str); 5] = [
    ("BQ_PROJECT", "proyecto-prueba"),
    ("BQ_DATASET", "dataset_prueba"),
    ("PULSO_UID", "uid0123456789abcdefg"),
    ("MIBOTAIR_CLIENT_ID", "77"),
    ("PULSO_BACKFILL_FROM", "2025-06-01"),
];

fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `pulso-flow explain FILE --format FORMAT` offline (no database), its stdout.
fn explain(file: &str, format: &str) -> String {
    let mut cmd = Command::new(bin());
    cmd.current_dir(repo())
        .args(["explain", file, "--format", format])
        .env_remove("DATABASE_URL")
        .env("PULSO_LOG", "error");
    for (k, v) in PROD_ENV {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run pulso-flow explain");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).expect("utf-8")
}

type Edges = BTreeSet<(String, String)>;

/// Node names with their kind, and edges, from `explain --format json`.
fn plan(file: &str) -> (BTreeMap<String, String>, Edges) {
    let v: serde_json::Value = serde_json::from_str(&explain(file, "json")).expect("json");
    let nodes = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                n["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let edges = v["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e[0].as_str().unwrap().to_string(),
                e[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (nodes, edges)
}

fn has_class(n: &roxmltree::Node<'_, '_>, class: &str) -> bool {
    n.attribute("class")
        .is_some_and(|c| c.split_whitespace().any(|x| x == class))
}

fn check_svg(file: &str) {
    let (nodes, edges) = plan(file);
    assert!(nodes.len() > 10 && edges.len() > 10, "{file}: {nodes:?}");
    let svg = explain(file, "svg");
    let doc = roxmltree::Document::parse(&svg)
        .unwrap_or_else(|e| panic!("{file}: the SVG is not well-formed XML: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    for dim in ["width", "height"] {
        let v: f64 = root.attribute(dim).unwrap().parse().unwrap();
        assert!(v > 100.0, "{file}: {dim} {v}");
    }
    let drawn: BTreeMap<String, String> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "g" && has_class(n, "node"))
        .map(|n| {
            let kind = if has_class(&n, "source") {
                "table"
            } else {
                assert!(has_class(&n, "build"), "{file}: node without a shape class");
                "sql"
            };
            (
                n.attribute("data-node").unwrap().to_string(),
                kind.to_string(),
            )
        })
        .collect();
    let count = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "g" && has_class(n, "node"))
        .count();
    assert_eq!(count, nodes.len(), "{file}: one element per node");
    assert_eq!(drawn, nodes, "{file}: every node, shaped by its kind");
    let paths: Vec<(String, String)> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "path" && has_class(n, "edge"))
        .map(|n| {
            assert!(n.attribute("d").is_some_and(|d| d.starts_with('M')));
            (
                n.attribute("data-from").unwrap().to_string(),
                n.attribute("data-to").unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(paths.len(), edges.len(), "{file}: one element per edge");
    assert_eq!(paths.into_iter().collect::<Edges>(), edges);
    // Each node is labelled with its target, window and key (tables) or its SQL (builds).
    for g in doc
        .descendants()
        .filter(|n| n.tag_name().name() == "g" && has_class(n, "node"))
    {
        let texts: Vec<&str> = g
            .descendants()
            .filter(|t| t.tag_name().name() == "text")
            .filter_map(|t| t.text())
            .collect();
        let name = g.attribute("data-node").unwrap();
        assert_eq!(texts[0], name);
        if has_class(&g, "source") {
            assert!(
                texts.iter().any(|t| t.starts_with("raw.")),
                "{name}: {texts:?}"
            );
            assert!(
                texts.iter().any(|t| t.starts_with("window: ")),
                "{name}: {texts:?}"
            );
            assert!(
                texts.iter().any(|t| t.starts_with("key: (")),
                "{name}: {texts:?}"
            );
        } else {
            assert!(
                texts.iter().any(|t| t.starts_with("SQL ")),
                "{name}: {texts:?}"
            );
        }
    }
}

/// Mermaid back to edges: `nI[…]` / `nI[(…)]` declare node I, whose label starts with
/// `<b>NAME</b>`; `nA --> nB` is an edge.
fn parse_mermaid(m: &str) -> (BTreeMap<String, String>, Edges) {
    let mut lines = m.lines();
    assert_eq!(lines.next(), Some("flowchart LR"));
    let mut names = BTreeMap::new();
    let mut shapes = BTreeMap::new();
    let mut raw_edges = Vec::new();
    for line in lines.map(str::trim) {
        if line.starts_with("%%") || line.starts_with("classDef ") || line.starts_with("class ") {
            continue;
        }
        if let Some((a, b)) = line.split_once(" --> ") {
            raw_edges.push((a.to_string(), b.to_string()));
            continue;
        }
        let open = line
            .find('[')
            .unwrap_or_else(|| panic!("unparsed line {line:?}"));
        let id = &line[..open];
        let (kind, label) = if let Some(l) = line[open..].strip_prefix("[(\"") {
            assert!(l.ends_with("\")]"), "{line}");
            ("table", l)
        } else {
            let l = line[open..].strip_prefix("[\"").unwrap();
            assert!(l.ends_with("\"]"), "{line}");
            ("sql", l)
        };
        let name = label
            .strip_prefix("<b>")
            .and_then(|l| l.split_once("</b>"))
            .map(|(n, _)| n)
            .unwrap_or_else(|| panic!("no name in {line:?}"));
        assert!(!name.contains('"'));
        names.insert(id.to_string(), name.to_string());
        shapes.insert(name.to_string(), kind.to_string());
    }
    let edges = raw_edges
        .into_iter()
        .map(|(a, b)| (names[&a].clone(), names[&b].clone()))
        .collect();
    (shapes, edges)
}

#[test]
fn explain_svg_of_the_demo_and_production_pipelines() {
    check_svg("examples/demo.yaml");
    check_svg("pipelines.yaml");
}

#[test]
fn explain_mermaid_parses_back_to_the_same_nodes_and_edges() {
    for file in ["examples/demo.yaml", "pipelines.yaml"] {
        let (nodes, edges) = plan(file);
        let (m_nodes, m_edges) = parse_mermaid(&explain(file, "mermaid"));
        assert_eq!(m_nodes, nodes, "{file}");
        assert_eq!(m_edges, edges, "{file}");
    }
}

const PIPELINE: &str = "\
name: history
tables:
  - name: pagos
    source: { kind: csv, path: pagos.csv }
    target: t.pagos
    columns: { doc: text, creado_el: timestamptz }
    primary_key: [doc]
    incremental: { column: creado_el, type: timestamp, lookback: 1d }
";

#[tokio::test(flavor = "multi_thread")]
async fn runs_lists_the_history_and_shows_a_run_with_its_full_error() {
    let db = TestDb::new("runs").await;
    let dir = tempfile::tempdir().unwrap();
    let csv = "doc,creado_el\nD1,2025-06-02T10:00:00Z\nD2,2025-06-03T10:00:00Z\n";
    write(dir.path(), "pagos.csv", csv);
    let file = write(dir.path(), "p.yaml", PIPELINE);
    let f = file.display().to_string();

    // Before any migration: a clear message, exit 2.
    let out = cli(&db.url, &["runs"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no run ledger"), "{}", text(&out));

    let out = cli(&db.url, &["run", &f], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A bad timestamp in a later file fails the table.
    write(
        dir.path(),
        "pagos.csv",
        "doc,creado_el\nD3,2025-06-04T99:00:00Z\n",
    );
    let out = cli(&db.url, &["run", &f], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let out = cli(&db.url, &["runs", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let runs = runs.as_array().expect("array");
    assert_eq!(runs.len(), 2, "{runs:?}");
    // Newest first.
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(runs[0]["nodes_failed"], 1);
    assert_eq!(runs[1]["status"], "ok");
    assert_eq!(runs[1]["nodes_ok"], 1);
    assert_eq!(runs[1]["inserted"], 2);
    assert_eq!(runs[1]["rows_read"], 2);
    let failed_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let ok_id = runs[1]["run_id"].as_str().unwrap().to_string();

    let out = cli(&db.url, &["runs", "--limit", "1"], &[]);
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(table.starts_with("RUN "), "{table}");
    assert!(
        table.contains(&failed_id) && !table.contains(&ok_id),
        "{table}"
    );

    let out = cli(&db.url, &["runs", "show", &failed_id], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(shown.contains("status failed"), "{shown}");
    assert!(shown.contains("error of pagos (failed):"), "{shown}");
    // The full error, as the ledger holds it (the operator has database access).
    let ledger_error: String = db
        .client()
        .await
        .query_one(
            "SELECT error FROM pulso_flow.node_runs WHERE run_id = $1",
            &[&failed_id],
        )
        .await
        .unwrap()
        .get(0);
    for line in ledger_error.lines() {
        assert!(shown.contains(line), "{line:?} missing from:\n{shown}");
    }

    let out = cli(&db.url, &["runs", "show", &ok_id, "--format", "json"], &[]);
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(run["status"], "ok");
    assert_eq!(run["nodes"][0]["node"], "pagos");
    assert_eq!(run["nodes"][0]["inserted"], 2);
    assert_eq!(
        run["nodes"][0]["watermark_after"],
        "2025-06-03T10:00:00.000000Z"
    );

    let out = cli(&db.url, &["runs", "show", "no-such-run"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no run \"no-such-run\""),
        "{}",
        text(&out)
    );
}
