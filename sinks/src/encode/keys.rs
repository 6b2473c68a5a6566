//! Whether the encoded rows' primary keys are pairwise distinct, told by a 64-bit hash of each
//! row's key fields as COPY sends them.
//!
//! A merge must deduplicate the staged rows by key (PostgreSQL refuses to update one row twice in
//! one `INSERT … ON CONFLICT`). In SQL that is a `DISTINCT ON` over the sorted rows, materialised
//! because the statement also counts them: a tuplestore as large as the staged data (it spills to
//! disk past `work_mem`) and a second pass over it. Most loads repeat no key, and the encoder can
//! tell: if no two rows' key hashes are equal, no two keys are (equal keys have equal bytes, so
//! equal hashes). The merge then only sorts the staged rows. A hash collision (about 3·10⁻⁸ for
//! a million keys) or a real repeat only sends the load down the deduplicating path; it can never
//! let a duplicate through.
//!
//! Equal keys must have equal bytes, so only key types whose binary form is canonical qualify:
//! integers, booleans, dates and times, UUIDs, byte strings and text (the staging table's
//! collation is the database default, always deterministic, under which equal text is equal
//! bytes). Numerics (`1.0` = `1.00`), floats (`-0` = `0`) and JSON are not checked: their loads
//! always deduplicate in SQL. Neither are loads of more than [`MAX_KEYS`] rows, to keep memory
//! bounded (8 bytes a row).

use super::fingerprint;
use crate::pgtype::{PgColumn, PgType};

/// Rows whose key hashes are kept (16 MiB); a larger load deduplicates in SQL.
pub const MAX_KEYS: usize = 2_000_000;

const SEED: u64 = 0x243f_6a88_85a3_08d3;

/// The key hashes of the rows encoded so far.
#[derive(Debug)]
pub(super) struct KeyHashes {
    /// For each column (COPY order), whether it is part of the key.
    is_key: Vec<bool>,
    hashes: Vec<u64>,
    /// More than [`MAX_KEYS`] rows: the answer is unknown.
    overflowed: bool,
}

impl KeyHashes {
    /// `None` when a key column's type has no canonical binary form (see the module docs).
    pub(super) fn new(columns: &[PgColumn], key_columns: &[String]) -> Option<Self> {
        let is_key: Vec<bool> = columns
            .iter()
            .map(|c| key_columns.contains(&c.name))
            .collect();
        let canonical = columns.iter().zip(&is_key).all(|(c, &k)| {
            !k || matches!(
                c.ty,
                PgType::Bool
                    | PgType::Int2
                    | PgType::Int4
                    | PgType::Int8
                    | PgType::Text
                    | PgType::Varchar(_)
                    | PgType::Date
                    | PgType::Time
                    | PgType::Timestamp
                    | PgType::Timestamptz
                    | PgType::Bytea
                    | PgType::Uuid
            )
        });
        (canonical && is_key.contains(&true)).then_some(KeyHashes {
            is_key,
            hashes: Vec::new(),
            overflowed: false,
        })
    }

    /// Whether column `col` is part of the key.
    #[inline]
    pub(super) fn is_key(&self, col: usize) -> bool {
        self.is_key.get(col).copied().unwrap_or(false)
    }

    /// The hash a row starts from.
    #[inline]
    pub(super) fn start() -> u64 {
        SEED
    }

    /// Fold one key field (its COPY bytes, length prefix included) into a row's hash.
    #[inline]
    pub(super) fn fold(hash: u64, field: &[u8]) -> u64 {
        fingerprint::combine(hash, fingerprint::hash64(field))
    }

    /// Make room for a batch of `rows` (or give up past [`MAX_KEYS`], freeing the memory).
    pub(super) fn reserve(&mut self, rows: usize) {
        if self.overflowed {
            return;
        }
        if self.hashes.len() + rows > MAX_KEYS {
            self.overflowed = true;
            self.hashes = Vec::new();
            return;
        }
        self.hashes.reserve(rows);
    }

