//! The graph's reads from ClickHouse: latest prices (when Redis misses), candles, 24h
//! stats and activity buckets. One statement per batch; keys bound as a tuple for `IN`.

use clickhouse::Row;
use serde::{ser::SerializeTuple, Deserialize, Serialize, Serializer};

use super::ClickHouse;

/// Binds a list as a SQL tuple, `('a', 'b')`: ClickHouse 18.16 does not accept an array
/// after `IN`. Callers never pass an empty list.
pub(super) struct InList<'a>(pub(super) &'a [String]);

impl Serialize for InList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for item in self.0 {
            tuple.serialize_element(item)?;
        }
        tuple.end()
    }
}

#[derive(Debug, Clone, Row, Deserialize)]
pub struct LastTickRow {
    pub symbol: String,
    pub price: f64,
    pub ts: u32,
}

#[derive(Debug, Clone, Row, Deserialize)]
pub struct CandleRow {
    pub symbol: String,
    pub bucket: u32,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub ticks: u64,
}

#[derive(Debug, Clone, Row, Deserialize, Serialize)]
pub struct StatsRow {
    pub symbol: String,
    pub open: f64,
    pub last: f64,
    pub high: f64,
    pub low: f64,
    pub volume: f64,
    pub first_ts: u32,
    pub last_ts: u32,
}

#[derive(Debug, Clone, Row, Deserialize)]
pub struct ActivityBucketRow {
    pub user_id: String,
    pub bucket: u32,
    pub events: u64,
    pub trades: u64,
    pub trade_volume: f64,
    pub rewards: u64,
}

/// The candle views, coarsest first: (bucket seconds, table).
pub const CANDLE_VIEWS: [(u32, &str); 3] = [
    (86_400, "candles_1d"),
    (3_600, "candles_1h"),
    (60, "candles_1m"),
];

/// The coarsest candle view that answers buckets of `bucket_secs` over [from, to) exactly:
/// its buckets divide the interval and both ends fall on its bucket boundaries.
pub fn candle_view(bucket_secs: u32, from: u32, to: u32) -> Option<&'static str> {
    coarsest(&CANDLE_VIEWS, bucket_secs, from, to)
}

