//! Rows whose incremental column is NULL.
//!
//! A NULL incremental value says nothing about when a row was seen, so every window includes it
//! (`column IS NULL OR lower <= column < upper`, see `pulso_operators::window`): such rows are
//! re-read on every run, never move the watermark, and lose a key's deduplication to any row
//! with a value (`DESC NULLS LAST`). Re-reading them is harmless: an unchanged one is skipped
//! before the merge ([`crate::reread`]) and is neither inserted nor updated again.
//!
//! Every load counts them (`null_incremental` in the summary and in `node_runs.details`: the
//! NULL rows staged by this run, i.e. present in the source now, not "new" ones), and the table's
//! `incremental.nulls` says what else happens:
//!
//! - `load` (default): load them, count them;
//! - `warn`: load them, count them, and add a warning to the run (and its ledger row);
//! - `fail`: fail the load (nothing is committed, the watermark stays), naming the table, the
//!   column, how many rows and the keys of the first ones.

use tokio_postgres::Client;

use crate::error::SinkError;
use crate::sql::{LoadShape, ident};

/// What a load does with rows whose incremental column is NULL (`incremental.nulls`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NullPolicy {
    #[default]
    Load,
    Warn,
    Fail,
}

impl NullPolicy {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "load" => Some(NullPolicy::Load),
            "warn" => Some(NullPolicy::Warn),
            "fail" => Some(NullPolicy::Fail),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NullPolicy::Load => "load",
            NullPolicy::Warn => "warn",
            NullPolicy::Fail => "fail",
        }
    }
}

/// How many example keys a `fail` names.
const EXAMPLES: i64 = 3;

/// Apply the table's policy to `count` staged rows with a NULL incremental value: `Ok(None)`,
/// `Ok(Some(warning))`, or the error of a `fail` (with example keys read from `relation`, the
/// staging table or, after a direct load, the target).
pub async fn apply(
    client: &Client,
    shape: &LoadShape,
    relation: &str,
    count: u64,
) -> Result<Option<String>, SinkError> {
    let Some(column) = shape.incremental.as_deref() else {
        return Ok(None);
    };
    if count == 0 {
        return Ok(None);
    }
    match shape.null_incremental {
        NullPolicy::Load => Ok(None),
        NullPolicy::Warn => Ok(Some(format!(
            "{count} rows of {} have no {column} (NULL incremental value); they were loaded and \
             are re-read on every run (incremental.nulls: warn)",
            shape.target
        ))),
        NullPolicy::Fail => {
            let keys = example_keys(client, shape, relation, column).await?;
            Err(SinkError::NullIncremental {
                target: shape.target.to_string(),
                column: column.to_string(),
                rows: count,
                keys,
            })
        }
    }
}

async fn example_keys(
    client: &Client,
    shape: &LoadShape,
    relation: &str,
    column: &str,
) -> Result<String, SinkError> {
    let key = shape
        .primary_key
        .iter()
        .map(|k| format!("{}::text", ident(k)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT concat_ws(', ', {key}) FROM {relation} WHERE {} IS NULL LIMIT {EXAMPLES}",
        ident(column)
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(|e| SinkError::pg("reading rows with a NULL incremental value", e))?;
    Ok(rows
        .iter()
        .map(|r| format!("({})", r.get::<_, String>(0)))
        .collect::<Vec<_>>()
        .join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_round_trip() {
        for p in [NullPolicy::Load, NullPolicy::Warn, NullPolicy::Fail] {
            assert_eq!(NullPolicy::from_name(p.as_str()), Some(p));
        }
        assert_eq!(NullPolicy::from_name("skip"), None);
        assert_eq!(NullPolicy::default(), NullPolicy::Load);
    }
}
