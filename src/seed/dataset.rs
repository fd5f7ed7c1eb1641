//! The demo dataset, generated in memory from a seed. Every figure that more than one store
//! holds comes from the same numbers here: trade prices are the price path's value at the
//! trade's minute, holdings are the running sum of each user's trades, and the latest
//! price of an asset is the last tick of its path.

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::{prelude::FromPrimitive, Decimal};
use uuid::Uuid;

use super::rng::Rng;

/// Seconds between two ticks of a price path.
pub const TICK_SECONDS: i64 = 60;

pub struct Asset {
    pub symbol: String,
    pub name: String,
    pub chain: String,
    pub decimals: i32,
    pub base_price: f64,
    pub tags: Vec<String>,
}

pub struct User {
    pub id: Uuid,
    pub chain: crate::values::ChainFamily,
    pub address: String,
    pub username: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

pub struct Trade {
    pub id: Uuid,
    pub tx_hash: String,
    pub user_id: Uuid,
    pub symbol: String,
    pub side: Side,
    pub quantity: Decimal,
    pub price: Decimal,
    pub executed_at: DateTime<Utc>,
}

pub struct Holding {
    pub user_id: Uuid,
    pub symbol: String,
    pub quantity: Decimal,
    pub cost_basis: Decimal,
}

/// One asset's price at every tick from `start`.
pub struct PricePath {
    pub symbol: String,
    pub start: i64,
    pub prices: Vec<f64>,
    pub volumes: Vec<f64>,
}

impl PricePath {
    pub fn last(&self) -> (i64, f64) {
        let n = self.prices.len() as i64;
        (
            self.start + (n - 1) * TICK_SECONDS,
            self.prices[(n - 1) as usize],
        )
    }

    /// The price of the last tick at or before `ts` (None before the first).
    pub fn price_at(&self, ts: i64) -> Option<f64> {
        if ts < self.start || self.prices.is_empty() {
            return None;
        }
        let i = ((ts - self.start) / TICK_SECONDS).min(self.prices.len() as i64 - 1);
        Some(self.prices[i as usize])
    }
}

/// A farming or staking reward (ClickHouse activity only; not part of Postgres).
pub struct Reward {
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub kind: &'static str,
    pub symbol: String,
    pub amount: f64,
    pub ts: i64,
}

#[derive(Default)]
pub struct Dataset {
    pub assets: Vec<Asset>,
    pub users: Vec<User>,
    pub trades: Vec<Trade>,
    pub holdings: Vec<Holding>,
    pub paths: Vec<PricePath>,
    pub rewards: Vec<Reward>,
}

impl Dataset {
    pub fn tick_count(&self) -> u64 {
        self.paths.iter().map(|p| p.prices.len() as u64).sum()
    }
}

/// symbol, name, chain, decimals, typical price in USD, tags.
type CatalogueEntry = (
    &'static str,
    &'static str,
    &'static str,
    i32,
    f64,
    &'static [&'static str],
);

/// Well-known assets first; beyond these the generator makes up tokens.
const CATALOGUE: &[CatalogueEntry] = &[
    (
        "BTC",
        "Bitcoin",
        "bitcoin",
        8,
        64_000.0,
        &["layer1", "store-of-value"],
    ),
    (
        "ETH",
        "Ether",
        "ethereum",
        18,
        3_200.0,
        &["layer1", "smart-contracts"],
    ),
    (
        "SOL",
        "Solana",
        "solana",
        9,
        150.0,
        &["layer1", "smart-contracts"],
    ),
    ("USDC", "USD Coin", "ethereum", 6, 1.0, &["stablecoin"]),
    ("USDT", "Tether", "ethereum", 6, 1.0, &["stablecoin"]),
    (
        "ARB",
        "Arbitrum",
        "arbitrum",
        18,
        1.1,
        &["layer2", "governance"],
    ),
    (
        "OP",
        "Optimism",
        "optimism",
        18,
        2.4,
        &["layer2", "governance"],
    ),
    ("AVAX", "Avalanche", "avalanche", 18, 35.0, &["layer1"]),
    (
        "LINK",
        "Chainlink",
        "ethereum",
        18,
        14.0,
        &["oracle", "defi"],
    ),
    (
        "UNI",
        "Uniswap",
        "ethereum",
        18,
        7.5,
        &["defi", "dex", "governance"],
    ),
    (
        "AAVE",
        "Aave",
        "ethereum",
        18,
        95.0,
        &["defi", "lending", "governance"],
    ),
    (
        "MKR",
        "Maker",
        "ethereum",
        18,
        2_800.0,
        &["defi", "lending", "governance"],
    ),
    (
        "LDO",
        "Lido DAO",
        "ethereum",
        18,
        2.1,
        &["defi", "staking", "governance"],
    ),
    ("CRV", "Curve DAO", "ethereum", 18, 0.55, &["defi", "dex"]),
    ("DOGE", "Dogecoin", "dogecoin", 8, 0.15, &["meme"]),
    ("MATIC", "Polygon", "polygon", 18, 0.7, &["layer2"]),
    (
        "ATOM",
        "Cosmos",
        "cosmos",
        6,
        8.5,
        &["layer1", "interoperability"],
    ),
    (
        "DOT",
        "Polkadot",
        "polkadot",
        10,
        6.8,
        &["layer1", "interoperability"],
    ),
    ("NEAR", "NEAR Protocol", "near", 24, 5.2, &["layer1"]),
    ("GMX", "GMX", "arbitrum", 18, 30.0, &["defi", "derivatives"]),
];

