//! The graph's reads from Redis (and the stats cache it keeps): one command or pipeline
//! per batch.

use super::{LatestPrice, Redis};

/// A user's standing on one leaderboard.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// 1-based.
    pub rank: u64,
    pub score: f64,
}

impl Redis {
    /// Latest prices of `symbols`, in the same order (None where Redis has none).
    pub async fn latest_prices(
        &self,
        symbols: &[String],
    ) -> Result<Vec<Option<LatestPrice>>, crate::Error> {
        self.calls
            .run::<Vec<Option<LatestPrice>>, redis::RedisError, _>("latest_prices", async {
                let keys: Vec<String> = symbols.iter().map(|s| self.price_key(s)).collect();
                let raw: Vec<Option<String>> = redis::cmd("MGET")
                    .arg(&keys)
                    .query_async(&mut self.conn())
                    .await?;
                Ok(raw
                    .into_iter()
                    .map(|value| value.and_then(|v| serde_json::from_str(&v).ok()))
                    .collect())
            })
            .await
    }

    /// Up to `count` domain events kept in the event stream after stream id `after`, oldest
    /// first, as (stream id, event JSON).
    pub async fn events_after(
        &self,
        after: &str,
        count: usize,
    ) -> Result<Vec<(String, String)>, crate::Error> {
        self.calls
            .run::<Vec<(String, String)>, redis::RedisError, _>("events_after", async {
                let entries: Vec<(String, std::collections::HashMap<String, String>)> =
                    redis::cmd("XRANGE")
                        .arg(self.events_stream())
                        .arg(format!("({after}"))
                        .arg("+")
                        .arg("COUNT")
                        .arg(count)
                        .query_async(&mut self.conn())
                        .await?;
                Ok(entries
                    .into_iter()
                    .filter_map(|(id, mut fields)| fields.remove("e").map(|e| (id, e)))
                    .collect())
            })
            .await
    }

    /// The stream id of the oldest event the event stream still keeps, once its cap has
    /// removed any (None while it has removed none: everything ever added is there).
    pub async fn events_kept_from(&self) -> Result<Option<String>, crate::Error> {
        self.calls
            .run::<Option<String>, redis::RedisError, _>("events_kept_from", async {
                let mut conn = self.conn();
                let exists: bool = redis::cmd("EXISTS")
                    .arg(self.events_stream())
                    .query_async(&mut conn)
                    .await?;
                if !exists {
                    return Ok(None);
                }
                let mut info: std::collections::HashMap<String, redis::Value> = redis::cmd("XINFO")
                    .arg("STREAM")
                    .arg(self.events_stream())
                    .query_async(&mut conn)
                    .await?;
                let mut number = |field: &str| -> Result<u64, redis::RedisError> {
                    Ok(info
                        .remove(field)
                        .map(redis::from_redis_value::<u64>)
                        .transpose()?
                        .unwrap_or_default())
                };
                let (added, length) = (number("entries-added")?, number("length")?);
                if added <= length {
                    return Ok(None);
                }
                let first = info
                    .remove("first-entry")
                    .map(redis::from_redis_value::<Option<(String, redis::Value)>>)
                    .transpose()?
                    .flatten();
                Ok(first.map(|(id, _)| id))
            })
            .await
    }

    /// The top `n` members of one period of a board with their scores, and its size.
    pub async fn leaderboard_top(
        &self,
        name: &str,
        period: &str,
        n: usize,
    ) -> Result<(Vec<(String, f64)>, u64), crate::Error> {
        self.calls
            .run::<(Vec<(String, f64)>, u64), redis::RedisError, _>("leaderboard_top", async {
                let key = self.leaderboard_key(name, period);
                let stop = isize::try_from(n).unwrap_or(isize::MAX) - 1;
                redis::pipe()
                    .zrevrange_withscores(&key, 0, stop)
                    .zcard(&key)
                    .query_async(&mut self.conn())
                    .await
            })
            .await
    }

