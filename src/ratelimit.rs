//! Rate limits, kept in Redis so that every instance shares them: one allowance per
//! authenticated principal and one per client IP, each refilling evenly over
//! `MERIDIAN_RATE_LIMIT_WINDOW_SECS` (a generic cell rate algorithm, so there is no
//! window edge to burst across). A request must fit both; one that does not is counted
//! in neither and gets 429 with `Retry-After`.
//!
//! While Redis is unavailable the limits are not enforced (fail open, logged): refusing
//! every request because the limiter's store is down would turn a cache outage into a
//! full outage.

use std::net::IpAddr;

use crate::{
    auth::Principal,
    config::SecurityConfig,
    store::{redis::RateState, Stores},
};

/// One allowance's state, as `rateLimitStatus` and the response headers report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    /// `principal` or `ip`.
    pub scope: &'static str,
    pub limit: u32,
    pub state: RateState,
}

/// The outcome of counting a request.
#[derive(Debug)]
pub enum Verdict {
    /// Let through; the allowances after counting it (empty when no limit applies).
    Allowed(Vec<Allowance>),
    /// Refused: retry after this many seconds.
    Limited {
        retry_after_secs: u64,
        allowances: Vec<Allowance>,
    },
    /// Redis did not answer; let through unlimited.
    Unchecked,
}

fn limits(
    config: &SecurityConfig,
    principal: Option<&Principal>,
    ip: Option<IpAddr>,
) -> Vec<(&'static str, String, u32)> {
    let mut out = Vec::with_capacity(2);
    if let (Some(p), limit @ 1..) = (principal, config.rate_limit_principal) {
        out.push(("principal", format!("principal:{}", p.subject), limit));
    }
    if let (Some(ip), limit @ 1..) = (ip, config.rate_limit_ip) {
        out.push(("ip", format!("ip:{ip}"), limit));
    }
    out
}

/// How much a check counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Only read the allowances.
    Peek,
    /// Count this many requests (an HTTP batch counts each of its operations).
    Requests(u32),
}

/// Counts requests against the caller's allowances (or, with [`Count::Peek`], only reads
/// them). Every door counts here: HTTP requests, each operation of a batch, and each
/// operation started over a websocket.
pub async fn check(
    stores: &Stores,
    config: &SecurityConfig,
    principal: Option<&Principal>,
    ip: Option<IpAddr>,
    count: Count,
) -> Verdict {
    let cost = match count {
        Count::Peek => 0,
        Count::Requests(0) => return Verdict::Allowed(Vec::new()),
        Count::Requests(n) => n,
    };
    let wanted = limits(config, principal, ip);
    if wanted.is_empty() {
        return Verdict::Allowed(Vec::new());
    }
    let period_ms = config.rate_limit_window_secs.max(1) * 1000;
    let keys: Vec<(String, u32, u64)> = wanted
        .iter()
        .map(|(_, key, limit)| (key.clone(), *limit, period_ms))
        .collect();
    let states = match stores.redis().rate_limit(&keys, cost).await {
        Ok(states) => states,
        Err(err) => {
            tracing::warn!(error = %err, "rate limits not enforced: Redis did not answer");
            return Verdict::Unchecked;
        }
    };
    let allowances: Vec<Allowance> = wanted
        .iter()
        .zip(states)
        .map(|((scope, _, limit), state)| Allowance {
            scope,
            limit: *limit,
            state,
        })
        .collect();
    if allowances.iter().all(|a| a.state.allowed) {
        Verdict::Allowed(allowances)
    } else {
        for refused in allowances.iter().filter(|a| !a.state.allowed) {
            stores.metrics().count_rate_limited(refused.scope);
        }
        let retry_ms = allowances
            .iter()
            .filter(|a| !a.state.allowed)
            .map(|a| a.state.retry_after_ms)
            .max()
            .unwrap_or(1000);
        Verdict::Limited {
            retry_after_secs: retry_ms.div_ceil(1000).max(1),
            allowances,
        }
    }
}
