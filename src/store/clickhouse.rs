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
    /// The shards, when ClickHouse is sharded (`MERIDIAN_CLICKHOUSE_CLUSTER`).
    sharding: Option<Sharding>,
}

/// A sharded ClickHouse: the cluster's name and a client per shard (with and without the
/// database selected).
#[derive(Clone)]
struct Sharding {
    cluster: std::sync::Arc<str>,
    shards: std::sync::Arc<[(clickhouse::Client, clickhouse::Client)]>,
}

impl ClickHouse {
    pub(crate) fn new(config: &Config, shared: &std::sync::Arc<Shared>) -> anyhow::Result<Self> {
        let connect = |url: &str| {
            clickhouse::Client::default()
                .with_url(url)
                .with_user(&config.clickhouse_user)
                .with_password(&config.clickhouse_password)
                .with_validation(false)
        };
        let cluster = config
            .clickhouse_cluster
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let sharding = match cluster {
            None => None,
            Some(cluster) => {
                anyhow::ensure!(
                    migrate::is_identifier(cluster),
                    "MERIDIAN_CLICKHOUSE_CLUSTER must be a plain name"
                );
                let urls: Vec<&str> = config
                    .clickhouse_shard_urls
                    .as_deref()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .collect();
                anyhow::ensure!(
                    !urls.is_empty(),
                    "MERIDIAN_CLICKHOUSE_CLUSTER needs MERIDIAN_CLICKHOUSE_SHARD_URLS (every shard's HTTP URL)"
                );
                let shards = urls
                    .iter()
                    .map(|url| {
                        let server = connect(url);
                        (
                            server.clone().with_database(&config.clickhouse_database),
                            server,
                        )
                    })
                    .collect();
                Some(Sharding {
                    cluster: cluster.into(),
                    shards,
                })
            }
        };
        let server = connect(&config.clickhouse_url);
        let mut client = server.clone().with_database(&config.clickhouse_database);
        if sharding.is_some() {
            // An insert into a Distributed table returns once every shard has its rows, so
            // that an acknowledged write is stored, and readable at once.
            client = client.with_setting("insert_distributed_sync", "1");
        }
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
        Ok(ClickHouse {
            client: client.into(),
            server: server.into(),
            database: config.clickhouse_database.as_str().into(),
            calls,
            sharding,
        })
    }

    /// Whether ClickHouse is sharded (`MERIDIAN_CLICKHOUSE_CLUSTER`).
    pub fn is_sharded(&self) -> bool {
        self.sharding.is_some()
    }

    /// The name a table's rows are stored under on each server: `<table>_local` when
    /// sharded (`<table>` is then the Distributed table over them), else the table.
    pub(crate) fn local(&self, table: &str) -> String {
        if self.is_sharded() {
            format!("{table}_local")
        } else {
            table.to_owned()
        }
    }

    /// Runs `statements`, in order, on every shard (or on the one server).
    pub(crate) async fn on_every_shard(
        &self,
        statements: &[String],
    ) -> Result<(), clickhouse::error::Error> {
        match &self.sharding {
            None => {
                for statement in statements {
                    self.client.query(statement).execute().await?;
                }
            }
            Some(sharding) => {
                for (client, _) in sharding.shards.iter() {
                    for statement in statements {
                        client.query(statement).execute().await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Empties tables (on every shard: a Distributed table does not truncate its shards).
    pub(crate) async fn truncate(&self, tables: &[&str]) -> Result<(), clickhouse::error::Error> {
        let statements: Vec<String> = tables
            .iter()
            .map(|t| format!("TRUNCATE TABLE {}", self.local(t)))
            .collect();
        self.on_every_shard(&statements).await
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
