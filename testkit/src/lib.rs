//! pulso-flow's test kit (dev-only, never published): what every crate's tests share, so that
//! each concept has one implementation.
//!
//! - [`pg`]: a private PostgreSQL database per test, checksums, watermarks.
//! - [`cli`]: the `pulso-flow` binary run against a database, its output and JSON summary.
//! - [`api`]: the dashboard API on a loopback port, a private Redis, the demo loaded once per
//!   process, OpenAPI schema checks.
//! - [`batches`]: sources opened in-process and their Arrow batches as text.
//! - [`bigquery`]: in-process fakes of the BigQuery REST and Storage Read APIs with fault
//!   injection; [`bqemu`]: the BigQuery emulator of `../shared/bqemu`.
//! - [`tls`]: a test CA, private PostgreSQL clusters and Redis servers with TLS.
//! - [`bench`]: the benches' knobs from the environment and their own database.
//!
//! The most used helpers are re-exported at the root, so a test names them `pulso_testkit::TestDb`
//! (or, by the tests' convention, `use pulso_testkit as common;` and `common::TestDb`).

pub mod api;
pub mod batches;
pub mod bench;
pub mod bigquery;
pub mod bqemu;
pub mod cli;
pub mod pg;
pub mod tls;

pub use api::*;
pub use batches::*;
pub use cli::*;
pub use pg::*;
