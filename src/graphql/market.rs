//! Market data as the QiCore seed describes it: each asset's market snapshot (cached for
//! 60 s by ingestion, else the newest tick with figures in ClickHouse), its last price on
//! one exchange and its volume-weighted price, the market overview (total market cap, BTC
//! and ETH dominance, 24h traded volume) and the top movers over an hour or a day.

use async_graphql::{ComplexObject, Context, Enum, ErrorExtensions, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::{
    error::Error,
    graphql::{asset::Asset, scope, series},
    loaders::{ExchangePriceOf, MarketOf, VwapOf},
};

/// The most movers one call returns.
const MAX_MOVERS: i32 = 100;
const DAY_SECS: i64 = 86_400;

/// A window back from now.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarketWindow {
    Hour,
    Day,
}

impl MarketWindow {
    fn secs(self) -> i64 {
        match self {
            MarketWindow::Hour => 3_600,
            MarketWindow::Day => DAY_SECS,
        }
    }

    /// The window's start, in unix seconds.
    fn since(self) -> u32 {
        u32::try_from(Utc::now().timestamp() - self.secs()).unwrap_or_default()
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoverDirection {
    /// The largest rises first.
    Gainers,
    /// The largest falls first.
    Losers,
}

/// Where a value was read from.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServedFrom {
    /// The 60-second market cache kept by ingestion.
    Cache,
    /// ClickHouse's newest tick with market figures (the cache had expired).
    Clickhouse,
}

/// An asset's market snapshot: the newest tick that carried market figures.
#[derive(SimpleObject)]
pub struct MarketData {
    pub price: f64,
    /// The venue the tick was seen on (empty when the feed did not say).
    pub exchange: String,
    /// The feed it came from, and its attribution.
    pub source: String,
    pub attribution: String,
    pub market_cap: Option<f64>,
    #[graphql(name = "volume24h")]
    pub volume_24h: Option<f64>,
    pub liquidity: Option<f64>,
    pub participants: Option<i64>,
    pub at: DateTime<Utc>,
    pub served_from: ServedFrom,
}

/// An asset's last price on one exchange (ClickHouse).
#[derive(SimpleObject)]
pub struct ExchangePrice {
    pub exchange: String,
    pub price: f64,
    pub at: DateTime<Utc>,
}

/// The volume-weighted price over a window, across exchanges (ClickHouse).
#[derive(SimpleObject)]
pub struct Vwap {
    pub price: f64,
    /// The volume it weighs.
    pub volume: f64,
}

/// The market as a whole over the last 24 hours (ClickHouse).
#[derive(SimpleObject)]
pub struct MarketOverview {
    /// The sum of each asset's newest market cap, in USD.
    pub total_market_cap: f64,
    /// BTC's and ETH's shares of it, in percent (null when no cap is known).
    pub btc_dominance: Option<f64>,
    pub eth_dominance: Option<f64>,
    /// Traded notional (price x volume) of every tick, in USD.
    #[graphql(name = "volume24h")]
    pub volume_24h: f64,
    /// Assets with ticks.
    pub markets: i64,
    pub at: DateTime<Utc>,
}

/// An asset's move over a window.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Mover {
    #[graphql(skip)]
    pub symbol: String,
    /// The first and last price in the window.
    pub open: f64,
    pub close: f64,
    pub change_percent: f64,
}

#[ComplexObject]
impl Mover {
    async fn asset(&self) -> Asset {
        Asset::known(&self.symbol)
    }
}

/// The market fields of `Asset`.
pub async fn market(ctx: &Context<'_>, symbol: &str) -> Result<Option<MarketData>> {
    let value = scope::loaders(ctx)?
        .load_one(MarketOf(symbol.to_owned()))
        .await?;
    Ok(value.map(|v| MarketData {
        price: v.snapshot.price,
        exchange: v.snapshot.exchange,
        source: v.snapshot.source,
        attribution: v.snapshot.attribution,
        market_cap: v.snapshot.market_cap,
        volume_24h: v.snapshot.volume_24h,
        liquidity: v.snapshot.liquidity,
        participants: v.snapshot.participants.map(i64::from),
        at: series::at(v.snapshot.ts),
        served_from: if v.cached {
            ServedFrom::Cache
        } else {
            ServedFrom::Clickhouse
        },
    }))
}