    #[inline]
    pub(super) fn push(&mut self, hash: u64) {
        if !self.overflowed {
            self.hashes.push(hash);
        }
    }

    /// Forget the rows after the first `len` (a batch that failed to encode).
    pub(super) fn truncate(&mut self, len: usize) {
        self.hashes.truncate(len);
    }

    pub(super) fn len(&self) -> usize {
        self.hashes.len()
    }

    /// `Some(true)` when no two rows had the same key hash, `Some(false)` when two had,
    /// `None` past [`MAX_KEYS`]. Frees the hashes.
    pub(super) fn finish(&mut self) -> Option<bool> {
        if self.overflowed {
            return None;
        }
        let mut hashes = std::mem::take(&mut self.hashes);
        hashes.sort_unstable();
        Some(!hashes.windows(2).any(|w| w[0] == w[1]))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use bytes::BytesMut;

    use super::*;
    use crate::encode::CopyEncoder;

    fn column(name: &str, ty: PgType) -> PgColumn {
        PgColumn {
            name: name.into(),
            ty,
            nullable: true,
        }
    }

    fn batch(a: &[&str], b: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("b", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(a.to_vec())),
            Arc::new(Int64Array::from(b.to_vec())),
            Arc::new(Int64Array::from(vec![7; a.len()])),
        ];
        RecordBatch::try_new(schema, cols).unwrap()
    }

    /// `unique_keys` after encoding `batches` into a table keyed by (a text, b).
    fn unique(b_type: PgType, batches: &[RecordBatch]) -> Option<bool> {
        let cols = vec![
            column("a", PgType::Text),
            column("b", b_type),
            column("v", PgType::Int8),
        ];
        let mut enc =
            CopyEncoder::new("s.t", cols, vec!["a".into(), "b".into()], chrono_tz::UTC).unwrap();
        enc.check_unique_keys();
        let mut out = BytesMut::new();
        for b in batches {
            enc.encode_batch(b, &mut out).unwrap();
        }
        enc.unique_keys()
    }

    #[test]
    fn a_key_seen_twice_in_any_batch_is_found() {
        let distinct = [batch(&["x", "y"], &[1, 1]), batch(&["x", "xy"], &[2, 1])];
        assert_eq!(unique(PgType::Int8, &distinct), Some(true));
        // The same key in two batches, and in one batch.
        let across = [batch(&["x", "y"], &[1, 1]), batch(&["y"], &[1])];
        assert_eq!(unique(PgType::Int8, &across), Some(false));
        assert_eq!(
            unique(PgType::Int8, &[batch(&["é", "é"], &[3, 3])]),
            Some(false)
        );
        // Field boundaries count: ("x", "y…") is not ("xy", …).
        assert_eq!(
            unique(PgType::Int8, &[batch(&["x", "xy", "x"], &[1, 1, 2])]),
            Some(true)
        );
    }

    #[test]
    fn keys_without_a_canonical_binary_form_are_not_checked() {
        // numeric: 1.0 and 1.00 are equal keys with different bytes.
        let numeric = PgType::Numeric {
            precision: None,
            scale: 0,
        };
        assert_eq!(unique(numeric, &[batch(&["x"], &[1])]), None);
        assert_eq!(unique(PgType::Float8, &[batch(&["x"], &[1])]), None);
        // Not asked: unknown.
        let mut enc = CopyEncoder::new(
            "s.t",
            vec![column("a", PgType::Text)],
            vec!["a".into()],
            chrono_tz::UTC,
        )
        .unwrap();
        assert_eq!(enc.unique_keys(), None);
    }

    #[test]
    fn past_the_cap_the_answer_is_unknown_and_the_memory_is_freed() {
        let cols = [column("a", PgType::Text)];
        let mut keys = KeyHashes::new(&cols, &["a".into()]).unwrap();
        keys.reserve(10);
        keys.push(1);
        keys.reserve(MAX_KEYS);
        keys.push(2);
        assert_eq!(keys.len(), 0);
        assert_eq!(keys.finish(), None);
    }
}
