//! The merge of a load into a target that already holds rows, when the previous watermark is
//! known: re-read rows that are identical to the target are skipped before the merge, and the
//! lateness of the rows it inserts is measured ([`crate::lateness`]).
//!
//! A lookback re-reads, on every run, rows that were loaded before: most of them are unchanged.
//! `INSERT … ON CONFLICT DO UPDATE … WHERE (old) IS DISTINCT FROM (new)` already leaves them as
//! they are, but it still locks every conflicting row (it writes the row's header and WAL), which
//! made an unchanged re-read cost about half of the ceiling. Here the deduplicated staged rows are
//! split at the previous watermark `W`:
//!
//! ```text
//! WITH src AS MATERIALIZED (SELECT DISTINCT ON (key) … FROM staging ORDER BY key, inc DESC …)
//!   -- or, when the encoder saw no key twice, the staged rows sorted by key
//!   -- (LoadShape::merge_rows)
//! INSERT INTO target … SELECT … FROM src
//!   WHERE src.inc >= W                                      -- new since the last load: merged
//!      OR NOT EXISTS (SELECT 1 FROM target o                -- re-read (below W, or NULL):
//!                     WHERE o.key = src.key                 --   merged unless the target has
//!                       AND (o.rest) IS NOT DISTINCT FROM (src.rest))   -- it already, identical
//! ON CONFLICT (key) DO UPDATE … WHERE … IS DISTINCT FROM …
//! RETURNING inserted, inc
//! ```
//!
//! The filter runs after deduplication, so the row that wins a key is the same as without it,
//! and it only drops rows the `ON CONFLICT` would have left unchanged: corrections inside the
//! lookback (a re-read row that differs) and late rows (a key the target lacks) are merged as
//! before. The `NOT EXISTS` cannot become a join inside an `OR`, so it is one primary-key probe
//! per re-read row: its cost follows the size of the re-read, never of the target. Rows at or
//! above `W` skip the probe (the `ON CONFLICT` does it anyway). Measured, the probe costs about
//! what the `ON CONFLICT` probe-and-lock does on a cached target, so this saves the locks and
//! their WAL but not yet much time (docs/benchmarks.md, "Re-reads with a known watermark").
//!
//! The watermark travels as a text parameter cast to the column's type.

use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use crate::error::SinkError;
use crate::lateness::{self, Lateness};
use crate::pgtype::PgType;
use crate::sql::{LoadShape, ident, record_changes};

/// What the merge wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// Distinct keys among the staged rows (skipped ones included).
    pub distinct: u64,
    pub inserted: u64,
    pub updated: u64,
    pub lateness: Lateness,
}

