//! Market data reads: the newest tick with market figures per asset (the market cache's
//! fallback), prices per exchange, volume-weighted prices, the market overview and the
//! top movers. Each is one statement, whatever the number of assets asked for. Rows are
//! read by position; aliases never reuse a column's name, which ClickHouse would resolve
//! to the alias inside the aggregates.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::{reads::InList, ClickHouse};

/// A tick that carried market figures.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct MarketTickRow {
    pub symbol: String,
    pub price: f64,
    pub exchange: String,
    pub source: String,
    pub attribution: String,
    pub market_cap: Option<f64>,
    pub volume_24h: Option<f64>,
    pub liquidity: Option<f64>,
    pub participants: Option<u32>,
    pub ts: u32,
}

/// An OHLCV row as a provider publishes it.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct OhlcvRow {
    pub symbol: String,
    pub exchange: String,
    /// `1m`, `5m`, `15m`, `1h`, `4h`, `1d`, `1w`.
    pub timeframe: String,
    /// The period's start, unix seconds.
    pub ts: u32,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub source: String,
    pub attribution: String,
    /// When it was written: the latest row of a period wins.
    pub written_at: u32,
}

#[derive(Debug, Clone, Row, Deserialize)]
pub struct ExchangePriceRow {
    pub symbol: String,
    pub exchange: String,
    pub price: f64,
    pub ts: u32,
}

#[derive(Debug, Clone, Row, Deserialize)]
pub struct VwapRow {
    pub symbol: String,
    pub vwap: f64,
    pub volume: f64,
}

#[derive(Debug, Clone, Row, Deserialize)]
pub struct OverviewRow {
    pub total_cap: f64,
    pub btc_cap: f64,
    pub eth_cap: f64,
    pub volume: f64,
    pub markets: u64,
}

#[derive(Debug, Clone, Row, Deserialize)]
pub struct MoverRow {
    pub symbol: String,
    pub open: f64,
    pub close: f64,
    pub ticks: u64,
}

impl ClickHouse {
    pub async fn insert_ohlcv(&self, rows: &[OhlcvRow]) -> Result<(), crate::Error> {
        self.calls
            .run::<(), clickhouse::error::Error, _>("insert_ohlcv", async {
                self.insert_all("ohlcv", rows).await
            })
            .await
    }

    /// The OHLCV rows of these symbols on one exchange and timeframe over [from, to), by
    /// symbol and start.
    pub async fn ohlcv(
        &self,
        symbols: &[String],
        exchange: &str,
        timeframe: &str,
        from: u32,
        to: u32,
    ) -> Result<Vec<OhlcvRow>, crate::Error> {
        self.calls
            .run::<Vec<OhlcvRow>, clickhouse::error::Error, _>("ohlcv", async {
                self.client
                    .query(
                        "SELECT symbol, exchange, timeframe, toUInt32(ts) AS start, open, high, low, \
                         close, volume, source, attribution, toUInt32(written_at) AS written \
                         FROM ohlcv FINAL WHERE symbol IN ? AND exchange = ? AND timeframe = ? \
                         AND ts >= toDateTime(?) AND ts < toDateTime(?) ORDER BY symbol, ts",
                    )
                    .bind(InList(symbols))
                    .bind(exchange)
                    .bind(timeframe)
                    .bind(from)
                    .bind(to)
                    .fetch_all()
                    .await
            })
            .await
    }

    /// The newest tick of each symbol that carried any market figure.
    pub async fn market_ticks(
        &self,
        symbols: &[String],
    ) -> Result<Vec<MarketTickRow>, crate::Error> {
        self.calls
            .run::<Vec<MarketTickRow>, clickhouse::error::Error, _>("market_ticks", async {
                self.client
                    .query(
                        "SELECT symbol, price, exchange, source, attribution, market_cap, \
                         volume_24h, liquidity, participants, toUInt32(ts) AS tick_ts \
                         FROM price_ticks WHERE symbol IN ? AND (isNotNull(market_cap) \
                         OR isNotNull(volume_24h) OR isNotNull(liquidity) OR isNotNull(participants)) \
                         ORDER BY symbol, ts DESC LIMIT 1 BY symbol",
                    )
                    .bind(InList(symbols))
                    .fetch_all()
                    .await
            })
            .await
    }

