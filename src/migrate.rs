//! `meridian migrate`: brings all four stores to the current schema.
//!
//! Idempotent, and safe when several instances run it at once: the whole run holds a
//! PostgreSQL advisory lock, so a second instance waits, then finds nothing to do.
//!
//! It also applies the catalogue file (see [`crate::domain::kinds`] and
//! [`crate::domain::boards`]): the built-in `catalogue/kinds.json`, or the file
//! `meridian migrate --kinds FILE` names. Its kinds are added or updated; its boards, when
//! it has a `boards` list, replace the declared ones.

use anyhow::Context;

use crate::{domain::kinds::KindsFile, store::Stores};

/// What one run changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions of the Postgres migrations this run applied.
    pub postgres: Vec<i64>,
    /// Versions of the ClickHouse migrations this run applied.
    pub clickhouse: Vec<u32>,
    /// MongoDB indexes this run created.
    pub mongo_indexes: Vec<String>,
    /// Event kind definitions this run added or changed.
    pub kinds: u64,
    /// Board definitions this run added, changed or removed.
    pub boards: u64,
}

impl MigrationReport {
    /// True when the run found every store already up to date.
    pub fn is_noop(&self) -> bool {
        self.postgres.is_empty()
            && self.clickhouse.is_empty()
            && self.mongo_indexes.is_empty()
            && self.kinds == 0
            && self.boards == 0
    }
}

/// Applies every pending migration, in the order Postgres, ClickHouse, MongoDB, then the
/// built-in event kinds.
pub async fn run(stores: &Stores) -> anyhow::Result<MigrationReport> {
    let kinds = KindsFile::parse(crate::domain::kinds::BUILTIN)
        .context("the built-in kinds file is invalid")?;
    run_with_kinds(stores, &kinds).await
}

/// [`run`] with another kinds file.
pub async fn run_with_kinds(
    stores: &Stores,
    kinds_file: &KindsFile,
) -> anyhow::Result<MigrationReport> {
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
    let kinds = stores
        .postgres()
        .apply_kinds(kinds_file)
        .await
        .context("applying the event kinds failed")?;
    let boards = match &kinds_file.boards {
        Some(boards) => stores
            .postgres()
            .apply_boards(boards, kinds_file.version)
            .await
            .context("applying the boards failed")?,
        None => 0,
    };
    lock.release()
        .await
        .context("cannot release the migration lock")?;
    Ok(MigrationReport {
        postgres,
        clickhouse,
        mongo_indexes,
        kinds,
        boards,
    })
}
