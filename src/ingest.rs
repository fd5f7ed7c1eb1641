//! Price ingestion, shared by the `ingestPrices` mutation and `POST /ingest/prices`:
//! ticks are checked, written to ClickHouse in batches, and then the newest price of each
//! symbol goes to Redis (only if newer than what it holds), is published on the symbol's
//! channel, and the symbol's cached 24h statistics are dropped.
//!
//! Pools' TVL and APY samples take the same paths: an NDJSON line naming a `pool` instead
//! of a `symbol` is a pool sample, and `ingestPoolMetrics` is the mutation.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use serde::Deserialize;

use crate::{
    error::Error,
    store::{
        clickhouse::{PoolMetricRow, TickRow},
        redis::{LatestPrice, MarketSnapshot},
        Stores,
    },
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

/// Largest market figure (cap, 24h volume, liquidity) in USD.
pub const MAX_MARKET_FIGURE: f64 = 1e16;

/// One tick as a client sends it. `ts` is unix seconds or RFC 3339; absent means now. The
/// venue, source and market figures are optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TickInput {
    pub symbol: String,
    pub price: f64,
    #[serde(default)]
    pub volume: Option<f64>,
    #[serde(default)]
    pub ts: Option<TickTime>,
    #[serde(default)]
    pub exchange: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub attribution: Option<String>,
    #[serde(default)]
    pub market_cap: Option<f64>,
    #[serde(default, rename = "volume24h")]
    pub volume_24h: Option<f64>,
    #[serde(default)]
    pub liquidity: Option<f64>,
    #[serde(default)]
    pub participants: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TickTime {
    Unix(i64),
    Text(String),
}

/// Largest TVL of a pool, in USD.
pub const MAX_TVL: f64 = 1e16;
/// Bounds of a pool's APY, in percent: a pool can lose all (-100%), and no real yield is
/// near the ceiling.
pub const MIN_APY: f64 = -100.0;
pub const MAX_APY: f64 = 1e6;

/// One pool sample as a client sends it: TVL in USD, APY in percent; `ts` as a tick's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PoolMetricInput {
    pub pool: String,
    pub tvl: f64,
    pub apy: f64,
    #[serde(default)]
    pub ts: Option<TickTime>,
    #[serde(default)]
    pub source: Option<String>,
}

/// A checked NDJSON line: a price tick or a pool sample.
#[derive(Debug, Clone)]
pub enum Sample {
    Tick(TickRow),
    Pool(PoolMetricRow),
}

/// The symbols ticks may name (listed assets in PostgreSQL's catalogue), and why each
/// other catalogued symbol may not (delisted, or renamed to its successor); and the pools
/// samples may name.
pub struct KnownSymbols {
    listed: HashSet<String>,
    unlisted: HashMap<String, String>,
    pools: HashSet<String>,
}

