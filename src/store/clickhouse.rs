//! ClickHouse: price ticks, trade and activity events; candles and 24h stats.
//!
//! Written to the SQL subset ClickHouse 18.16 understands (see DESIGN.md section 5):
//! values bound with `?`, `DateTime` in seconds, no `toStartOfInterval`.

mod challenges;
mod farming;
mod market;
mod migrate;
mod reads;
mod seed;
mod staking;
mod writes;
mod yields;

pub use challenges::ChallengeStatsRow;
pub use farming::{FarmerTotalsRow, FarmingBucketRow, FARMING_KINDS};
pub use market::{
    DayTicksRow, ExchangePriceRow, Folded, MarketTickRow, MoverRow, OhlcvRow, OverviewRow, VwapRow,
};
pub use reads::{candle_view, CANDLE_VIEWS};
pub use reads::{ActivityBucketRow, CandleRow, LastTickRow, StatsRow};

pub use seed::{ActivityRow, DomainEventRow, TickRow, TradeEventRow};
pub use staking::{StakerTotalsRow, UnbondRow, STAKING_KINDS};
pub use writes::DayTotals;
pub use yields::{
    PoolMetricRow, PoolPointRow, PortfolioPointRow, SnapshotGroup, SnapshotRow, POOL_VIEWS,
};

use super::call::{Calls, Shared};
use crate::{config::Config, error::StoreError, store::StoreKind};

/// The ClickHouse adapter: an HTTP client bound to Meridian's database.
#[derive(Clone)]
pub struct ClickHouse {
    // Shared: a request's adapters are clones of the instance's, and the client's own
    // clone copies its URL, credentials and headers.
    client: std::sync::Arc<clickhouse::Client>,
    /// The same server without a database selected, for `CREATE DATABASE`.
    server: std::sync::Arc<clickhouse::Client>,
    database: std::sync::Arc<str>,
    calls: Calls,
}

impl ClickHouse {
    pub(crate) fn new(config: &Config, shared: &std::sync::Arc<Shared>) -> Self {
        let server = clickhouse::Client::default()
            .with_url(&config.clickhouse_url)
            .with_user(&config.clickhouse_user)
            .with_password(&config.clickhouse_password)
            .with_validation(false);
        let client = server.clone().with_database(&config.clickhouse_database);
        let probe = server.clone();
        let calls = Calls::new(
            StoreKind::ClickHouse,
            shared.clone(),
            config.store_timeout(),
            move || {
                let server = probe.clone();
                Box::pin(async move { ping(&server).await.map_err(StoreError::from) })
            },
        );
        ClickHouse {
            client: client.into(),
            server: server.into(),
            database: config.clickhouse_database.as_str().into(),
            calls,
        }
    }

    pub(crate) fn calls(&self) -> &Calls {
        &self.calls
    }

    /// The same adapter with another call wrapper (see [`crate::store::Stores`]).
    pub(crate) fn rebind(&self, calls: Calls) -> Self {
        ClickHouse {
            calls,
            ..self.clone()
        }
    }

    /// The client, for tests that check the store directly. Meridian's own code goes
    /// through the typed methods, which own the call wrapper.
    pub fn client(&self) -> &clickhouse::Client {
        &self.client
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    pub async fn ping(&self) -> Result<(), crate::Error> {
        self.calls.run("ping", ping(&self.server)).await
    }
}

async fn ping(server: &clickhouse::Client) -> Result<(), clickhouse::error::Error> {
    server.query("SELECT 1").fetch_one::<u8>().await.map(drop)
}