    /// The last price of each symbol on each of the exchanges (pairs not seen are absent).
    pub async fn exchange_prices(
        &self,
        symbols: &[String],
        exchanges: &[String],
    ) -> Result<Vec<ExchangePriceRow>, crate::Error> {
        self.calls
            .run::<Vec<ExchangePriceRow>, clickhouse::error::Error, _>("exchange_prices", async {
                self.client
                    .query(
                        "SELECT symbol, exchange, toFloat64(argMax(price, ts)) AS last_price, \
                         toUInt32(max(ts)) AS last_ts FROM price_ticks \
                         WHERE symbol IN ? AND exchange IN ? GROUP BY symbol, exchange",
                    )
                    .bind(InList(symbols))
                    .bind(InList(exchanges))
                    .fetch_all()
                    .await
            })
            .await
    }

    /// The volume-weighted price of each symbol over its ticks since `since`, across
    /// exchanges (symbols without traded volume are absent).
    pub async fn vwaps(
        &self,
        symbols: &[String],
        since: u32,
    ) -> Result<Vec<VwapRow>, crate::Error> {
        self.calls
            .run::<Vec<VwapRow>, clickhouse::error::Error, _>("vwaps", async {
                self.client
                    .query(
                        "SELECT symbol, toFloat64(sum(price * volume) / sum(volume)) AS weighted, \
                         toFloat64(sum(volume)) AS weighed FROM price_ticks \
                         WHERE symbol IN ? AND ts >= toDateTime(?) AND volume > 0 GROUP BY symbol",
                    )
                    .bind(InList(symbols))
                    .bind(since)
                    .fetch_all()
                    .await
            })
            .await
    }

    /// Over the ticks since `since`: the sum of each symbol's newest market cap, BTC's and
    /// ETH's, the traded notional (price x volume) and the number of symbols with ticks.
    pub async fn market_overview(&self, since: u32) -> Result<Option<OverviewRow>, crate::Error> {
        self.calls
            .run::<Option<OverviewRow>, clickhouse::error::Error, _>("market_overview", async {
                self.client
                    .query(
                        "SELECT toFloat64(sum(cap)) AS total_cap, \
                         toFloat64(sumIf(cap, symbol = 'BTC')) AS btc_cap, \
                         toFloat64(sumIf(cap, symbol = 'ETH')) AS eth_cap, \
                         toFloat64(sum(notional)) AS traded, toUInt64(count()) AS markets \
                         FROM (SELECT symbol, \
                               argMaxIf(ifNull(market_cap, 0), ts, isNotNull(market_cap)) AS cap, \
                               sum(price * volume) AS notional \
                               FROM price_ticks WHERE ts >= toDateTime(?) GROUP BY symbol)",
                    )
                    .bind(since)
                    .fetch_optional()
                    .await
            })
            .await
    }

    /// The first and last price of each symbol with two ticks or more since `since`.
    pub async fn movers(&self, since: u32) -> Result<Vec<MoverRow>, crate::Error> {
        self.calls
            .run::<Vec<MoverRow>, clickhouse::error::Error, _>("movers", async {
                self.client
                    .query(
                        "SELECT symbol, toFloat64(argMin(price, ts)) AS first, \
                         toFloat64(argMax(price, ts)) AS last, toUInt64(count()) AS seen \
                         FROM price_ticks WHERE ts >= toDateTime(?) GROUP BY symbol HAVING seen >= 2",
                    )
                    .bind(since)
                    .fetch_all()
                    .await
            })
            .await
    }
}

