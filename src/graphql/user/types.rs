//! The user types.

use async_graphql::{
    connection::Connection, Context, Enum, ErrorExtensions, Json, Object, Result, SimpleObject, ID,
};
use chrono::{DateTime, Utc};

use crate::{
    auth::Role,
    domain::boards::Member,
    error::Error,
    graphql::{
        asset::{Asset, Link},
        leaderboard::{self, LeaderboardEntry},
        pagination, scope,
        series::{self, Interval},
    },
    loaders::{
        ActivityOf, HoldingsOf, Loaders, MetadataOf, PriceOf, ProfileOf, TradesOf, UserById,
    },
    store::{
        mongo::ProfileDoc,
        postgres::{HoldingRow, TradeRow, TradeWindow, UserRow},
    },
    values::ChainFamily,
};

const TRADES_CURSOR: &str = "trades";
const DEFAULT_PAGE: u32 = 20;

/// The chain family of an account's address.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    /// Ethereum and its kin: 0x and 40 hex digits (EIP-55 checksum checked when mixed case).
    Evm,
    /// A Stellar account id (G..., strkey with its checksum).
    Stellar,
    /// A Casper public key: 01 + ed25519 key, or 02 + secp256k1 key, as hex.
    Casper,
}

impl From<Chain> for ChainFamily {
    fn from(chain: Chain) -> ChainFamily {
        match chain {
            Chain::Evm => ChainFamily::Evm,
            Chain::Stellar => ChainFamily::Stellar,
            Chain::Casper => ChainFamily::Casper,
        }
    }
}

impl From<ChainFamily> for Chain {
    fn from(family: ChainFamily) -> Chain {
        match family {
            ChainFamily::Evm => Chain::Evm,
            ChainFamily::Stellar => Chain::Stellar,
            ChainFamily::Casper => Chain::Casper,
        }
    }
}

/// A platform user (PostgreSQL).
pub struct User(pub UserRow);

#[Object]
impl User {
    /// The user's UUID (what `user(id:)` and `tradeExecuted(userId:)` take).
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Wallet address in its family's normal form: EVM lowercase 0x-hex, a Stellar
    /// account id in uppercase, a Casper public key in lowercase hex.
    async fn address(&self) -> &str {
        &self.0.address
    }

