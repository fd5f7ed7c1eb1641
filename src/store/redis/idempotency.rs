//! Idempotency keys of `POST /ingest/prices`: how far an ingest under a key got, so that a
//! retry with the same key and body neither repeats the lines already stored nor runs
//! beside the attempt it retries. One value per key (JSON), kept for a day:
//!
//! - `running`: an attempt holds the key until `until` (ms, Redis's clock), a lease it
//!   renews as it stores batches; a retry meanwhile is refused;
//! - `partial`: an attempt stopped (failure, timeout, lapsed lease) after storing the
//!   ticks of its first `lines` lines; a retry resumes after them;
//! - `done`: the attempt finished; a retry gets its `summary` again and stores nothing.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::Redis;

/// How long an idempotency key is remembered, in seconds.
pub const KEY_TTL_SECS: u64 = 86_400;

/// Claims a key. ARGV: lease ms, TTL s. Returns the key's progress JSON with `state` set
/// to `claimed` (this attempt now holds it), or the stored value when another attempt
/// holds it or it is done.
static CLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local v = redis.call('GET', KEYS[1])
        local d = {state = 'partial', lines = 0, accepted = 0, rejected = 0}
        if v then
          d = cjson.decode(v)
          if d.state == 'done' then return v end
          if d.state == 'running' and tonumber(d['until']) > now then return v end
        end
        d.state = 'running'
        d['until'] = now + tonumber(ARGV[1])
        redis.call('SET', KEYS[1], cjson.encode(d), 'EX', tonumber(ARGV[2]))
        d.state = 'claimed'
        return cjson.encode(d)
        ",
    )
});

/// Records progress. ARGV: the value's JSON (its `until`, when running, is set here
/// from the lease ms in ARGV[2]), TTL s.
static RECORD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local d = cjson.decode(ARGV[1])
        if d.state == 'running' then d['until'] = now + tonumber(ARGV[2]) end
        redis.call('SET', KEYS[1], cjson.encode(d), 'EX', tonumber(ARGV[3]))
        return 1
        ",
    )
});

/// Where an ingest under a key stands.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct IngestProgress {
    /// `claimed`, `running`, `partial` or `done`.
    pub state: String,
    /// Lines whose ticks are stored.
    #[serde(default)]
    pub lines: u64,
    #[serde(default)]
    pub accepted: u64,
    #[serde(default)]
    pub rejected: u64,
    /// The finished attempt's response body, as JSON text (kept as text so that the
    /// scripts, which decode the record, pass it through unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

impl Redis {
    fn idempotency_key(&self, owner: &str, key: &str) -> String {
        self.key(&format!("ingest-key:{owner}:{key}"))
    }

    /// Claims `key` of `owner` for an attempt holding it for `lease_ms`.
    pub async fn claim_ingest_key(
        &self,
        owner: &str,
        key: &str,
        lease_ms: u64,
    ) -> Result<IngestProgress, crate::Error> {
        self.calls
            .run::<IngestProgress, redis::RedisError, _>("claim_ingest_key", async {
                let value: String = CLAIM
                    .key(self.idempotency_key(owner, key))
                    .arg(lease_ms)
                    .arg(KEY_TTL_SECS)
                    .invoke_async(&mut self.conn())
                    .await?;
                serde_json::from_str(&value).map_err(|err| {
                    redis::RedisError::from((
                        redis::ErrorKind::Parse,
                        "unreadable ingest progress",
                        err.to_string(),
                    ))
                })
            })
            .await
    }

    /// Records `progress` of `key` (renewing the lease by `lease_ms` while running).
    pub async fn record_ingest_key(
        &self,
        owner: &str,
        key: &str,
        progress: &IngestProgress,
        lease_ms: u64,
    ) -> Result<(), crate::Error> {
        self.calls
            .run::<(), redis::RedisError, _>("record_ingest_key", async {
                let value = serde_json::to_string(progress).unwrap_or_default();
                RECORD
                    .key(self.idempotency_key(owner, key))
                    .arg(value)
                    .arg(lease_ms)
                    .arg(KEY_TTL_SECS)
                    .invoke_async::<i64>(&mut self.conn())
                    .await
                    .map(drop)
            })
            .await
    }
}
