//! Latest price by symbol: one Redis MGET per batch; the symbols Redis misses (all of
//! them while Redis is down) fall back to their last ClickHouse tick, in one query. The fallback is not written back to Redis:
//! Redis prices are owned by ingestion, and `source` tells the client where a price came
//! from.

use std::collections::HashMap;

use async_graphql::{dataloader::Loader, Enum};

use super::{shared, Batcher, LoadError};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PriceOf(pub String);

/// Where a price was read from.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceSource {
    /// The live price kept by ingestion.
    Redis,
    /// The last recorded tick, used when Redis has no price for the symbol.
    Clickhouse,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PriceValue {
    pub symbol: String,
    pub price: f64,
    /// Unix seconds of the tick.
    pub ts: i64,
    pub source: PriceSource,
}

impl Loader<PriceOf> for Batcher {
    type Value = PriceValue;
    type Error = LoadError;

    async fn load(&self, keys: &[PriceOf]) -> Result<HashMap<PriceOf, PriceValue>, LoadError> {
        let _flight = self.flight("price");
        let symbols: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let (cached, redis_error) = match self.stores.redis().latest_prices(&symbols).await {
            Ok(cached) => (cached, None),
            Err(err) => (vec![None; symbols.len()], Some(err)),
        };
        let mut out = HashMap::with_capacity(symbols.len());
        let mut missing = Vec::new();
        for (symbol, price) in symbols.into_iter().zip(cached) {
            match price {
                Some(p) => {
                    let value = PriceValue {
                        symbol: symbol.clone(),
                        price: p.price,
                        ts: p.ts,
                        source: PriceSource::Redis,
                    };
                    out.insert(PriceOf(symbol), value);
                }
                None => missing.push(symbol),
            }
        }
        if !missing.is_empty() {
            let ticks = self
                .stores
                .clickhouse()
                .last_ticks(&missing)
                .await
                // With both down, the first failure is the one to report.
                .map_err(|err| shared(redis_error.unwrap_or(err)))?;
            for tick in ticks {
                let value = PriceValue {
                    symbol: tick.symbol.clone(),
                    price: tick.price,
                    ts: i64::from(tick.ts),
                    source: PriceSource::Clickhouse,
                };
                out.insert(PriceOf(tick.symbol), value);
            }
        }
        Ok(out)
    }
}
