//! The DAG as a standalone SVG document: source tables as cylinders, SQL builds as rounded
//! boxes, edges as curves with arrowheads, each node labelled with its name, target, window and
//! key.
//!
//! Only SVG presentation attributes are used (no `style` attribute, no `<style>` element, no
//! script), so the same markup is allowed inline in an HTML page under a CSP without
//! `'unsafe-inline'`. Every node is one `<g class="node …" data-node="NAME">` and every edge one
//! `<path class="edge" data-from="A" data-to="B">`, which is what tests and the operations page's
//! browser test look for.

use std::fmt::Write as _;

use super::layout::{self, LayoutError};
use super::{Graph, NodeShape};

/// Font of every label: monospace, so a label's width is known without measuring text.
const FONT: &str = "DejaVu Sans Mono, Menlo, Consolas, monospace";
const NAME_SIZE: f64 = 13.0;
const LINE_SIZE: f64 = 11.0;
/// Advance of one monospace character, as a fraction of the font size.
const CHAR_W: f64 = 0.61;
const PAD_X: f64 = 10.0;
const PAD_Y: f64 = 8.0;
const LINE_H: f64 = 1.35;
/// Longest label line drawn; longer ones are cut with "…" (the full text is in the tooltip).
const MAX_CHARS: usize = 46;
/// Room for a cylinder's top and bottom curves.
const CYLINDER_RY: f64 = 6.0;

/// How one node looks: colours, a link, extra classes and lines. [`NodeDecor::plain`] is the
/// look of `explain --format svg`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDecor {
    pub fill: String,
    pub stroke: String,
    /// Extra classes of the node's `<g>` (e.g. `status-failed`).
    pub class: String,
    /// `data-status` of the node's `<g>`, when it has a status.
    pub status: Option<String>,
    /// The node becomes a link.
    pub href: Option<String>,
    /// Lines drawn under the name instead of target, window and key.
    pub lines: Option<Vec<String>>,
}

impl NodeDecor {
    pub fn plain(shape: NodeShape) -> NodeDecor {
        let (fill, stroke) = match shape {
            NodeShape::Source => ("#e3f2fd", "#1565c0"),
            NodeShape::Build => ("#fff8e1", "#ef6c00"),
        };
        NodeDecor {
            fill: fill.into(),
            stroke: stroke.into(),
            class: String::new(),
            status: None,
            href: None,
            lines: None,
        }
    }
}

/// Drawing options.
#[derive(Debug, Clone, PartialEq)]
pub struct SvgOptions {
    /// Prefix of the document's ids (the arrow marker, node ids), so that two drawings inlined
    /// in one HTML page do not collide.
    pub id_prefix: String,
    /// Write the `<?xml …?>` declaration (a standalone file) or not (inline in HTML).
    pub standalone: bool,
}

impl Default for SvgOptions {
    fn default() -> Self {
        SvgOptions {
            id_prefix: "dag-".into(),
            standalone: true,
        }
    }
}

/// `explain --format svg`: every node in its plain look.
pub fn render_plain(graph: &Graph) -> Result<String, LayoutError> {
    let decor: Vec<NodeDecor> = graph
        .nodes
        .iter()
        .map(|n| NodeDecor::plain(n.shape))
        .collect();
    render(graph, &decor, &SvgOptions::default())
}