    /// The address's chain family.
    async fn chain(&self) -> Result<Chain> {
        ChainFamily::from_stored(&self.0.chain)
            .map(Chain::from)
            .ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("unknown chain {:?} stored", self.0.chain)).extend()
            })
    }

    async fn username(&self) -> &str {
        &self.0.username
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Display name, bio, links and preferences (MongoDB).
    async fn profile(&self, ctx: &Context<'_>) -> Result<Option<Profile>> {
        let doc = scope::loaders(ctx)?.load_one(ProfileOf(self.0.id)).await?;
        Ok(doc.map(Profile::from))
    }

    /// Current positions (PostgreSQL). Private: the user's own, or an admin's.
    #[graphql(
        complexity = "pagination::cost(None, pagination::UNPAGED_LIST_ITEMS as u32, child_complexity)"
    )]
    async fn holdings(&self, ctx: &Context<'_>) -> Result<Option<Vec<Holding>>> {
        self.private(ctx)?;
        let loaders = scope::loaders(ctx)?;
        let rows = loaders
            .load_one(HoldingsOf(self.0.id))
            .await?
            .unwrap_or_default();
        prefetch_asset_fields(ctx, loaders, &rows).await;
        Ok(Some(rows.into_iter().map(Holding).collect()))
    }

    /// Sum of holdings x latest prices, in USD; null when a held asset has no price.
    /// Private.
    async fn portfolio_value(&self, ctx: &Context<'_>) -> Result<Option<f64>> {
        self.private(ctx)?;
        let loaders = scope::loaders(ctx)?;
        let holdings = loaders
            .load_one(HoldingsOf(self.0.id))
            .await?
            .unwrap_or_default();
        let prices = loaders
            .load_many(holdings.iter().map(|h| PriceOf(h.symbol.clone())))
            .await?;
        let mut total = 0.0;
        for holding in &holdings {
            match prices.get(&PriceOf(holding.symbol.clone())) {
                Some(price) => total += holding.quantity * price.price,
                None => return Ok(None),
            }
        }
        Ok(Some(Error::finite(total, "portfolioValue")?))
    }

    /// The user's portfolio value per day, week or month over [from, to] (the last 30 days
    /// by default), from the daily snapshots (ClickHouse). Private.
    async fn portfolio_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "crate::graphql::yields::SnapshotInterval::Day")]
        interval: crate::graphql::yields::SnapshotInterval,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Option<Vec<crate::graphql::yields::PortfolioPoint>>> {
        self.private(ctx)?;
        crate::graphql::yields::portfolio_history(ctx, &self.0.id.to_string(), interval, from, to)
            .await
            .map(Some)
    }

    /// The user's trades, newest first, optionally within [from, to) (PostgreSQL).
    /// Private.
    #[graphql(complexity = "pagination::cost(first, DEFAULT_PAGE, child_complexity)")]
    async fn trades(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Option<Connection<String, Trade>>> {
        self.private(ctx)?;
        let app = scope::app(ctx)?;
        let limit = pagination::page_size(first, DEFAULT_PAGE, app.config().max_page_size)?;
        let codec = app.cursors();
        let before = after
            .map(|cursor| codec.decode_keyset(TRADES_CURSOR, &cursor))
            .transpose()?;
        if let (Some(from), Some(to)) = (from, to) {
            if from >= to {
                return Err(Error::BadUserInput("`from` must be before `to`".into()).extend());
            }
        }
        let window = TradeWindow {
            before,
            from,
            to,
            limit: limit as i64 + 1,
        };
        let rows = scope::loaders(ctx)?
            .load_one(TradesOf {
                user: self.0.id,
                window,
            })
            .await?
            .unwrap_or_default();
        Ok(Some(pagination::keyset_connection(
            codec,
            TRADES_CURSOR,
            rows,
            limit,
            before.is_some(),
            |row| (row.executed_at, row.id),
            Trade,
        )))
    }

    /// Activity (trades and rewards) in buckets over [from, to) (ClickHouse). Private.
    async fn activity(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        interval: Interval,
    ) -> Result<Option<Vec<ActivityBucket>>> {
        self.private(ctx)?;
        let max = scope::app(ctx)?.config().max_series_points;
        let w = series::window(from, to, interval, max)?;
        let key = ActivityOf {
            user: self.0.id,
            bucket_secs: w.bucket_secs,
            from: w.from,
            to: w.to,
        };
        let rows = scope::loaders(ctx)?
            .load_one(key)
            .await?
            .unwrap_or_default();
        Ok(Some(
            rows.into_iter()
                .map(|r| ActivityBucket {
                    start: series::at(i64::from(r.bucket)),
                    events: clamp(r.events),
                    trades: clamp(r.trades),
                    trade_volume: r.trade_volume,
                    rewards: clamp(r.rewards),
                })
                .collect(),
        ))
    }

    /// The user's place on a trade board (Redis), in `period` for a windowed board or
    /// the current one; null when not on it. Boards of accounts: `Account.rank`.
    async fn rank(
        &self,
        ctx: &Context<'_>,
        board: String,
        period: Option<String>,
    ) -> Result<Option<LeaderboardEntry>> {
        let member = Some(self.0.id.to_string());
        leaderboard::place(ctx, &board, None, period, Member::User, member).await
    }
}

/// Requests the prices and metadata the query will ask of these holdings' assets with one
/// loader call per kind, before the holdings are returned. Each holding's own field then
/// finds its value in the loader cache: the same round trips, without a pending loader
/// request per holding (which cost more than the data, see BENCHMARKS.md). Failures are
/// left for the fields themselves to report.
async fn prefetch_asset_fields(ctx: &Context<'_>, loaders: &Loaders, rows: &[HoldingRow]) {
    let asset = ctx.look_ahead().field("asset");
    let wants_price = asset.field("price").exists()
        || ctx.look_ahead().field("value").exists()
        || ctx.look_ahead().field("pnl").exists();
    let wants_metadata = asset.field("metadata").exists();
    let symbols = || rows.iter().map(|r| r.symbol.clone());
    let prices = async {
        if wants_price {
            let _ = loaders.load_many(symbols().map(PriceOf)).await;
        }
    };
    let metadata = async {
        if wants_metadata {
            let _ = loaders.load_many(symbols().map(MetadataOf)).await;
        }
    };
    tokio::join!(prices, metadata);
}

impl User {
    /// FORBIDDEN (or UNAUTHENTICATED) unless the viewer is this user or an admin.
    fn private(&self, ctx: &Context<'_>) -> Result<()> {
        scope::viewer(ctx).may_see(self.0.id).map_err(Into::into)
    }
}

