//! YieldSensei's demo data: protocols of every category and risk, their pools over the
//! well-known assets, an hourly TVL and APY sample per pool over the dataset's days, and
//! each trader's portfolio snapshot per day, valued from the holdings their trades had
//! built by the end of that day at that day's last price.

use std::collections::HashMap;

use rust_decimal::prelude::ToPrimitive;

use super::{
    dataset::{Dataset, Shape, Side},
    rng::Rng,
};
use crate::{
    domain::catalogue::{NewAsset, NewPool, NewProtocol},
    ingest::{PoolMetricInput, TickTime},
    snapshots,
    store::clickhouse::SnapshotRow,
};

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

/// The assets the pools hold: (symbol, name, chain, decimals).
pub const ASSETS: [(&str, &str, &str, i32); 5] = [
    ("BTC", "Bitcoin", "bitcoin", 8),
    ("ETH", "Ethereum", "ethereum", 18),
    ("SOL", "Solana", "solana", 9),
    ("USDC", "USD Coin", "ethereum", 6),
    ("USDT", "Tether", "ethereum", 6),
];

/// (id, name, category, risk, chains, base APY in percent).
type ProtocolEntry = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    f64,
);

const PROTOCOLS: [ProtocolEntry; 8] = [
    (
        "aave",
        "Aave",
        "lending",
        "low",
        &["ethereum", "arbitrum"],
        3.5,
    ),
    ("compound", "Compound", "lending", "low", &["ethereum"], 3.0),
    ("curve", "Curve", "dex", "low", &["ethereum"], 4.0),
    (
        "uniswap",
        "Uniswap",
        "dex",
        "medium",
        &["ethereum", "base"],
        12.0,
    ),
    ("lido", "Lido", "staking", "low", &["ethereum"], 3.2),
    (
        "pendle",
        "Pendle",
        "yield",
        "medium",
        &["ethereum", "arbitrum"],
        9.0,
    ),
    ("gmx", "GMX", "derivatives", "high", &["arbitrum"], 18.0),
    (
        "beefy",
        "Beefy",
        "yield",
        "high",
        &["arbitrum", "base"],
        24.0,
    ),
];

/// (pool id, protocol, assets, fee in basis points).
const POOLS: [(&str, &str, &[&str], Option<i32>); 14] = [
    ("aave-usdc", "aave", &["USDC"], None),
    ("aave-eth", "aave", &["ETH"], None),
    ("compound-usdt", "compound", &["USDT"], None),
    ("compound-btc", "compound", &["BTC"], None),
    ("curve-3pool", "curve", &["USDC", "USDT"], Some(4)),
    ("curve-steth", "curve", &["ETH"], Some(4)),
    ("uniswap-eth-usdc", "uniswap", &["ETH", "USDC"], Some(5)),
    ("uniswap-btc-eth", "uniswap", &["BTC", "ETH"], Some(30)),
    ("lido-steth", "lido", &["ETH"], None),
    ("pendle-usdc", "pendle", &["USDC"], None),
    ("pendle-eth", "pendle", &["ETH"], None),
    ("gmx-glp", "gmx", &["ETH", "BTC", "USDC"], Some(30)),
    ("beefy-sol-usdc", "beefy", &["SOL", "USDC"], Some(25)),
    ("beefy-eth-usdt", "beefy", &["ETH", "USDT"], Some(25)),
];

pub fn assets() -> Vec<NewAsset> {
    ASSETS
        .iter()
        .map(|&(symbol, name, chain, decimals)| NewAsset {
            symbol: symbol.into(),
            name: name.into(),
            chain: chain.into(),
            decimals,
            kind: "token",
            metadata: None,
        })
        .collect()
}

pub fn protocols() -> Vec<NewProtocol> {
    PROTOCOLS
        .iter()
        .map(|&(id, name, category, risk, chains, _)| NewProtocol {
            id: id.into(),
            name: name.into(),
            category,
            risk,
            chains: chains.iter().map(|c| (*c).to_owned()).collect(),
            metadata: Some(serde_json::json!({ "source": "YieldSensei demo" })),
        })
        .collect()
}

pub fn pools() -> Vec<NewPool> {
    POOLS
        .iter()
        .map(|&(id, protocol, assets, fee_bps)| NewPool {
            id: id.into(),
            protocol: protocol.into(),
            assets: assets.iter().map(|a| (*a).to_owned()).collect(),
            fee_bps,
            metadata: None,
        })
        .collect()
}