pub async fn exchange_price(
    ctx: &Context<'_>,
    symbol: &str,
    exchange: &str,
) -> Result<Option<ExchangePrice>> {
    let exchange = exchange.trim().to_ascii_lowercase();
    if exchange.is_empty() || exchange.len() > 50 {
        return Err(Error::field("exchange", "must be 1 to 50 characters").extend());
    }
    let found = scope::loaders(ctx)?
        .load_one(ExchangePriceOf {
            symbol: symbol.to_owned(),
            exchange: exchange.clone(),
        })
        .await?;
    Ok(found.map(|(price, ts)| ExchangePrice {
        exchange,
        price,
        at: series::at(i64::from(ts)),
    }))
}

pub async fn vwap(ctx: &Context<'_>, symbol: &str, window: MarketWindow) -> Result<Option<Vwap>> {
    // Whole minutes, so that the assets of one query share a window and a statement.
    let since = window.since() / 60 * 60;
    let found = scope::loaders(ctx)?
        .load_one(VwapOf {
            symbol: symbol.to_owned(),
            since,
        })
        .await?;
    Ok(found.map(|(price, volume)| Vwap { price, volume }))
}

#[derive(Default)]
pub struct MarketQuery;

#[Object]
impl MarketQuery {
    /// The market over the last 24 hours: total market cap, BTC and ETH dominance, traded
    /// volume and the number of assets with ticks.
    async fn market_overview(&self, ctx: &Context<'_>) -> Result<MarketOverview> {
        let row = scope::stores(ctx)?
            .clickhouse()
            .market_overview(MarketWindow::Day.since())
            .await?;
        let (total, btc, eth, volume, markets) = row
            .map(|r| (r.total_cap, r.btc_cap, r.eth_cap, r.volume, r.markets))
            .unwrap_or_default();
        let share = |cap: f64| (total > 0.0).then(|| cap * 100.0 / total);
        Ok(MarketOverview {
            total_market_cap: Error::finite(total, "total market cap")?,
            btc_dominance: share(btc),
            eth_dominance: share(eth),
            volume_24h: Error::finite(volume, "24h volume")?,
            markets: i64::try_from(markets).unwrap_or(i64::MAX),
            at: Utc::now(),
        })
    }

    /// The assets that moved most over the window, by the change from their first to their
    /// last price in it (assets with one tick in it are left out).
    async fn top_movers(
        &self,
        ctx: &Context<'_>,
        window: MarketWindow,
        #[graphql(default_with = "MoverDirection::Gainers")] direction: MoverDirection,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<Mover>> {
        if !(1..=MAX_MOVERS).contains(&first) {
            return Err(Error::field("first", format!("must be 1 to {MAX_MOVERS}")).extend());
        }
        let rows = scope::stores(ctx)?
            .clickhouse()
            .movers(window.since())
            .await?;
        let mut movers: Vec<Mover> = rows
            .into_iter()
            .filter(|r| r.open > 0.0 && r.ticks >= 2)
            .map(|r| Mover {
                change_percent: (r.close - r.open) * 100.0 / r.open,
                symbol: r.symbol,
                open: r.open,
                close: r.close,
            })
            .filter(|m| m.change_percent.is_finite())
            .collect();
        movers.sort_by(|a, b| match direction {
            MoverDirection::Gainers => b.change_percent.total_cmp(&a.change_percent),
            MoverDirection::Losers => a.change_percent.total_cmp(&b.change_percent),
        });
        movers.truncate(first as usize);
        Ok(movers)
    }
}
