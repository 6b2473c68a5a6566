//! The dashboard HTTP API of pulso-flow (`pulso-flow serve`).
//!
//! axum over the PostgreSQL marts, with a two-level cache (moka in process, Redis shared) keyed
//! by route, normalised parameters and the data version that every committed load bumps
//! (learned through `LISTEN pulso_flow_loads`). See [`app`] for the request path, [`cache`] and
//! [`version`] for the cache design, [`config`] for the environment variables.

pub mod app;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod freshness;
pub mod http;
pub mod marts;
pub mod metrics;
pub mod refresh;
pub mod routes;
pub mod state;
pub mod version;

pub use app::{Api, serve};
pub use config::ApiConfig;
pub use error::{ApiError, ConfigError, ServeError};
