//! The API's integration tests in one binary (one link instead of one per file). Each module is
//! one area; `cargo test -p pulso-api --test it <module>::` runs one. `api_adversarial` stays a
//! binary of its own: it bounds the memory of its whole process.

mod api_cache;
mod api_contract;
mod api_explain;
mod api_gates;
mod api_hostile;
mod api_kpi_fixtures;
mod api_ops;
mod api_redis;
mod api_refresh;
mod api_system;
mod api_tls;
mod api_validation;
