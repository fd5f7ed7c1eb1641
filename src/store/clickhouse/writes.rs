//! Writes to ClickHouse beyond the seed: streamed price ticks, and the trade analytics the
//! relay and reconciliation keep in step with PostgreSQL.

use clickhouse::{insert::Insert, Row};
use serde::Deserialize;

use super::{ClickHouse, TickRow};

/// Rows per `INSERT` of a tick stream.
const TICKS_PER_INSERT: u64 = 100_000;

/// Streams ticks into `price_ticks`, one `INSERT` per 100,000 rows.
pub struct TickWriter {
    client: clickhouse::Client,
    insert: Option<Insert<TickRow>>,
    in_insert: u64,
    written: u64,
}

impl TickWriter {
    pub async fn write(&mut self, tick: &TickRow) -> Result<(), clickhouse::error::Error> {
        if self.insert.is_none() {
            self.insert = Some(self.client.insert::<TickRow>("price_ticks").await?);
        }
        if let Some(insert) = self.insert.as_mut() {
            insert.write(tick).await?;
        }
        self.in_insert += 1;
        if self.in_insert >= TICKS_PER_INSERT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Ends the current `INSERT`; everything written so far is then stored.
    pub async fn flush(&mut self) -> Result<(), clickhouse::error::Error> {
        if let Some(insert) = self.insert.take() {
            insert.end().await?;
            self.written += self.in_insert;
            self.in_insert = 0;
        }
        Ok(())
    }

    /// Ticks stored so far (flushed).
    pub fn written(&self) -> u64 {
        self.written
    }
}

/// Trade count and volume of one symbol on one day (UTC).
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct DayTotals {
    pub day: String,
    pub symbol: String,
    pub trades: u64,
    pub volume: f64,
}

impl ClickHouse {
    pub fn tick_writer(&self) -> TickWriter {
        TickWriter {
            client: self.client.clone(),
            insert: None,
            in_insert: 0,
            written: 0,
        }
    }

    /// Trade totals per day and symbol, each event counted once (FINAL).
    pub async fn trade_totals(&self) -> Result<Vec<DayTotals>, clickhouse::error::Error> {
        self.client
            .query(
                "SELECT toString(toDate(executed_at)) AS day, symbol, toUInt64(count()) AS trades, \
                        toFloat64(sum(quantity * price)) AS volume \
                 FROM trade_events FINAL GROUP BY day, symbol ORDER BY day, symbol",
            )
            .fetch_all()
            .await
    }

    pub async fn truncate_trade_events(&self) -> Result<(), clickhouse::error::Error> {
        self.client
            .query("TRUNCATE TABLE trade_events")
            .execute()
            .await
    }
}
