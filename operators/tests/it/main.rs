//! The operators' integration tests in one binary (one link instead of one per file). Each module
//! is one area; `cargo test -p pulso-operators --test it <module>::` runs one.

mod bigquery_fake;
mod bigquery_storage_fake;
mod files;
mod generate;
mod transform;
