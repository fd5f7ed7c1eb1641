//! PostgreSQL migrations (sqlx, from migrations/postgres) and the cross-store migration lock.

use sqlx::{migrate::Migrator, Connection, PgConnection};

use super::Postgres;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Arbitrary constant naming Meridian's migration lock among advisory locks.
const MIGRATION_LOCK_KEY: i64 = 0x6d65_7269_6469_616e; // "meridian"

/// Holds the migration advisory lock on a connection of its own until released.
pub struct MigrationLock {
    conn: PgConnection,
}

impl MigrationLock {
    pub async fn release(mut self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut self.conn)
            .await?;
        self.conn.close().await
    }
}

impl Postgres {
    /// Waits for, then takes, the lock that serialises `meridian migrate` runs.
    pub async fn lock_migrations(&self) -> Result<MigrationLock, crate::Error> {
        self.calls
            .run::<MigrationLock, sqlx::Error, _>("lock_migrations", async {
                let mut conn = self.pool.acquire().await?.detach();
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(MIGRATION_LOCK_KEY)
                    .execute(&mut conn)
                    .await?;
                Ok(MigrationLock { conn })
            })
            .await
    }

    /// Applies pending migrations and returns the versions it applied.
    pub async fn migrate(&self) -> Result<Vec<i64>, crate::Error> {
        self.calls
            .run::<Vec<i64>, sqlx::migrate::MigrateError, _>("migrate", async {
                let before = self.applied_migrations().await?;
                MIGRATOR.run(&self.pool).await?;
                let after = self.applied_migrations().await?;
                Ok(after.into_iter().filter(|v| !before.contains(v)).collect())
            })
            .await
    }

    async fn applied_migrations(&self) -> Result<Vec<i64>, sqlx::Error> {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(&self.pool)
                .await?;
        if exists.is_none() {
            return Ok(Vec::new());
        }
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&self.pool)
            .await
    }
}
