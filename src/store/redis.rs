//! Redis: latest prices, leaderboards, sessions, rate limits, persisted queries, cache
//! and pub/sub.

mod consistency;
mod idempotency;
mod market;
mod reads;
mod security;
mod seed;
mod tokens;
mod writes;

pub use consistency::WRITTEN_KEEP_SECS;
pub use idempotency::IngestProgress;
pub use market::{MarketSnapshot, MARKET_TTL_SECS};
pub use reads::Standing;
pub use security::RateState;
pub use tokens::TOKEN_CACHE_KEEP_SECS;
pub use writes::{BoardDelta, BoardMove};

use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::call::{Calls, Shared};
use crate::{config::Config, error::StoreError, store::StoreKind};

/// The Redis adapter: one multiplexed, self-reconnecting connection and a key prefix.
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    prefix: std::sync::Arc<str>,
    calls: Calls,
}

impl Redis {
    /// Builds the connection lazily; it is opened on first use and re-opened after a drop.
    pub(crate) fn new(config: &Config, shared: &std::sync::Arc<Shared>) -> anyhow::Result<Self> {
        let client = redis::Client::open(config.redis_url.as_str())
            .context("MERIDIAN_REDIS_URL is not a valid Redis URL")?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.store_timeout()))
            .set_response_timeout(Some(config.store_timeout()))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config)
            .context("cannot set up the Redis connection")?;
        let probe = conn.clone();
        let calls = Calls::new(
            StoreKind::Redis,
            shared.clone(),
            config.store_timeout(),
            move || {
                let conn = probe.clone();
                Box::pin(async move { ping(conn).await.map_err(StoreError::from) })
            },
        );
        Ok(Redis {
            conn,
            prefix: config.redis_prefix.as_str().into(),
            calls,
        })
    }

    pub(crate) fn calls(&self) -> &Calls {
        &self.calls
    }

    /// The same adapter with another call wrapper (see [`crate::store::Stores`]).
    pub(crate) fn rebind(&self, calls: Calls) -> Self {
        Redis {
            calls,
            ..self.clone()
        }
    }

    /// The full key for `name` under this deployment's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Key of the latest price of `symbol`.
    pub fn price_key(&self, symbol: &str) -> String {
        self.key(&format!("price:{symbol}"))
    }

    /// Key of a board's sorted set: `leaderboard:{name}` for an all-time board,
    /// `leaderboard:{name}:{period}` for one period of a windowed board.
    pub fn leaderboard_key(&self, name: &str, period: &str) -> String {
        if period.is_empty() {
            self.key(&format!("leaderboard:{name}"))
        } else {
            self.key(&format!("leaderboard:{name}:{period}"))
        }
    }

    /// A connection handle (cheap clone of the multiplexed connection), for tests that
    /// check the store directly. Meridian's own code goes through the typed methods.
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub async fn ping(&self) -> Result<(), crate::Error> {
        self.calls.run("ping", ping(self.conn())).await
    }
}

async fn ping(mut conn: ConnectionManager) -> Result<(), redis::RedisError> {
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map(drop)
}

/// The latest price of a symbol, as stored under `price:{symbol}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatestPrice {
    pub symbol: String,
    pub price: f64,
    /// Unix seconds of the tick this price comes from.
    pub ts: i64,
}
