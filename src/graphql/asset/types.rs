//! The asset types.

use async_graphql::{Context, ErrorExtensions, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use crate::{
    error::Error,
    graphql::{
        scope,
        series::{self, Interval},
    },
    loaders::{
        AssetBySymbol, AssetNamesOf, CandlesOf, MetadataOf, PriceOf, PriceSource, PriceValue,
        Stats24hOf,
    },
    store::{
        mongo::{self, AssetMetadataDoc},
        postgres::AssetRow,
    },
};

/// A name an asset had, from when.
#[derive(SimpleObject)]
pub struct AssetName {
    pub name: String,
    pub since: DateTime<Utc>,
}

/// A tradable asset (PostgreSQL).
///
/// Built from a symbol alone where the symbol is known to exist (a holding's or a trade's,
/// guarded by a foreign key): its row is then loaded only if a field needs it, so that its
/// price and metadata are requested in the same batch as its siblings' rather than one
/// level later.
pub struct Asset {
    symbol: String,
    row: Option<AssetRow>,
}

impl Asset {
    pub fn from_row(row: AssetRow) -> Self {
        Asset {
            symbol: row.symbol.clone(),
            row: Some(row),
        }
    }

    /// An asset whose existence a foreign key guarantees.
    pub fn known(symbol: &str) -> Self {
        Asset {
            symbol: symbol.to_owned(),
            row: None,
        }
    }

    async fn row(&self, ctx: &Context<'_>) -> Result<AssetRow> {
        if let Some(row) = &self.row {
            return Ok(row.clone());
        }
        let row = scope::loaders(ctx)?
            .load_one(AssetBySymbol(self.symbol.clone()))
            .await?;
        row.ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("asset {} is missing", self.symbol)).extend()
        })
    }
}

#[Object]
impl Asset {
    /// `Asset:<symbol>`.
    pub(crate) async fn id(&self) -> ID {
        crate::graphql::node::asset_id(&self.symbol)
    }

    /// Ticker symbol, e.g. BTC.
    async fn symbol(&self) -> &str {
        &self.symbol
    }

