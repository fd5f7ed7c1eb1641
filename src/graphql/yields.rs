//! Yields as the YieldSensei seed describes them: pools' TVL and APY over time (ingested
//! like ticks, kept hourly and daily by ClickHouse views), the best yields by strategy and
//! risk, protocols' TVL, and users' portfolio value per day (snapshots the leader-elected
//! job writes; see [`crate::snapshots`]).

use async_graphql::{
    ComplexObject, Context, Enum, ErrorExtensions, InputObject, Object, Result, SimpleObject,
};
use chrono::{DateTime, Duration, Utc};

use super::catalogue::{Pool, ProtocolCategory, RiskLevel};
use crate::{
    auth::Role,
    error::Error,
    graphql::{
        scope,
        series::{self, Interval},
    },
    ingest::{self, KnownSymbols, PoolMetricInput, TickTime},
    loaders::{PoolLatestOf, PoolSeriesOf, PoolsOfProtocol, PortfolioOf},
    store::clickhouse::{PoolMetricRow, PoolPointRow, SnapshotGroup},
};

/// Most samples one `ingestPoolMetrics` call takes (use `POST /ingest/prices` for feeds).
const MAX_SAMPLES: usize = 10_000;
/// Most results one `bestYields` call returns.
const MAX_YIELDS: i32 = 100;
/// `bestYields` leaves out pools without a sample in this many days.
const FRESH_DAYS: i64 = 7;
/// `portfolioHistory`'s window when none is given, in days.
const DEFAULT_HISTORY_DAYS: i64 = 30;

/// A pool's newest TVL and APY sample.
#[derive(SimpleObject)]
pub struct PoolMetrics {
    /// Total value locked, in USD.
    pub tvl: f64,
    /// Annual percentage yield, in percent (4.2 is 4.2%).
    pub apy: f64,
    pub source: String,
    pub at: DateTime<Utc>,
}

impl From<PoolMetricRow> for PoolMetrics {
    fn from(r: PoolMetricRow) -> Self {
        PoolMetrics {
            tvl: r.tvl,
            apy: r.apy,
            source: r.source,
            at: series::at(i64::from(r.ts)),
        }
    }
}

/// A pool over one bucket: the last, highest and lowest TVL and APY, and the mean APY of
/// its samples.
#[derive(SimpleObject)]
pub struct PoolPoint {
    /// The bucket's start.
    pub at: DateTime<Utc>,
    pub tvl: f64,
    pub tvl_high: f64,
    pub tvl_low: f64,
    pub apy: f64,
    pub apy_high: f64,
    pub apy_low: f64,
    pub apy_mean: f64,
    pub samples: i64,
}

impl From<PoolPointRow> for PoolPoint {
    fn from(r: PoolPointRow) -> Self {
        PoolPoint {
            at: series::at(i64::from(r.bucket)),
            tvl: r.tvl,
            tvl_high: r.tvl_high,
            tvl_low: r.tvl_low,
            apy: r.apy,
            apy_high: r.apy_high,
            apy_low: r.apy_low,
            apy_mean: r.apy_avg,
            samples: i64::try_from(r.samples).unwrap_or(i64::MAX),
        }
    }
}

/// A protocol's TVL over one bucket: the sum of each pool's last TVL in it.
#[derive(SimpleObject)]
pub struct TvlPoint {
    pub at: DateTime<Utc>,
    pub tvl: f64,
    /// Pools that reported in the bucket.
    pub pools: i32,
}

/// A pool's yield as `bestYields` ranks it.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct YieldOpportunity {
    #[graphql(skip)]
    pub pool: crate::store::postgres::PoolRow,
    pub apy: f64,
    pub tvl: f64,
    /// When the sample was taken.
    pub at: DateTime<Utc>,
}

#[ComplexObject]
impl YieldOpportunity {
    async fn pool(&self) -> Pool {
        Pool(self.pool.clone())
    }
}

/// How portfolio snapshots are grouped.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotInterval {
    Day,
    /// ISO weeks, from Monday.
    Week,
    Month,
}

/// A user's portfolio over a day, week or month: its last daily snapshot.
#[derive(SimpleObject)]
pub struct PortfolioPoint {
    /// The first day of the group (00:00 UTC).
    pub at: DateTime<Utc>,
    /// The day of the snapshot that stands for the group (00:00 UTC).
    pub day: DateTime<Utc>,
    /// Holdings valued at that day's last prices, in USD.
    pub value: f64,
    pub positions: i32,
    /// Positions left out of `value` because their asset had no price.
    pub unpriced: i32,
}

/// One pool sample to ingest.
#[derive(InputObject)]
pub struct PoolSampleInput {
    /// A catalogued pool's id.
    pub pool: String,
    /// Total value locked, in USD (0 to 1e16).
    pub tvl: f64,
    /// Annual percentage yield, in percent (-100 to 1e6).
    pub apy: f64,
    /// When it was taken (default now; not in the future).
    pub at: Option<DateTime<Utc>>,
    pub source: Option<String>,
}