    /// The top members (with scores) and the size of each (ranking, period, n), in one
    /// pipeline.
    pub async fn leaderboard_tops(
        &self,
        wanted: &[(String, String, usize)],
    ) -> Result<Vec<(Vec<(String, f64)>, u64)>, crate::Error> {
        self.calls
            .run::<Vec<(Vec<(String, f64)>, u64)>, redis::RedisError, _>(
                "leaderboard_tops",
                async {
                    if wanted.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut pipe = redis::pipe();
                    for (name, period, n) in wanted {
                        let key = self.leaderboard_key(name, period);
                        let stop = isize::try_from(*n).unwrap_or(isize::MAX) - 1;
                        pipe.zrevrange_withscores(&key, 0, stop).zcard(&key);
                    }
                    let flat: Vec<redis::Value> = pipe.query_async(&mut self.conn()).await?;
                    flat.chunks(2)
                        .map(|pair| match pair {
                            [members, size] => Ok((
                                redis::from_redis_value(members.clone())?,
                                redis::from_redis_value(size.clone())?,
                            )),
                            _ => Err(redis::RedisError::from((
                                redis::ErrorKind::Client,
                                "leaderboard_tops: odd reply",
                            ))),
                        })
                        .collect()
                },
            )
            .await
    }

    /// Rank and score of each (board, period, member); None where the member is absent.
    pub async fn standings(
        &self,
        wanted: &[(String, String, String)],
    ) -> Result<Vec<Option<Standing>>, crate::Error> {
        self.calls
            .run::<Vec<Option<Standing>>, redis::RedisError, _>("standings", async {
                let mut pipe = redis::pipe();
                for (board, period, member) in wanted {
                    let key = self.leaderboard_key(board, period);
                    pipe.zrevrank(&key, member).zscore(&key, member);
                }
                let flat: Vec<Option<f64>> = pipe.query_async(&mut self.conn()).await?;
                Ok(flat
                    .chunks(2)
                    .map(|pair| match pair {
                        [Some(rank), Some(score)] => Some(Standing {
                            rank: *rank as u64 + 1,
                            score: *score,
                        }),
                        _ => None,
                    })
                    .collect())
            })
            .await
    }

    /// The cached latest proof (CID, time) of each (chain, subject); None where none is.
    pub async fn latest_proofs(
        &self,
        subjects: &[(String, String)],
    ) -> Result<Vec<Option<(String, chrono::DateTime<chrono::Utc>)>>, crate::Error> {
        self.calls
            .run::<Vec<Option<(String, chrono::DateTime<chrono::Utc>)>>, redis::RedisError, _>(
                "latest_proofs",
                async {
                    if subjects.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut pipe = redis::pipe();
                    for (chain, subject) in subjects {
                        pipe.cmd("HMGET")
                            .arg(self.proof_key(chain, subject))
                            .arg("cid")
                            .arg("at");
                    }
                    let found: Vec<(Option<String>, Option<i64>)> =
                        pipe.query_async(&mut self.conn()).await?;
                    Ok(found
                        .into_iter()
                        .map(|(cid, at)| {
                            Some((cid?, chrono::DateTime::from_timestamp_micros(at?)?))
                        })
                        .collect())
                },
            )
            .await
    }

    /// Cached JSON values under `cache:{name}` for each name (None on a miss).
    pub async fn cache_get(&self, names: &[String]) -> Result<Vec<Option<String>>, crate::Error> {
        self.calls
            .run::<Vec<Option<String>>, redis::RedisError, _>("cache_get", async {
                let keys: Vec<String> = names.iter().map(|n| self.cache_key(n)).collect();
                redis::cmd("MGET")
                    .arg(&keys)
                    .query_async(&mut self.conn())
                    .await
            })
            .await
    }

    /// Stores JSON values under `cache:{name}` with a TTL, in one pipeline.
    pub async fn cache_set(
        &self,
        entries: &[(String, String)],
        ttl_secs: u64,
    ) -> Result<(), crate::Error> {
        self.calls
            .run::<(), redis::RedisError, _>("cache_set", async {
                let mut pipe = redis::pipe();
                for (name, value) in entries {
                    pipe.set_ex(self.cache_key(name), value, ttl_secs).ignore();
                }
                pipe.query_async(&mut self.conn()).await
            })
            .await
    }

    /// Key of a cache entry.
    /// (The cache holds the 24h statistics, dropped with each new price by the same
    /// script: it is in the prices' hash-tag group.)
    pub fn cache_key(&self, name: &str) -> String {
        self.tagged(super::tags::PRICES, &format!("cache:{name}"))
    }
}