/// The pool's protocol's base APY.
fn base_apy(protocol: &str) -> f64 {
    PROTOCOLS
        .iter()
        .find(|p| p.0 == protocol)
        .map_or(5.0, |p| p.5)
}

/// One sample per pool and hour over the dataset's days, ending at the shape's end: TVL
/// and APY on random walks (APY pulled back toward the protocol's base).
pub fn samples(shape: &Shape) -> Vec<PoolMetricInput> {
    let end = shape.end.timestamp() / HOUR * HOUR;
    let hours = i64::from(shape.days.max(1)) * 24;
    let mut out = Vec::with_capacity(POOLS.len() * hours as usize);
    for &(id, protocol, _, _) in &POOLS {
        let mut rng = Rng::fork(shape.seed, &format!("pool:{id}"));
        let mut tvl = 10f64.powf(rng.range(6.0, 9.5));
        let base = base_apy(protocol);
        let mut apy = base * rng.range(0.7, 1.3);
        for h in 0..hours {
            let ts = end - (hours - 1 - h) * HOUR;
            tvl = (tvl * (1.0 + 0.01 * rng.normal())).clamp(1.0e5, 5.0e10);
            apy = (apy + 0.1 * (base - apy) + 0.03 * base * rng.normal()).clamp(0.05, 500.0);
            out.push(PoolMetricInput {
                pool: id.into(),
                tvl: (tvl * 100.0).round() / 100.0,
                apy: (apy * 10_000.0).round() / 10_000.0,
                ts: Some(TickTime::Unix(ts)),
                source: Some("defillama".into()),
            });
        }
    }
    out
}

/// Each trader's portfolio at the end of each day of the dataset: the holdings their
/// trades had built by then, at the last price of the day.
pub fn portfolio_snapshots(data: &Dataset) -> Vec<SnapshotRow> {
    let Some(start) = data.paths.iter().map(|p| p.start).min() else {
        return Vec::new();
    };
    let end = data.paths.iter().map(|p| p.last().0).max().unwrap_or(start);
    let mut trades: Vec<&super::dataset::Trade> = data.trades.iter().collect();
    trades.sort_by_key(|t| t.executed_at);
    let paths: HashMap<&str, &super::dataset::PricePath> =
        data.paths.iter().map(|p| (p.symbol.as_str(), p)).collect();
    let mut positions: HashMap<(uuid::Uuid, &str), f64> = HashMap::new();
    let mut next = 0;
    let mut rows = Vec::new();
    let mut day_start = start.div_euclid(DAY) * DAY;
    while day_start <= end {
        let day_end = (day_start + DAY).min(end + 1);
        // The last day takes every trade: one may land in the seconds after the last tick.
        let cut = if day_start + DAY > end {
            i64::MAX
        } else {
            day_end
        };
        while next < trades.len() && trades[next].executed_at.timestamp() < cut {
            let t = trades[next];
            let q = t.quantity.to_f64().unwrap_or(0.0);
            let signed = match t.side {
                Side::Buy => q,
                Side::Sell => -q,
            };
            *positions.entry((t.user_id, t.symbol.as_str())).or_default() += signed;
            next += 1;
        }
        let mut by_user: HashMap<uuid::Uuid, SnapshotRow> = HashMap::new();
        for user in &data.users {
            by_user.insert(
                user.id,
                SnapshotRow {
                    user_id: user.id.to_string(),
                    day: snapshots::day_of(
                        chrono::DateTime::from_timestamp(day_start, 0).unwrap_or_default(),
                    ),
                    value: 0.0,
                    positions: 0,
                    unpriced: 0,
                    taken_at: u32::try_from(day_end - 1).unwrap_or(u32::MAX),
                },
            );
        }
        for (&(user, symbol), &quantity) in &positions {
            if quantity <= 1e-12 {
                continue;
            }
            let Some(row) = by_user.get_mut(&user) else {
                continue;
            };
            row.positions += 1;
            match paths.get(symbol).and_then(|p| p.price_at(day_end - 1)) {
                Some(price) => row.value += quantity * price,
                None => row.unpriced += 1,
            }
        }
        let mut day_rows: Vec<SnapshotRow> = by_user.into_values().collect();
        day_rows.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        rows.extend(day_rows);
        day_start += DAY;
    }
    rows
}
