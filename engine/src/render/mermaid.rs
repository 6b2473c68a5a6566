//! The DAG as a Mermaid flowchart (`explain --format mermaid`), for pasting into Markdown docs
//! and issues: source tables as cylinders, builds as boxes, left to right.
//!
//! Node ids are `n0`, `n1`, … (a pipeline name may hold characters Mermaid reads as syntax);
//! the label carries the name, target, window and key, with `"` written as `#quot;`.

use std::fmt::Write as _;

use super::{Graph, NodeShape};

pub fn render(graph: &Graph) -> String {
    let mut out = String::from("flowchart LR\n");
    let _ = writeln!(out, "  %% pipeline {}", one_line(&graph.title));
    for (i, node) in graph.nodes.iter().enumerate() {
        let mut label = format!("<b>{}</b>", escape(&node.name));
        for line in node.lines() {
            label.push_str("<br/>");
            label.push_str(&escape(&line));
        }
        let (open, close) = match node.shape {
            NodeShape::Source => ("[(", ")]"),
            NodeShape::Build => ("[", "]"),
        };
        let _ = writeln!(out, "  n{i}{open}\"{label}\"{close}");
    }
    for &(a, b) in &graph.edges {
        let _ = writeln!(out, "  n{a} --> n{b}");
    }
    out.push_str("  classDef source fill:#e3f2fd,stroke:#1565c0\n");
    out.push_str("  classDef build fill:#fff8e1,stroke:#ef6c00\n");
    for shape in [NodeShape::Source, NodeShape::Build] {
        let ids: Vec<String> = graph
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.shape == shape)
            .map(|(i, _)| format!("n{i}"))
            .collect();
        if !ids.is_empty() {
            let _ = writeln!(out, "  class {} {}", ids.join(","), shape.as_str());
        }
    }
    out
}

/// A label fragment: Mermaid ends a quoted label at `"` and reads `#…;` as an entity, and the
/// label is HTML, so `<`, `>` and `&` are written as entities too.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in one_line(s).chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            c => out.push(c),
        }
    }
    out
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::GraphNode;

    #[test]
    fn shapes_edges_and_escaped_labels() {
        let node = |name: &str, shape| GraphNode {
            name: name.into(),
            shape,
            target: "raw.\"t\"".into(),
            window: "a < b # c".into(),
            key: None,
        };
        let g = Graph {
            title: "demo".into(),
            nodes: vec![
                node("src", NodeShape::Source),
                node("b\"x", NodeShape::Build),
            ],
            edges: vec![(0, 1)],
        };
        let m = render(&g);
        assert!(m.starts_with("flowchart LR\n"));
        assert!(
            m.contains(
                "  n0[(\"<b>src</b><br/>raw.#quot;t#quot;<br/>window: a #lt; b #35; c\")]\n"
            ),
            "{m}"
        );
        assert!(m.contains("  n1[\"<b>b#quot;x</b>"));
        assert!(m.contains("  n0 --> n1\n"));
        assert!(m.contains("  class n0 source\n") && m.contains("  class n1 build\n"));
    }
}
