//! The trade analytics the relay and reconciliation keep in step with PostgreSQL.

use clickhouse::Row;
use serde::Deserialize;

use super::ClickHouse;

/// Trade count and volume of one symbol on one day (UTC).
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct DayTotals {
    pub day: String,
    pub symbol: String,
    pub trades: u64,
    pub volume: f64,
}

impl From<(String, String, i64, f64)> for DayTotals {
    /// A (day, symbol, count, sum) row as PostgreSQL computes it.
    fn from((day, symbol, count, volume): (String, String, i64, f64)) -> Self {
        DayTotals {
            day,
            symbol,
            trades: count.max(0) as u64,
            volume,
        }
    }
}

impl ClickHouse {
    /// Trade totals per day and symbol, each event counted once (FINAL).
    pub async fn trade_totals(&self) -> Result<Vec<DayTotals>, crate::Error> {
        self.calls
            .run::<Vec<DayTotals>, clickhouse::error::Error, _>("trade_totals", async {
                self.client
            .query(
                "SELECT toString(toDate(executed_at)) AS day, symbol, toUInt64(count()) AS trades, \
                        toFloat64(sum(quantity * price)) AS volume \
                 FROM trade_events FINAL GROUP BY day, symbol ORDER BY day, symbol",
            )
            .fetch_all()
            .await
            })
            .await
    }

    /// Domain event totals per day and kind (`symbol`: the kind; `trades`: the count;
    /// `volume`: the sum of amounts), each event counted once (FINAL).
    pub async fn event_totals(&self) -> Result<Vec<DayTotals>, crate::Error> {
        self.calls
            .run::<Vec<DayTotals>, clickhouse::error::Error, _>("event_totals", async {
                self.client
                    .query(
                        "SELECT toString(toDate(occurred_at)) AS day, kind AS symbol, \
                                toUInt64(count()) AS trades, toFloat64(sum(amount)) AS volume \
                         FROM domain_events FINAL GROUP BY day, symbol ORDER BY day, symbol",
                    )
                    .fetch_all()
                    .await
            })
            .await
    }

    pub async fn truncate_domain_events(&self) -> Result<(), crate::Error> {
        self.calls
            .run::<(), clickhouse::error::Error, _>("truncate_domain_events", async {
                self.truncate(&["domain_events"]).await
            })
            .await
    }

    pub async fn truncate_trade_events(&self) -> Result<(), crate::Error> {
        self.calls
            .run::<(), clickhouse::error::Error, _>("truncate_trade_events", async {
                self.truncate(&["trade_events"]).await
            })
            .await
    }
}
