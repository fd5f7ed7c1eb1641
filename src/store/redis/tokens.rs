//! The token-asset cache of the Astake read path: each token's record as PostgreSQL last
//! gave it, with when it was cached, under `{prefix}token:{id}`. Entries live a day so
//! that they can stand in when PostgreSQL fails; a read decides from `cached_at` whether
//! an entry is fresh enough for it.

use super::Redis;

/// How long an entry is kept (as the fallback when PostgreSQL fails), in seconds.
pub const TOKEN_CACHE_KEEP_SECS: u64 = 86_400;

impl Redis {
    fn token_key(&self, token_id: &str) -> String {
        self.key(&format!("token:{token_id}"))
    }

    /// The cached entries of these tokens, in order (None where none is cached).
    pub async fn cached_tokens(&self, ids: &[String]) -> Result<Vec<Option<String>>, crate::Error> {
        self.calls
            .run::<Vec<Option<String>>, redis::RedisError, _>("cached_tokens", async {
                let keys: Vec<String> = ids.iter().map(|id| self.token_key(id)).collect();
                redis::cmd("MGET")
                    .arg(&keys)
                    .query_async(&mut self.conn())
                    .await
            })
            .await
    }

    /// Caches entries (token id, JSON) in one round trip.
    pub async fn cache_tokens(&self, entries: &[(String, String)]) -> Result<(), crate::Error> {
        self.calls
            .run::<(), redis::RedisError, _>("cache_tokens", async {
                if entries.is_empty() {
                    return Ok(());
                }
                let mut pipe = redis::pipe();
                for (id, json) in entries {
                    pipe.set_ex(self.token_key(id), json, TOKEN_CACHE_KEEP_SECS)
                        .ignore();
                }
                pipe.query_async::<()>(&mut self.conn()).await
            })
            .await
    }

    /// Drops the entries of tokens just written.
    pub async fn forget_tokens(&self, ids: &[String]) -> Result<(), crate::Error> {
        self.calls
            .run::<(), redis::RedisError, _>("forget_tokens", async {
                if ids.is_empty() {
                    return Ok(());
                }
                let keys: Vec<String> = ids.iter().map(|id| self.token_key(id)).collect();
                redis::cmd("DEL")
                    .arg(&keys)
                    .query_async::<()>(&mut self.conn())
                    .await
            })
            .await
    }
}
