//! PostgreSQL: users, assets, holdings, trades, domain events and the outbox (the system
//! of record).

mod artifacts;
mod boards;
mod catalogue;
mod challenges;
mod events;
mod migrate;
mod outbox;
mod reads;
mod seed;
mod tokens;
mod writes;
mod yields;

pub use artifacts::{ArtifactRow, ArtifactsOutcome, LatestProof, ARTIFACT_RECORDED};
pub use boards::BoardScore;
pub use catalogue::{
    AssetNameRow, CatalogueOutcome, CatalogueRefusal, MarketRow, PoolRow, ProtocolRow,
};
pub use challenges::{ChallengeRow, ChallengesOutcome};
pub use events::{EventRow, EventsOutcome, NewEvent, EVENT_DESTINATIONS, EVENT_RECORDED};
pub use migrate::MigrationLock;
pub use outbox::{Backoff, DeadLetter, OutboxBacklog, OutboxClaim, OutboxRow, Settle, Settled};
pub use reads::{AssetRow, DemoActors, HoldingRow, TradeRow, TradeWindow, UserRow};
pub use tokens::{ConflictRow, ResolveRefusal, TokenAssetRow, TokenWrite, TokenWriteResult};
pub use writes::{NewTrade, RegisterOutcome, TradeOutcome, OUTBOX_CHANNEL, TRADE_DESTINATIONS};
pub use yields::{Leadership, PositionRow};

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use sqlx::{postgres::PgPoolOptions, PgPool};

use super::call::{Calls, Shared};
use crate::{config::Config, error::StoreError, store::StoreKind};

/// The PostgreSQL adapter: a connection pool and the queries run on it.
#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
    /// Trade partitions (year, month) known to exist.
    partitions: Arc<Mutex<HashSet<(i32, u32)>>>,
    /// Event partitions (year, month) known to exist.
    event_partitions: Arc<Mutex<HashSet<(i32, u32)>>>,
    calls: Calls,
}

impl Postgres {
    /// Builds a lazy pool; connections are opened on first use.
    pub(crate) fn new(config: &Config, shared: &Arc<Shared>) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(config.postgres_pool_size)
            .acquire_timeout(config.store_timeout())
            .idle_timeout(Duration::from_secs(300))
            .connect_lazy(&config.postgres_url)
            .context("MERIDIAN_POSTGRES_URL is not a valid PostgreSQL URL")?;
        let probe = pool.clone();
        let calls = Calls::new(
            StoreKind::Postgres,
            shared.clone(),
            config.store_timeout(),
            move || {
                let pool = probe.clone();
                Box::pin(async move { ping(&pool).await.map_err(StoreError::from) })
            },
        );
        Ok(Postgres {
            pool,
            partitions: Arc::default(),
            event_partitions: Arc::default(),
            calls,
        })
    }

    pub(crate) fn calls(&self) -> &Calls {
        &self.calls
    }

    /// The same adapter with another call wrapper (see [`crate::store::Stores`]).
    pub(crate) fn rebind(&self, calls: Calls) -> Self {
        Postgres {
            calls,
            ..self.clone()
        }
    }

    /// The pool, for tests that check the store directly. Meridian's own code goes
    /// through the typed methods, which own the call wrapper.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<(), crate::Error> {
        self.calls.run("ping", ping(&self.pool)).await
    }

    /// A listener for the outbox's notifications, on a connection of its own.
    pub async fn listen(&self, channel: &str) -> Result<sqlx::postgres::PgListener, crate::Error> {
        self.calls
            .run("outbox_listen", async {
                let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
                listener.listen(channel).await?;
                Ok::<_, sqlx::Error>(listener)
            })
            .await
    }
}

async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(drop)
}
