//! `ingestPrices`: a batch of ticks, all or nothing.

use async_graphql::{Context, ErrorExtensions, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::Price;
use crate::{
    error::Error,
    graphql::scope,
    ingest::{self, KnownSymbols, Latest, TickInput, TickTime},
    loaders::{PriceSource, PriceValue},
};

/// Most ticks one `ingestPrices` call takes (use `POST /ingest/prices` for feeds).
const MAX_TICKS: usize = 10_000;

#[derive(Default)]
pub struct AssetMutation;

#[derive(InputObject)]
pub struct PriceTickInput {
    pub symbol: String,
    /// In USD, above 0.
    pub price: f64,
    /// Traded volume in the tick (default 0).
    pub volume: Option<f64>,
    /// Defaults to now.
    pub at: Option<DateTime<Utc>>,
    /// The venue it was seen on: 1 to 50 of a-z, 0-9, `.`, `_` and `-` (lowercased).
    pub exchange: Option<String>,
    /// Where the figures come from, and their attribution (up to 100 and 500 characters).
    pub source: Option<String>,
    pub attribution: Option<String>,
    /// Market figures a feed may carry, in USD (market cap, 24h volume, liquidity) and a
    /// participant count. The newest of each asset is cached for 60 s (`Asset.market`).
    pub market_cap: Option<f64>,
    #[graphql(name = "volume24h")]
    pub volume_24h: Option<f64>,
    pub liquidity: Option<f64>,
    pub participants: Option<i32>,
}

/// What an ingestion stored.
#[derive(SimpleObject)]
pub struct IngestResult {
    /// Ticks written to ClickHouse.
    pub accepted: i32,
    /// The newest price of each symbol in the batch (Redis keeps it if it is newer than
    /// what it had).
    pub prices: Vec<Price>,
}

#[Object]
impl AssetMutation {
    /// Writes up to 10,000 ticks to ClickHouse in one insert, then the latest price per
    /// symbol to Redis (published to subscribers, 24h statistics invalidated). A bad tick
    /// fails the whole call with BAD_USER_INPUT naming it, and nothing is written.
    /// Needs the service role.
    async fn ingest_prices(
        &self,
        ctx: &Context<'_>,
        ticks: Vec<PriceTickInput>,
    ) -> Result<IngestResult> {
        scope::viewer(ctx).require_any(&[crate::auth::Role::Service])?;
        if ticks.is_empty() || ticks.len() > MAX_TICKS {
            return Err(Error::field("ticks", format!("send 1 to {MAX_TICKS} ticks")).extend());
        }
        let stores = scope::stores(ctx)?;
        let known = KnownSymbols::load(stores).await?;
        let now = ingest::now();
        let mut rows = Vec::with_capacity(ticks.len());
        for (i, tick) in ticks.into_iter().enumerate() {
            let input = TickInput {
                symbol: tick.symbol,
                price: tick.price,
                volume: tick.volume,
                ts: tick.at.map(|at| TickTime::Unix(at.timestamp())),
                exchange: tick.exchange,
                source: tick.source,
                attribution: tick.attribution,
                market_cap: tick.market_cap,
                volume_24h: tick.volume_24h,
                liquidity: tick.liquidity,
                participants: tick.participants.map(i64::from),
            };
            let row = ingest::check(&input, &known, now).map_err(|(message, field)| {
                Error::field(format!("ticks[{i}].{field}"), message).extend()
            })?;
            rows.push(row);
        }
        let mut latest = Latest::default();
        ingest::write(stores, &rows, &mut latest).await?;
        let prices = latest.publish(stores).await?;
        Ok(IngestResult {
            accepted: rows.len() as i32,
            prices: prices
                .into_iter()
                .map(|p| {
                    Price::from(PriceValue {
                        symbol: p.symbol,
                        price: p.price,
                        ts: p.ts,
                        source: PriceSource::Redis,
                    })
                })
                .collect(),
        })
    }
}
