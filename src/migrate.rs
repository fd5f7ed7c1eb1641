//! `meridian migrate`: brings all four stores to the current schema.
//!
//! Idempotent, and safe when several instances run it at once: the whole run holds a
//! PostgreSQL advisory lock, so a second instance waits, then finds nothing to do.

use anyhow::Context;

use crate::store::Stores;

/// What one run changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions of the Postgres migrations this run applied.
    pub postgres: Vec<i64>,
    /// Versions of the ClickHouse migrations this run applied.
    pub clickhouse: Vec<u32>,
    /// MongoDB indexes this run created.
    pub mongo_indexes: Vec<String>,
}

impl MigrationReport {
    /// True when the run found every store already up to date.
    pub fn is_noop(&self) -> bool {
        self.postgres.is_empty() && self.clickhouse.is_empty() && self.mongo_indexes.is_empty()
    }
}

/// Applies every pending migration, in the order Postgres, ClickHouse, MongoDB.
pub async fn run(stores: &Stores) -> anyhow::Result<MigrationReport> {
    let lock = stores
        .postgres()
        .lock_migrations()
        .await
        .context("cannot take the migration lock in PostgreSQL")?;
    let postgres = stores
        .postgres()
        .migrate()
        .await
        .context("PostgreSQL migrations failed")?;
    let clickhouse = stores
        .clickhouse()
        .migrate()
        .await
        .context("ClickHouse migrations failed")?;
    let mongo_indexes = stores
        .mongo()
        .migrate()
        .await
        .context("MongoDB index creation failed")?;
    lock.release()
        .await
        .context("cannot release the migration lock")?;
    Ok(MigrationReport {
        postgres,
        clickhouse,
        mongo_indexes,
    })
}
