//! The pulso-flow engine: from a pipeline file to committed tables.
//!
//! `pipelines.yaml` → [`interpolate`] (`${VAR}`) → [`spec`] (serde model, unknown keys rejected)
//! → [`compile`] (validated [`pipeline::Pipeline`] with typed nodes, every error located at
//! `file:line:col`) → [`dag`] (edges, cycle check, topological order, downstream of) →
//! [`explain`] (dry run) or [`executor`] (concurrent runs of table and SQL nodes, each under a
//! [`run_id`] issued here for the CLI and the API alike).
//!
//! The engine schedules and never writes SQL: a table node's source → transform stream is handed
//! to `pulso_sinks::load`, a SQL build to `pulso_sinks::build`, and every write to `pulso_flow.*`
//! happens there; `read` is the one read side (source over a window, transform) of a load, a
//! backfill chunk and a reconciliation. [`window`] computes the incremental window from the stored watermark (a
//! `pulso_types::IncValue`) and warns when a watermark is ahead of the window. [`render`] draws
//! the DAG (SVG, Mermaid) for `explain` and the operations page.

pub mod backfill;
pub mod compile;
pub mod dag;
pub mod duration;
pub mod error;
pub mod executor;
pub mod explain;
pub mod gates;
pub mod interpolate;
pub mod pipeline;
mod read;
pub mod reconcile;
pub mod render;
pub mod run_id;
pub mod spec;
pub mod window;

pub use error::{EngineError, SpecError};
