//! ClickHouse: price ticks, trade and activity events; candles and 24h stats.
//!
//! Written to the SQL subset ClickHouse 18.16 understands (see DESIGN.md section 5):
//! values bound with `?`, `DateTime` in seconds, no `toStartOfInterval`.

mod migrate;
mod reads;
mod seed;
mod writes;

pub use reads::{ActivityBucketRow, CandleRow, LastTickRow, StatsRow};

pub use seed::{ActivityRow, TickRow, TradeEventRow};
pub use writes::{DayTotals, TickWriter};

use crate::config::Config;

/// The ClickHouse adapter: an HTTP client bound to Meridian's database.
#[derive(Clone)]
pub struct ClickHouse {
    client: clickhouse::Client,
    /// The same server without a database selected, for `CREATE DATABASE`.
    server: clickhouse::Client,
    database: String,
}

impl ClickHouse {
    pub fn new(config: &Config) -> Self {
        let server = clickhouse::Client::default()
            .with_url(&config.clickhouse_url)
            .with_user(&config.clickhouse_user)
            .with_password(&config.clickhouse_password)
            .with_validation(false);
        let client = server.clone().with_database(&config.clickhouse_database);
        ClickHouse {
            client,
            server,
            database: config.clickhouse_database.clone(),
        }
    }

    /// The client, for tests and tools that check the store directly.
    pub fn client(&self) -> &clickhouse::Client {
        &self.client
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    #[tracing::instrument(skip(self))]
    pub async fn ping(&self) -> Result<(), clickhouse::error::Error> {
        self.server
            .query("SELECT 1")
            .fetch_one::<u8>()
            .await
            .map(drop)
    }
}
