//! PostgreSQL's part of yields and portfolio snapshots: which pools a yield search may
//! return, the pools ingestion accepts, every user's positions for a snapshot, and the
//! advisory lock that elects the one instance that takes snapshots.

use sqlx::{pool::PoolConnection, Postgres as Pg};
use uuid::Uuid;

use super::{catalogue::POOL_SELECT, PoolRow, Postgres};

/// The advisory lock key of the snapshot job ("MRDNSNAP" in ASCII).
const SNAPSHOT_LOCK: i64 = 0x4d52_444e_534e_4150;

/// A user's position as a snapshot values it (quantity as a float).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PositionRow {
    pub user_id: Uuid,
    /// None for a user without positions.
    pub symbol: Option<String>,
    pub quantity: Option<f64>,
}

/// A session holding the snapshot job's advisory lock: the lock is PostgreSQL's for as
/// long as this connection lives, and is released when it is dropped (the connection
/// closes) or when PostgreSQL loses it.
pub struct Leadership {
    connection: sqlx::PgConnection,
}

impl Leadership {
    /// Whether the session still holds the lock (false when the connection broke).
    pub async fn holds(&mut self) -> bool {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
             AND pid = pg_backend_pid() AND granted \
             AND ((classid::bigint << 32) | objid::bigint) = $1)",
        )
        .bind(SNAPSHOT_LOCK)
        .fetch_one(&mut self.connection)
        .await
        .unwrap_or(false)
    }
}

impl Postgres {
    /// Ids of every catalogued pool.
    pub async fn pool_ids(&self) -> Result<Vec<String>, crate::Error> {
        self.calls
            .run::<Vec<String>, sqlx::Error, _>("pool_ids", async {
                sqlx::query_scalar("SELECT id FROM pools")
                    .fetch_all(&self.pool)
                    .await
            })
            .await
    }

    /// Pools whose protocol is of `category` and at most `max_risk` (low < medium < high),
    /// and that hold `asset`; each filter applies when given.
    pub async fn yield_candidates(
        &self,
        category: Option<&str>,
        max_risk: Option<&str>,
        asset: Option<&str>,
    ) -> Result<Vec<PoolRow>, crate::Error> {
        self.read("yield_candidates", |pool| async move {
                sqlx::query_as(&format!(
                    "{POOL_SELECT} JOIN protocols pr ON pr.id = p.protocol \
                     WHERE ($1::text IS NULL OR pr.category = $1) \
                     AND ($2::text IS NULL OR array_position(ARRAY['low', 'medium', 'high'], pr.risk) \
                         <= array_position(ARRAY['low', 'medium', 'high'], $2::text)) \
                     AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM pool_assets pa \
                         WHERE pa.pool = p.id AND pa.symbol = $3)) \
                     ORDER BY p.id"
                ))
                .bind(category)
                .bind(max_risk)
                .bind(asset)
                .fetch_all(&pool)
                .await
            })
            .await
    }

    /// Every user with each of their positions (a user without any appears once, with no
    /// symbol), by user.
    pub async fn positions_of_all(&self) -> Result<Vec<PositionRow>, crate::Error> {
        self.calls
            .run::<Vec<PositionRow>, sqlx::Error, _>("positions_of_all", async {
                sqlx::query_as(
                    "SELECT u.id AS user_id, h.symbol, h.quantity::float8 AS quantity \
                     FROM users u LEFT JOIN holdings h ON h.user_id = u.id AND h.quantity > 0 \
                     ORDER BY u.id",
                )
                .fetch_all(&self.pool)
                .await
            })
            .await
    }

    /// Takes the snapshot job's lock on a session of its own, if no other session holds
    /// it. The session leaves the pool: it is closed, and the lock released, on drop.
    pub async fn try_lead_snapshots(&self) -> Result<Option<Leadership>, crate::Error> {
        self.calls
            .run::<Option<Leadership>, sqlx::Error, _>("try_lead_snapshots", async {
                let connection: PoolConnection<Pg> = self.pool.acquire().await?;
                let mut connection = connection.detach();
                let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(SNAPSHOT_LOCK)
                    .fetch_one(&mut connection)
                    .await?;
                Ok(got.then_some(Leadership { connection }))
            })
            .await
    }
}