const ADJECTIVES: &[&str] = &[
    "swift", "quiet", "bold", "lucky", "brave", "calm", "clever", "eager", "fuzzy", "jolly",
];
const NOUNS: &[&str] = &[
    "falcon", "otter", "whale", "badger", "lynx", "panda", "raven", "tiger", "gecko", "heron",
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct Shape {
    pub users: u32,
    pub assets: u32,
    pub days: u32,
    pub seed: u64,
    /// The time of the last tick (truncated to the minute).
    pub end: DateTime<Utc>,
    /// Which platforms' data to write.
    pub platforms: super::Platforms,
}

pub fn generate(shape: &Shape) -> Dataset {
    let ticks = i64::from(shape.days) * 24 * 60 * 60 / TICK_SECONDS;
    let end = shape.end.timestamp() - shape.end.timestamp().rem_euclid(TICK_SECONDS);
    let start = end - (ticks - 1) * TICK_SECONDS;

    let assets = assets(shape);
    let paths = assets
        .iter()
        .map(|a| price_path(shape.seed, a, start, ticks as usize))
        .collect::<Vec<_>>();
    let users = users(shape, start);
    let (trades, holdings) = trades(shape.seed, &users, &paths);
    let rewards = rewards(shape.seed, &users, &assets, start, end);
    Dataset {
        assets,
        users,
        trades,
        holdings,
        paths,
        rewards,
    }
}

fn assets(shape: &Shape) -> Vec<Asset> {
    let mut rng = Rng::fork(shape.seed, "assets");
    (0..shape.assets as usize)
        .map(|i| match CATALOGUE.get(i) {
            Some(&(symbol, name, chain, decimals, price, tags)) => Asset {
                symbol: symbol.into(),
                name: name.into(),
                chain: chain.into(),
                decimals,
                base_price: price,
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            },
            None => Asset {
                symbol: format!("TKN{}", i + 1),
                name: format!("Token {}", i + 1),
                chain: (*rng.pick(&["ethereum", "arbitrum", "base", "solana"])).into(),
                decimals: 18,
                base_price: round_to(10f64.powf(rng.range(-2.0, 3.0)), 8),
                tags: vec![(*rng.pick(&["defi", "gaming", "meme", "infrastructure"])).into()],
            },
        })
        .collect()
}

fn price_path(seed: u64, asset: &Asset, start: i64, ticks: usize) -> PricePath {
    let mut rng = Rng::fork(seed, &format!("path:{}", asset.symbol));
    let stable = asset.tags.iter().any(|t| t == "stablecoin");
    let sigma = if stable { 0.000_05 } else { 0.001 };
    let mut price = asset.base_price;
    let mut prices = Vec::with_capacity(ticks);
    let mut volumes = Vec::with_capacity(ticks);
    for _ in 0..ticks {
        price *= (sigma * rng.normal()).exp();
        if stable {
            // Stablecoins drift back towards their peg.
            price += (asset.base_price - price) * 0.05;
        }
        prices.push(round_to(price, 8));
        volumes.push(round_to(rng.range(0.0, 50_000.0) / asset.base_price, 6));
    }
    PricePath {
        symbol: asset.symbol.clone(),
        start,
        prices,
        volumes,
    }
}

fn users(shape: &Shape, start: i64) -> Vec<User> {
    let mut rng = Rng::fork(shape.seed, "users");
    (0..shape.users)
        .map(|i| User {
            id: rng.uuid(),
            chain: crate::values::ChainFamily::Evm,
            address: format!("0x{}", rng.hex(40)),
            username: format!("{}_{}_{}", rng.pick(ADJECTIVES), rng.pick(NOUNS), i + 1),
            created_at: at(start - rng.below(90 * 86_400) as i64 - 86_400),
        })
        .collect()
}

/// Each user's trades in time order, with holdings kept as a running position so that a
/// sell never exceeds what the user holds. Cost basis is the average cost.
fn trades(seed: u64, users: &[User], paths: &[PricePath]) -> (Vec<Trade>, Vec<Holding>) {
    let mut rng = Rng::fork(seed, "trades");
    let mut trades = Vec::new();
    let mut holdings = Vec::new();
    for user in users {
        let count = 5 + rng.below(36);
        let mut minutes: Vec<usize> = (0..count)
            .map(|_| rng.below(paths[0].prices.len() as u64) as usize)
            .collect();
        minutes.sort_unstable();
        // (quantity, cost basis) per path index.
        let mut position = vec![(Decimal::ZERO, Decimal::ZERO); paths.len()];
        for minute in minutes {
            let which = rng.below(paths.len() as u64) as usize;
            let path = &paths[which];
            let price = decimal(path.prices[minute]);
            let (held, cost) = position[which];
            let (side, quantity) = if held > Decimal::ZERO && rng.unit() < 0.35 {
                let fraction = decimal(round_to(rng.range(0.1, 1.0), 4));
                let quantity = (held * fraction).round_dp(8).min(held);
                (Side::Sell, quantity)
            } else {
                let notional = rng.range(50.0, 5_000.0);
                (
                    Side::Buy,
                    decimal(round_to(notional / path.prices[minute], 8)),
                )
            };
            if quantity <= Decimal::ZERO {
                continue;
            }
            position[which] = match side {
                Side::Buy => (held + quantity, cost + quantity * price),
                Side::Sell => {
                    let remaining = held - quantity;
                    let new_cost = if remaining.is_zero() {
                        Decimal::ZERO
                    } else {
                        (cost * remaining / held).round_dp(18)
                    };
                    (remaining, new_cost)
                }
            };
            trades.push(Trade {
                id: rng.uuid(),
                tx_hash: format!("0x{}", rng.hex(64)),
                user_id: user.id,
                symbol: path.symbol.clone(),
                side,
                quantity,
                price,
                executed_at: at(path.start + minute as i64 * TICK_SECONDS + rng.below(60) as i64),
            });
        }
        for (which, (quantity, cost_basis)) in position.into_iter().enumerate() {
            if quantity > Decimal::ZERO {
                holdings.push(Holding {
                    user_id: user.id,
                    symbol: paths[which].symbol.clone(),
                    quantity,
                    cost_basis,
                });
            }
        }
    }
    (trades, holdings)
}

/// Daily staking or farming rewards for about a third of the users.
fn rewards(seed: u64, users: &[User], assets: &[Asset], start: i64, end: i64) -> Vec<Reward> {
    let mut rng = Rng::fork(seed, "rewards");
    let mut out = Vec::new();
    for user in users {
        if rng.below(3) != 0 {
            continue;
        }
        let asset = rng.pick(assets);
        let kind = if rng.below(2) == 0 {
            "staking_reward"
        } else {
            "farming_reward"
        };
        let mut day = start + rng.below(86_400) as i64;
        while day <= end {
            out.push(Reward {
                event_id: rng.uuid(),
                user_id: user.id,
                kind,
                symbol: asset.symbol.clone(),
                amount: round_to(rng.range(1.0, 25.0) / asset.base_price, 8),
                ts: day,
            });
            day += 86_400;
        }
    }
    out
}

fn round_to(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

fn decimal(x: f64) -> Decimal {
    Decimal::from_f64(x).unwrap_or_default().round_dp(8)
}

pub(super) fn at(ts: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(ts, 0).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            users: 30,
            assets: 6,
            days: 1,
            seed: 9,
            end: at(1_790_000_000),
            platforms: super::super::Platforms::TRADING,
        }
    }

    #[test]
    fn same_seed_same_data() {
        let (a, b) = (generate(&shape()), generate(&shape()));
        assert_eq!(a.trades.len(), b.trades.len());
        assert!(a
            .trades
            .iter()
            .zip(&b.trades)
            .all(|(x, y)| x.tx_hash == y.tx_hash && x.quantity == y.quantity));
        assert_eq!(a.paths[0].prices, b.paths[0].prices);
    }

    #[test]
    fn holdings_are_the_net_of_trades_and_never_negative() {
        let data = generate(&shape());
        for h in &data.holdings {
            let net: Decimal = data
                .trades
                .iter()
                .filter(|t| t.user_id == h.user_id && t.symbol == h.symbol)
                .map(|t| {
                    if t.side == Side::Buy {
                        t.quantity
                    } else {
                        -t.quantity
                    }
                })
                .sum();
            assert_eq!(net, h.quantity);
            assert!(h.quantity > Decimal::ZERO && h.cost_basis >= Decimal::ZERO);
        }
    }

    #[test]
    fn trade_prices_come_from_the_price_path() {
        let data = generate(&shape());
        for t in &data.trades {
            let path = data
                .paths
                .iter()
                .find(|p| p.symbol == t.symbol)
                .expect("path exists");
            let minute = ((t.executed_at.timestamp() - path.start) / TICK_SECONDS) as usize;
            assert_eq!(t.price, decimal(path.prices[minute]));
        }
        assert_eq!(data.tick_count(), 6 * 1440);
    }
}
