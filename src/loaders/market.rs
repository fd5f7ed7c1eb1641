//! Market data of many assets at once: the market snapshot (Redis, then ClickHouse for
//! those whose cache expired), the last price on a given exchange and the volume-weighted
//! price over a window (ClickHouse, one statement per batch).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use super::{series_by_window, shared, Batcher, LoadError};
use crate::store::redis::MarketSnapshot;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MarketOf(pub String);

/// A market snapshot, and whether it came from the cache (else from ClickHouse).
#[derive(Debug, Clone)]
pub struct MarketValue {
    pub snapshot: MarketSnapshot,
    pub cached: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExchangePriceOf {
    pub symbol: String,
    pub exchange: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VwapOf {
    pub symbol: String,
    /// The window starts at this unix second.
    pub since: u32,
}

impl Loader<MarketOf> for Batcher {
    type Value = MarketValue;
    type Error = LoadError;

    async fn load(&self, keys: &[MarketOf]) -> Result<HashMap<MarketOf, MarketValue>, LoadError> {
        let _flight = self.flight("market");
        let symbols: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let cached = self.stores.redis().market(&symbols).await.map_err(shared)?;
        let mut found: HashMap<MarketOf, MarketValue> = cached
            .into_iter()
            .map(|snapshot| {
                let key = MarketOf(snapshot.symbol.clone());
                (
                    key,
                    MarketValue {
                        snapshot,
                        cached: true,
                    },
                )
            })
            .collect();
        let missing: Vec<String> = symbols
            .into_iter()
            .filter(|s| !found.contains_key(&MarketOf(s.clone())))
            .collect();
        if !missing.is_empty() {
            let rows = self
                .stores
                .clickhouse()
                .market_ticks(&missing)
                .await
                .map_err(shared)?;
            for r in rows {
                let snapshot = MarketSnapshot {
                    symbol: r.symbol.clone(),
                    price: r.price,
                    exchange: r.exchange,
                    source: r.source,
                    attribution: r.attribution,
                    market_cap: r.market_cap,
                    volume_24h: r.volume_24h,
                    liquidity: r.liquidity,
                    participants: r.participants,
                    ts: i64::from(r.ts),
                };
                found.insert(
                    MarketOf(r.symbol),
                    MarketValue {
                        snapshot,
                        cached: false,
                    },
                );
            }
        }
        Ok(found)
    }
}

impl Loader<ExchangePriceOf> for Batcher {
    type Value = (f64, u32);
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ExchangePriceOf],
    ) -> Result<HashMap<ExchangePriceOf, (f64, u32)>, LoadError> {
        let _flight = self.flight("exchange_price");
        let mut symbols: Vec<String> = keys.iter().map(|k| k.symbol.clone()).collect();
        let mut exchanges: Vec<String> = keys.iter().map(|k| k.exchange.clone()).collect();
        symbols.sort();
        symbols.dedup();
        exchanges.sort();
        exchanges.dedup();
        let rows = self
            .stores
            .clickhouse()
            .exchange_prices(&symbols, &exchanges)
            .await
            .map_err(shared)?;
        // The statement asks for every symbol on every exchange; keep the pairs asked for.
        Ok(rows
            .into_iter()
            .map(|r| {
                let key = ExchangePriceOf {
                    symbol: r.symbol,
                    exchange: r.exchange,
                };
                (key, (r.price, r.ts))
            })
            .filter(|(key, _)| keys.contains(key))
            .collect())
    }
}

impl Loader<VwapOf> for Batcher {
    type Value = (f64, f64);
    type Error = LoadError;

    async fn load(&self, keys: &[VwapOf]) -> Result<HashMap<VwapOf, (f64, f64)>, LoadError> {
        let _flight = self.flight("vwap");
        let mut groups: HashMap<u32, Vec<String>> = HashMap::new();
        for key in keys {
            groups
                .entry(key.since)
                .or_default()
                .push(key.symbol.clone());
        }
        let fetches = groups.into_iter().map(|(since, symbols)| async move {
            let rows = self.stores.clickhouse().vwaps(&symbols, since).await?;
            Ok::<_, crate::Error>((since, rows))
        });
        let mut out = HashMap::new();
        for result in futures::future::join_all(fetches).await {
            let (since, rows) = result.map_err(shared)?;
            for r in rows {
                out.insert(
                    VwapOf {
                        symbol: r.symbol,
                        since,
                    },
                    (r.vwap, r.volume),
                );
            }
        }
        Ok(out)
    }
}

/// The OHLCV rows of an asset on one exchange and timeframe over [from, to).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OhlcvOf {
    pub symbol: String,
    pub exchange: String,
    pub timeframe: &'static str,
    pub from: u32,
    pub to: u32,
}

impl Loader<OhlcvOf> for Batcher {
    type Value = Vec<crate::store::clickhouse::OhlcvRow>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[OhlcvOf],
    ) -> Result<HashMap<OhlcvOf, Vec<crate::store::clickhouse::OhlcvRow>>, LoadError> {
        let _flight = self.flight("ohlcv");
        series_by_window(
            keys,
            |k| {
                let window = (k.exchange.clone(), k.timeframe, k.from, k.to);
                (window, k.symbol.clone())
            },
            |(exchange, timeframe, from, to), symbols| async move {
                self.stores
                    .clickhouse()
                    .ohlcv(&symbols, &exchange, timeframe, from, to)
                    .await
            },
            |row| &row.symbol,
        )
        .await
    }
}
