//! Token assets through Astake's read path, many at once: the cache (Redis, one MGET),
//! then the primary (PostgreSQL, one statement for every key the cache could not answer
//! fresh enough), then, when the primary fails, the cache's older entries (the fallback).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use serde::{Deserialize, Serialize};

use super::{shared, Batcher, LoadError};
use crate::store::postgres::TokenAssetRow;

/// A token, and how old (seconds) a cached copy may be to answer for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenOf {
    pub token_id: String,
    pub max_age: u32,
}

/// Where a token's record was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Cache,
    Primary,
    Fallback,
}

#[derive(Debug, Clone)]
pub struct TokenValue {
    pub row: TokenAssetRow,
    pub source: TokenSource,
    /// When the record was read from PostgreSQL (unix seconds).
    pub read_at: i64,
}

/// A cache entry: the record and when PostgreSQL gave it.
#[derive(Serialize, Deserialize)]
pub struct CachedToken {
    pub row: TokenAssetRow,
    pub cached_at: i64,
}

impl Loader<TokenOf> for Batcher {
    type Value = TokenValue;
    type Error = LoadError;

    async fn load(&self, keys: &[TokenOf]) -> Result<HashMap<TokenOf, TokenValue>, LoadError> {
        let _flight = self.flight("token");
        let now = chrono::Utc::now().timestamp();
        let mut ids: Vec<String> = keys.iter().map(|k| k.token_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let cached: HashMap<String, CachedToken> =
            match self.stores.redis().cached_tokens(&ids).await {
                Ok(entries) => ids
                    .iter()
                    .zip(entries)
                    .filter_map(|(id, raw)| {
                        let entry: CachedToken = serde_json::from_str(&raw?).ok()?;
                        Some((id.clone(), entry))
                    })
                    .collect(),
                // Without the cache, the primary answers everything.
                Err(_) => HashMap::new(),
            };
        let fresh = |k: &TokenOf| {
            cached
                .get(&k.token_id)
                .filter(|c| k.max_age > 0 && now - c.cached_at <= i64::from(k.max_age))
        };
        let mut out = HashMap::with_capacity(keys.len());
        let mut wanted: Vec<String> = Vec::new();
        for key in keys {
            match fresh(key) {
                Some(c) => {
                    let value = TokenValue {
                        row: c.row.clone(),
                        source: TokenSource::Cache,
                        read_at: c.cached_at,
                    };
                    out.insert(key.clone(), value);
                }
                None => wanted.push(key.token_id.clone()),
            }
        }
        if wanted.is_empty() {
            return Ok(out);
        }
        wanted.sort();
        wanted.dedup();
        match self.stores.postgres().tokens_by_id(&wanted).await {
            Ok(rows) => {
                let entries: Vec<(String, String)> = rows
                    .iter()
                    .filter_map(|row| {
                        let entry = CachedToken {
                            row: row.clone(),
                            cached_at: now,
                        };
                        Some((row.token_id.clone(), serde_json::to_string(&entry).ok()?))
                    })
                    .collect();
                // A cache that cannot be written costs the next read a trip, not this one.
                let _ = self.stores.redis().cache_tokens(&entries).await;
                let by_id: HashMap<&str, &TokenAssetRow> =
                    rows.iter().map(|r| (r.token_id.as_str(), r)).collect();
                let missing: Vec<&TokenOf> =
                    keys.iter().filter(|k| !out.contains_key(*k)).collect();
                for key in missing {
                    if let Some(row) = by_id.get(key.token_id.as_str()) {
                        let value = TokenValue {
                            row: (*row).clone(),
                            source: TokenSource::Primary,
                            read_at: now,
                        };
                        out.insert(key.clone(), value);
                    }
                }
                Ok(out)
            }
            // Only an outage (down, too slow, breaker open) falls back: an error about the
            // request itself is the request's.
            Err(err) => {
                let outage =
                    err.is_store_outage() || matches!(err, crate::Error::CircuitOpen { .. });
                let missing: Vec<&TokenOf> =
                    keys.iter().filter(|k| !out.contains_key(*k)).collect();
                if !outage || missing.iter().any(|k| !cached.contains_key(&k.token_id)) {
                    return Err(shared(err));
                }
                for key in missing {
                    let c = &cached[&key.token_id];
                    let value = TokenValue {
                        row: c.row.clone(),
                        source: TokenSource::Fallback,
                        read_at: c.cached_at,
                    };
                    out.insert(key.clone(), value);
                }
                Ok(out)
            }
        }
    }
}
