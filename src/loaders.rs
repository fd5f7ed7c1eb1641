//! Request-scoped dataloaders. One [`Loaders`] per request; each key type (one module
//! each) is batched separately, so a query over N parents costs one round trip per
//! (store, key type), whatever N. Every round trip goes through the request's
//! [`RequestStores`], which counts it.

mod activity;
mod artifacts;
mod assets;
mod candles;
mod catalogue;
mod challenges;
mod farming;
mod holdings;
mod market;
mod metadata;
mod prices;
mod profiles;
mod staking;
mod standings;
mod stats;
mod tokens;
mod trades;
mod users;
mod yields;

pub use activity::ActivityOf;
pub use artifacts::{ArtifactByCid, EventsOfArtifact, LatestProofOf};
pub use assets::AssetBySymbol;
pub use candles::CandlesOf;
pub use catalogue::{AssetNamesOf, DocumentOf, PoolsOfProtocol, ProtocolById};
pub use challenges::{BoardTopOf, ChallengeById, ChallengeStatsOf};
pub use farming::FarmerTotalsOf;
pub use holdings::HoldingsOf;
pub use market::{ExchangePriceOf, MarketOf, MarketValue, OhlcvOf, VwapOf};
pub use metadata::MetadataOf;
pub use prices::{PriceOf, PriceSource, PriceValue};
pub use profiles::ProfileOf;
pub use staking::{StakingOf, StakingValue};
pub use standings::StandingOf;
pub use stats::Stats24hOf;
pub use tokens::{TokenOf, TokenSource, TokenValue};
pub use trades::{TradeById, TradesOf};
pub use users::{UserByAddress, UserById};
pub use yields::{PoolLatestOf, PoolSeriesOf, PortfolioOf};

mod drive;

pub use drive::BatchQueue;

use std::{sync::Arc, time::Duration};

use async_graphql::dataloader::{DataLoader, HashMapCache};

use crate::{error::Error, store::RequestStores};

/// What a failed batch gives every key in it.
pub type LoadError = Arc<Error>;

/// The loader behind every key type of one request.
pub struct Batcher {
    pub(crate) stores: RequestStores,
    pub(crate) stats_ttl_secs: u64,
    queue: BatchQueue,
}

/// Declares every key type once, with the name its batches carry: the list of names
/// (`LOADERS`) and the function that forgets every cached value (`clear_all`) both come from
/// here, so a new loader cannot be left out of either.
macro_rules! key_types {
    ($($key:ident => $name:literal),+ $(,)?) => {
        /// The name of each key type's batches, as `meridian_batch_splits_total` labels them.
        pub const LOADERS: &[&str] = &[$($name),+];

        /// Forgets every value the operation's loaders cached (a subscription does so
        /// before each event, so that it reads current values).
        pub fn clear_all(loaders: &Loaders) {
            $(loaders.clear::<$key>();)+
        }
    };
}

key_types! {
    ActivityOf => "activity",
    ArtifactByCid => "artifact",
    AssetBySymbol => "asset",
    AssetNamesOf => "asset_names",
    BoardTopOf => "board_top",
    CandlesOf => "candles",
    ChallengeById => "challenge",
    ChallengeStatsOf => "challenge_stats",
    DocumentOf => "document",
    EventsOfArtifact => "events_of_artifact",
    ExchangePriceOf => "exchange_price",
    FarmerTotalsOf => "farmer_totals",
    HoldingsOf => "holdings",
    LatestProofOf => "latest_proof",
    MarketOf => "market",
    MetadataOf => "metadata",
    OhlcvOf => "ohlcv",
    PoolLatestOf => "pool_latest",
    PoolSeriesOf => "pool_series",
    PoolsOfProtocol => "pools_of",
    PortfolioOf => "portfolio",
    PriceOf => "price",
    ProfileOf => "profile",
    ProtocolById => "protocol",
    StakingOf => "staking",
    StandingOf => "standing",
    Stats24hOf => "stats24h",
    TokenOf => "token",
    TradesOf => "trades_of",
    TradeById => "trade",
    UserById => "user",
    UserByAddress => "user_by_address",
    VwapOf => "vwap",
}

impl Batcher {
    /// Marks one batch of `loader` as running, for as long as the guard lives, counting
    /// it as a split wave when another batch of that loader is running too.
    fn flight(&self, loader: &'static str) -> drive::Flight<'_> {
        debug_assert!(LOADERS.contains(&loader), "{loader} is not in LOADERS");
        let metrics = self.stores.metrics();
        self.queue
            .flights()
            .start(loader, || metrics.count_batch_split(loader))
    }
}

/// The request's dataloader (cached: a key is fetched at most once per request).
pub type Loaders = DataLoader<Batcher, HashMapCache>;

/// Builds the loaders for one request. Their batches run on `queue`: see [`BatchQueue`]
/// for why batching follows the query's execution rather than a timer.
pub fn for_request(stores: RequestStores, stats_ttl_secs: u64, queue: BatchQueue) -> Loaders {
    DataLoader::with_cache(
        Batcher {
            stores,
            stats_ttl_secs,
            queue: queue.clone(),
        },
        move |task| queue.spawn(task),
        HashMapCache::default(),
    )
    .delay(Duration::ZERO)
}

fn shared(err: Error) -> LoadError {
    Arc::new(err)
}

/// Loads series for keys that each name one item (a symbol, a pool, a user) over a window
/// shared by many keys (an interval and a time range, say): one `fetch` per distinct
/// window with all of its items, run together; each key gets the rows of its item, in the
/// order fetched, or none.
async fn series_by_window<K, W, R, Fut>(
    keys: &[K],
    split: impl Fn(&K) -> (W, String),
    fetch: impl Fn(W, Vec<String>) -> Fut,
    item_of: impl Fn(&R) -> &str,
) -> Result<std::collections::HashMap<K, Vec<R>>, LoadError>
where
    K: Clone + Eq + std::hash::Hash,
    W: Clone + Eq + std::hash::Hash,
    Fut: std::future::Future<Output = Result<Vec<R>, Error>>,
{
    use std::collections::HashMap;
    let mut windows: HashMap<W, Vec<String>> = HashMap::new();
    let mut key_of: HashMap<(W, String), K> = HashMap::with_capacity(keys.len());
    for key in keys {
        let (window, item) = split(key);
        windows
            .entry(window.clone())
            .or_default()
            .push(item.clone());
        key_of.insert((window, item), key.clone());
    }
    let fetches = windows.into_iter().map(|(window, items)| {
        let rows = fetch(window.clone(), items);
        async move { rows.await.map(|rows| (window, rows)) }
    });
    let mut out: HashMap<K, Vec<R>> = keys.iter().map(|k| (k.clone(), Vec::new())).collect();
    for result in futures::future::join_all(fetches).await {
        let (window, rows) = result.map_err(shared)?;
        for row in rows {
            let found = key_of.get(&(window.clone(), item_of(&row).to_owned()));
            if let Some(list) = found.and_then(|key| out.get_mut(key)) {
                list.push(row);
            }
        }
    }
    Ok(out)
}
