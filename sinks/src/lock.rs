//! One run per target at a time: transaction-scoped PostgreSQL advisory locks.

use tokio_postgres::Client;

use crate::error::SinkError;

/// Take the advisory lock named `key` until the current transaction ends. When another session
/// holds it, wait for it (`wait`) or fail at once with [`SinkError::Locked`] naming `what`.
pub async fn lock_for_transaction(
    client: &Client,
    key: &str,
    what: &str,
    wait: bool,
) -> Result<(), SinkError> {
    let got: bool = client
        .query_one(
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))",
            &[&key],
        )
        .await
        .map_err(|e| SinkError::pg(format!("taking the lock of {what}"), e))?
        .get(0);
    if got {
        return Ok(());
    }
    if !wait {
        return Err(SinkError::Locked {
            target: what.to_string(),
        });
    }
    tracing::info!(what, "another run holds the lock; waiting for it");
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&key],
        )
        .await
        .map_err(|e| SinkError::pg(format!("waiting for the lock of {what}"), e))?;
    Ok(())
}