    async fn name(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.row(ctx).await?.name)
    }

    /// The chain the asset lives on, e.g. ethereum.
    async fn chain(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.row(ctx).await?.chain)
    }

    async fn decimals(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(self.row(ctx).await?.decimals)
    }

    /// What the asset is: a token, an LP token, a staking derivative, an NFT collection.
    async fn kind(&self, ctx: &Context<'_>) -> Result<crate::graphql::catalogue::AssetKind> {
        crate::graphql::catalogue::AssetKind::stored(&self.row(ctx).await?.kind)
    }

    /// LISTED assets take ticks and trades; DELISTED and RENAMED ones keep their history
    /// readable.
    async fn status(&self, ctx: &Context<'_>) -> Result<crate::graphql::catalogue::AssetStatus> {
        crate::graphql::catalogue::AssetStatus::stored(&self.row(ctx).await?.status)
    }

    /// When it was delisted or renamed.
    async fn status_changed_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(self.row(ctx).await?.status_changed_at)
    }

    /// The asset it was renamed to.
    async fn successor(&self, ctx: &Context<'_>) -> Result<Option<Asset>> {
        Ok(self.row(ctx).await?.successor.as_deref().map(Asset::known))
    }

    /// Every name it has had, oldest first (PostgreSQL).
    async fn names(&self, ctx: &Context<'_>) -> Result<Vec<AssetName>> {
        let names = scope::loaders(ctx)?
            .load_one(AssetNamesOf(self.symbol.clone()))
            .await?
            .unwrap_or_default();
        Ok(names
            .into_iter()
            .map(|n| AssetName {
                name: n.name,
                since: n.since,
            })
            .collect())
    }

    /// Description, links and tags (MongoDB).
    async fn metadata(&self, ctx: &Context<'_>) -> Result<Option<AssetMetadata>> {
        let doc = scope::loaders(ctx)?
            .load_one(MetadataOf(self.symbol.clone()))
            .await?;
        Ok(doc.map(AssetMetadata::from))
    }

    /// The newest market snapshot (price, venue, source, market cap, 24h volume, liquidity,
    /// participants): the 60-second cache kept by ingestion, else ClickHouse's newest tick
    /// with market figures. Null when no tick carried any.
    async fn market(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<crate::graphql::market::MarketData>> {
        crate::graphql::market::market(ctx, &self.symbol).await
    }

    /// The last price seen on one exchange (ClickHouse); null if it never quoted the asset.
    async fn exchange_price(
        &self,
        ctx: &Context<'_>,
        exchange: String,
    ) -> Result<Option<crate::graphql::market::ExchangePrice>> {
        crate::graphql::market::exchange_price(ctx, &self.symbol, &exchange).await
    }

    /// The volume-weighted price over the window, across exchanges (ClickHouse); null
    /// without traded volume in it.
    async fn vwap(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "crate::graphql::market::MarketWindow::Day")]
        window: crate::graphql::market::MarketWindow,
    ) -> Result<Option<crate::graphql::market::Vwap>> {
        crate::graphql::market::vwap(ctx, &self.symbol, window).await
    }

    /// OHLCV rows as a provider published them for one exchange and timeframe over [from,
    /// to) (ClickHouse; see `ingestOhlcv`), beside the `candles` derived from ticks.
    /// Without `to`, up to now; without `from`, the 24 hours before `to`.
    async fn ohlcv(
        &self,
        ctx: &Context<'_>,
        exchange: String,
        timeframe: crate::graphql::ohlcv::Timeframe,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<crate::graphql::ohlcv::Ohlcv>> {
        let to = to.unwrap_or_else(Utc::now);
        let from = from.unwrap_or(to - chrono::Duration::days(1));
        crate::graphql::ohlcv::read(ctx, &self.symbol, &exchange, timeframe, from, to).await
    }

    /// The latest price (Redis; the last ClickHouse tick when Redis has none).
    async fn price(&self, ctx: &Context<'_>) -> Result<Option<Price>> {
        let price = scope::loaders(ctx)?
            .load_one(PriceOf(self.symbol.clone()))
            .await?;
        Ok(price.map(Price::from))
    }

    /// OHLCV candles over [from, to) (ClickHouse). Buckets without ticks are absent.
    async fn candles(
        &self,
        ctx: &Context<'_>,
        interval: Interval,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Candle>> {
        let max = scope::app(ctx)?.config().max_series_points;
        let w = series::window(from, to, interval, max)?;
        let key = CandlesOf {
            symbol: self.symbol.clone(),
            bucket_secs: w.bucket_secs,
            from: w.from,
            to: w.to,
        };
        let rows = scope::loaders(ctx)?
            .load_one(key)
            .await?
            .unwrap_or_default();
        let candle = |r: crate::store::clickhouse::CandleRow| -> Result<Candle, Error> {
            Ok(Candle {
                start: series::at(i64::from(r.bucket)),
                open: Error::finite(r.open, "candle open")?,
                high: Error::finite(r.high, "candle high")?,
                low: Error::finite(r.low, "candle low")?,
                close: Error::finite(r.close, "candle close")?,
                volume: Error::finite(r.volume, "candle volume")?,
                ticks: i32::try_from(r.ticks).unwrap_or(i32::MAX),
            })
        };
        rows.into_iter()
            .map(candle)
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }

    /// Statistics over the last 24 hours (ClickHouse, cached in Redis); null without ticks.
    #[graphql(name = "stats24h")]
    async fn stats24h(&self, ctx: &Context<'_>) -> Result<Option<AssetStats>> {
        let stats = scope::loaders(ctx)?
            .load_one(Stats24hOf(self.symbol.clone()))
            .await?;
        let Some(s) = stats else {
            return Ok(None);
        };
        let finite = |value, what| Error::finite(value, what);
        Ok(Some(AssetStats {
            open: finite(s.open, "open")?,
            last: finite(s.last, "last")?,
            change_percent: if s.open == 0.0 {
                0.0
            } else {
                finite((s.last - s.open) / s.open * 100.0, "changePercent")?
            },
            high: finite(s.high, "high")?,
            low: finite(s.low, "low")?,
            volume: finite(s.volume, "volume")?,
            first_tick_at: series::at(i64::from(s.first_ts)),
            last_tick_at: series::at(i64::from(s.last_ts)),
        }))
    }
}

/// Descriptive metadata of an asset (MongoDB).
#[derive(SimpleObject)]
pub struct AssetMetadata {
    pub description: String,
    pub website: Option<String>,
    pub tags: Vec<String>,
    pub links: Vec<Link>,
}

impl From<AssetMetadataDoc> for AssetMetadata {
    fn from(doc: AssetMetadataDoc) -> Self {
        AssetMetadata {
            description: doc.description,
            website: doc.website,
            tags: doc.tags,
            links: doc.links.into_iter().map(Link::from).collect(),
        }
    }
}

/// A labelled URL.
#[derive(SimpleObject, Clone)]
pub struct Link {
    pub label: String,
    pub url: String,
}

impl From<mongo::Link> for Link {
    fn from(link: mongo::Link) -> Self {
        Link {
            label: link.label,
            url: link.url,
        }
    }
}

/// The latest price of an asset. Its id is the asset's symbol's (`Price:<symbol>`): a
/// `priceUpdated` event replaces the price a client cache holds for that asset.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Price {
    pub symbol: String,
    /// In USD.
    pub price: f64,
    /// Time of the tick this price comes from.
    pub at: DateTime<Utc>,
    /// Where it was read from.
    pub source: PriceSource,
}

#[async_graphql::ComplexObject]
impl Price {
    /// `Price:<symbol>`.
    pub(crate) async fn id(&self) -> ID {
        crate::graphql::node::price_id(&self.symbol)
    }
}

impl From<PriceValue> for Price {
    fn from(p: PriceValue) -> Self {
        Price {
            symbol: p.symbol,
            price: p.price,
            at: series::at(p.ts),
            source: p.source,
        }
    }
}

/// One OHLCV bucket.
#[derive(SimpleObject)]
pub struct Candle {
    /// Start of the bucket.
    pub start: DateTime<Utc>,
    /// First price in the bucket, by time.
    pub open: f64,
    pub high: f64,
    pub low: f64,
    /// Last price in the bucket, by time.
    pub close: f64,
    pub volume: f64,
    /// Number of ticks in the bucket.
    pub ticks: i32,
}

/// Statistics of an asset over the last 24 hours.
#[derive(SimpleObject)]
pub struct AssetStats {
    /// First price of the window.
    pub open: f64,
    /// Latest price of the window.
    pub last: f64,
    /// (last - open) / open, in percent.
    pub change_percent: f64,
    pub high: f64,
    pub low: f64,
    pub volume: f64,
    pub first_tick_at: DateTime<Utc>,
    pub last_tick_at: DateTime<Utc>,
}