fn clamp(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A user's profile (MongoDB). Display name, bio, avatar and links are public;
/// preferences are private to the user (and admins).
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Profile {
    pub display_name: String,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    pub links: Vec<Link>,
    #[graphql(skip)]
    pub owner: Option<uuid::Uuid>,
    #[graphql(skip)]
    pub preferences: serde_json::Value,
}

#[async_graphql::ComplexObject]
impl Profile {
    /// Free-form preferences, as the user stored them (private: null with FORBIDDEN for
    /// anyone but the user or an admin).
    async fn preferences(&self, ctx: &Context<'_>) -> Result<Option<Json<serde_json::Value>>> {
        let owner = self.owner.ok_or_else(|| {
            Error::Forbidden("this profile has no owner id; only admins see it".into()).extend()
        });
        match owner {
            Ok(owner) => scope::viewer(ctx).may_see(owner),
            Err(_) => scope::viewer(ctx).require_any(&[Role::Admin]).map(drop),
        }?;
        Ok(Some(Json(self.preferences.clone())))
    }
}

impl From<ProfileDoc> for Profile {
    fn from(doc: ProfileDoc) -> Self {
        let preferences = doc.preferences_json();
        Profile {
            owner: doc.user_id.parse().ok(),
            display_name: doc.display_name,
            bio: doc.bio,
            avatar_url: doc.avatar_url,
            links: doc.links.into_iter().map(Link::from).collect(),
            preferences,
        }
    }
}

/// A position in one asset.
pub struct Holding(pub HoldingRow);

#[Object]
impl Holding {
    /// `Holding:<user id>:<symbol>`.
    pub(crate) async fn id(&self) -> ID {
        crate::graphql::node::holding_id(self.0.user_id, &self.0.symbol)
    }

    /// The asset (its row comes with the holding's).
    async fn asset(&self) -> Asset {
        Asset::from_row(self.0.asset.clone())
    }

    async fn quantity(&self) -> f64 {
        self.0.quantity
    }

    /// What the position cost (average cost), in USD.
    async fn cost_basis(&self) -> f64 {
        self.0.cost_basis
    }

    /// quantity x latest price, in USD; null without a price.
    async fn value(&self, ctx: &Context<'_>) -> Result<Option<f64>> {
        let price = scope::loaders(ctx)?
            .load_one(PriceOf(self.0.symbol.clone()))
            .await?;
        price
            .map(|p| Error::finite(self.0.quantity * p.price, "value"))
            .transpose()
            .map_err(Into::into)
    }

    /// value - cost basis, in USD; null without a price.
    async fn pnl(&self, ctx: &Context<'_>) -> Result<Option<f64>> {
        let value = self.value(ctx).await?;
        value
            .map(|v| Error::finite(v - self.0.cost_basis, "pnl"))
            .transpose()
            .map_err(Into::into)
    }
}

/// Buy or sell.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeSide {
    Buy,
    Sell,
}

/// An executed trade (PostgreSQL).
pub struct Trade(pub TradeRow);

#[Object]
impl Trade {
    /// The trade's UUID.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// On-chain transaction hash (unique).
    async fn tx_hash(&self) -> &str {
        &self.0.tx_hash
    }

    async fn side(&self) -> TradeSide {
        if self.0.side == "sell" {
            TradeSide::Sell
        } else {
            TradeSide::Buy
        }
    }

    async fn quantity(&self) -> f64 {
        self.0.quantity
    }

    /// Price per unit, in USD.
    async fn price(&self) -> f64 {
        self.0.price
    }

    /// quantity x price, in USD.
    async fn notional(&self) -> f64 {
        self.0.quantity * self.0.price
    }

    async fn executed_at(&self) -> DateTime<Utc> {
        self.0.executed_at
    }

    /// The asset (a foreign key guarantees it exists).
    async fn asset(&self) -> Asset {
        Asset::known(&self.0.symbol)
    }

    async fn user(&self, ctx: &Context<'_>) -> Result<User> {
        let row = scope::loaders(ctx)?
            .load_one(UserById(self.0.user_id))
            .await?;
        row.map(User).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("trade {} has no user", self.0.id)).extend()
        })
    }
}

/// A user's activity in one bucket.
#[derive(SimpleObject)]
pub struct ActivityBucket {
    pub start: DateTime<Utc>,
    /// All events in the bucket.
    pub events: i32,
    /// Trade events.
    pub trades: i32,
    /// Sum of the trades' notional, in USD.
    pub trade_volume: f64,
    /// Staking and farming reward events.
    pub rewards: i32,
}
