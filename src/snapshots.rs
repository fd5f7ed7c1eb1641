//! Daily portfolio snapshots: each user's holdings valued at the latest prices, written to
//! ClickHouse per UTC day, for `User.portfolioHistory`.
//!
//! One instance of a deployment runs the job: `serve` tries to take a PostgreSQL advisory
//! lock on a session of its own, and the instance that holds it (the leader) writes the
//! current day's snapshot every `MERIDIAN_SNAPSHOT_EVERY_SECS`. The others try again at
//! the same pace, so when the leader dies (its session ends and PostgreSQL frees the
//! lock) another takes over within one period. A day is written again on each run; the
//! newest write is kept (ReplacingMergeTree), so a day's value is its last run's.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::{
    error::Error,
    store::{clickhouse::SnapshotRow, Stores},
};

/// Rows per ClickHouse insert are chunked by the adapter; this bounds one run's users held
/// in memory at once.
const USERS_PER_WRITE: usize = 10_000;

/// What one run wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub users: u64,
    /// Positions left out of values because their asset has no price anywhere.
    pub unpriced: u64,
}

/// Days since the epoch of `at` (UTC).
pub fn day_of(at: DateTime<Utc>) -> u16 {
    u16::try_from(at.timestamp().div_euclid(86_400)).unwrap_or(u16::MAX)
}

/// Values every user's holdings at the latest prices (Redis, else ClickHouse's last tick)
/// and writes them as the snapshot of `at`'s UTC day.
pub async fn take(stores: &Stores, at: DateTime<Utc>) -> Result<Taken, Error> {
    let positions = stores.postgres().positions_of_all().await?;
    let mut symbols: Vec<String> = positions.iter().filter_map(|p| p.symbol.clone()).collect();
    symbols.sort();
    symbols.dedup();
    let prices = prices(stores, &symbols).await?;
    let day = day_of(at);
    let taken_at = u32::try_from(at.timestamp()).unwrap_or(u32::MAX);
    let mut rows: Vec<SnapshotRow> = Vec::new();
    let mut taken = Taken {
        users: 0,
        unpriced: 0,
    };
    for p in &positions {
        let user_id = p.user_id.to_string();
        if rows.last().is_none_or(|r| r.user_id != user_id) {
            if rows.len() >= USERS_PER_WRITE {
                stores.clickhouse().insert_snapshots(&rows).await?;
                rows.clear();
            }
            rows.push(SnapshotRow {
                user_id,
                day,
                value: 0.0,
                positions: 0,
                unpriced: 0,
                taken_at,
            });
            taken.users += 1;
        }
        let row = rows.last_mut().expect("pushed above");
        let (Some(symbol), Some(quantity)) = (&p.symbol, p.quantity) else {
            continue;
        };
        row.positions += 1;
        match prices.get(symbol) {
            Some(price) => row.value += quantity * price,
            None => {
                row.unpriced += 1;
                taken.unpriced += 1;
            }
        }
    }
    if !rows.is_empty() {
        stores.clickhouse().insert_snapshots(&rows).await?;
    }
    Ok(taken)
}

/// The latest price of each symbol: Redis, then ClickHouse for those Redis lacks.
async fn prices(stores: &Stores, symbols: &[String]) -> Result<HashMap<String, f64>, Error> {
    if symbols.is_empty() {
        return Ok(HashMap::new());
    }
    let cached = stores.redis().latest_prices(symbols).await?;
    let mut prices: HashMap<String, f64> = cached
        .into_iter()
        .flatten()
        .map(|p| (p.symbol, p.price))
        .collect();
    let missing: Vec<String> = symbols
        .iter()
        .filter(|s| !prices.contains_key(*s))
        .cloned()
        .collect();
    if !missing.is_empty() {
        for tick in stores.clickhouse().last_ticks(&missing).await? {
            prices.insert(tick.symbol, tick.price);
        }
    }
    Ok(prices)
}

/// The job as `serve` runs it; `leading` says whether this process leads it now.
pub async fn run(
    stores: Stores,
    metrics: crate::metrics::Metrics,
    every: Duration,
    leading: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    // The gauge first: whoever sees the flag sees the gauge agree.
    let lead_now = |now: bool| {
        metrics.set_snapshot_leader(now);
        leading.store(now, Ordering::SeqCst);
    };
    let mut leadership = None;
    loop {
        if leadership.is_none() {
            match stores.postgres().try_lead_snapshots().await {
                Ok(Some(lead)) => {
                    tracing::info!("leading the snapshot job");
                    leadership = Some(lead);
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "snapshot job: no leadership check"),
            }
        }
        if let Some(lead) = leadership.as_mut() {
            if lead.holds().await {
                lead_now(true);
                match take(&stores, Utc::now()).await {
                    Ok(taken) => {
                        metrics.count_snapshots(taken.users);
                        tracing::info!(
                            users = taken.users,
                            unpriced = taken.unpriced,
                            "portfolio snapshots written"
                        )
                    }
                    Err(err) => tracing::warn!(error = %err, "portfolio snapshots failed"),
                }
            } else {
                tracing::warn!("snapshot job: the advisory lock's session was lost");
                leadership = None;
                lead_now(false);
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
    }
    lead_now(false);
}
