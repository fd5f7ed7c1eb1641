//! Global object identification (the Relay `Node` interface): every entity has an `id`
//! that `node(id:)` and `nodes(ids:)` fetch again, and that client caches normalize on.
//!
//! Ids are opaque to clients. Users and trades keep their UUIDs (so `user(id:)` and
//! `tradeExecuted(userId:)` take the same value); every other entity's id is its type and
//! key: `Asset:BTC`, `Price:BTC`, `Holding:<user id>:BTC`, `Leaderboard:volume:10`,
//! `Leaderboard:farming_rewards:2026-W48:10`.

use async_graphql::{Context, ErrorExtensions, Interface, Object, Result, ID};
use uuid::Uuid;

use crate::{
    domain::boards::Window,
    error::Error,
    graphql::{
        asset::{normalise_symbol, Asset, Price},
        leaderboard::{self, Leaderboard},
        scope,
        user::{Holding, Trade, User},
    },
    loaders::{AssetBySymbol, HoldingsOf, PriceOf, TradeById, UserById},
};

/// An object with a globally unique id.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "ID",
    desc = "A globally unique id: `node(id:)` fetches the object again."
))]
pub enum Node {
    User(User),
    Trade(Trade),
    Asset(Asset),
    Price(Price),
    Holding(Holding),
    Leaderboard(Leaderboard),
}

/// What a global id names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobalId {
    /// A user or a trade: UUIDs do not collide, so one id names at most one of them.
    Uuid(Uuid),
    Asset(String),
    Price(String),
    Holding(Uuid, String),
    /// A board, its period (windowed boards) and how many entries.
    Leaderboard(String, Option<String>, usize),
}

pub fn asset_id(symbol: &str) -> ID {
    ID(format!("Asset:{symbol}"))
}

pub fn price_id(symbol: &str) -> ID {
    ID(format!("Price:{symbol}"))
}

pub fn holding_id(user: Uuid, symbol: &str) -> ID {
    ID(format!("Holding:{user}:{symbol}"))
}

pub fn leaderboard_id(name: &str, period: Option<&str>, top: usize) -> ID {
    match period {
        Some(period) => ID(format!("Leaderboard:{name}:{period}:{top}")),
        None => ID(format!("Leaderboard:{name}:{top}")),
    }
}

fn malformed(id: &str) -> Error {
    // Quoted at most 64 characters long: a hostile megabyte id is not echoed back.
    let shown: String = id.chars().take(64).collect();
    let more = if shown.len() < id.len() { "..." } else { "" };
    Error::BadUserInput(format!(
        "{shown:?}{more} is not a Meridian id (a user's or trade's UUID, or `Type:key` as \
         an object's `id` field gives it)"
    ))
}

impl GlobalId {
    fn parse(id: &str) -> Result<GlobalId, Error> {
        if let Ok(uuid) = Uuid::parse_str(id) {
            return Ok(GlobalId::Uuid(uuid));
        }
        let (kind, key) = id.split_once(':').ok_or_else(|| malformed(id))?;
        let symbol = |s: &str| {
            normalise_symbol(s)
                .map(crate::values::Symbol::into_string)
                .map_err(|_| malformed(id))
        };
        match kind {
            "Asset" => Ok(GlobalId::Asset(symbol(key)?)),
            "Price" => Ok(GlobalId::Price(symbol(key)?)),
            "Holding" => {
                let (user, sym) = key.split_once(':').ok_or_else(|| malformed(id))?;
                let user = Uuid::parse_str(user).map_err(|_| malformed(id))?;
                Ok(GlobalId::Holding(user, symbol(sym)?))
            }
            "Leaderboard" => {
                let (board, top) = key.rsplit_once(':').ok_or_else(|| malformed(id))?;
                let top = top.parse().map_err(|_| malformed(id))?;
                let (name, period) = match board.split_once(':') {
                    Some((name, period)) => (name, Some(period.to_owned())),
                    None => (board, None),
                };
                Ok(GlobalId::Leaderboard(name.to_owned(), period, top))
            }
            _ => Err(malformed(id)),
        }
    }
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// The object with this id (as its `id` field gives it); null when there is none.
    /// Private objects (trades, holdings) are FORBIDDEN to anyone but their owner or an
    /// admin.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        let id = GlobalId::parse(&id)?;
        fetch(ctx, id).await
    }

    /// The objects with these ids, in order; null where there is none (or, with its
    /// error, where it is private). At most the page size cap (`MERIDIAN_MAX_PAGE_SIZE`)
    /// ids; lookups of one kind share one round trip.
    #[graphql(
        complexity = "crate::graphql::pagination::cost(Some(ids.len() as i32), 1, child_complexity)"
    )]
    async fn nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<Vec<Option<Result<Node>>>> {
        let max = scope::app(ctx)?.config().max_page_size as usize;
        if ids.len() > max {
            return Err(
                Error::field("ids", format!("holds {} ids; at most {max}", ids.len())).extend(),
            );
        }
        let parsed = ids
            .iter()
            .map(|id| GlobalId::parse(id))
            .collect::<Result<Vec<_>, _>>()?;
        // Each id succeeds or fails alone: a forbidden trade nulls its own entry (an
        // `Option` around the `Result` makes the entry nullable and keeps its error).
        let found = futures::future::join_all(parsed.into_iter().map(|id| fetch(ctx, id))).await;
        Ok(found.into_iter().map(Result::transpose).collect())
    }
}

