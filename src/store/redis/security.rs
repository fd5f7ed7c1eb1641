//! Redis state of the security layer: login challenges, sessions, rate-limit counters
//! and automatic persisted queries. One round trip each.

use std::sync::LazyLock;

use super::Redis;

/// Generic cell rate algorithm over one or two keys, with Redis's clock (shared by every
/// instance). KEYS: the limited keys. ARGV: the cost (how many requests this counts as;
/// 0: report only), then per key its limit and period in ms. A request is let through
/// only if every key allows its whole cost, and only then is it counted. Returns, per key: allowed (0/1), remaining, retry-after ms, ms until
/// the allowance is full again.
static GCRA: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local cost = tonumber(ARGV[1])
        local peek = cost == 0
        local out = {}
        local updates = {}
        local all = true
        for i = 1, #KEYS do
          local limit = tonumber(ARGV[2 * i])
          local period = tonumber(ARGV[2 * i + 1])
          local interval = period / limit
          local tat = tonumber(redis.call('GET', KEYS[i]) or now)
          if tat < now then tat = now end
          if peek then
            local remaining = math.floor((now - (tat - period)) / interval)
            if remaining > limit then remaining = limit end
            if remaining < 0 then remaining = 0 end
            local retry = 0
            if remaining == 0 then retry = math.ceil(tat - period + interval - now) end
            table.insert(out, 1)
            table.insert(out, remaining)
            table.insert(out, retry)
            table.insert(out, math.ceil(tat - now))
          else
            local new_tat = tat + interval * cost
            local allow_at = new_tat - period
            if allow_at <= now then
              table.insert(out, 1)
              table.insert(out, math.floor((now - allow_at) / interval))
              table.insert(out, 0)
              table.insert(out, math.ceil(new_tat - now))
              updates[i] = new_tat
            else
              all = false
              table.insert(out, 0)
              table.insert(out, 0)
              table.insert(out, math.ceil(allow_at - now))
              table.insert(out, math.ceil(tat - now))
            end
          end
        end
        if all and not peek then
          for i = 1, #KEYS do
            redis.call('SET', KEYS[i], tostring(updates[i]), 'PX', math.ceil(updates[i] - now) + 1)
          end
        end
        return out
        ",
    )
});

/// One key's rate-limit state after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    pub allowed: bool,
    pub remaining: u64,
    pub retry_after_ms: u64,
    pub reset_ms: u64,
}

impl Redis {
    fn rate_key(&self, name: &str) -> String {
        self.tagged(super::tags::RATE_LIMITS, &format!("ratelimit:{name}"))
    }

    /// Counts `cost` requests against each `(name, limit, period_ms)` (with a cost of 0,
    /// only reports). All-or-nothing: a request refused by one key counts nowhere.
    pub async fn rate_limit(
        &self,
        limits: &[(String, u32, u64)],
        cost: u32,
    ) -> Result<Vec<RateState>, crate::Error> {
        self.calls
            .run::<Vec<RateState>, redis::RedisError, _>("rate_limit", async {
                if limits.is_empty() {
                    return Ok(Vec::new());
                }
                let mut invocation = GCRA.prepare_invoke();
                invocation.arg(cost);
                for (name, limit, period_ms) in limits {
                    invocation
                        .key(self.rate_key(name))
                        .arg(*limit)
                        .arg(*period_ms);
                }
                let flat: Vec<i64> = invocation.invoke_async(&mut self.conn()).await?;
                let clamp = |n: i64| u64::try_from(n).unwrap_or(0);
                Ok(flat
                    .chunks(4)
                    .map(|c| RateState {
                        allowed: c[0] == 1,
                        remaining: clamp(c[1]),
                        retry_after_ms: clamp(c[2]),
                        reset_ms: clamp(c[3]),
                    })
                    .collect())
            })
            .await
    }

    fn challenge_key(&self, address: &str) -> String {
        self.key(&format!("login:{address}"))
    }

    /// Keeps the login challenge issued to `address` (replacing an earlier one).
    pub async fn put_challenge(
        &self,
        address: &str,
        message: &str,
        ttl_secs: u64,
    ) -> Result<(), crate::Error> {
        self.calls
            .run::<(), redis::RedisError, _>("put_challenge", async {
                redis::cmd("SET")
                    .arg(self.challenge_key(address))
                    .arg(message)
                    .arg("EX")
                    .arg(ttl_secs.max(1))
                    .query_async(&mut self.conn())
                    .await
            })
            .await
    }

    /// Takes (reads and deletes) the challenge of `address`, so it is used at most once.
    pub async fn take_challenge(&self, address: &str) -> Result<Option<String>, crate::Error> {
        self.calls
            .run::<Option<String>, redis::RedisError, _>("take_challenge", async {
                redis::cmd("GETDEL")
                    .arg(self.challenge_key(address))
                    .query_async(&mut self.conn())
                    .await
            })
            .await
    }

    /// The Redis key of the session whose token hashes to `token_hash`.
    pub fn session_key(&self, token_hash: &str) -> String {
        self.key(&format!("session:{token_hash}"))
    }

    pub async fn put_session(
        &self,
        key: &str,
        value: &str,
        ttl_secs: u64,
    ) -> Result<(), crate::Error> {
        self.calls
            .run::<(), redis::RedisError, _>("put_session", async {
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("EX")
                    .arg(ttl_secs.max(1))
                    .query_async(&mut self.conn())
                    .await
            })
            .await
    }

    pub async fn get_session(&self, key: &str) -> Result<Option<String>, crate::Error> {
        self.calls
            .run::<Option<String>, redis::RedisError, _>("get_session", async {
                redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut self.conn())
                    .await
            })
            .await
    }

    /// Revokes a session; true when it existed.
    pub async fn delete_session(&self, key: &str) -> Result<bool, crate::Error> {
        self.calls
            .run::<bool, redis::RedisError, _>("delete_session", async {
                let removed: u64 = redis::cmd("DEL")
                    .arg(key)
                    .query_async(&mut self.conn())
                    .await?;
                Ok(removed > 0)
            })
            .await
    }

    fn apq_key(&self, hash: &str) -> String {
        self.key(&format!("apq:{hash}"))
    }

    /// The document registered under an automatic persisted query's hash.
    pub async fn persisted_query(&self, hash: &str) -> Result<Option<String>, crate::Error> {
        self.calls
            .run::<Option<String>, redis::RedisError, _>("persisted_query", async {
                redis::cmd("GET")
                    .arg(self.apq_key(hash))
                    .query_async(&mut self.conn())
                    .await
            })
            .await
    }

    /// Registers a document under its hash (checked by the caller).
    pub async fn put_persisted_query(
        &self,
        hash: &str,
        document: &str,
        ttl_secs: u64,
    ) -> Result<(), crate::Error> {
        self.calls
            .run::<(), redis::RedisError, _>("put_persisted_query", async {
                redis::cmd("SET")
                    .arg(self.apq_key(hash))
                    .arg(document)
                    .arg("EX")
                    .arg(ttl_secs.max(1))
                    .query_async(&mut self.conn())
                    .await
            })
            .await
    }
}
