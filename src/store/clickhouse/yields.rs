//! Pools' TVL and APY series (kept by the `pool_metrics_1h` and `pool_metrics_1d` views)
//! and users' daily portfolio snapshots. One statement per batch, whatever the number of
//! pools or users; aliases never reuse a column's name.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::{reads::InList, ClickHouse};

/// One TVL and APY sample of a pool.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct PoolMetricRow {
    pub pool: String,
    /// Unix seconds.
    pub ts: u32,
    /// USD.
    pub tvl: f64,
    /// Percent.
    pub apy: f64,
    pub source: String,
}

/// A pool's series over one bucket.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct PoolPointRow {
    pub pool: String,
    pub bucket: u32,
    pub tvl: f64,
    pub tvl_high: f64,
    pub tvl_low: f64,
    pub apy: f64,
    pub apy_high: f64,
    pub apy_low: f64,
    pub apy_avg: f64,
    pub samples: u64,
}

/// A user's portfolio value on one UTC day.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct SnapshotRow {
    pub user_id: String,
    /// Days since the epoch (ClickHouse `Date`).
    pub day: u16,
    pub value: f64,
    pub positions: u32,
    pub unpriced: u32,
    /// Unix seconds: the newest write of a day is kept.
    pub taken_at: u32,
}

/// The pool views, coarsest first: (bucket seconds, table).
pub const POOL_VIEWS: [(u32, &str); 2] = [(86_400, "pool_metrics_1d"), (3_600, "pool_metrics_1h")];

/// How portfolio snapshots are grouped: the last day of each group stands for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnapshotGroup {
    Day,
    /// ISO weeks, from Monday.
    Week,
    Month,
}

impl SnapshotGroup {
    fn expression(self) -> &'static str {
        match self {
            SnapshotGroup::Day => "day",
            SnapshotGroup::Week => "toMonday(day)",
            SnapshotGroup::Month => "toStartOfMonth(day)",
        }
    }
}

/// A user's portfolio over one group of days: the newest snapshot in it.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct PortfolioPointRow {
    pub user_id: String,
    /// The group's first day, days since the epoch.
    pub start: u16,
    /// The day of the snapshot that stands for the group.
    pub day: u16,
    pub value: f64,
    pub positions: u32,
    pub unpriced: u32,
}

impl ClickHouse {
    pub async fn insert_pool_metrics(&self, rows: &[PoolMetricRow]) -> Result<(), crate::Error> {
        self.calls
            .run::<(), clickhouse::error::Error, _>("insert_pool_metrics", async {
                self.insert_all("pool_metrics", rows).await
            })
            .await
    }

    /// The newest sample of each pool taken at or after `since`.
    pub async fn pool_latest(
        &self,
        pools: &[String],
        since: u32,
    ) -> Result<Vec<PoolMetricRow>, crate::Error> {
        self.calls
            .run::<Vec<PoolMetricRow>, clickhouse::error::Error, _>("pool_latest", async {
                self.client
                    .query(
                        "SELECT pool, toUInt32(ts) AS at, tvl, apy, source FROM pool_metrics \
                         WHERE pool IN ? AND ts >= toDateTime(?) \
                         ORDER BY pool, ts DESC LIMIT 1 BY pool",
                    )
                    .bind(InList(pools))
                    .bind(since)
                    .fetch_all()
                    .await
            })
            .await
    }

    /// Each pool's series in buckets of `bucket_secs` over [from, to), from the coarsest
    /// view whose buckets tile the window (else the raw samples); empty buckets are absent.
    pub async fn pool_series(
        &self,
        pools: &[String],
        bucket_secs: u32,
        from: u32,
        to: u32,
    ) -> Result<Vec<PoolPointRow>, crate::Error> {
        let sql = match super::reads::coarsest(&POOL_VIEWS, bucket_secs, from, to) {
            Some(view) => format!(
                "SELECT pool, toUInt32(intDiv(toUInt32(bucket), ?) * ?) AS start, \
                 toFloat64(argMaxMerge(tvl_last)) AS t, toFloat64(maxMerge(tvl_high)) AS th, \
                 toFloat64(minMerge(tvl_low)) AS tl, toFloat64(argMaxMerge(apy_last)) AS a, \
                 toFloat64(maxMerge(apy_high)) AS ah, toFloat64(minMerge(apy_low)) AS al, \
                 toFloat64(sumMerge(apy_total) / countMerge(samples)) AS aa, \
                 toUInt64(countMerge(samples)) AS n \
                 FROM {view} WHERE pool IN ? AND bucket >= toDateTime(?) AND bucket < toDateTime(?) \
                 GROUP BY pool, start ORDER BY pool, start"
            ),
            None => "SELECT pool, toUInt32(intDiv(toUInt32(ts), ?) * ?) AS start, \
                 toFloat64(argMax(tvl, ts)) AS t, toFloat64(max(tvl)) AS th, \
                 toFloat64(min(tvl)) AS tl, toFloat64(argMax(apy, ts)) AS a, \
                 toFloat64(max(apy)) AS ah, toFloat64(min(apy)) AS al, \
                 toFloat64(avg(apy)) AS aa, toUInt64(count()) AS n \
                 FROM pool_metrics WHERE pool IN ? AND ts >= toDateTime(?) AND ts < toDateTime(?) \
                 GROUP BY pool, start ORDER BY pool, start"
                .to_owned(),
        };
        self.calls
            .run::<Vec<PoolPointRow>, clickhouse::error::Error, _>("pool_series", async {
                self.client
                    .query(&sql)
                    .bind(bucket_secs)
                    .bind(bucket_secs)
                    .bind(InList(pools))
                    .bind(from)
                    .bind(to)
                    .fetch_all()
                    .await
            })
            .await
    }

    pub async fn insert_snapshots(&self, rows: &[SnapshotRow]) -> Result<(), crate::Error> {
        self.calls
            .run::<(), clickhouse::error::Error, _>("insert_snapshots", async {
                self.insert_all("portfolio_snapshots", rows).await
            })
            .await
    }

    /// Each user's portfolio per group of days over [from, to] (days since the epoch):
    /// the newest snapshot of each group.
    pub async fn portfolio_points(
        &self,
        users: &[String],
        group: SnapshotGroup,
        from: u16,
        to: u16,
    ) -> Result<Vec<PortfolioPointRow>, crate::Error> {
        let sql = format!(
            "SELECT user_id, toUInt16({group}) AS start, toUInt16(max(day)) AS last_day, \
             toFloat64(argMax(value, day)) AS v, toUInt32(argMax(positions, day)) AS p, \
             toUInt32(argMax(unpriced, day)) AS u \
             FROM portfolio_snapshots FINAL \
             WHERE user_id IN ? AND day >= toDate(toDateTime(?)) AND day <= toDate(toDateTime(?)) \
             GROUP BY user_id, start ORDER BY user_id, start",
            group = group.expression()
        );
        self.calls
            .run::<Vec<PortfolioPointRow>, clickhouse::error::Error, _>("portfolio_points", async {
                self.client
                    .query(&sql)
                    .bind(InList(users))
                    .bind(u32::from(from) * 86_400)
                    .bind(u32::from(to) * 86_400)
                    .fetch_all()
                    .await
            })
            .await
    }
}