#[derive(SimpleObject)]
pub struct PoolMetricsIngestResult {
    pub accepted: i32,
}

#[derive(Default)]
pub struct YieldsMutation;

#[Object]
impl YieldsMutation {
    /// Writes up to 10,000 pool samples, all or nothing (service role). `POST
    /// /ingest/prices` takes the same samples as NDJSON lines naming a `pool`.
    async fn ingest_pool_metrics(
        &self,
        ctx: &Context<'_>,
        samples: Vec<PoolSampleInput>,
    ) -> Result<PoolMetricsIngestResult> {
        scope::viewer(ctx).require_any(&[Role::Service])?;
        let stores = scope::stores(ctx)?;
        let known = KnownSymbols::load(stores).await?;
        let now = ingest::now();
        let rows = super::checked_batch("samples", samples, MAX_SAMPLES, |field, s| {
            let input = PoolMetricInput {
                pool: s.pool,
                tvl: s.tvl,
                apy: s.apy,
                ts: s.at.map(|at| TickTime::Unix(at.timestamp())),
                source: s.source,
            };
            ingest::check_pool(&input, &known, now).map_err(|(message, name)| {
                let name = if name == "ts" { "at" } else { name };
                Error::field(format!("{field}.{name}"), message)
            })
        })?;
        stores.clickhouse().insert_pool_metrics(&rows).await?;
        Ok(PoolMetricsIngestResult {
            accepted: i32::try_from(rows.len()).unwrap_or(i32::MAX),
        })
    }
}

#[derive(Default)]
pub struct YieldsQuery;

