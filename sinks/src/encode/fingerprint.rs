//! Per-day fingerprints of encoded rows: for each day of the incremental column, how many rows
//! and two order-independent sums of a hash of each row's COPY bytes. Two loads that staged the
//! same rows for a day (in any order, duplicates included) get the same fingerprint; a row added,
//! removed or changed in any column changes it (up to a 2^-128 chance). See
//! [`crate::fingerprints`] for what a load does with them.
//!
//! The hash is written here rather than taken from a crate: fingerprints are stored and compared
//! across releases, so its output must never change.

use std::collections::BTreeMap;

/// One day's rows as a load encoded them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayPrint {
    pub rows: u64,
    pub hash_a: u64,
    pub hash_b: u64,
}

/// Fingerprints by day: PostgreSQL day numbers (days since 2000-01-01) of the incremental value;
/// rows whose incremental value is NULL have no day and no fingerprint.
pub type DayPrints = BTreeMap<i32, DayPrint>;

impl DayPrint {
    /// Fold in one row's encoded bytes.
    pub fn add(&mut self, row: &[u8]) {
        let (a, b) = row_hashes(row);
        self.rows += 1;
        self.hash_a = self.hash_a.wrapping_add(a);
        self.hash_b = self.hash_b.wrapping_add(b);
    }

    /// Add the rows another print folded.
    pub fn merge(&mut self, other: &DayPrint) {
        self.rows += other.rows;
        self.hash_a = self.hash_a.wrapping_add(other.hash_a);
        self.hash_b = self.hash_b.wrapping_add(other.hash_b);
    }
}

const K_A: u64 = 0x9e37_79b9_7f4a_7c15;
const K_B: u64 = 0xc2b2_ae3d_27d4_eb4f;
const K_C: u64 = 0x1656_67b1_9e37_79f9;

/// 128-bit product folded to 64 bits: every input bit reaches many output bits.
#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// MurmurHash3's 64-bit finaliser.
#[inline]
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// One 64-bit hash of `bytes` (for in-memory use: [`super::keys`]).
#[inline]
pub(super) fn hash64(bytes: &[u8]) -> u64 {
    row_hashes(bytes).0
}

/// Fold `next` into `hash`, order-dependently.
#[inline]
pub(super) fn combine(hash: u64, next: u64) -> u64 {
    fmix(fold_mul(hash ^ next, K_C))
}

/// Two independent 64-bit hashes of `bytes` (different keys and word order per lane).
fn row_hashes(bytes: &[u8]) -> (u64, u64) {
    let len = bytes.len() as u64;
    let (mut a, mut b) = (K_A ^ len, K_B ^ len.rotate_left(32));
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(w);
        let w = u64::from_le_bytes(buf);
        a = fold_mul(a ^ w, K_B ^ K_C);
        b = fold_mul(b ^ w.rotate_left(29), K_A ^ K_C);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut buf = [0u8; 8];
        buf[..tail.len()].copy_from_slice(tail);
        let w = u64::from_le_bytes(buf) ^ ((tail.len() as u64) << 59);
        a = fold_mul(a ^ w, K_B ^ K_C);
        b = fold_mul(b ^ w.rotate_left(29), K_A ^ K_C);
    }
    (fmix(a), fmix(b ^ K_C))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(rows: &[&[u8]]) -> DayPrint {
        let mut p = DayPrint::default();
        for r in rows {
            p.add(r);
        }
        p
    }

    #[test]
    fn a_day_print_depends_on_the_rows_not_their_order() {
        let rows: [&[u8]; 3] = [
            b"row one, twelve",
            b"row two",
            b"row three is longer than 16",
        ];
        assert_eq!(
            print(&rows),
            print(&[rows[2], rows[0], rows[1]]),
            "order does not matter"
        );
        assert_eq!(print(&rows).rows, 3);
        // A changed byte, a removed row, a duplicated row, a moved byte: all differ.
        assert_ne!(print(&rows), print(&[b"row one, twelvf", rows[1], rows[2]]));
        assert_ne!(print(&rows), print(&rows[..2]));
        assert_ne!(print(&rows), print(&[rows[0], rows[1], rows[2], rows[1]]));
        assert_ne!(print(&[b"ab"]), print(&[b"ba"]));
        // A pair of identical rows does not cancel out (sums, not XOR).
        assert_ne!(
            print(&[rows[0], rows[1], rows[1]]),
            print(&[rows[0], rows[2], rows[2]])
        );
        // Trailing zero bytes are not padding.
        assert_ne!(print(&[b"abc"]), print(&[b"abc\0"]));
    }

    #[test]
    fn the_hash_is_stable_across_releases() {
        // Stored fingerprints are compared with new ones: this value must never change.
        assert_eq!(
            row_hashes(b"pulso-flow"),
            (0x1741_c17e_11fa_bbec, 0x4c78_6199_7ca2_42f2)
        );
    }
}
