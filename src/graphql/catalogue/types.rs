//! The catalogue's types and enums.

use async_graphql::{Context, Enum, ErrorExtensions, Json, Object, Result};
use chrono::{DateTime, Utc};

use crate::{
    error::Error,
    graphql::{asset::Asset, event::Account, scope, series::Interval, yields},
    loaders::{DocumentOf, PoolsOfProtocol, ProtocolById},
    store::postgres::{MarketRow, PoolRow, ProtocolRow},
};

/// An enum whose values PostgreSQL keeps in lowercase (`LP_TOKEN` as `lp_token`).
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// As PostgreSQL keeps it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// From PostgreSQL's form; a value the code does not know is an internal error.
            pub fn stored(text: &str) -> Result<$name> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(Error::Internal(anyhow::anyhow!(
                        "{} {other:?} is not known", stringify!($name)
                    ))
                    .extend()),
                }
            }
        }
    };
}

stored_enum!(
    /// What an asset is.
    AssetKind {
        Token => "token",
        LpToken => "lp_token",
        StakingDerivative => "staking_derivative",
        NftCollection => "nft_collection",
    }
);

stored_enum!(
    /// Whether an asset takes ticks and trades.
    AssetStatus {
        Listed => "listed",
        Delisted => "delisted",
        /// Renamed to its `successor`; its history stays under its symbol.
        Renamed => "renamed",
    }
);

stored_enum!(
    ProtocolCategory {
        Dex => "dex",
        Lending => "lending",
        Staking => "staking",
        Yield => "yield",
        Bridge => "bridge",
        Derivatives => "derivatives",
        Prediction => "prediction",
        Other => "other",
    }
);

stored_enum!(
    RiskLevel {
        Low => "low",
        Medium => "medium",
        High => "high",
    }
);

stored_enum!(
    MarketKind {
        Spot => "spot",
        /// A question that resolves YES or NO at a time.
        Prediction => "prediction",
    }
);

stored_enum!(
    MarketStatus {
        Open => "open",
        Closed => "closed",
        Resolved => "resolved",
        Cancelled => "cancelled",
    }
);

stored_enum!(
    Outcome {
        Yes => "yes",
        No => "no",
    }
);

/// A catalogue entry's free-form metadata (MongoDB), null when it has none.
async fn metadata(
    ctx: &Context<'_>,
    kind: &'static str,
    id: &str,
) -> Result<Option<Json<serde_json::Value>>> {
    let doc = scope::loaders(ctx)?
        .load_one(DocumentOf {
            kind,
            id: id.to_owned(),
        })
        .await?;
    Ok(doc.map(Json))
}

/// A DeFi protocol: a DEX, a lending market, a staking service...
pub struct Protocol(pub ProtocolRow);

