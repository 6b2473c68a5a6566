//! Pictures of a pipeline's DAG without Graphviz: a [`Graph`] (what each node is and shows),
//! laid out by [`layout`] (layered, left to right) and drawn as SVG by [`svg`] or written as a
//! Mermaid flowchart by [`mermaid`].
//!
//! Used by `pulso-flow explain --format svg|mermaid` and by the API's operations page, which
//! colours each node by its status through [`svg::NodeDecor`].

pub mod layout;
pub mod mermaid;
pub mod svg;

use crate::pipeline::{NodeKind, Pipeline};

/// How a node is drawn: a source table (loaded from outside) or an SQL build inside PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeShape {
    Source,
    Build,
}

impl NodeShape {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeShape::Source => "source",
            NodeShape::Build => "build",
        }
    }
}

/// One node of the picture: its name and the lines shown under it.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphNode {
    pub name: String,
    pub shape: NodeShape,
    /// The target table (source tables) or where the SQL comes from (builds).
    pub target: String,
    /// The incremental window: the resolved one when known, else what the file declares.
    pub window: String,
    /// The primary key (source tables).
    pub key: Option<String>,
}

impl GraphNode {
    /// The text lines drawn under the name.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![self.target.clone(), format!("window: {}", self.window)];
        if let Some(k) = &self.key {
            lines.push(format!("key: {k}"));
        }
        lines
    }
}

/// A pipeline's DAG as drawn: nodes in the pipeline's topological order, edges `(from, to)` as
/// indices into `nodes` (`to` depends on `from`).
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub title: String,
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<(usize, usize)>,
}

impl Graph {
    /// Every node and edge of `pipeline`, each window as the file declares it.
    pub fn from_pipeline(pipeline: &Pipeline) -> Graph {
        let order = &pipeline.dag.order;
        // Position of each pipeline node index in `order` (the graph's node index).
        let mut at = vec![0; pipeline.nodes.len()];
        for (pos, &i) in order.iter().enumerate() {
            at[i] = pos;
        }
        let nodes = order
            .iter()
            .map(|&i| {
                let node = &pipeline.nodes[i];
                match &node.kind {
                    NodeKind::Table(t) => GraphNode {
                        name: node.name.clone(),
                        shape: NodeShape::Source,
                        target: t.shape.target.to_string(),
                        window: match &t.incremental {
                            Some(inc) if t.mode.as_str() == "incremental" => format!(
                                "{} ≥ watermark − {}",
                                inc.column,
                                describe_lookback(inc.lookback)
                            ),
                            _ => t.mode.as_str().replace('_', " "),
                        },
                        key: Some(format!("({})", t.shape.primary_key.join(", "))),
                    },
                    NodeKind::Build(b) => GraphNode {
                        name: node.name.clone(),
                        shape: NodeShape::Build,
                        target: format!("SQL {}", b.origin),
                        window: "changed days of its inputs".into(),
                        key: None,
                    },
                }
            })
            .collect();
        let edges = pipeline
            .dag
            .edges
            .iter()
            .map(|&(a, b)| (at[a], at[b]))
            .collect();
        Graph {
            title: pipeline.name.clone(),
            nodes,
            edges,
        }
    }

    /// Replace the declared windows by resolved ones (`explain`'s, by node name). A window that
    /// could not be resolved (`unknown: …`, e.g. offline) keeps the declared text.
    pub fn with_windows<'a>(
        mut self,
        windows: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        for (name, window) in windows {
            if window.starts_with("unknown") || window == "n/a" {
                continue;
            }
            if let Some(n) = self.nodes.iter_mut().find(|n| n.name == name) {
                n.window = window.to_string();
            }
        }
        self
    }

    /// Index of the node called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }
}

fn describe_lookback(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    match secs {
        0 => "0".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
