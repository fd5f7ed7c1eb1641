//! Price ingestion, shared by the `ingestPrices` mutation and `POST /ingest/prices`:
//! ticks are checked, written to ClickHouse in batches, and then the newest price of each
//! symbol goes to Redis (only if newer than what it holds), is published on the symbol's
//! channel, and the symbol's cached 24h statistics are dropped.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use serde::Deserialize;

use crate::{
    error::Error,
    store::{clickhouse::TickRow, redis::LatestPrice, Stores},
};

/// How far in the future a tick may be stamped (clock skew), in seconds.
const MAX_FUTURE_SECS: i64 = 300;
/// The earliest tick accepted: 2009-01-03, the first Bitcoin block.
const MIN_TS: i64 = 1_230_940_800;
/// Bounds of a tick's price in USD: the same ceiling as a trade's price, and a floor that
/// keeps any ratio of two prices (a change in percent) finite.
pub const MIN_PRICE: f64 = 1e-18;
pub const MAX_PRICE: f64 = 1e12;
/// Largest volume of one tick: the same ceiling as a trade's quantity.
pub const MAX_VOLUME: f64 = 1e15;

/// One tick as a client sends it. `ts` is unix seconds or RFC 3339; absent means now.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TickInput {
    pub symbol: String,
    pub price: f64,
    #[serde(default)]
    pub volume: Option<f64>,
    #[serde(default)]
    pub ts: Option<TickTime>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TickTime {
    Unix(i64),
    Text(String),
}

/// The symbols ticks may name (listed assets in PostgreSQL's catalogue), and why each
/// other catalogued symbol may not (delisted, or renamed to its successor).
pub struct KnownSymbols {
    listed: HashSet<String>,
    unlisted: HashMap<String, String>,
}

impl KnownSymbols {
    pub async fn load(stores: &Stores) -> Result<Self, Error> {
        let mut known = KnownSymbols::of([]);
        for (symbol, status, successor) in stores.postgres().asset_statuses().await? {
            match (status.as_str(), successor) {
                ("listed", _) => {
                    known.listed.insert(symbol);
                }
                (_, Some(successor)) => {
                    let why = format!("{symbol} was renamed to {successor}");
                    known.unlisted.insert(symbol, why);
                }
                (status, None) => {
                    let why = format!("{symbol} is {status}");
                    known.unlisted.insert(symbol, why);
                }
            }
        }
        Ok(known)
    }
}

impl KnownSymbols {
    /// A fixed set of listed symbols (for tests and fuzzing).
    pub fn of(symbols: impl IntoIterator<Item = String>) -> Self {
        KnownSymbols {
            listed: symbols.into_iter().collect(),
            unlisted: HashMap::new(),
        }
    }
}

/// One NDJSON line of `POST /ingest/prices`: None for a blank line, else the checked
/// tick or why it was refused.
pub fn parse_line(line: &[u8], known: &KnownSymbols, now: i64) -> Option<Result<TickRow, String>> {
    let text = line.trim_ascii();
    if text.is_empty() {
        return None;
    }
    Some(match serde_json::from_slice::<TickInput>(text) {
        Err(err) => Err(format!("not a tick: {err}")),
        Ok(tick) => {
            check(&tick, known, now).map_err(|(message, field)| format!("{field}: {message}"))
        }
    })
}

/// Checks a tick; the message names the field at fault.
pub fn check(
    tick: &TickInput,
    known: &KnownSymbols,
    now: i64,
) -> Result<TickRow, (String, &'static str)> {
    let symbol = tick.symbol.trim().to_ascii_uppercase();
    if !known.listed.contains(&symbol) {
        let why = known.unlisted.get(&symbol).map_or_else(
            || format!("unknown symbol {:?}", tick.symbol),
            |why| format!("{why} and takes no ticks"),
        );
        return Err((why, "symbol"));
    }
    if !(tick.price.is_finite() && (MIN_PRICE..=MAX_PRICE).contains(&tick.price)) {
        return Err((
            format!("price must be a number from {MIN_PRICE} to {MAX_PRICE}"),
            "price",
        ));
    }
    let volume = tick.volume.unwrap_or(0.0);
    if !(volume.is_finite() && (0.0..=MAX_VOLUME).contains(&volume)) {
        return Err((format!("volume must be from 0 to {MAX_VOLUME}"), "volume"));
    }
    let ts = match &tick.ts {
        None => now,
        Some(TickTime::Unix(ts)) => *ts,
        Some(TickTime::Text(text)) => chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|_| {
                (
                    "ts must be unix seconds or an RFC 3339 time".to_owned(),
                    "ts",
                )
            })?
            .timestamp(),
    };
    if !(MIN_TS..=now + MAX_FUTURE_SECS).contains(&ts) {
        return Err((
            "ts must be after 2009-01-03 and not in the future".into(),
            "ts",
        ));
    }
    Ok(TickRow {
        symbol,
        ts: ts as u32,
        price: tick.price,
        volume,
    })
}

/// Writes checked ticks to ClickHouse, then notes each symbol's newest price in `latest`
/// (to be published with [`Latest::publish`] once the whole input is written). The one
/// write path of every entry point: the mutation, `POST /ingest/prices` and the simulator.
pub async fn write(stores: &Stores, rows: &[TickRow], latest: &mut Latest) -> Result<u64, Error> {
    let written = stores
        .clickhouse()
        .insert_ticks(rows.iter().cloned(), |_| {})
        .await?;
    rows.iter().for_each(|row| latest.observe(row));
    Ok(written)
}

/// The newest tick per symbol among `ticks`.
#[derive(Default)]
pub struct Latest(HashMap<String, LatestPrice>);

impl Latest {
    pub fn observe(&mut self, tick: &TickRow) {
        let ts = i64::from(tick.ts);
        let newer = self.0.get(&tick.symbol).is_none_or(|p| p.ts <= ts);
        if newer {
            self.0.insert(
                tick.symbol.clone(),
                LatestPrice {
                    symbol: tick.symbol.clone(),
                    price: tick.price,
                    ts,
                },
            );
        }
    }

    /// Writes the newest prices to Redis (see the module docs); returns them.
    pub async fn publish(self, stores: &Stores) -> Result<Vec<LatestPrice>, Error> {
        let mut prices: Vec<LatestPrice> = self.0.into_values().collect();
        prices.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        stores.redis().set_prices_if_newer(&prices).await?;
        Ok(prices)
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    Utc::now().timestamp()
}
