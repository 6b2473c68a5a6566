//! Opening a PostgreSQL session configured for loading.

use tokio_postgres::{Client, NoTls};

use crate::error::SinkError;

/// Connect and drive the connection on its own task. Dropping the returned client closes the
/// connection, which makes the server roll back any open transaction: this is how a cancelled or
/// failed load leaves nothing behind.
pub async fn connect(url: &str) -> Result<Client, SinkError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|source| SinkError::Connect { source })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    // UTC so that timestamptz text is unambiguous in logs; temp_buffers must be set before the
    // session's first temp table, and a large one keeps the staging table in memory.
    client
        .batch_execute(
            "SET application_name = 'pulso-flow'; SET TimeZone = 'UTC'; SET temp_buffers = '256MB'",
        )
        .await
        .map_err(|e| SinkError::pg("configuring the session", e))?;
    Ok(client)
}
