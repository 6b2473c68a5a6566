//! The root crate's integration tests in one binary (one link instead of one per file; linking
//! dominates on 2 cores). Each module is one area; `cargo test --test it <module>::` runs one.
//! The shared helpers are the test kit's (`pulso_testkit`).

mod api_serve;
mod backfill;
mod backfill_bigquery;
mod bigquery_e2e;
mod builds;
mod cli_commands;
mod cli_validate;
mod deploy_files;
mod gates;
mod gates_bigquery;
mod kpis;
mod load;
mod ops_cli;
mod pulso_bigquery;
mod pulso_pipeline;
mod reconcile_bigquery;
mod reconcile_demo;
mod steady_state;
mod tls;
