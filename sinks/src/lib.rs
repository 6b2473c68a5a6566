//! PostgreSQL sink of pulso-flow.
//!
//! * [`pgtype`] — the PostgreSQL column types a target table may have.
//! * [`encode`] — Arrow `RecordBatch` → PostgreSQL binary COPY rows, chosen from the target types.
//! * [`sql`] — the SQL text of a load (staging, merge), pure so `explain` can print it offline.
//! * [`load`] — one table load as one transaction: staging COPY, merge, watermark, ledger.
//! * [`state`] — watermarks and the run ledger.
//! * [`status`] — read queries on that state for status reporting (the API's only access to it).
//! * [`migrate`] — versioned SQL of `migrations/`, applied with refinery.

pub mod connect;
pub mod encode;
pub mod error;
pub mod load;
pub mod lock;
pub mod migrate;
pub mod pgtype;
pub mod sql;
pub mod state;
pub mod status;

pub use error::SinkError;