/// The coarsest of `views` (coarsest first) whose buckets tile the interval and the window.
pub(super) fn coarsest(
    views: &[(u32, &'static str)],
    bucket_secs: u32,
    from: u32,
    to: u32,
) -> Option<&'static str> {
    views
        .iter()
        .find(|(g, _)| {
            bucket_secs.is_multiple_of(*g) && from.is_multiple_of(*g) && to.is_multiple_of(*g)
        })
        .map(|(_, view)| *view)
}

impl ClickHouse {
    /// The last tick of each symbol that has any.
    pub async fn last_ticks(&self, symbols: &[String]) -> Result<Vec<LastTickRow>, crate::Error> {
        self.calls
            .run::<Vec<LastTickRow>, clickhouse::error::Error, _>("last_ticks", async {
        self.client
            .query(
                "SELECT symbol, toFloat64(argMax(price, ts)) AS last_price, toUInt32(max(ts)) AS last_ts \
                 FROM price_ticks WHERE symbol IN ? GROUP BY symbol",
            )
            .bind(InList(symbols))
            .fetch_all()
            .await
            })
            .await
    }

    /// OHLCV buckets of `bucket_secs` over [from, to) for each symbol; empty buckets are
    /// absent. Open is the first price by time, close the last. Read from the coarsest
    /// candle view whose buckets tile the window and the interval (see
    /// [`candle_view`]), else from the raw ticks.
    pub async fn candles(
        &self,
        symbols: &[String],
        bucket_secs: u32,
        from: u32,
        to: u32,
    ) -> Result<Vec<CandleRow>, crate::Error> {
        match candle_view(bucket_secs, from, to) {
            Some(view) => {
                self.candles_from_view(view, symbols, bucket_secs, from, to)
                    .await
            }
            None => {
                self.candles_from_ticks(symbols, bucket_secs, from, to)
                    .await
            }
        }
    }

    /// [`ClickHouse::candles`] computed from the raw ticks.
    pub async fn candles_from_ticks(
        &self,
        symbols: &[String],
        bucket_secs: u32,
        from: u32,
        to: u32,
    ) -> Result<Vec<CandleRow>, crate::Error> {
        self.calls
            .run::<Vec<CandleRow>, clickhouse::error::Error, _>("candles", async {
                self.client
                    .query(
                        "SELECT symbol, toUInt32(intDiv(toUInt32(ts), ?) * ?) AS bucket, \
                        toFloat64(argMin(price, ts)) AS open, toFloat64(max(price)) AS high, \
                        toFloat64(min(price)) AS low, toFloat64(argMax(price, ts)) AS close, \
                        toFloat64(sum(volume)) AS volume, toUInt64(count()) AS ticks \
                 FROM price_ticks \
                 WHERE symbol IN ? AND ts >= toDateTime(?) AND ts < toDateTime(?) \
                 GROUP BY symbol, bucket ORDER BY symbol, bucket",
                    )
                    .bind(bucket_secs)
                    .bind(bucket_secs)
                    .bind(InList(symbols))
                    .bind(from)
                    .bind(to)
                    .fetch_all()
                    .await
            })
            .await
    }

    /// [`ClickHouse::candles`] merged from a candle view's states.
    pub async fn candles_from_view(
        &self,
        view: &'static str,
        symbols: &[String],
        bucket_secs: u32,
        from: u32,
        to: u32,
    ) -> Result<Vec<CandleRow>, crate::Error> {
        self.calls
            .run::<Vec<CandleRow>, clickhouse::error::Error, _>("candles_view", async {
                self.client
                    .query(&format!(
                        "SELECT symbol, toUInt32(intDiv(toUInt32(bucket), ?) * ?) AS start, \
                        toFloat64(argMinMerge(first_price)) AS o, toFloat64(maxMerge(high_price)) AS h, \
                        toFloat64(minMerge(low_price)) AS l, toFloat64(argMaxMerge(last_price)) AS c, \
                        toFloat64(sumMerge(traded)) AS v, toUInt64(countMerge(tick_count)) AS n \
                 FROM {view} \
                 WHERE symbol IN ? AND bucket >= toDateTime(?) AND bucket < toDateTime(?) \
                 GROUP BY symbol, start ORDER BY symbol, start"
                    ))
                    .bind(bucket_secs)
                    .bind(bucket_secs)
                    .bind(InList(symbols))
                    .bind(from)
                    .bind(to)
                    .fetch_all()
                    .await
            })
            .await
    }

    /// Open, last, high, low and volume of each symbol since `since` (unix seconds).
    pub async fn stats_since(
        &self,
        symbols: &[String],
        since: u32,
    ) -> Result<Vec<StatsRow>, crate::Error> {
        self.calls
            .run::<Vec<StatsRow>, clickhouse::error::Error, _>("stats_since", async {
        self.client
            .query(
                "SELECT symbol, toFloat64(argMin(price, ts)) AS open, toFloat64(argMax(price, ts)) AS last, \
                        toFloat64(max(price)) AS high, toFloat64(min(price)) AS low, \
                        toFloat64(sum(volume)) AS volume, toUInt32(min(ts)) AS first_ts, \
                        toUInt32(max(ts)) AS last_ts \
                 FROM price_ticks WHERE symbol IN ? AND ts >= toDateTime(?) GROUP BY symbol",
            )
            .bind(InList(symbols))
            .bind(since)
            .fetch_all()
            .await
            })
            .await
    }

    /// Activity of each user in buckets of `bucket_secs` over [from, to). Events are
    /// deduplicated by event id (FINAL), so a redelivered event counts once.
    pub async fn activity(
        &self,
        users: &[String],
        bucket_secs: u32,
        from: u32,
        to: u32,
    ) -> Result<Vec<ActivityBucketRow>, crate::Error> {
        self.calls
            .run::<Vec<ActivityBucketRow>, clickhouse::error::Error, _>("activity", async {
                self.client
                    .query(
                        "SELECT user_id, toUInt32(intDiv(toUInt32(ts), ?) * ?) AS bucket, \
                        toUInt64(count()) AS events, \
                        toUInt64(countIf(kind LIKE 'trade%')) AS trades, \
                        toFloat64(sumIf(amount, kind LIKE 'trade%')) AS trade_volume, \
                        toUInt64(countIf(kind LIKE '%reward')) AS rewards \
                 FROM activity_events FINAL \
                 WHERE user_id IN ? AND ts >= toDateTime(?) AND ts < toDateTime(?) \
                 GROUP BY user_id, bucket ORDER BY user_id, bucket",
                    )
                    .bind(bucket_secs)
                    .bind(bucket_secs)
                    .bind(InList(users))
                    .bind(from)
                    .bind(to)
                    .fetch_all()
                    .await
            })
            .await
    }
}
