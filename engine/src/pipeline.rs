//! A validated pipeline: typed nodes and their DAG, ready to explain or run.

use std::path::PathBuf;

use chrono::Duration;
use pulso_operators::source::{BigQueryConnections, SourceSpec};
use pulso_operators::transform::TransformSpec;
use pulso_sinks::sql::LoadShape;
use pulso_sinks::state::RunMode;
use pulso_types::{IncType, IncValue};

use crate::dag::Dag;

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    /// The file as the user named it (used in messages).
    pub file: String,
    /// Folder relative paths in the file resolve against.
    pub base_dir: PathBuf,
    /// Target database URL from a `postgres` connection, if the file names one.
    pub target_url: Option<String>,
    pub time_zone: chrono_tz::Tz,
    /// The `kind: bigquery` connections, handed to BigQuery sources.
    pub bigquery: BigQueryConnections,
    pub nodes: Vec<Node>,
    pub dag: Dag,
}

impl Pipeline {
    pub fn node(&self, name: &str) -> Option<(usize, &Node)> {
        self.nodes.iter().enumerate().find(|(_, n)| n.name == name)
    }

    /// Indices of the named nodes, or the names the pipeline does not have.
    pub fn find_nodes<'a>(&self, names: &'a [String]) -> Result<Vec<usize>, Vec<&'a str>> {
        let mut found = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for name in names {
            match self.node(name) {
                Some((i, _)) => found.push(i),
                None => unknown.push(name.as_str()),
            }
        }
        if unknown.is_empty() {
            Ok(found)
        } else {
            Err(unknown)
        }
    }

    /// The names of `indices`' nodes, in that order.
    pub fn names(&self, indices: &[usize]) -> Vec<String> {
        indices
            .iter()
            .map(|&i| self.nodes[i].name.clone())
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub depends_on: Vec<String>,
    /// Line of the node's `name:` in the pipeline file.
    pub line: u64,
    pub kind: NodeKind,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Table(Box<TableNode>),
    Build(BuildNode),
}

impl NodeKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            NodeKind::Table(_) => "table",
            NodeKind::Build(_) => "sql",
        }
    }
}

/// A source table loaded into PostgreSQL.
#[derive(Debug, Clone)]
pub struct TableNode {
    pub source: SourceSpec,
    pub transform: TransformSpec,
    pub shape: LoadShape,
    pub incremental: Option<Incremental>,
    pub mode: RunMode,
    pub batch_size: usize,
    pub create_target: bool,
    pub checks: Vec<pulso_sinks::checks::Check>,
    pub reconcile: Option<pulso_sinks::reconcile::ReconcileSpec>,
}

#[derive(Debug, Clone)]
pub struct Incremental {
    pub column: String,
    pub ty: IncType,
    pub lookback: Duration,
    pub initial: Option<IncValue>,
    /// What a load does with rows whose column is NULL (`incremental.nulls`).
    pub nulls: pulso_sinks::nulls::NullPolicy,
}

/// SQL run inside PostgreSQL after the nodes it depends on have committed.
#[derive(Debug, Clone)]
pub struct BuildNode {
    pub sql: String,
    /// Where the SQL came from: a file path or "inline".
    pub origin: String,
    pub checks: Vec<pulso_sinks::checks::Check>,
}
