//! One run per target at a time: transaction-scoped PostgreSQL advisory locks; and a backfill
//! holds its table against normal runs for its whole duration (a session lock they share-check).

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

/// Take `target`'s load lock until the current transaction ends (every writer of the table takes
/// it: loads, chunks, repairs, a bulk backfill's start and end).
pub async fn lock_target(client: &Client, target: &str, wait: bool) -> Result<(), SinkError> {
    lock_for_transaction(client, &target_key(target), target, wait).await
}

/// The key of a target's load lock (every load of `target` takes it for its transaction).
pub fn target_key(target: &str) -> String {
    format!("pulso-flow:{target}")
}

/// The key a running `backfill` of `target` holds for its whole duration.
pub fn backfill_key(target: &str) -> String {
    format!("pulso-flow-backfill:{target}")
}

/// A normal load of `target` first takes the backfill key *shared* until its transaction ends:
/// free unless a backfill of the table is in progress, which it then waits for (`wait`) or
/// fails at once with [`SinkError::Locked`]. Taken before the target's lock, so a waiting run
/// holds nothing a backfill's chunks need.
pub async fn wait_for_backfill(client: &Client, target: &str, wait: bool) -> Result<(), SinkError> {
    let key = backfill_key(target);
    let got: bool = client
        .query_one(
            "SELECT pg_try_advisory_xact_lock_shared(hashtextextended($1, 0))",
            &[&key],
        )
        .await
        .map_err(|e| SinkError::pg(format!("checking for a backfill of {target}"), e))?
        .get(0);
    if got {
        return Ok(());
    }
    if !wait {
        return Err(SinkError::Locked {
            target: format!("{target} (a backfill is in progress)"),
        });
    }
    tracing::info!(
        target,
        "a backfill of the table is in progress; waiting for it"
    );
    client
        .execute(
            "SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))",
            &[&key],
        )
        .await
        .map_err(|e| SinkError::pg(format!("waiting for the backfill of {target}"), e))?;
    Ok(())
}

/// A backfill of `target` holds its key exclusively on `client`'s session until that session
/// ends (the connection closes, also when the process is killed) or [`unlock_backfill`]. Waits
/// for running loads of the table and for another backfill (`wait`), or fails at once.
pub async fn lock_backfill(client: &Client, target: &str, wait: bool) -> Result<(), SinkError> {
    let key = backfill_key(target);
    let got: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
            &[&key],
        )
        .await
        .map_err(|e| SinkError::pg(format!("taking the backfill lock of {target}"), e))?
        .get(0);
    if got {
        return Ok(());
    }
    if !wait {
        return Err(SinkError::Locked {
            target: target.to_string(),
        });
    }
    tracing::info!(
        target,
        "another run or backfill holds the table; waiting for it"
    );
    client
        .execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", &[&key])
        .await
        .map_err(|e| SinkError::pg(format!("waiting for the backfill lock of {target}"), e))?;
    Ok(())
}

/// Release what [`lock_backfill`] took.
pub async fn unlock_backfill(client: &Client, target: &str) -> Result<(), SinkError> {
    client
        .execute(
            "SELECT pg_advisory_unlock(hashtextextended($1, 0))",
            &[&backfill_key(target)],
        )
        .await
        .map_err(|e| SinkError::pg(format!("releasing the backfill lock of {target}"), e))?;
    Ok(())
}
