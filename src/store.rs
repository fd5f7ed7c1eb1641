//! Store adapters. Each owns its client, its queries and its call wrapper
//! ([`call::Calls`]: deadline, metrics, breaker, span, round-trip count); [`Stores`] holds
//! all four. Callers use the adapters' typed methods and never name a store kind.

pub mod breaker;
pub mod call;
pub mod clickhouse;
pub mod mongo;
pub mod postgres;
pub mod redis;

use std::{fmt, sync::Arc, time::Instant};

use serde::Serialize;

use crate::{config::Config, error::Error, metrics::Metrics};

/// The four stores Meridian routes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Postgres,
    ClickHouse,
    Redis,
    Mongo,
    /// PostgreSQL's read replica, when one is configured: a store of its own for metrics,
    /// its breaker and readiness, but not one of [`StoreKind::ALL`] (a request's round
    /// trips to it count as PostgreSQL's).
    PostgresReplica,
}

impl StoreKind {
    pub const ALL: [StoreKind; 4] = [
        StoreKind::Postgres,
        StoreKind::ClickHouse,
        StoreKind::Redis,
        StoreKind::Mongo,
    ];

    /// The label used in metrics, logs and readiness reports.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Postgres => "postgres",
            StoreKind::ClickHouse => "clickhouse",
            StoreKind::Redis => "redis",
            StoreKind::Mongo => "mongodb",
            StoreKind::PostgresReplica => "postgres_replica",
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The adapters of all four stores.
#[derive(Clone)]
pub struct Stores {
    postgres: postgres::Postgres,
    redis: redis::Redis,
    clickhouse: clickhouse::ClickHouse,
    mongo: mongo::Mongo,
    shared: Arc<call::Shared>,
    /// Asset metadata last read from MongoDB, served (marked stale) while it is down.
    pub stale_metadata: StaleCache<mongo::AssetMetadataDoc>,
}

/// Values remembered from a store's last good answers, by key, for a limited time.
#[derive(Clone)]
pub struct StaleCache<T> {
    entries: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, (Instant, T)>>>,
    max_age: std::time::Duration,
}

impl<T: Clone> StaleCache<T> {
    pub fn new(max_age: std::time::Duration) -> Self {
        StaleCache {
            entries: Default::default(),
            max_age,
        }
    }

    /// Remembers fresh values.
    pub fn remember(&self, values: impl IntoIterator<Item = (String, T)>) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (at, _)| now.duration_since(*at) < self.max_age);
        for (key, value) in values {
            entries.insert(key, (now, value));
        }
    }

    /// The remembered value of every key with its age, or None if any key has none.
    pub fn recall(&self, keys: &[String]) -> Option<Vec<(T, std::time::Duration)>> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .map(|key| {
                let (at, value) = entries.get(key)?;
                let age = now.duration_since(*at);
                (age < self.max_age).then(|| (value.clone(), age))
            })
            .collect()
    }
}

/// One store's answer to a readiness probe.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatus {
    pub store: StoreKind,
    pub up: bool,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Stores {
    /// Builds the clients. No connection is made here: a store that is down at start-up
    /// shows in readiness and in the fields it serves, and is used once it comes back.
    pub async fn new(config: &Config, metrics: Metrics) -> anyhow::Result<Self> {
        let shared = Arc::new(call::Shared {
            metrics,
            breakers: breaker::Breakers::new(
                config.resilience.breaker_failures,
                std::time::Duration::from_millis(config.resilience.breaker_cooldown_ms.max(10)),
            ),
        });
        Ok(Stores {
            postgres: postgres::Postgres::new(config, &shared)?,
            redis: redis::Redis::new(config, &shared)?,
            clickhouse: clickhouse::ClickHouse::new(config, &shared)?,
            mongo: mongo::Mongo::new(config, &shared).await?,
            shared,
            stale_metadata: StaleCache::new(std::time::Duration::from_secs(
                config.resilience.stale_cache_secs,
            )),
        })
    }

    pub fn postgres(&self) -> &postgres::Postgres {
        &self.postgres
    }

    pub fn redis(&self) -> &redis::Redis {
        &self.redis
    }

    pub fn clickhouse(&self) -> &clickhouse::ClickHouse {
        &self.clickhouse
    }

    pub fn mongo(&self) -> &mongo::Mongo {
        &self.mongo
    }

    /// The process metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The same stores, each call counted in `trips`.
    fn counted(&self, trips: &RoundTrips) -> Stores {
        self.rebound(|calls| calls.counted(trips))
    }

    /// The same stores with another per-call deadline: for bulk commands (seed,
    /// reconcile), whose single inserts may carry hundreds of thousands of rows.
    pub fn with_deadline(&self, deadline: std::time::Duration) -> Stores {
        self.rebound(|calls| calls.with_deadline(deadline))
    }

    /// The same adapters, each with the call wrapper `change` makes of its own.
    fn rebound(&self, change: impl Fn(&call::Calls) -> call::Calls) -> Stores {
        Stores {
            postgres: self.postgres.rebound(&change),
            redis: self.redis.rebind(change(self.redis.calls())),
            clickhouse: self.clickhouse.rebind(change(self.clickhouse.calls())),
            mongo: self.mongo.rebind(change(self.mongo.calls())),
            shared: self.shared.clone(),
            stale_metadata: self.stale_metadata.clone(),
        }
    }

    /// Whether `store`'s circuit breaker is open (calls fail fast).
    pub fn circuit_open(&self, store: StoreKind) -> bool {
        self.shared.breakers.is_open(store)
    }

    /// Pings all four stores concurrently.
    pub async fn readiness(&self) -> Vec<StoreStatus> {
        let probe = |store: StoreKind| async move {
            let started = Instant::now();
            let result = match store {
                StoreKind::Postgres => self.postgres.ping().await,
                StoreKind::Redis => self.redis.ping().await,
                StoreKind::ClickHouse => self.clickhouse.ping().await,
                StoreKind::Mongo => self.mongo.ping().await,
                StoreKind::PostgresReplica => self.postgres.ping_replica().await,
            };
            StoreStatus {
                store,
                up: result.is_ok(),
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                error: result.err().map(|err| describe(&err)),
            }
        };
        let mut kinds = StoreKind::ALL.to_vec();
        if self.postgres.has_replica() {
            kinds.push(StoreKind::PostgresReplica);
        }
        futures::future::join_all(kinds.into_iter().map(probe)).await
    }
}