/// Draw `graph`, node `i` as `decor[i]` (a missing entry draws plain).
pub fn render(
    graph: &Graph,
    decor: &[NodeDecor],
    opts: &SvgOptions,
) -> Result<String, LayoutError> {
    let labels: Vec<(String, Vec<String>)> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let lines = decor
                .get(i)
                .and_then(|d| d.lines.clone())
                .unwrap_or_else(|| n.lines());
            (n.name.clone(), lines)
        })
        .collect();
    let sizes: Vec<(f64, f64)> = graph
        .nodes
        .iter()
        .zip(&labels)
        .map(|(n, (name, lines))| {
            let chars = lines
                .iter()
                .map(|l| clip(l).chars().count())
                .max()
                .unwrap_or(0);
            let w = (chars as f64 * LINE_SIZE * CHAR_W)
                .max(clip(name).chars().count() as f64 * NAME_SIZE * CHAR_W)
                + 2.0 * PAD_X;
            let mut h = 2.0 * PAD_Y + NAME_SIZE * LINE_H + lines.len() as f64 * LINE_SIZE * LINE_H;
            if n.shape == NodeShape::Source {
                h += 2.0 * CYLINDER_RY;
            }
            (w.ceil(), h.ceil())
        })
        .collect();
    let lay = layout::layout(&sizes, &graph.edges)?;
    let p = &opts.id_prefix;
    let mut out = String::with_capacity(4096 + graph.nodes.len() * 700);
    if opts.standalone {
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    }
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"dag\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"pipeline {title}: {n} nodes, {e} edges\" \
         font-family=\"{FONT}\">",
        w = lay.width.ceil(),
        h = lay.height.ceil(),
        title = attr(&graph.title),
        n = graph.nodes.len(),
        e = graph.edges.len(),
    );
    let _ = writeln!(out, "<title>pipeline {}</title>", text(&graph.title));
    let _ = writeln!(
        out,
        "<defs><marker id=\"{p}arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">\
         <path d=\"M0,0 L10,5 L0,10 z\" fill=\"#607d8b\"/></marker></defs>"
    );
    out.push_str("<g class=\"edges\">\n");
    for (e, &(a, b)) in graph.edges.iter().enumerate() {
        let _ = writeln!(
            out,
            "<path class=\"edge\" data-from=\"{}\" data-to=\"{}\" d=\"{}\" fill=\"none\" \
             stroke=\"#90a4ae\" stroke-width=\"1.4\" marker-end=\"url(#{p}arrow)\"/>",
            attr(&graph.nodes[a].name),
            attr(&graph.nodes[b].name),
            curve(&lay.edges[e]),
        );
    }
    out.push_str("</g>\n<g class=\"nodes\">\n");
    for (i, node) in graph.nodes.iter().enumerate() {
        let plain = NodeDecor::plain(node.shape);
        let d = decor.get(i).unwrap_or(&plain);
        let r = lay.nodes[i];
        let class = if d.class.is_empty() {
            format!("node {}", node.shape.as_str())
        } else {
            format!("node {} {}", node.shape.as_str(), attr(&d.class))
        };
        let _ = write!(
            out,
            "<g class=\"{class}\" id=\"{p}node-{}\" data-node=\"{}\"",
            ident(&node.name),
            attr(&node.name)
        );
        if let Some(s) = &d.status {
            let _ = write!(out, " data-status=\"{}\"", attr(s));
        }
        out.push_str(">\n");
        if let Some(href) = &d.href {
            let _ = writeln!(out, "<a href=\"{}\">", attr(href));
        }
        let (name, lines) = &labels[i];
        let mut tip = name.clone();
        for l in lines {
            tip.push('\n');
            tip.push_str(l);
        }
        let _ = writeln!(out, "<title>{}</title>", text(&tip));
        let (fill, stroke) = (attr(&d.fill), attr(&d.stroke));
        match node.shape {
            NodeShape::Source => {
                let (x, y, w, h, ry) = (r.x, r.y, r.w, r.h, CYLINDER_RY);
                let rx = w / 2.0;
                let _ = writeln!(
                    out,
                    "<path class=\"shape\" d=\"M{x:.1},{y1:.1} A{rx:.1},{ry} 0 0 1 {x2:.1},{y1:.1} \
                     V{y3:.1} A{rx:.1},{ry} 0 0 1 {x:.1},{y3:.1} Z\" fill=\"{fill}\" \
                     stroke=\"{stroke}\" stroke-width=\"1.5\"/>\n\
                     <path d=\"M{x:.1},{y1:.1} A{rx:.1},{ry} 0 0 0 {x2:.1},{y1:.1}\" fill=\"none\" \
                     stroke=\"{stroke}\" stroke-width=\"1.5\"/>",
                    y1 = y + ry,
                    x2 = x + w,
                    y3 = y + h - ry,
                );
            }
            NodeShape::Build => {
                let _ = writeln!(
                    out,
                    "<rect class=\"shape\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                     rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"/>",
                    r.x, r.y, r.w, r.h
                );
            }
        }
        let top = r.y
            + PAD_Y
            + if node.shape == NodeShape::Source {
                2.0 * CYLINDER_RY
            } else {
                0.0
            };
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{NAME_SIZE}\" font-weight=\"bold\" \
             fill=\"#102027\">{}</text>",
            r.x + PAD_X,
            top + NAME_SIZE,
            text(&clip(name))
        );
        for (k, line) in lines.iter().enumerate() {
            let _ = writeln!(
                out,
                "<text class=\"line\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"{LINE_SIZE}\" \
                 fill=\"#37474f\">{}</text>",
                r.x + PAD_X,
                top + NAME_SIZE * LINE_H + (k as f64 + 1.0) * LINE_SIZE * LINE_H - 2.0,
                text(&clip(line))
            );
        }
        if d.href.is_some() {
            out.push_str("</a>\n");
        }
        out.push_str("</g>\n");
    }
    out.push_str("</g>\n</svg>\n");
    Ok(out)
}

