//! Writes to Redis: board moves applied exactly once per event, latest prices
//! kept only when newer, cache invalidation and pub/sub events. Each is one round trip.

use std::sync::LazyLock;

use super::{LatestPrice, Redis};

/// How long an applied-event marker lives: longer than any outbox retry delay, so a
/// redelivered event always finds its marker.
const APPLIED_TTL_SECS: u64 = 7 * 24 * 3600;

/// KEYS: per event, its applied-marker, then the keys of the boards it moves.
/// ARGV: the marker TTL, then per event its member and the number of boards it moves,
/// then per board (op, value, expiry in unix seconds or 0). An event whose marker already
/// existed changes nothing; returns how many events were applied. `max` keeps the larger
/// score (ZADD GT); any other op adds.
static APPLY_BOARDS: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local applied = 0
        local k, a = 1, 2
        while k <= #KEYS do
          local member, n = ARGV[a], tonumber(ARGV[a + 1])
          a = a + 2
          local fresh = redis.call('SET', KEYS[k], '1', 'NX', 'EX', ARGV[1])
          for j = 1, n do
            local key, op, value = KEYS[k + j], ARGV[a], ARGV[a + 1]
            local expires = tonumber(ARGV[a + 2])
            a = a + 3
            if fresh then
              if op == 'max' then
                redis.call('ZADD', key, 'GT', value, member)
              else
                redis.call('ZINCRBY', key, value, member)
              end
              if expires > 0 then
                redis.call('EXPIREAT', key, expires)
              end
            end
          end
          if fresh then
            applied = applied + 1
          end
          k = k + n + 1
        end
        return applied
        ",
    )
});

/// KEYS: the event stream, then one delivery marker per event. ARGV: the markers' TTL, the
/// stream's approximate cap, the pub/sub channel, the publish command (`PUBLISH`, or
/// `SPUBLISH` on a cluster), then one event JSON per marker. Each event
/// not delivered before is appended to the stream and published as
/// `{"cursor": <stream id>, "event": <event>}`; returns how many were.
static PUBLISH_EVENTS: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
        local added = 0
        for i = 2, #KEYS do
          if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
            local json = ARGV[i + 3]
            local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', json)
            redis.call(ARGV[4], ARGV[3], '{"cursor":"' .. id .. '","event":' .. json .. '}')
            added = added + 1
          end
        end
        return added
        "#,
    )
});

/// KEYS: one latest-proof hash per subject. ARGV: whether to overwrite ("1") or keep the
/// newer ("0"), then (time in microseconds, CID) per key. A proof replaces the stored one
/// when it is later, or as late with a greater CID (the order PostgreSQL's reconcile
/// uses); returns how many were replaced.
static SET_PROOFS: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local replaced = 0
        for i = 1, #KEYS do
          local at, cid = ARGV[2 * i], ARGV[2 * i + 1]
          local newer = ARGV[1] == '1'
          if not newer then
            local stored = redis.call('HMGET', KEYS[i], 'at', 'cid')
            local stored_at = tonumber(stored[1])
            newer = (not stored_at) or tonumber(at) > stored_at
              or (tonumber(at) == stored_at and cid > stored[2])
          end
          if newer then
            redis.call('HSET', KEYS[i], 'at', at, 'cid', cid)
            replaced = replaced + 1
          end
        end
        return replaced
        ",
    )
});

/// KEYS: (price key, stats cache key) per symbol. ARGV: the price channel prefix, then
/// (symbol, ts, price JSON) per symbol, then the publish command. Sets a price only if it is newer than the stored
/// one, publishes it on `{prefix}{symbol}`, and drops the symbol's cached statistics.
static SET_PRICES: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local updated = 0
        for i = 1, #KEYS / 2 do
          local key, stats = KEYS[2 * i - 1], KEYS[2 * i]
          local symbol, ts, json = ARGV[3 * i - 1], tonumber(ARGV[3 * i]), ARGV[3 * i + 1]
          local current = redis.call('GET', key)
          if (not current) or tonumber(cjson.decode(current)['ts']) <= ts then
            redis.call('SET', key, json)
            redis.call(ARGV[#ARGV], ARGV[1] .. symbol, json)
            updated = updated + 1
          end
          redis.call('DEL', stats)
        end
        return updated
        ",
    )
});

