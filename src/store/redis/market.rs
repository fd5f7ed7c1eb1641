//! The market cache, as the QiCore seed keeps one: per asset, the newest tick that carried
//! market figures (price, venue, source, market cap, 24h volume, liquidity, participants),
//! for 60 seconds. Ingestion writes it (never over a newer snapshot); `Asset.market` reads
//! it and falls back to ClickHouse when it has expired.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::Redis;

/// How long a snapshot is trusted.
pub const MARKET_TTL_SECS: u64 = 60;

/// One asset's market snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketSnapshot {
    pub symbol: String,
    pub price: f64,
    pub exchange: String,
    pub source: String,
    pub attribution: String,
    pub market_cap: Option<f64>,
    pub volume_24h: Option<f64>,
    pub liquidity: Option<f64>,
    pub participants: Option<u32>,
    /// Unix seconds of the tick.
    pub ts: i64,
}

/// KEYS: one snapshot key per asset; ARGV: (ts, json) per key, then the TTL. A snapshot
/// older than the one kept is skipped.
static SET_MARKET: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local ttl = ARGV[#ARGV]
        local written = 0
        for i, key in ipairs(KEYS) do
            local ts = tonumber(ARGV[2 * i - 1])
            local kept = redis.call('GET', key)
            local newer = true
            if kept then
                local old = cjson.decode(kept)
                if old.ts and tonumber(old.ts) > ts then newer = false end
            end
            if newer then
                redis.call('SET', key, ARGV[2 * i], 'EX', ttl)
                written = written + 1
            end
        end
        return written
        ",
    )
});

impl Redis {
    pub fn market_key(&self, symbol: &str) -> String {
        self.tagged(super::tags::MARKET, &format!("market:{symbol}"))
    }

    /// Keeps each snapshot for [`MARKET_TTL_SECS`] unless a newer one is there.
    pub async fn set_market(&self, snapshots: &[MarketSnapshot]) -> Result<u64, crate::Error> {
        self.calls
            .run::<u64, redis::RedisError, _>("set_market", async {
                if snapshots.is_empty() {
                    return Ok(0);
                }
                let mut invocation = SET_MARKET.prepare_invoke();
                for s in snapshots {
                    let json = serde_json::to_string(s).map_err(|err| {
                        redis::RedisError::from((
                            redis::ErrorKind::Client,
                            "market encoding",
                            err.to_string(),
                        ))
                    })?;
                    invocation
                        .key(self.market_key(&s.symbol))
                        .arg(s.ts)
                        .arg(json);
                }
                invocation.arg(MARKET_TTL_SECS);
                invocation.invoke_async(&mut self.conn()).await
            })
            .await
    }

    /// The kept snapshots of these assets (absent ones are left out).
    pub async fn market(&self, symbols: &[String]) -> Result<Vec<MarketSnapshot>, crate::Error> {
        self.calls
            .run::<Vec<MarketSnapshot>, redis::RedisError, _>("market", async {
                if symbols.is_empty() {
                    return Ok(Vec::new());
                }
                let keys: Vec<String> = symbols.iter().map(|s| self.market_key(s)).collect();
                let found: Vec<Option<String>> = redis::cmd("MGET")
                    .arg(&keys)
                    .query_async(&mut self.conn())
                    .await?;
                Ok(found
                    .into_iter()
                    .flatten()
                    .filter_map(|json| serde_json::from_str(&json).ok())
                    .collect())
            })
            .await
    }
}
