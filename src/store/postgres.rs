//! PostgreSQL: users, assets, holdings, trades and the outbox (the system of record).

mod migrate;
mod outbox;
mod reads;
mod seed;
mod writes;

pub use outbox::{Backoff, DeadLetter, OutboxBacklog, OutboxClaim, OutboxRow, Settle, Settled};
pub use reads::{AssetRow, HoldingRow, TradeRow, TradeWindow, UserRow};
pub use seed::LeaderboardScore;
pub use writes::{NewTrade, RegisterOutcome, TradeOutcome, OUTBOX_CHANNEL, TRADE_DESTINATIONS};

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use sqlx::{postgres::PgPoolOptions, PgPool};

use crate::config::Config;

/// The PostgreSQL adapter: a connection pool and the queries run on it.
#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
    /// Trade partitions (year, month) known to exist.
    partitions: Arc<Mutex<HashSet<(i32, u32)>>>,
}

impl Postgres {
    /// Builds a lazy pool; connections are opened on first use.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(config.postgres_pool_size)
            .acquire_timeout(config.store_timeout())
            .idle_timeout(Duration::from_secs(300))
            .connect_lazy(&config.postgres_url)
            .context("MERIDIAN_POSTGRES_URL is not a valid PostgreSQL URL")?;
        Ok(Postgres {
            pool,
            partitions: Arc::default(),
        })
    }

    /// The pool, for tests and tools that check the store directly.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    #[tracing::instrument(skip(self))]
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop)
    }
}
