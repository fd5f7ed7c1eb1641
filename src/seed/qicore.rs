//! QiCore's demo data: the last day of market data as a market-data feed sends it, each
//! asset quoted every five minutes on three exchanges a little apart, with source,
//! attribution, market cap, 24h volume, liquidity and participants; and hourly OHLCV rows
//! per exchange as a provider would publish them, built from those quotes.

use std::collections::BTreeMap;

use super::{
    dataset::{Dataset, Shape},
    rng::Rng,
};
use crate::{
    ingest::{TickInput, TickTime},
    store::clickhouse::OhlcvRow,
};

const EXCHANGES: [&str; 3] = ["binance", "coinbase", "kraken"];
const STEP: i64 = 300;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// Assets QiCore quotes when the trading data is not seeded: (symbol, price, supply).
pub const ASSETS: [(&str, f64, f64); 5] = [
    ("BTC", 64_000.0, 19.7e6),
    ("ETH", 3_200.0, 120.2e6),
    ("SOL", 150.0, 460e6),
    ("USDC", 1.0, 33e9),
    ("USDT", 1.0, 112e9),
];

/// The quotes of the last day before the shape's end (at most the dataset's days), per
/// asset and exchange: from the trading data's price paths when it has them, else from a
/// random walk of [`ASSETS`].
pub fn ticks(shape: &Shape, data: &Dataset) -> Vec<TickInput> {
    let mut rng = Rng::fork(shape.seed, "qicore");
    let end = shape.end.timestamp() / STEP * STEP;
    let start = end - DAY.min(i64::from(shape.days.max(1)) * DAY) + STEP;
    // (symbol, price at a time, circulating supply)
    type PriceAt<'a> = Box<dyn Fn(i64) -> Option<f64> + 'a>;
    let mut assets: Vec<(String, PriceAt<'_>, f64)> = Vec::new();
    if data.paths.is_empty() {
        for (symbol, base, supply) in ASSETS {
            let mut walk = BTreeMap::new();
            let mut price = base;
            let stable = base == 1.0;
            let mut t = start;
            while t <= end {
                let sigma = if stable { 0.000_05 } else { 0.002 };
                price *= (sigma * rng.normal()).exp();
                walk.insert(t, price);
                t += STEP;
            }
            assets.push((
                symbol.to_owned(),
                Box::new(move |t| walk.range(..=t).next_back().map(|(_, p)| *p)),
                supply,
            ));
        }
    } else {
        for path in &data.paths {
            let supply = (rng.range(1e9, 1e12) / path.prices[0].max(1e-9)).round();
            assets.push((path.symbol.clone(), Box::new(|t| path.price_at(t)), supply));
        }
    }
    let mut out = Vec::new();
    let mut t = start;
    while t <= end {
        for (symbol, price_at, supply) in &assets {
            let Some(mid) = price_at(t) else {
                continue;
            };
            for exchange in EXCHANGES {
                let price = round8(mid * (1.0 + 0.0008 * rng.normal()));
                let cap = (mid * supply).round();
                out.push(TickInput {
                    symbol: symbol.clone(),
                    price,
                    volume: Some(round8(rng.range(0.01, 25.0))),
                    ts: Some(TickTime::Unix(t)),
                    exchange: Some(exchange.to_owned()),
                    source: Some("exchange-api".to_owned()),
                    attribution: Some(format!("{exchange} public market data")),
                    market_cap: Some(cap),
                    volume_24h: Some((cap * 0.03 * rng.range(0.7, 1.3)).round()),
                    liquidity: Some((cap * 0.002).round()),
                    participants: Some(200 + rng.below(8_000) as i64),
                });
            }
        }
        t += STEP;
    }
    out
}

/// Hourly OHLCV rows per asset and exchange, from the quotes (whole hours only).
pub fn ohlcv(quotes: &[TickInput], written_at: u32) -> Vec<OhlcvRow> {
    // (symbol, exchange, hour) -> (time, price, volume) of each quote in it.
    type Hour = (String, String, i64);
    let mut hours: BTreeMap<Hour, Vec<(i64, f64, f64)>> = BTreeMap::new();
    for q in quotes {
        let Some(TickTime::Unix(ts)) = q.ts else {
            continue;
        };
        let key = (
            q.symbol.clone(),
            q.exchange.clone().unwrap_or_default(),
            ts / HOUR * HOUR,
        );
        hours
            .entry(key)
            .or_default()
            .push((ts, q.price, q.volume.unwrap_or(0.0)));
    }
    hours
        .into_iter()
        .filter(|(_, q)| q.len() == (HOUR / STEP) as usize)
        .map(|((symbol, exchange, start), q)| {
            let prices = q.iter().map(|x| x.1);
            OhlcvRow {
                symbol,
                exchange,
                timeframe: "1h".into(),
                ts: start as u32,
                open: q[0].1,
                high: prices.clone().fold(f64::MIN, f64::max),
                low: prices.fold(f64::MAX, f64::min),
                close: q[q.len() - 1].1,
                volume: round8(q.iter().map(|x| x.2).sum()),
                source: "exchange-api".into(),
                attribution: "hourly bars".into(),
                written_at,
            }
        })
        .collect()
}

fn round8(x: f64) -> f64 {
    (x * 1e8).round() / 1e8
}