/// One event's effect on the boards it feeds, applied at most once (by its marker).
#[derive(Debug, Clone)]
pub struct BoardDelta {
    /// The marker's name under the prefix, unique to the event.
    pub marker: String,
    pub member: String,
    pub moves: Vec<BoardMove>,
}

/// One board period an event moves.
#[derive(Debug, Clone)]
pub struct BoardMove {
    pub board: String,
    pub period: crate::domain::boards::Period,
    /// Keep the larger score instead of adding.
    pub max: bool,
    pub value: f64,
}

impl Redis {
    /// Channel of one symbol's price events.
    pub fn price_channel(&self, symbol: &str) -> String {
        self.tagged(super::tags::PRICES, &format!("events:price:{symbol}"))
    }

    /// Channel of trade events.
    pub fn trades_channel(&self) -> String {
        self.key("events:trades")
    }

    /// Channel carrying every recorded domain event.
    pub fn events_channel(&self) -> String {
        self.tagged(super::tags::EVENTS, "events:domain")
    }

    /// Stream keeping the latest domain events, for subscribers that resume.
    pub fn events_stream(&self) -> String {
        self.tagged(super::tags::EVENTS, "stream:domain")
    }

    /// Appends each event (uid, JSON) not delivered before to the event stream, capped near
    /// `cap` entries, and publishes it with its stream id; returns how many were new.
    pub async fn publish_events(
        &self,
        events: &[(String, String)],
        cap: u64,
    ) -> Result<u64, crate::Error> {
        self.calls
            .run::<u64, redis::RedisError, _>("publish_events", async {
                if events.is_empty() {
                    return Ok(0);
                }
                let mut invocation = PUBLISH_EVENTS.prepare_invoke();
                invocation
                    .key(self.events_stream())
                    .arg(APPLIED_TTL_SECS)
                    .arg(cap.max(1))
                    .arg(self.events_channel())
                    .arg(self.publish_command());
                for (uid, json) in events {
                    invocation
                        .key(self.tagged(super::tags::EVENTS, &format!("applied:stream:{uid}")))
                        .arg(json);
                }
                let mut conn = self.conn();
                let added = invocation.invoke_async(&mut conn).await?;
                self.replicated(&mut conn).await?;
                Ok(added)
            })
            .await
    }

    /// Channel announcing changes to one period of a board: `{name}` for an all-time
    /// board's, `{name}:{period}` for a windowed board's. The bare `{name}` channel of a
    /// windowed board announces its current period's changes.
    pub fn leaderboard_channel(&self, name: &str, period: &str) -> String {
        if period.is_empty() {
            self.tagged(super::tags::BOARDS, &format!("events:leaderboard:{name}"))
        } else {
            self.tagged(
                super::tags::BOARDS,
                &format!("events:leaderboard:{name}:{period}"),
            )
        }
    }

    /// Applies each event to its boards unless its marker says it was applied before;
    /// returns how many were applied now.
    pub async fn apply_board_deltas(&self, deltas: &[BoardDelta]) -> Result<u64, crate::Error> {
        self.calls
            .run::<u64, redis::RedisError, _>("apply_board_deltas", async {
                let deltas: Vec<&BoardDelta> =
                    deltas.iter().filter(|d| !d.moves.is_empty()).collect();
                if deltas.is_empty() {
                    return Ok(0);
                }
                let mut invocation = APPLY_BOARDS.prepare_invoke();
                invocation.arg(APPLIED_TTL_SECS);
                for delta in deltas {
                    invocation
                        .key(self.tagged(super::tags::BOARDS, &delta.marker))
                        .arg(&delta.member)
                        .arg(delta.moves.len());
                    for step in &delta.moves {
                        invocation
                            .key(self.leaderboard_key(&step.board, &step.period.name))
                            .arg(if step.max { "max" } else { "add" })
                            .arg(step.value)
                            .arg(step.period.expires_at.unwrap_or(0));
                    }
                }
                let mut conn = self.conn();
                let applied = invocation.invoke_async(&mut conn).await?;
                self.replicated(&mut conn).await?;
                Ok(applied)
            })
            .await
    }