#[Object]
impl YieldsQuery {
    /// Pools by their newest APY, highest first: of protocols of a `strategy` (category),
    /// at most `maxRisk`, holding `asset`, with at least `minTvl` USD locked. Pools without
    /// a sample in the last 7 days are left out.
    async fn best_yields(
        &self,
        ctx: &Context<'_>,
        strategy: Option<ProtocolCategory>,
        max_risk: Option<RiskLevel>,
        asset: Option<String>,
        min_tvl: Option<f64>,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<YieldOpportunity>> {
        if !(1..=MAX_YIELDS).contains(&first) {
            return Err(Error::field("first", format!("must be 1 to {MAX_YIELDS}")).extend());
        }
        if min_tvl.is_some_and(|t| !t.is_finite() || t < 0.0) {
            return Err(Error::field("minTvl", "must be a number from 0").extend());
        }
        let asset = asset
            .map(|a| crate::values::Symbol::parse(&a))
            .transpose()
            .map_err(|rule| Error::field("asset", rule).extend())?;
        let stores = scope::stores(ctx)?;
        let pools = stores
            .postgres()
            .yield_candidates(
                strategy.map(ProtocolCategory::as_str),
                max_risk.map(RiskLevel::as_str),
                asset.as_ref().map(crate::values::Symbol::as_str),
            )
            .await?;
        if pools.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = pools.iter().map(|p| p.id.clone()).collect();
        let since = u32::try_from((Utc::now() - Duration::days(FRESH_DAYS)).timestamp())
            .unwrap_or_default();
        let latest = stores.clickhouse().pool_latest(&ids, since).await?;
        let mut found: Vec<YieldOpportunity> = latest
            .into_iter()
            .filter(|m| min_tvl.is_none_or(|min| m.tvl >= min))
            .filter_map(|m| {
                let pool = pools.iter().find(|p| p.id == m.pool)?.clone();
                Some(YieldOpportunity {
                    pool,
                    apy: m.apy,
                    tvl: m.tvl,
                    at: series::at(i64::from(m.ts)),
                })
            })
            .collect();
        found.sort_by(|a, b| b.apy.total_cmp(&a.apy).then(a.pool.id.cmp(&b.pool.id)));
        found.truncate(first as usize);
        Ok(found)
    }

    /// A protocol's TVL over [from, to) in buckets of `interval`: the sum of its pools'
    /// last TVL in each bucket (from the hourly or daily views when they tile the window).
    /// Without `to` the series ends with the current bucket; without `from` it starts 7
    /// days before `to`.
    async fn protocol_tvl(
        &self,
        ctx: &Context<'_>,
        protocol: String,
        interval: Interval,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<TvlPoint>> {
        protocol_tvl(ctx, protocol.trim(), interval, from, to).await
    }
}

/// `Pool.latest`.
pub async fn pool_latest(ctx: &Context<'_>, pool: &str) -> Result<Option<PoolMetrics>> {
    let found = scope::loaders(ctx)?
        .load_one(PoolLatestOf(pool.to_owned()))
        .await?;
    Ok(found.map(PoolMetrics::from))
}

/// How far back a pool or protocol series reaches when `from` is not given, in days.
const DEFAULT_SERIES_DAYS: i64 = 7;

/// The checked window of a series argument. Without `to`, the series ends with the
/// current bucket; without `from`, it starts 7 days before `to`.
fn window(
    ctx: &Context<'_>,
    interval: Interval,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<series::Window> {
    let max = scope::app(ctx)?.config().max_series_points;
    let to = to.unwrap_or_else(|| {
        let bucket = i64::from(interval.seconds());
        series::at((Utc::now().timestamp() / bucket + 1) * bucket)
    });
    let from = from.unwrap_or(to - Duration::days(DEFAULT_SERIES_DAYS));
    series::window(from, to, interval, max).map_err(|e| e.extend())
}

/// `Pool.history`.
pub async fn pool_history(
    ctx: &Context<'_>,
    pool: &str,
    interval: Interval,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<PoolPoint>> {
    let w = window(ctx, interval, from, to)?;
    let rows = scope::loaders(ctx)?
        .load_one(PoolSeriesOf {
            pool: pool.to_owned(),
            bucket_secs: w.bucket_secs,
            from: w.from,
            to: w.to,
        })
        .await?
        .unwrap_or_default();
    Ok(rows.into_iter().map(PoolPoint::from).collect())
}

/// `Protocol.tvl`: the sum of its pools' newest TVL; null when none has a sample.
pub async fn protocol_tvl_now(ctx: &Context<'_>, protocol: &str) -> Result<Option<f64>> {
    let loaders = scope::loaders(ctx)?;
    let pools = loaders
        .load_one(PoolsOfProtocol(protocol.to_owned()))
        .await?
        .unwrap_or_default();
    let latest = loaders
        .load_many(pools.iter().map(|p| PoolLatestOf(p.id.clone())))
        .await?;
    if latest.is_empty() {
        return Ok(None);
    }
    let total: f64 = latest.values().map(|m| m.tvl).sum();
    Ok(Some(Error::finite(total, "tvl")?))
}

/// `protocolTvl` and `Protocol.tvlHistory`.
pub async fn protocol_tvl(
    ctx: &Context<'_>,
    protocol: &str,
    interval: Interval,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<TvlPoint>> {
    let w = window(ctx, interval, from, to)?;
    let loaders = scope::loaders(ctx)?;
    let pools = loaders
        .load_one(PoolsOfProtocol(protocol.to_owned()))
        .await?
        .unwrap_or_default();
    let series = loaders
        .load_many(pools.iter().map(|p| PoolSeriesOf {
            pool: p.id.clone(),
            bucket_secs: w.bucket_secs,
            from: w.from,
            to: w.to,
        }))
        .await?;
    let mut buckets: std::collections::BTreeMap<u32, (f64, i32)> = Default::default();
    for point in series.into_values().flatten() {
        let entry = buckets.entry(point.bucket).or_default();
        entry.0 += point.tvl;
        entry.1 += 1;
    }
    buckets
        .into_iter()
        .map(|(bucket, (tvl, pools))| {
            Ok(TvlPoint {
                at: series::at(i64::from(bucket)),
                tvl: Error::finite(tvl, "tvl")?,
                pools,
            })
        })
        .collect()
}

/// `User.portfolioHistory`: [from, to] by UTC day, the last 30 days by default.
pub async fn portfolio_history(
    ctx: &Context<'_>,
    user_id: &str,
    interval: SnapshotInterval,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<PortfolioPoint>> {
    let to = to.unwrap_or_else(Utc::now);
    let from = from.unwrap_or(to - Duration::days(DEFAULT_HISTORY_DAYS));
    if from > to {
        return Err(Error::field("from", "must not be after `to`").extend());
    }
    let in_range = |t: DateTime<Utc>, name: &str| {
        let days = t.timestamp().div_euclid(86_400);
        u16::try_from(days)
            .map_err(|_| Error::field(name, "must be between 1970 and 2149").extend())
    };
    let (from_day, to_day) = (in_range(from, "from")?, in_range(to, "to")?);
    let max = scope::app(ctx)?.config().max_series_points;
    if u32::from(to_day - from_day) >= max {
        return Err(Error::field("to", format!("this window holds more than {max} days")).extend());
    }
    let group = match interval {
        SnapshotInterval::Day => SnapshotGroup::Day,
        SnapshotInterval::Week => SnapshotGroup::Week,
        SnapshotInterval::Month => SnapshotGroup::Month,
    };
    let rows = scope::loaders(ctx)?
        .load_one(PortfolioOf {
            user_id: user_id.to_owned(),
            group,
            from: from_day,
            to: to_day,
        })
        .await?
        .unwrap_or_default();
    let day = |d: u16| series::at(i64::from(d) * 86_400);
    Ok(rows
        .into_iter()
        .map(|r| PortfolioPoint {
            at: day(r.start),
            day: day(r.day),
            value: r.value,
            positions: i32::try_from(r.positions).unwrap_or(i32::MAX),
            unpriced: i32::try_from(r.unpriced).unwrap_or(i32::MAX),
        })
        .collect())
}