#[Object]
impl Protocol {
    async fn id(&self) -> &str {
        &self.0.id
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn category(&self) -> Result<ProtocolCategory> {
        ProtocolCategory::stored(&self.0.category)
    }

    async fn risk(&self) -> Result<RiskLevel> {
        RiskLevel::stored(&self.0.risk)
    }

    /// The chains it runs on.
    async fn chains(&self) -> &[String] {
        &self.0.chains
    }

    /// Its pools, in id order.
    async fn pools(&self, ctx: &Context<'_>) -> Result<Vec<Pool>> {
        let pools = scope::loaders(ctx)?
            .load_one(PoolsOfProtocol(self.0.id.clone()))
            .await?
            .unwrap_or_default();
        Ok(pools.into_iter().map(Pool).collect())
    }

    /// The sum of its pools' newest TVL, in USD (ClickHouse); null when none has a sample.
    async fn tvl(&self, ctx: &Context<'_>) -> Result<Option<f64>> {
        yields::protocol_tvl_now(ctx, &self.0.id).await
    }

    /// Its TVL over [from, to): the sum of its pools' last TVL in each bucket. Without
    /// `to` the series ends with the current bucket; without `from` it starts 7 days
    /// before `to`.
    async fn tvl_history(
        &self,
        ctx: &Context<'_>,
        interval: Interval,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<yields::TvlPoint>> {
        yields::protocol_tvl(ctx, &self.0.id, interval, from, to).await
    }

    /// Free-form metadata (MongoDB).
    async fn metadata(&self, ctx: &Context<'_>) -> Result<Option<Json<serde_json::Value>>> {
        metadata(ctx, "protocol", &self.0.id).await
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A pool of a protocol: the assets it holds and its fee tier.
pub struct Pool(pub PoolRow);

#[Object]
impl Pool {
    async fn id(&self) -> &str {
        &self.0.id
    }

    async fn protocol(&self, ctx: &Context<'_>) -> Result<Protocol> {
        scope::loaders(ctx)?
            .load_one(ProtocolById(self.0.protocol.clone()))
            .await?
            .map(Protocol)
            .ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("protocol {} is missing", self.0.protocol)).extend()
            })
    }

    /// Its assets, in order.
    async fn assets(&self) -> Vec<Asset> {
        self.0.assets.iter().map(|s| Asset::known(s)).collect()
    }

    /// The fee tier, in basis points (30 is 0.30%).
    async fn fee_bps(&self) -> Option<i32> {
        self.0.fee_bps
    }

    /// Its newest TVL and APY sample (ClickHouse).
    async fn latest(&self, ctx: &Context<'_>) -> Result<Option<yields::PoolMetrics>> {
        yields::pool_latest(ctx, &self.0.id).await
    }

    /// Its TVL and APY over [from, to) in buckets of `interval` (from the hourly or daily
    /// views when they tile the window, else the samples). Without `to` the series ends
    /// with the current bucket; without `from` it starts 7 days before `to`.
    async fn history(
        &self,
        ctx: &Context<'_>,
        interval: Interval,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<yields::PoolPoint>> {
        yields::pool_history(ctx, &self.0.id, interval, from, to).await
    }

    /// Free-form metadata (MongoDB).
    async fn metadata(&self, ctx: &Context<'_>) -> Result<Option<Json<serde_json::Value>>> {
        metadata(ctx, "pool", &self.0.id).await
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A market: spot (a base asset priced in a quote asset), or a prediction market (a
/// question that resolves YES or NO).
pub struct Market(pub MarketRow);

#[Object]
impl Market {
    async fn id(&self) -> &str {
        &self.0.id
    }

    async fn kind(&self) -> Result<MarketKind> {
        MarketKind::stored(&self.0.kind)
    }

    /// The asset traded (spot), or the asset the question is about (prediction).
    async fn base(&self) -> Option<Asset> {
        self.0.base.as_deref().map(Asset::known)
    }

    async fn quote(&self) -> Option<Asset> {
        self.0.quote.as_deref().map(Asset::known)
    }

    async fn question(&self) -> Option<&str> {
        self.0.question.as_deref()
    }

    /// Who created the prediction market.
    async fn creator(&self) -> Option<Account> {
        match (&self.0.creator_chain, &self.0.creator) {
            (Some(chain), Some(address)) => Some(Account::from_stored(chain, address)),
            _ => None,
        }
    }

    /// The price the question is about, as an exact decimal string.
    async fn target_price(&self) -> Option<String> {
        self.0.target_price.map(|p| p.normalize().to_string())
    }

    async fn resolve_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolve_at
    }

    async fn status(&self) -> Result<MarketStatus> {
        MarketStatus::stored(&self.0.status)
    }

    /// A resolved prediction market's outcome.
    async fn outcome(&self) -> Result<Option<Outcome>> {
        self.0.outcome.as_deref().map(Outcome::stored).transpose()
    }

    async fn status_changed_at(&self) -> Option<DateTime<Utc>> {
        self.0.status_changed_at
    }

    /// Free-form metadata (MongoDB).
    async fn metadata(&self, ctx: &Context<'_>) -> Result<Option<Json<serde_json::Value>>> {
        metadata(ctx, "market", &self.0.id).await
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
