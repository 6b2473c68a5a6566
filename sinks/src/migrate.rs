//! Versioned SQL migrations (`migrations/` at the repository root), embedded at build time and
//! applied with refinery. Applying is idempotent: already-applied versions are skipped, and a
//! changed applied file is reported instead of silently re-run.

use crate::error::SinkError;

mod embedded {
    refinery::embed_migrations!("../migrations");
}

/// One applied migration, for the CLI's report.
#[derive(Debug, Clone)]
pub struct Applied {
    pub version: i64,
    pub name: String,
}

/// Session advisory lock key that serialises concurrent `migrate` calls (two runs starting at the
/// same moment would otherwise race to create refinery's history table).
const MIGRATION_LOCK: i64 = 0x7075_6c73_6f5f_6d67; // "pulso_mg"

/// Apply every pending migration in one go.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<Vec<Applied>, SinkError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| SinkError::pg("taking the migration lock", e))?;
    let result = embedded::migrations::runner()
        .set_grouped(false)
        .set_abort_divergent(true)
        .run_async(client)
        .await;
    // Unlock before looking at the result: a failed migration must not keep the lock.
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let report = result.map_err(SinkError::Migrate)?;
    unlock.map_err(|e| SinkError::pg("releasing the migration lock", e))?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| Applied {
            version: i64::from(m.version()),
            name: m.name().to_string(),
        })
        .collect())
}

/// Connect to `url` and migrate.
pub async fn migrate_url(url: &str) -> Result<Vec<Applied>, SinkError> {
    let mut client = crate::connect::connect(url).await?;
    migrate(&mut client).await
}