/// The merge statement, or `None` when the table has no incremental column. Parameters: `$1`
/// node and `$2` run id when the shape records change days, then the previous watermark as text.
/// `skip`: a predicate on `src` for the deduplicated rows to leave out (the unchanged days of
/// [`crate::fingerprints`]); they still count among the distinct keys.
/// `unique_keys`: the staged keys are distinct ([`LoadShape::merge_rows`]); the first count is
/// then NULL.
pub fn merge_sql(shape: &LoadShape, skip: Option<&str>, unique_keys: bool) -> Option<String> {
    let inc = shape.incremental.as_ref()?;
    let ty = shape.columns.iter().find(|c| &c.name == inc)?.ty.clone();
    let w_param = if shape.change_day.is_some() { 3 } else { 1 };
    let w = format!("${w_param}::text::{}", ty.sql());
    let inc_q = ident(inc);
    let late = match ty {
        PgType::Date => format!("(({w} - inc) * 86400)::bigint"),
        _ => format!("extract(epoch FROM ({w} - inc))::bigint"),
    };
    let keys_equal = shape
        .primary_key
        .iter()
        .map(|k| format!("o.{0} = src.{0}", ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let non_key = shape.non_key_columns();
    let identical = if non_key.is_empty() {
        keys_equal
    } else {
        let cols = |p: &str| {
            non_key
                .iter()
                .map(|c| format!("{p}.{}", ident(&c.name)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // A one-element row `(x)` is just `x`: compare it as a ROW either way.
        format!(
            "{keys_equal} AND ROW({}) IS NOT DISTINCT FROM ROW({})",
            cols("o"),
            cols("src")
        )
    };
    let target = shape.target.quoted();
    let (src, distinct) = shape.counted_source(unique_keys);
    let day = shape
        .change_day
        .as_ref()
        .map(|d| format!(", t.{} AS day", ident(d)))
        .unwrap_or_default();
    let changes = if shape.change_day.is_some() {
        format!(", {}", record_changes("merged"))
    } else {
        String::new()
    };
    Some(format!(
        "WITH {src}, \
         merged AS (INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM src \
         WHERE {keep}(coalesce(src.{inc_q} >= {w}, false) \
            OR NOT EXISTS (SELECT 1 FROM {target} AS o WHERE {identical})) \
         ON CONFLICT ({keys}) {conflict} \
         RETURNING (xmax = 0) AS inserted, t.{inc_q} AS inc{day}){changes} \
         SELECT {distinct}, count(*) FILTER (WHERE inserted), \
                count(*) FILTER (WHERE NOT inserted), {aggregates} \
         FROM (SELECT inserted, CASE WHEN inserted AND inc < {w} THEN {late} END AS late \
               FROM merged) AS m",
        keep = skip.map(|p| format!("NOT {p} AND ")).unwrap_or_default(),
        cols = shape.column_list(""),
        keys = shape.key_list(),
        conflict = shape.on_conflict(),
        aggregates = lateness::aggregates(),
    ))
}

/// Whether any staged row is below the previous watermark (or has no incremental value): a
/// re-read that [`merge`] may skip, or a late row. Stops at the first such row. `false` when the
/// table has no incremental column.
pub async fn rows_below(
    client: &Client,
    shape: &LoadShape,
    watermark: &str,
) -> Result<bool, SinkError> {
    let Some(inc) = shape.incremental.as_ref() else {
        return Ok(false);
    };
    let Some(ty) = shape
        .columns
        .iter()
        .find(|c| &c.name == inc)
        .map(|c| c.ty.sql())
    else {
        return Ok(false);
    };
    let inc = ident(inc);
    let row = client
        .query_one(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM {staging} WHERE {inc} IS NULL OR {inc} < $1::text::{ty})",
                staging = ident(crate::sql::STAGING)
            ),
            &[&watermark],
        )
        .await
        .map_err(|e| SinkError::pg(format!("looking for re-read rows of {}", shape.target), e))?;
    Ok(row.get(0))
}

/// Run [`merge_sql`] with the previous watermark (canonical text of an `IncValue`). `params`
/// are the change-recording parameters (`$1` node, `$2` run id) or empty. `unique`: how many
/// rows were staged, when their keys are known to be distinct.
pub async fn merge(
    client: &Client,
    shape: &LoadShape,
    watermark: &str,
    params: &[&(dyn ToSql + Sync)],
    skip: Option<&str>,
    unique: Option<u64>,
) -> Result<Option<Merged>, SinkError> {
    let Some(sql) = merge_sql(shape, skip, unique.is_some()) else {
        return Ok(None);
    };
    let mut all: Vec<&(dyn ToSql + Sync)> = params.to_vec();
    all.push(&watermark);
    let row = client
        .query_one(&sql, &all)
        .await
        .map_err(|e| SinkError::pg(format!("merging into {}", shape.target), e))?;
    let decode = |e| SinkError::pg(format!("reading the merge counts of {}", shape.target), e);
    let count = |i: usize| -> Result<u64, SinkError> {
        Ok(u64::try_from(row.try_get::<_, i64>(i).map_err(decode)?).unwrap_or(0))
    };
    Ok(Some(Merged {
        distinct: match unique {
            Some(staged) => staged,
            None => count(0)?,
        },
        inserted: count(1)?,
        updated: count(2)?,
        lateness: lateness::from_row(&row, 3).map_err(decode)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgtype::PgColumn;
    use crate::sql::TableName;

    fn shape(change_day: Option<&str>) -> LoadShape {
        let col = |n: &str, ty: PgType| PgColumn {
            name: n.into(),
            ty,
            nullable: true,
        };
        LoadShape {
            target: TableName::new("raw", "pagos"),
            columns: vec![
                col("id", PgType::Text),
                col("monto", PgType::Int8),
                col("dia", PgType::Date),
                col("creado_el", PgType::Timestamptz),
            ],
            primary_key: vec!["id".into()],
            incremental: Some("creado_el".into()),
            change_day: change_day.map(Into::into),
            null_incremental: Default::default(),
            lookback: None,
            keep_newer: false,
        }
    }

    #[test]
    fn the_watermark_parameter_follows_the_change_recording_ones() {
        let plain = merge_sql(&shape(None), None, false).unwrap();
        assert!(
            plain.contains("\"creado_el\" >= $1::text::timestamp with time zone"),
            "{plain}"
        );
        assert!(!plain.contains("$2"), "{plain}");
        assert!(plain.contains("FROM src WHERE (coalesce("), "{plain}");
        let tracked = merge_sql(&shape(Some("dia")), Some("x"), true).unwrap();
        assert!(tracked.contains("WHERE NOT x AND (coalesce("), "{tracked}");
        assert!(
            tracked.contains(">= $3::text::timestamp with time zone"),
            "{tracked}"
        );
        assert!(
            tracked.contains("INSERT INTO pulso_flow.changes"),
            "{tracked}"
        );
        assert!(
            tracked.contains("ROW(o.\"monto\", o.\"dia\", o.\"creado_el\") IS NOT DISTINCT FROM"),
            "{tracked}"
        );
        let mut no_inc = shape(None);
        no_inc.incremental = None;
        assert_eq!(merge_sql(&no_inc, None, false), None);
    }
}