/// A polyline as a smooth path: each segment a cubic curve leaving and entering horizontally.
fn curve(points: &[(f64, f64)]) -> String {
    let mut d = String::new();
    let Some(&(x0, y0)) = points.first() else {
        return d;
    };
    let _ = write!(d, "M{x0:.1},{y0:.1}");
    for w in points.windows(2) {
        let ((ax, ay), (bx, by)) = (w[0], w[1]);
        let mid = (ax + bx) / 2.0;
        let _ = write!(d, " C{mid:.1},{ay:.1} {mid:.1},{by:.1} {bx:.1},{by:.1}");
    }
    d
}

fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_CHARS {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(MAX_CHARS - 1).collect();
        c.push('…');
        c
    }
}

/// Text content, XML-escaped.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // Characters XML 1.0 does not allow at all.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// An attribute value (double-quoted), XML-escaped.
pub fn attr(s: &str) -> String {
    text(s).replace('"', "&quot;").replace('\n', "&#10;")
}

/// A string usable inside an id: letters, digits, `-` and `_`; anything else as `_`.
pub fn ident(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Graph, GraphNode};

    fn graph() -> Graph {
        let node = |name: &str, shape| GraphNode {
            name: name.into(),
            shape,
            target: "raw.t".into(),
            window: "incremental".into(),
            key: Some("(id)".into()),
        };
        Graph {
            title: "t<&>\"".into(),
            nodes: vec![
                node("a", NodeShape::Source),
                node("b & <c>", NodeShape::Source),
                node("m", NodeShape::Build),
            ],
            edges: vec![(0, 2), (1, 2)],
        }
    }

    #[test]
    fn one_group_per_node_and_one_path_per_edge_with_escaped_text() {
        let svg = render_plain(&graph()).unwrap();
        assert_eq!(svg.matches("<g class=\"node ").count(), 3);
        assert_eq!(svg.matches("<path class=\"edge\"").count(), 2);
        assert!(svg.contains("data-node=\"b &amp; &lt;c&gt;\""), "{svg}");
        assert!(svg.contains("aria-label=\"pipeline t&lt;&amp;&gt;&quot;:"));
        assert!(!svg.contains("style="), "presentation attributes only");
        assert!(svg.contains("class=\"node source\"") && svg.contains("class=\"node build\""));
    }

    #[test]
    fn decor_sets_colour_status_link_and_lines() {
        let g = graph();
        let mut decor: Vec<NodeDecor> = g.nodes.iter().map(|n| NodeDecor::plain(n.shape)).collect();
        decor[2] = NodeDecor {
            fill: "#ffcdd2".into(),
            stroke: "#c62828".into(),
            class: "status-failed".into(),
            status: Some("failed".into()),
            href: Some("/ops/nodes/m?x=1&y=2".into()),
            lines: Some(vec!["failed 2m ago".into()]),
        };
        let opts = SvgOptions {
            id_prefix: "p-".into(),
            standalone: false,
        };
        let svg = render(&g, &decor, &opts).unwrap();
        assert!(!svg.starts_with("<?xml"));
        assert!(svg.contains("class=\"node build status-failed\" id=\"p-node-m\" data-node=\"m\" data-status=\"failed\""));
        assert!(svg.contains("<a href=\"/ops/nodes/m?x=1&amp;y=2\">"));
        assert!(svg.contains("fill=\"#ffcdd2\""));
        assert!(svg.contains(">failed 2m ago</text>"));
        assert!(svg.contains("marker-end=\"url(#p-arrow)\""));
    }

    #[test]
    fn long_lines_are_clipped_but_kept_in_the_tooltip() {
        let mut g = graph();
        g.nodes[0].window = "x".repeat(80);
        let svg = render_plain(&g).unwrap();
        assert!(svg.contains(&format!("window: {}…</text>", "x".repeat(MAX_CHARS - 9))));
        assert!(svg.contains(&format!("window: {}\nkey: (id)</title>", "x".repeat(80))));
    }
}