impl KnownSymbols {
    pub async fn load(stores: &Stores) -> Result<Self, Error> {
        let mut known = KnownSymbols::of([]);
        for (symbol, status, successor) in stores.postgres().ingest_names().await? {
            match (status.as_str(), successor) {
                ("pool", _) => {
                    known.pools.insert(symbol);
                }
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
            pools: HashSet::new(),
        }
    }

    /// With these pools known too.
    pub fn with_pools(mut self, pools: impl IntoIterator<Item = String>) -> Self {
        self.pools.extend(pools);
        self
    }
}

/// One NDJSON line of `POST /ingest/prices`: None for a blank line, else the checked
/// tick or pool sample (a line naming a `pool`), or why it was refused.
pub fn parse_line(line: &[u8], known: &KnownSymbols, now: i64) -> Option<Result<Sample, String>> {
    let text = line.trim_ascii();
    if text.is_empty() {
        return None;
    }
    let at_fault = |(message, field): (String, &str)| format!("{field}: {message}");
    Some(match serde_json::from_slice::<TickInput>(text) {
        Ok(tick) => check(&tick, known, now).map(Sample::Tick).map_err(at_fault),
        Err(tick_err) => match serde_json::from_slice::<PoolMetricInput>(text) {
            Ok(sample) => check_pool(&sample, known, now)
                .map(Sample::Pool)
                .map_err(at_fault),
            // Say what is wrong with the kind of line it meant to be.
            Err(pool_err) => {
                let names_pool =
                    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(text)
                        .is_ok_and(|fields| fields.contains_key("pool"));
                if names_pool {
                    Err(format!("not a pool sample: {pool_err}"))
                } else {
                    Err(format!("not a tick: {tick_err}"))
                }
            }
        },
    })
}

/// Unix seconds of a tick's or sample's `ts`, checked.
fn timestamp(ts: &Option<TickTime>, now: i64) -> Result<i64, (String, &'static str)> {
    let ts = match ts {
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
    Ok(ts)
}

/// Free text of at most `max` printable characters, trimmed.
fn printable(
    value: &Option<String>,
    max: usize,
    field: &'static str,
) -> Result<String, (String, &'static str)> {
    let value = value.as_deref().map(str::trim).unwrap_or_default();
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err((
            format!("{field} must be at most {max} printable characters"),
            field,
        ));
    }
    Ok(value.to_owned())
}

/// Checks a pool sample; the message names the field at fault.
pub fn check_pool(
    sample: &PoolMetricInput,
    known: &KnownSymbols,
    now: i64,
) -> Result<PoolMetricRow, (String, &'static str)> {
    let pool = sample.pool.trim();
    if !known.pools.contains(pool) {
        return Err((format!("unknown pool {:?}", sample.pool), "pool"));
    }
    if !(sample.tvl.is_finite() && (0.0..=MAX_TVL).contains(&sample.tvl)) {
        return Err((format!("tvl must be a number from 0 to {MAX_TVL}"), "tvl"));
    }
    if !(sample.apy.is_finite() && (MIN_APY..=MAX_APY).contains(&sample.apy)) {
        return Err((
            format!("apy must be a number from {MIN_APY} to {MAX_APY} (percent)"),
            "apy",
        ));
    }
    Ok(PoolMetricRow {
        pool: pool.to_owned(),
        ts: timestamp(&sample.ts, now)? as u32,
        tvl: sample.tvl,
        apy: sample.apy,
        source: printable(&sample.source, 100, "source")?,
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
    let ts = timestamp(&tick.ts, now)?;
    let exchange = match tick.exchange.as_deref().map(str::trim) {
        None => String::new(),
        Some(venue) => {
            let venue = venue.to_ascii_lowercase();
            let ok = (1..=50).contains(&venue.len())
                && venue.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                });
            if !ok {
                return Err((
                    "exchange must be 1 to 50 of a-z, 0-9, '.', '_' and '-'".into(),
                    "exchange",
                ));
            }
            venue
        }
    };
    let figure = |value: Option<f64>, field: &'static str| match value {
        Some(v) if !(v.is_finite() && (0.0..=MAX_MARKET_FIGURE).contains(&v)) => Err((
            format!("{field} must be a number from 0 to {MAX_MARKET_FIGURE}"),
            field,
        )),
        _ => Ok(value),
    };
    let participants = tick
        .participants
        .map(|p| {
            u32::try_from(p).map_err(|_| {
                (
                    "participants must be 0 to 4294967295".to_owned(),
                    "participants",
                )
            })
        })
        .transpose()?;
    Ok(TickRow {
        symbol,
        ts: ts as u32,
        price: tick.price,
        volume,
        exchange,
        source: printable(&tick.source, 100, "source")?,
        attribution: printable(&tick.attribution, 500, "attribution")?,
        market_cap: figure(tick.market_cap, "marketCap")?,
        volume_24h: figure(tick.volume_24h, "volume24h")?,
        liquidity: figure(tick.liquidity, "liquidity")?,
        participants,
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

/// The newest tick per symbol among `ticks`, and the newest that carried market figures.
#[derive(Default)]
pub struct Latest {
    prices: HashMap<String, LatestPrice>,
    market: HashMap<String, MarketSnapshot>,
}

impl Latest {
    pub fn observe(&mut self, tick: &TickRow) {
        let ts = i64::from(tick.ts);
        let newer = self.prices.get(&tick.symbol).is_none_or(|p| p.ts <= ts);
        if newer {
            self.prices.insert(
                tick.symbol.clone(),
                LatestPrice {
                    symbol: tick.symbol.clone(),
                    price: tick.price,
                    ts,
                },
            );
        }
        if tick.has_market_figures() && self.market.get(&tick.symbol).is_none_or(|m| m.ts <= ts) {
            self.market.insert(
                tick.symbol.clone(),
                MarketSnapshot {
                    symbol: tick.symbol.clone(),
                    price: tick.price,
                    exchange: tick.exchange.clone(),
                    source: tick.source.clone(),
                    attribution: tick.attribution.clone(),
                    market_cap: tick.market_cap,
                    volume_24h: tick.volume_24h,
                    liquidity: tick.liquidity,
                    participants: tick.participants,
                    ts,
                },
            );
        }
    }

    /// Writes the newest prices to Redis (see the module docs), and the market cache;
    /// returns the prices.
    pub async fn publish(self, stores: &Stores) -> Result<Vec<LatestPrice>, Error> {
        let mut prices: Vec<LatestPrice> = self.prices.into_values().collect();
        prices.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        stores.redis().set_prices_if_newer(&prices).await?;
        // Most feeds send prices alone: no market call for them.
        if !self.market.is_empty() {
            let snapshots: Vec<MarketSnapshot> = self.market.into_values().collect();
            stores.redis().set_market(&snapshots).await?;
        }
        Ok(prices)
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    Utc::now().timestamp()
}
