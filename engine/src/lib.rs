//! The pulso-flow engine: from a pipeline file to committed tables.
//!
//! `pipelines.yaml` → [`interpolate`] (`${VAR}`) → [`spec`] (serde model, unknown keys rejected)
//! → [`compile`] (validated [`pipeline::Pipeline`] with typed nodes, every error located at
//! `file:line:col`) → [`dag`] (edges, cycle check, topological order) → [`explain`] (dry run) or
//! [`executor`] (concurrent runs of table and SQL nodes).

pub mod compile;
pub mod dag;
pub mod duration;
pub mod error;
pub mod executor;
pub mod explain;
pub mod interpolate;
pub mod pipeline;
pub mod render;
pub mod spec;
pub mod window;

pub use error::{EngineError, SpecError};