/// Loads one object through the request's loaders.
async fn fetch(ctx: &Context<'_>, id: GlobalId) -> Result<Option<Node>> {
    let loaders = scope::loaders(ctx)?;
    let viewer = scope::viewer(ctx);
    match id {
        GlobalId::Uuid(id) => {
            let (user, trade) = tokio::join!(
                loaders.load_one(UserById(id)),
                loaders.load_one(TradeById(id))
            );
            if let Some(user) = user? {
                return Ok(Some(Node::User(User(user))));
            }
            match trade? {
                Some(trade) => {
                    viewer.may_see(trade.user_id)?;
                    Ok(Some(Node::Trade(Trade(trade))))
                }
                None => Ok(None),
            }
        }
        GlobalId::Asset(symbol) => Ok(loaders
            .load_one(AssetBySymbol(symbol))
            .await?
            .map(|row| Node::Asset(Asset::from_row(row)))),
        GlobalId::Price(symbol) => Ok(loaders
            .load_one(PriceOf(symbol))
            .await?
            .map(|price| Node::Price(Price::from(price)))),
        GlobalId::Holding(user, symbol) => {
            viewer.may_see(user)?;
            let holdings = loaders.load_one(HoldingsOf(user)).await?;
            Ok(holdings
                .unwrap_or_default()
                .into_iter()
                .find(|h| h.symbol == symbol)
                .map(|h| Node::Holding(Holding(h))))
        }
        GlobalId::Leaderboard(instance, period, top) => {
            let (name, of) = match instance.split_once('~') {
                Some((name, encoded)) => {
                    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
                    let Some(of) = URL_SAFE_NO_PAD
                        .decode(encoded)
                        .ok()
                        .and_then(|bytes| String::from_utf8(bytes).ok())
                    else {
                        return Ok(None);
                    };
                    (name, Some(of))
                }
                None => (instance.as_str(), None),
            };
            let def = leaderboard::board(ctx, name).await?;
            if def.by.is_some() != of.is_some() {
                return Ok(None);
            }
            let max = scope::app(ctx)?.config().max_page_size as usize;
            if top == 0 || top > max || period.is_none() != (def.window == Window::All) {
                return Ok(None);
            }
            let Ok(period) = def.period(period.as_deref(), chrono::Utc::now()) else {
                return Ok(None);
            };
            let board = leaderboard::read(ctx, &def, of, period, top).await?;
            Ok(Some(Node::Leaderboard(board)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_back_to_what_they_name() {
        let user = Uuid::new_v4();
        assert_eq!(
            GlobalId::parse(&user.to_string()).unwrap(),
            GlobalId::Uuid(user)
        );
        assert_eq!(
            GlobalId::parse(&asset_id("BTC")).unwrap(),
            GlobalId::Asset("BTC".into())
        );
        assert_eq!(
            GlobalId::parse(&price_id("ETH")).unwrap(),
            GlobalId::Price("ETH".into())
        );
        assert_eq!(
            GlobalId::parse(&holding_id(user, "SOL")).unwrap(),
            GlobalId::Holding(user, "SOL".into())
        );
        assert_eq!(
            GlobalId::parse(&leaderboard_id("volume", None, 10)).unwrap(),
            GlobalId::Leaderboard("volume".into(), None, 10)
        );
        assert_eq!(
            GlobalId::parse(&leaderboard_id("farming_rewards", Some("2026-W48"), 5)).unwrap(),
            GlobalId::Leaderboard("farming_rewards".into(), Some("2026-W48".into()), 5)
        );
    }

    #[test]
    fn a_huge_malformed_id_is_not_echoed_whole() {
        let huge = "x".repeat(100_000);
        let Err(Error::BadUserInput(message)) = GlobalId::parse(&huge) else {
            panic!("parsed");
        };
        assert!(message.len() < 300, "{} bytes", message.len());
    }

    #[test]
    fn malformed_ids_are_bad_input() {
        for id in [
            "",
            "BTC",
            "Asset:",
            "Asset:not a symbol",
            "Holding:BTC",
            "Holding:nope:BTC",
            "Leaderboard:volume",
            "Leaderboard:volume:ten",
            "Planet:Mars",
        ] {
            assert!(
                matches!(GlobalId::parse(id), Err(Error::BadUserInput(_))),
                "{id:?} parsed"
            );
        }
    }
}
