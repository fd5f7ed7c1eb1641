//! Store adapters. Each owns its client and its queries; [`Stores`] holds all four and
//! [`Stores::call`] wraps every round trip with a deadline and metrics.

pub mod breaker;
pub mod clickhouse;
pub mod mongo;
pub mod postgres;
pub mod redis;

use std::{fmt, future::Future, time::Instant};

use tracing::Instrument;

use serde::Serialize;

use crate::{
    config::Config,
    error::{Error, StoreError},
    metrics::Metrics,
};

/// The four stores Meridian routes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Postgres,
    ClickHouse,
    Redis,
    Mongo,
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
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The adapters of all four stores, with the deadline and metrics every call shares.
#[derive(Clone)]
pub struct Stores {
    pub postgres: postgres::Postgres,
    pub redis: redis::Redis,
    pub clickhouse: clickhouse::ClickHouse,
    pub mongo: mongo::Mongo,
    metrics: Metrics,
    timeout_ms: u64,
    breakers: breaker::Breakers,
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
        Ok(Stores {
            postgres: postgres::Postgres::new(config)?,
            redis: redis::Redis::new(config)?,
            clickhouse: clickhouse::ClickHouse::new(config),
            mongo: mongo::Mongo::new(config).await?,
            metrics,
            timeout_ms: config.store_timeout_ms,
            breakers: breaker::Breakers::new(
                config.resilience.breaker_failures,
                std::time::Duration::from_millis(config.resilience.breaker_cooldown_ms.max(10)),
            ),
            stale_metadata: StaleCache::new(std::time::Duration::from_secs(
                config.resilience.stale_cache_secs,
            )),
        })
    }

    /// The process metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Runs one round trip to `store` under the configured deadline, counting it in the
    /// `meridian_store_*` metrics. `op` names the operation in those metrics.
    pub async fn call<T, E, F>(
        &self,
        store: StoreKind,
        op: &'static str,
        fut: F,
    ) -> Result<T, Error>
    where
        F: Future<Output = Result<T, E>>,
        E: Into<StoreError>,
        T: Rows,
    {
        let admission = self.breakers.admit(store);
        if admission == breaker::Admission::Refused {
            self.metrics
                .observe_store(store, op, std::time::Duration::ZERO, false);
            return Err(Error::CircuitOpen { store });
        }
        let started = Instant::now();
        let deadline = std::time::Duration::from_millis(self.timeout_ms);
        // Only when spans are exported: without an exporter they would cost every call
        // and tell the logs nothing the request span does not.
        let span = if crate::telemetry::exporting() {
            tracing::info_span!(
                "store",
                otel.name = format!("{store} {op}"),
                store = store.as_str(),
                op,
                rows = tracing::field::Empty,
                error = tracing::field::Empty,
            )
        } else {
            tracing::Span::none()
        };
        let result = match tokio::time::timeout(deadline, fut.instrument(span.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(Error::from(err.into())),
            Err(_) => Err(Error::StoreTimeout {
                store,
                timeout_ms: self.timeout_ms,
            }),
        };
        self.metrics
            .observe_store(store, op, started.elapsed(), result.is_ok());
        if !span.is_disabled() {
            match &result {
                Ok(value) => {
                    if let Some(rows) = value.rows() {
                        span.record("rows", rows);
                    }
                }
                Err(err) => {
                    span.record("error", err.code());
                }
            }
        }
        // Only an outage counts against the breaker: a store that answered "no" to one
        // request's data is up.
        let healthy = result
            .as_ref()
            .err()
            .is_none_or(|err| !err.is_store_outage());
        let trial = admission == breaker::Admission::Trial;
        match self.breakers.record(store, healthy, trial) {
            breaker::Transition::Opened => {
                self.metrics.set_breaker(store, true);
                tokio::spawn(self.clone().probe_until_up(store));
            }
            breaker::Transition::Closed => self.metrics.set_breaker(store, false),
            breaker::Transition::Reopened | breaker::Transition::None => {}
        }
        result
    }

    /// Whether `store`'s circuit breaker is open (calls fail fast).
    pub fn circuit_open(&self, store: StoreKind) -> bool {
        self.breakers.is_open(store)
    }

    /// Pings `store` every cooldown until it answers, then closes its breaker.
    async fn probe_until_up(self, store: StoreKind) {
        let deadline = std::time::Duration::from_millis(self.timeout_ms);
        loop {
            tokio::time::sleep(self.breakers.cooldown).await;
            if !self.breakers.is_open(store) {
                // A trial call closed it first.
                return;
            }
            let ping = async {
                match store {
                    StoreKind::Postgres => self.postgres.ping().await.map_err(StoreError::from),
                    StoreKind::Redis => self.redis.ping().await.map_err(StoreError::from),
                    StoreKind::ClickHouse => self.clickhouse.ping().await.map_err(StoreError::from),
                    StoreKind::Mongo => self.mongo.ping().await.map_err(StoreError::from),
                }
            };
            if matches!(tokio::time::timeout(deadline, ping).await, Ok(Ok(()))) {
                self.breakers.close(store);
                self.metrics.set_breaker(store, false);
                return;
            }
        }
    }

    /// Pings all four stores concurrently.
    pub async fn readiness(&self) -> Vec<StoreStatus> {
        let probe = |store: StoreKind| async move {
            let started = Instant::now();
            let result = match store {
                StoreKind::Postgres => self.call(store, "ping", self.postgres.ping()).await,
                StoreKind::Redis => self.call(store, "ping", self.redis.ping()).await,
                StoreKind::ClickHouse => self.call(store, "ping", self.clickhouse.ping()).await,
                StoreKind::Mongo => self.call(store, "ping", self.mongo.ping()).await,
            };
            StoreStatus {
                store,
                up: result.is_ok(),
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                error: result.err().map(|err| describe(&err)),
            }
        };
        futures::future::join_all(StoreKind::ALL.map(probe)).await
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
            StoreKind::Postgres => 0,
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

    /// `{"postgres": n, "clickhouse": n, "redis": n, "mongodb": n}`.
    pub fn to_json(&self) -> serde_json::Value {
        StoreKind::ALL
            .iter()
            .map(|&s| (s.as_str().to_owned(), serde_json::Value::from(self.get(s))))
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
    pub fn new(stores: Stores) -> Self {
        RequestStores {
            stores,
            trips: RoundTrips::default(),
            degraded: Degraded::default(),
        }
    }

    /// One round trip to `store`, counted, under the store deadline.
    pub async fn call<T, E, F>(
        &self,
        store: StoreKind,
        op: &'static str,
        fut: F,
    ) -> Result<T, Error>
    where
        F: Future<Output = Result<T, E>>,
        E: Into<StoreError>,
        T: Rows,
    {
        self.trips.add(store);
        self.stores.call(store, op, fut).await
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
