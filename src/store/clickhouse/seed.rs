//! Writes the demo dataset into ClickHouse: price ticks, trade events and activity.

use clickhouse::Row;
use serde::Serialize;

use super::ClickHouse;

/// Rows per `INSERT` statement.
const CHUNK: usize = 200_000;

#[derive(Debug, Clone, Row, Serialize)]
pub struct TickRow {
    pub symbol: String,
    /// Unix seconds (ClickHouse `DateTime`).
    pub ts: u32,
    pub price: f64,
    pub volume: f64,
    /// Where the tick was seen ('' when the feed does not say).
    pub exchange: String,
    pub source: String,
    pub attribution: String,
    pub market_cap: Option<f64>,
    pub volume_24h: Option<f64>,
    pub liquidity: Option<f64>,
    pub participants: Option<u32>,
}

impl TickRow {
    /// A tick with a price and volume only.
    pub fn plain(symbol: String, ts: u32, price: f64, volume: f64) -> TickRow {
        TickRow {
            symbol,
            ts,
            price,
            volume,
            exchange: String::new(),
            source: String::new(),
            attribution: String::new(),
            market_cap: None,
            volume_24h: None,
            liquidity: None,
            participants: None,
        }
    }

    /// Whether it carries any market figure (and so refreshes the market cache).
    pub fn has_market_figures(&self) -> bool {
        self.market_cap.is_some()
            || self.volume_24h.is_some()
            || self.liquidity.is_some()
            || self.participants.is_some()
    }
}

#[derive(Debug, Clone, Row, Serialize)]
pub struct TradeEventRow {
    pub event_id: String,
    pub trade_id: String,
    pub user_id: String,
    pub symbol: String,
    pub side: String,
    pub quantity: f64,
    pub price: f64,
    pub executed_at: u32,
}

/// A domain event's row (see migrations/clickhouse/0004_domain_events.sql).
#[derive(Debug, Clone, Row, Serialize)]
pub struct DomainEventRow {
    pub uid: String,
    pub id: String,
    pub kind: String,
    pub subject_chain: String,
    pub subject: String,
    pub amount: f64,
    pub has_amount: u8,
    pub attributes: String,
    pub tx_hash: String,
    pub block_number: u64,
    pub artifact: String,
    pub occurred_at: u32,
}

#[derive(Debug, Clone, Row, Serialize)]
pub struct ActivityRow {
    pub event_id: String,
    pub user_id: String,
    pub kind: String,
    pub symbol: String,
    pub amount: f64,
    pub ts: u32,
}

impl ClickHouse {
    /// Empties every table the demo dataset fills.
    pub async fn reset_demo_data(&self) -> Result<(), crate::Error> {
        self.calls
            .run::<(), clickhouse::error::Error, _>("reset_demo_data", async {
                for table in [
                    "price_ticks",
                    "trade_events",
                    "activity_events",
                    "domain_events",
                    "ohlcv",
                    "candles_1m",
                    "candles_1h",
                    "candles_1d",
                    "pool_metrics",
                    "pool_metrics_1h",
                    "pool_metrics_1d",
                    "portfolio_snapshots",
                ] {
                    self.truncate(&[table]).await?;
                }
                Ok(())
            })
            .await
    }

    /// Inserts ticks in statements of up to 200,000 rows, calling `progress` after each.
    pub async fn insert_ticks(
        &self,
        ticks: impl Iterator<Item = TickRow>,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, crate::Error> {
        self.calls
            .run::<u64, clickhouse::error::Error, _>("insert_ticks", async {
                let mut total = 0u64;
                let mut ticks = ticks.peekable();
                while ticks.peek().is_some() {
                    let mut insert = self.client.insert::<TickRow>("price_ticks").await?;
                    let mut rows = 0u64;
                    for tick in ticks.by_ref().take(CHUNK) {
                        insert.write(&tick).await?;
                        rows += 1;
                    }
                    insert.end().await?;
                    total += rows;
                    progress(rows);
                }
                Ok(total)
            })
            .await
    }

    pub async fn insert_trade_events(&self, rows: &[TradeEventRow]) -> Result<(), crate::Error> {
        self.calls
            .run::<(), clickhouse::error::Error, _>("insert_trade_events", async {
                self.insert_all("trade_events", rows).await
            })
            .await
    }

    pub async fn insert_domain_events(&self, rows: &[DomainEventRow]) -> Result<(), crate::Error> {
        self.calls
            .run::<(), clickhouse::error::Error, _>("insert_domain_events", async {
                self.insert_all("domain_events", rows).await
            })
            .await
    }

    pub async fn insert_activity(&self, rows: &[ActivityRow]) -> Result<(), crate::Error> {
        self.calls
            .run::<(), clickhouse::error::Error, _>("insert_activity", async {
                self.insert_all("activity_events", rows).await
            })
            .await
    }

    pub(super) async fn insert_all<T>(
        &self,
        table: &str,
        rows: &[T],
    ) -> Result<(), clickhouse::error::Error>
    where
        T: Row + clickhouse::RowOwned + clickhouse::RowWrite,
    {
        for chunk in rows.chunks(CHUNK) {
            let mut insert = self.client.insert::<T>(table).await?;
            for row in chunk {
                insert.write(row).await?;
            }
            insert.end().await?;
        }
        Ok(())
    }
}