/// Rows per (key, UTC day), as the raw rows or one of their views count them.
#[derive(Debug, Clone, PartialEq, Eq, Row, Deserialize)]
pub struct DayTicksRow {
    /// The symbol (ticks) or pool (samples).
    pub symbol: String,
    pub day: u32,
    pub ticks: u64,
}

/// Raw rows that materialized views fold: price ticks into candles, pool samples into
/// pool series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folded {
    Ticks,
    PoolSamples,
}

impl Folded {
    /// What one row is called in reconcile's report.
    pub fn noun(self) -> &'static str {
        match self {
            Folded::Ticks => "ticks",
            Folded::PoolSamples => "samples",
        }
    }

    /// The views, coarsest first: (bucket seconds, table).
    pub fn views(self) -> &'static [(u32, &'static str)] {
        match self {
            Folded::Ticks => &super::CANDLE_VIEWS,
            Folded::PoolSamples => &super::POOL_VIEWS,
        }
    }

    /// (raw table, key column, the view's count column).
    fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Folded::Ticks => ("price_ticks", "symbol", "tick_count"),
            Folded::PoolSamples => ("pool_metrics", "pool", "samples"),
        }
    }

    /// The aggregate states a view keeps, as its materialized view computes them.
    fn states(self) -> &'static str {
        match self {
            Folded::Ticks => {
                "argMinState(price, ts) AS first_price, maxState(price) AS high_price, \
                 minState(price) AS low_price, argMaxState(price, ts) AS last_price, \
                 sumState(volume) AS traded, countState() AS tick_count"
            }
            Folded::PoolSamples => {
                "argMaxState(tvl, ts) AS tvl_last, maxState(tvl) AS tvl_high, \
                 minState(tvl) AS tvl_low, argMaxState(apy, ts) AS apy_last, \
                 maxState(apy) AS apy_high, minState(apy) AS apy_low, \
                 sumState(apy) AS apy_total, countState() AS samples"
            }
        }
    }
}

impl ClickHouse {
    /// Rows per key and UTC day: from the raw rows (`view` None) or one of their views.
    pub async fn rows_per_day(
        &self,
        folded: Folded,
        view: Option<&'static str>,
    ) -> Result<Vec<DayTicksRow>, crate::Error> {
        let (raw, key, count) = folded.columns();
        let sql = match view {
            None => format!(
                "SELECT {key}, toUInt32(intDiv(toUInt32(ts), 86400)) AS row_day, \
                 toUInt64(count()) AS n FROM {raw} GROUP BY {key}, row_day ORDER BY {key}, row_day"
            ),
            Some(view) => format!(
                "SELECT {key}, toUInt32(intDiv(toUInt32(bucket), 86400)) AS row_day, \
                 toUInt64(countMerge({count})) AS n FROM {view} GROUP BY {key}, row_day \
                 ORDER BY {key}, row_day"
            ),
        };
        self.calls
            .run::<Vec<DayTicksRow>, clickhouse::error::Error, _>("rows_per_day", async {
                self.client.query(&sql).fetch_all().await
            })
            .await
    }

    /// Empties a view's table and folds every raw row into it again.
    pub async fn rebuild_view(
        &self,
        folded: Folded,
        view: &'static str,
        bucket_secs: u32,
    ) -> Result<(), crate::Error> {
        let (raw, key, _) = folded.columns();
        let states = folded.states();
        self.calls
            .run::<(), clickhouse::error::Error, _>("rebuild_view", async {
                // Shard by shard when sharded: each shard's raw rows fold into its own
                // view table (the raw tables are sharded by the views' keys).
                let (view, raw) = (self.local(view), self.local(raw));
                self.on_every_shard(&[
                    format!("TRUNCATE TABLE {view}"),
                    format!(
                        "INSERT INTO {view} SELECT {key}, \
                         toDateTime(intDiv(toUInt32(ts), {bucket_secs}) * {bucket_secs}) AS bucket, \
                         {states} FROM {raw} GROUP BY {key}, bucket"
                    ),
                ])
                .await
            })
            .await
    }
}
