//! A target's indexes, dropped while an empty table is filled and built once after.
//!
//! Building an index once after the rows are in is several times cheaper than maintaining it row
//! by row, which is most of a first load's cost. Two writers use this: a load into an empty
//! target (the direct path of [`crate::load`], inside its one transaction) and a backfill that
//! starts on an empty target ([`crate::bulk`], across many chunk transactions).
//!
//! When the rebuilt primary key finds duplicate keys, the rows that lose the merge's rule (the
//! greatest incremental value wins, then the later row) are deleted and the indexes are built
//! again; a savepoint keeps the first attempt's failure from aborting the caller's transaction.
//! The filled table is then analysed, so that the first plans over it have statistics.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::error::SinkError;
use crate::sql::LoadShape;

/// An index or constraint of the target, as the catalog defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    /// `ALTER TABLE … DROP CONSTRAINT …` or `DROP INDEX …`.
    pub drop: String,
    /// The catalog's own definition: `ALTER TABLE … ADD CONSTRAINT … <def>` or `CREATE INDEX …`.
    pub create: String,
}

/// Whether the target can be filled with its indexes dropped: a plain table, referenced by no
/// foreign key, and empty. If so, lock it (`ACCESS EXCLUSIVE`, until the caller's transaction
/// ends), check it is still empty, and return its indexes; the caller drops them with [`drop`].
/// Readers of an empty table lose nothing by waiting for its first rows.
pub async fn lock_if_empty(
    client: &Client,
    shape: &LoadShape,
) -> Result<Option<Vec<IndexDef>>, SinkError> {
    let pg = |what: &str, e| SinkError::pg(format!("{what} ({})", shape.target), e);
    let eligible: Option<bool> = client
        .query_one(
            "SELECT c.relkind = 'r' AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.confrelid = c.oid) \
             FROM (SELECT to_regclass(format('%I.%I', $1::text, $2::text)) AS oid) AS t \
             LEFT JOIN pg_class c ON c.oid = t.oid",
            &[&shape.target.schema, &shape.target.table],
        )
        .await
        .map_err(|e| pg("checking the target for a direct load", e))?
        .get(0);
    if eligible != Some(true) {
        return Ok(None);
    }
    if !is_empty(client, shape).await? {
        return Ok(None);
    }
    client
        .batch_execute(&format!(
            "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            shape.target.quoted()
        ))
        .await
        .map_err(|e| pg("locking the target", e))?;
    if !is_empty(client, shape).await? {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), c.conname::text, \
                    pg_get_constraintdef(c.oid) \
             FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid \
             WHERE i.indrelid = to_regclass(format('%I.%I', $1::text, $2::text)) \
             ORDER BY c.contype = 'p' DESC NULLS LAST, c.conname NULLS LAST, 1",
            &[&shape.target.schema, &shape.target.table],
        )
        .await
        .map_err(|e| pg("reading the target's indexes", e))?;
    let table = shape.target.quoted();
    let defs = rows
        .iter()
        .map(|r| {
            let index: String = r.get(0);
            let index_def: String = r.get(1);
            match (r.get::<_, Option<String>>(2), r.get::<_, Option<String>>(3)) {
                (Some(con), Some(con_def)) => IndexDef {
                    drop: format!(
                        "ALTER TABLE {table} DROP CONSTRAINT {}",
                        crate::sql::ident(&con)
                    ),
                    create: format!(
                        "ALTER TABLE {table} ADD CONSTRAINT {} {con_def}",
                        crate::sql::ident(&con)
                    ),
                },
                _ => IndexDef {
                    drop: format!("DROP INDEX {index}"),
                    create: index_def,
                },
            }
        })
        .collect();
    Ok(Some(defs))
}

/// Drop the indexes (inside the caller's transaction).
pub async fn drop(
    client: &Client,
    shape: &LoadShape,
    indexes: &[IndexDef],
) -> Result<(), SinkError> {
    for ix in indexes {
        client
            .batch_execute(&ix.drop)
            .await
            .map_err(|e| SinkError::pg(format!("dropping an index of {}", shape.target), e))?;
    }
    Ok(())
}

/// Build the indexes again; if the primary key finds duplicate keys, delete the rows that lose
/// the merge's rule and build again. Then `ANALYZE` the table. Returns how many rows were
/// deleted.
///
/// Why ANALYZE: the table was just filled from empty, and autovacuum analyses it only later.
/// Until then the planner has no statistics: the next scheduled run's reconciliation scans the
/// whole history instead of using the BRIN index of the incremental column (no correlation
/// known), and the builds misjudge every join. Sampling costs a fraction of the index build.
pub async fn rebuild(
    client: &Client,
    shape: &LoadShape,
    indexes: &[IndexDef],
) -> Result<u64, SinkError> {
    let pg = |what: &str, e| SinkError::pg(format!("{what} ({})", shape.target), e);
    client
        .batch_execute("SAVEPOINT pulso_flow_rebuild")
        .await
        .map_err(|e| pg("savepoint", e))?;
    let mut duplicates = 0;
    if let Err(e) = create(client, indexes).await {
        if e.code() != Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            return Err(pg("rebuilding indexes", e));
        }
        client
            .batch_execute("ROLLBACK TO SAVEPOINT pulso_flow_rebuild")
            .await
            .map_err(|e| pg("rolling back to the savepoint", e))?;
        duplicates = client
            .execute(&shape.delete_duplicates_in_target(), &[])
            .await
            .map_err(|e| pg("deleting duplicate keys", e))?;
        create(client, indexes)
            .await
            .map_err(|e| pg("rebuilding indexes", e))?;
    }
    client
        .batch_execute("RELEASE SAVEPOINT pulso_flow_rebuild")
        .await
        .map_err(|e| pg("releasing the savepoint", e))?;
    client
        .batch_execute(&format!("ANALYZE {}", shape.target.quoted()))
        .await
        .map_err(|e| pg("analysing the filled table", e))?;
    Ok(duplicates)
}

async fn create(client: &Client, indexes: &[IndexDef]) -> Result<(), tokio_postgres::Error> {
    for ix in indexes {
        client.batch_execute(&ix.create).await?;
    }
    Ok(())
}

pub async fn is_empty(client: &Client, shape: &LoadShape) -> Result<bool, SinkError> {
    Ok(client
        .query_one(&shape.is_target_empty(), &[])
        .await
        .map_err(|e| SinkError::pg(format!("checking whether {} is empty", shape.target), e))?
        .get(0))
}
