//! PostgreSQL sink of pulso-flow.
//!
//! * [`pgtype`] — the PostgreSQL column types a target table may have.
//! * [`encode`] — Arrow `RecordBatch` → PostgreSQL binary COPY rows, chosen from the target types.
//! * [`sql`] — the SQL text of a load (staging, merge), pure so `explain` can print it offline.
//! * [`load`] — one table load as one transaction: staging COPY, merge, then [`commit`].
//! * [`reread`] — the merge into a table that already has rows: re-read rows identical to the
//!   target are skipped before the merge, and the [`lateness`] of new rows is measured;
//!   [`nulls`] says what a load does with rows whose incremental column is NULL;
//!   [`fingerprints`] leaves out the days a lookback re-reads unchanged.
//! * [`build`] — one SQL build as one transaction: changed days, the build's SQL, then [`commit`].
//! * [`checks`] — quality gates (`checks:`) evaluated inside a node's transaction before commit.
//! * [`reconcile`] — per-day count and sums of the source against the target (`reconcile:`),
//!   after a load's merge and on demand (`pulso-flow reconcile`, `--repair`).
//! * [`gates`] — the reconciliation and the checks of a node, between its writes and its commit.
//! * [`commit`] — the end of every node run: changes, build cursor, watermark and data version,
//!   ledger row, NOTIFY, COMMIT (`commit_node`, used by loads and builds alike).
//! * [`chunks`] — the chunk ledger of `backfill` (`pulso_flow.backfill_chunks`), reads and writes.
//! * [`bulk`] — a backfill into an empty target: chunks append with its indexes dropped, built
//!   once at the end (`pulso_flow.backfill_bulk`); [`indexes`] drops and rebuilds them.
//! * [`state`] — watermarks (typed as [`pulso_types::IncValue`]) and the run ledger.
//! * [`status`] — read queries on that state for status reporting (the API's only access to it).
//! * [`lock`], [`connect`] — per-target advisory locks; sessions configured for loading.
//! * [`error`] — [`SinkError`], which keeps its cause, and [`error::PgErrorClass`].
//! * [`migrate`] — versioned SQL of `migrations/`, applied with refinery.
//!
//! Every statement that writes `pulso_flow.*` lives in this crate; the engine schedules runs and
//! never writes SQL.

pub mod build;
pub mod bulk;
pub mod checks;
pub mod chunks;
pub mod commit;
pub mod connect;
pub mod encode;
pub mod error;
pub mod fingerprints;
pub mod gates;
pub mod indexes;
pub mod lateness;
pub mod load;
pub mod lock;
pub mod migrate;
pub mod nulls;
pub mod pgtype;
pub mod reconcile;
pub mod reread;
pub mod sql;
pub mod state;
pub mod status;

pub use error::SinkError;
