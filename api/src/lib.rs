//! The dashboard HTTP API of pulso-flow (`pulso-flow serve`).
//!
//! axum over the PostgreSQL marts, with a two-level cache (moka in process, Redis shared) keyed
//! by route, normalised parameters and the data version that every committed load bumps
//! (learned through `LISTEN pulso_flow_loads`).
//!
//! The crate is in layers; a module names only modules of its own layer or below (no import
//! loop; `scripts/check-architecture.sh` checks it). Bottom to top:
//!
//! 1. Foundations: [`error`] (error answers), [`config`] (environment variables), [`metrics`]
//!    (Prometheus), and the shared HTTP pieces of [`http`] (parameter parsing, the success
//!    envelope, serialised answers, date serialisation, the bearer check).
//! 2. Infrastructure: [`db`] (the read pool), [`cache`] (moka over Redis), [`version`] (the data
//!    version every cache key carries), [`refresh`] (pipeline runs started over HTTP).
//! 3. What is served: [`marts`] — one module per mart (statement text, row decoding, KPI shaping,
//!    answer types) behind the [`marts::Marts`] handle, with the one latest-date lookup — and
//!    [`freshness`] (per pipeline node), and [`ops`] (the HTML views of the operations page). The
//!    state tables of pulso-flow (`pulso_flow.*`) are read
//!    only through `pulso_sinks::status`; no SQL on them lives here.
//! 4. [`state`]: what every handler reaches, and [`state::AppState::cached`], the one way an
//!    answer goes through the cache.
//! 5. [`routes`]: thin handlers — request types, parameter normalisation, OpenAPI annotations.
//! 6. [`app`]: the top — the router, the layer around every request, the OpenAPI document and
//!    the server ([`Api`], [`serve`]). Only `routes` and `app` name a route.

pub mod app;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod freshness;
pub mod http;
pub mod marts;
pub mod metrics;
pub mod ops;
pub mod refresh;
pub mod routes;
pub mod state;
pub mod version;

pub use app::{Api, serve};
pub use config::ApiConfig;
pub use error::{ApiError, ConfigError, ServeError};