    /// Key of a subject's latest proof (a hash: `cid`, `at` in microseconds).
    pub fn proof_key(&self, chain: &str, subject: &str) -> String {
        self.tagged(super::tags::PROOFS, &format!("proof:{chain}:{subject}"))
    }

    /// Keeps each subject's latest proof: each given proof replaces the cached one if it
    /// is newer, or always with `overwrite` (reconcile's repair). Returns how many did.
    pub async fn set_latest_proofs(
        &self,
        proofs: &[crate::store::postgres::LatestProof],
        overwrite: bool,
    ) -> Result<u64, crate::Error> {
        self.calls
            .run::<u64, redis::RedisError, _>("set_latest_proofs", async {
                if proofs.is_empty() {
                    return Ok(0);
                }
                let mut invocation = SET_PROOFS.prepare_invoke();
                invocation.arg(if overwrite { "1" } else { "0" });
                for proof in proofs {
                    invocation
                        .key(self.proof_key(&proof.chain, &proof.subject))
                        .arg(proof.at.timestamp_micros())
                        .arg(&proof.cid);
                }
                let mut conn = self.conn();
                let replaced = invocation.invoke_async(&mut conn).await?;
                self.replicated(&mut conn).await?;
                Ok(replaced)
            })
            .await
    }

    /// Sets one member's score on one period of a board, in one round trip with the
    /// announcements of the change.
    pub async fn set_board_score(
        &self,
        board: &str,
        period: &crate::domain::boards::Period,
        member: &str,
        score: f64,
        announce: &[(String, String)],
    ) -> Result<(), crate::Error> {
        self.calls
            .run::<(), redis::RedisError, _>("set_board_score", async {
                let key = self.leaderboard_key(board, &period.name);
                let mut pipe = redis::pipe();
                pipe.atomic().zadd(&key, member, score).ignore();
                if let Some(at) = period.expires_at {
                    pipe.cmd("EXPIREAT").arg(&key).arg(at).ignore();
                }
                for (channel, message) in announce {
                    pipe.cmd(self.publish_command())
                        .arg(channel)
                        .arg(message)
                        .ignore();
                }
                pipe.query_async(&mut self.conn()).await
            })
            .await
    }

    /// Stores each price unless a newer one is there, publishes it, and invalidates the
    /// symbol's cached 24h statistics. Returns how many prices were newer.
    pub async fn set_prices_if_newer(&self, prices: &[LatestPrice]) -> Result<u64, crate::Error> {
        self.calls
            .run::<u64, redis::RedisError, _>("set_prices_if_newer", async {
                if prices.is_empty() {
                    return Ok(0);
                }
                let mut invocation = SET_PRICES.prepare_invoke();
                invocation.arg(self.price_channel(""));
                for price in prices {
                    let json = serde_json::to_string(price).map_err(|err| {
                        redis::RedisError::from((
                            redis::ErrorKind::Client,
                            "price encoding",
                            err.to_string(),
                        ))
                    })?;
                    invocation
                        .key(self.price_key(&price.symbol))
                        .key(self.cache_key(&format!("stats24h:{}", price.symbol)));
                    invocation.arg(&price.symbol).arg(price.ts).arg(json);
                }
                invocation.arg(self.publish_command());
                invocation.invoke_async(&mut self.conn()).await
            })
            .await
    }

    /// Publishes each message on its channel, in one pipeline.
    pub async fn publish(&self, messages: &[(String, String)]) -> Result<(), crate::Error> {
        self.calls
            .run::<(), redis::RedisError, _>("publish", async {
                if messages.is_empty() {
                    return Ok(());
                }
                let mut pipe = redis::pipe();
                for (channel, message) in messages {
                    pipe.cmd(self.publish_command())
                        .arg(channel)
                        .arg(message)
                        .ignore();
                }
                pipe.query_async(&mut self.conn()).await
            })
            .await
    }

    /// Every member and score of one period of a board.
    pub async fn leaderboard_all(
        &self,
        name: &str,
        period: &str,
    ) -> Result<Vec<(String, f64)>, crate::Error> {
        self.calls
            .run::<Vec<(String, f64)>, redis::RedisError, _>("leaderboard_all", async {
                redis::cmd("ZRANGE")
                    .arg(self.leaderboard_key(name, period))
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(&mut self.conn())
                    .await
            })
            .await
    }
}
