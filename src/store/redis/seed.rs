//! Writes the demo dataset's hot state into Redis: latest prices and leaderboards.

use super::{LatestPrice, Redis};

/// Keys deleted per `UNLINK` while resetting.
const RESET_BATCH: usize = 500;

impl Redis {
    /// Deletes every key under this deployment's prefix.
    pub async fn reset_demo_data(&self) -> Result<u64, crate::Error> {
        self.calls
            .run::<u64, redis::RedisError, _>("reset_demo_data", async {
                let mut conn = self.conn();
                let pattern = format!("{}*", escape_glob(&self.prefix));
                if self.is_cluster() {
                    // SCAN walks one node; KEYS goes to every master and the replies are
                    // joined (a blocking command, acceptable for a demo reset).
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(&pattern)
                        .query_async(&mut conn)
                        .await?;
                    let mut deleted = 0u64;
                    for batch in keys.chunks(RESET_BATCH) {
                        deleted += redis::cmd("UNLINK")
                            .arg(batch)
                            .query_async::<u64>(&mut conn)
                            .await?;
                    }
                    return Ok(deleted);
                }
                let mut cursor: u64 = 0;
                let mut deleted = 0u64;
                loop {
                    let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn)
                        .await?;
                    for batch in keys.chunks(RESET_BATCH) {
                        deleted += redis::cmd("UNLINK")
                            .arg(batch)
                            .query_async::<u64>(&mut conn)
                            .await?;
                    }
                    if next == 0 {
                        return Ok(deleted);
                    }
                    cursor = next;
                }
            })
            .await
    }

    /// Sets the latest price of each symbol (one MSET).
    pub async fn set_latest_prices(&self, prices: &[LatestPrice]) -> Result<(), crate::Error> {
        self.calls
            .run::<(), redis::RedisError, _>("set_latest_prices", async {
                if prices.is_empty() {
                    return Ok(());
                }
                let mut cmd = redis::cmd("MSET");
                for price in prices {
                    let value = serde_json::to_string(price).map_err(|err| {
                        redis::RedisError::from((
                            redis::ErrorKind::Client,
                            "price encoding",
                            err.to_string(),
                        ))
                    })?;
                    cmd.arg(self.price_key(&price.symbol)).arg(value);
                }
                cmd.query_async::<()>(&mut self.conn()).await
            })
            .await
    }

    /// Replaces one period of board `name` with the given (member, score) pairs,
    /// atomically, with the period's expiry.
    pub async fn replace_leaderboard(
        &self,
        name: &str,
        period: &crate::domain::boards::Period,
        entries: &[(String, f64)],
    ) -> Result<(), crate::Error> {
        self.calls
            .run::<(), redis::RedisError, _>("replace_leaderboard", async {
                let key = self.leaderboard_key(name, &period.name);
                let mut pipe = redis::pipe();
                pipe.atomic().del(&key).ignore();
                for chunk in entries.chunks(1000) {
                    let members: Vec<(f64, &str)> =
                        chunk.iter().map(|(m, s)| (*s, m.as_str())).collect();
                    pipe.zadd_multiple(&key, &members).ignore();
                }
                if let (Some(at), false) = (period.expires_at, entries.is_empty()) {
                    pipe.cmd("EXPIREAT").arg(&key).arg(at).ignore();
                }
                pipe.query_async::<()>(&mut self.conn()).await
            })
            .await
    }
}

/// Escapes the glob characters of a key prefix for SCAN MATCH.
fn escape_glob(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
