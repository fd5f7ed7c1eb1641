//! 24-hour statistics of an asset: cache-aside in Redis (one MGET per batch); the symbols
//! it misses are computed by ClickHouse in one query and cached with a TTL (one pipeline).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use super::{shared, Batcher, LoadError};
use crate::store::clickhouse::StatsRow;

/// The window the statistics cover.
pub const WINDOW_SECS: i64 = 24 * 60 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stats24hOf(pub String);

/// Name of the cache entry of a symbol's statistics (`{prefix}cache:stats24h:{symbol}`).
pub fn cache_name(symbol: &str) -> String {
    format!("stats24h:{symbol}")
}

impl Loader<Stats24hOf> for Batcher {
    type Value = StatsRow;
    type Error = LoadError;

    async fn load(&self, keys: &[Stats24hOf]) -> Result<HashMap<Stats24hOf, StatsRow>, LoadError> {
        let _flight = self.flight("stats24h");
        // A TTL of 0 turns the cache off: every batch asks ClickHouse.
        let caching = self.stats_ttl_secs > 0;
        let names: Vec<String> = keys.iter().map(|k| cache_name(&k.0)).collect();
        let cached = if caching {
            self.stores
                .redis()
                .cache_get(&names)
                .await
                .map_err(shared)?
        } else {
            vec![None; keys.len()]
        };
        let mut out = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        for (key, value) in keys.iter().zip(cached) {
            match value.and_then(|v| serde_json::from_str::<StatsRow>(&v).ok()) {
                Some(stats) => {
                    out.insert(key.clone(), stats);
                }
                None => missing.push(key.0.clone()),
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let since = u32::try_from(chrono::Utc::now().timestamp() - WINDOW_SECS).unwrap_or(0);
        let computed = self
            .stores
            .clickhouse()
            .stats_since(&missing, since)
            .await
            .map_err(shared)?;
        let entries: Vec<(String, String)> = computed
            .iter()
            .filter_map(|row| Some((cache_name(&row.symbol), serde_json::to_string(row).ok()?)))
            .collect();
        if caching && !entries.is_empty() {
            // A failed cache write costs the next request a recomputation, nothing more.
            let write = self.stores.redis().cache_set(&entries, self.stats_ttl_secs);
            if let Err(err) = write.await {
                tracing::warn!(error = %err, "cannot cache stats24h");
            }
        }
        out.extend(
            computed
                .into_iter()
                .map(|row| (Stats24hOf(row.symbol.clone()), row)),
        );
        Ok(out)
    }
}