/// A one-line reason for an operator, without credentials (driver messages do not
/// include passwords).
fn describe(err: &Error) -> String {
    match err {
        Error::StoreUnavailable { source, .. } | Error::StoreRejected { source, .. } => {
            let text = source.to_string();
            text.lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect()
        }
        other => other.to_string(),
    }
}

/// Round trips one request made to each store (reported with `x-meridian-trace: 1`).
#[derive(Clone, Default)]
pub struct RoundTrips(std::sync::Arc<[std::sync::atomic::AtomicU64; 4]>);

impl RoundTrips {
    fn slot(store: StoreKind) -> usize {
        match store {
            StoreKind::Postgres | StoreKind::PostgresReplica => 0,
            StoreKind::ClickHouse => 1,
            StoreKind::Redis => 2,
            StoreKind::Mongo => 3,
        }
    }

    pub fn add(&self, store: StoreKind) {
        self.0[Self::slot(store)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn get(&self, store: StoreKind) -> u64 {
        self.0[Self::slot(store)].load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The counts now, in [`StoreKind::ALL`] order.
    pub fn snapshot(&self) -> [u64; 4] {
        StoreKind::ALL.map(|s| self.get(s))
    }

    /// `{"postgres": n, "clickhouse": n, "redis": n, "mongodb": n}`.
    pub fn to_json(&self) -> serde_json::Value {
        self.to_json_since([0; 4])
    }

    /// The round trips made since `before` (a [`RoundTrips::snapshot`]), as `to_json`.
    pub fn to_json_since(&self, before: [u64; 4]) -> serde_json::Value {
        StoreKind::ALL
            .iter()
            .zip(before)
            .map(|(&s, was)| {
                let spent = self.get(s).saturating_sub(was);
                (s.as_str().to_owned(), serde_json::Value::from(spent))
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// The stores as one request sees them: every call is counted in the request's
/// [`RoundTrips`] as well as in the process metrics.
#[derive(Clone)]
pub struct RequestStores {
    pub stores: Stores,
    pub trips: RoundTrips,
    /// What this request was served from a fallback (reported in `extensions.meridian`).
    pub degraded: Degraded,
}

/// Notes of data a request got from a fallback rather than its own store.
#[derive(Clone, Default)]
pub struct Degraded(std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>);

impl Degraded {
    pub fn note(&self, entry: serde_json::Value) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
    }

    /// The notes, or None when there are none.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        let notes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (!notes.is_empty()).then(|| serde_json::Value::Array(notes.clone()))
    }
}

impl RequestStores {
    /// The stores for one request: every call is counted in its [`RoundTrips`].
    pub fn new(stores: &Stores) -> Self {
        let trips = RoundTrips::default();
        RequestStores {
            stores: stores.counted(&trips),
            trips,
            degraded: Degraded::default(),
        }
    }
}

impl std::ops::Deref for RequestStores {
    type Target = Stores;

    fn deref(&self) -> &Stores {
        &self.stores
    }
}

/// How many rows a store call returned, for its trace span (`None`: not a row set).
pub trait Rows {
    fn rows(&self) -> Option<u64> {
        None
    }
}

impl<T> Rows for Vec<T> {
    fn rows(&self) -> Option<u64> {
        Some(self.len() as u64)
    }
}

impl<T> Rows for Option<T> {
    fn rows(&self) -> Option<u64> {
        Some(u64::from(self.is_some()))
    }
}

impl<K, V, S> Rows for std::collections::HashMap<K, V, S> {
    fn rows(&self) -> Option<u64> {
        Some(self.len() as u64)
    }
}

impl<A: Rows, B> Rows for (A, B) {
    fn rows(&self) -> Option<u64> {
        self.0.rows()
    }
}

impl Rows for () {}
impl Rows for u64 {}
impl Rows for i64 {}
impl Rows for bool {}
impl Rows for String {}
impl Rows for postgres::RegisterOutcome {}
impl Rows for postgres::TradeOutcome {}
impl Rows for redis::IngestProgress {}
impl Rows for postgres::Settled {}
impl Rows for postgres::MigrationLock {}
impl Rows for sqlx::postgres::PgListener {}
impl Rows for mongo::ProfileDoc {}
