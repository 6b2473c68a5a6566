//! Set-up shared by the `cargo bench` harnesses that load through the binary: their knobs from
//! the environment and a database of their own.

use tokio_postgres::Client;

use crate::pg::{connect, server_url};

/// `name` from the environment as a number, or `default` when unset or not a number.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The database `name` on the server of `DATABASE_URL`, dropped and created again, with an empty
/// schema `bench`: its URL and a connection to it.
pub async fn fresh_bench_database(name: &str) -> (String, Client) {
    let server = server_url();
    let admin = connect(&format!("{server}/postgres")).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop the bench database");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create the bench database");
    let url = format!("{server}/{name}");
    let client = connect(&url).await;
    client
        .batch_execute("CREATE SCHEMA bench")
        .await
        .expect("create schema bench");
    (url, client)
}
