//! The wrapper every store round trip goes through. Each adapter holds a [`Calls`] for
//! its own store and runs every public method through [`Calls::run`]: a deadline, the
//! `meridian_store_*` metrics under the method's name, the store's circuit breaker, a
//! trace span when spans are exported, and the request's round-trip count when the
//! adapter is bound to a request. Callers only see typed methods returning
//! [`crate::Error`]; nothing outside `store` chooses a store kind or a metric name.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use tracing::Instrument;

use super::{breaker, RoundTrips, Rows, StoreKind};
use crate::{
    error::{Error, StoreError},
    metrics::Metrics,
};

/// What the four adapters share: metrics and breakers.
pub(crate) struct Shared {
    pub(crate) metrics: Metrics,
    pub(crate) breakers: breaker::Breakers,
}

/// A store's cheapest possible round trip, used to probe it while its breaker is open.
type Ping = Arc<dyn Fn() -> BoxFuture<'static, Result<(), StoreError>> + Send + Sync>;

/// One store's call wrapper (cheap to clone).
#[derive(Clone)]
pub struct Calls {
    kind: StoreKind,
    shared: Arc<Shared>,
    deadline: Duration,
    ping: Ping,
    /// The round trips of the request this adapter serves, if it serves one.
    trips: Option<RoundTrips>,
}

impl Calls {
    pub(crate) fn new(
        kind: StoreKind,
        shared: Arc<Shared>,
        deadline: Duration,
        ping: impl Fn() -> BoxFuture<'static, Result<(), StoreError>> + Send + Sync + 'static,
    ) -> Calls {
        Calls {
            kind,
            shared,
            deadline,
            ping: Arc::new(ping),
            trips: None,
        }
    }

    /// The same wrapper, counting into a request's round trips.
    pub(crate) fn counted(&self, trips: &RoundTrips) -> Calls {
        Calls {
            trips: Some(trips.clone()),
            ..self.clone()
        }
    }

    /// The same wrapper with another deadline (bulk commands: seed, reconcile).
    pub(crate) fn with_deadline(&self, deadline: Duration) -> Calls {
        Calls {
            deadline,
            ..self.clone()
        }
    }

    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The deadline of each call.
    pub(crate) fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Runs one round trip: `op` names it in metrics and spans.
    pub async fn run<T, E, F>(&self, op: &'static str, fut: F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, E>>,
        E: Into<StoreError>,
        T: Rows,
    {
        let store = self.kind;
        let shared = &self.shared;
        if let Some(trips) = &self.trips {
            trips.add(store);
        }
        let admission = shared.breakers.admit(store);
        if admission == breaker::Admission::Refused {
            shared
                .metrics
                .observe_store(store, op, Duration::ZERO, false);
            return Err(Error::CircuitOpen { store });
        }
        let started = Instant::now();
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
        let result = match tokio::time::timeout(self.deadline, fut.instrument(span.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(Error::from(err.into())),
            Err(_) => Err(Error::StoreTimeout {
                store,
                timeout_ms: self.deadline.as_millis() as u64,
            }),
        };
        shared
            .metrics
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
        match shared.breakers.record(store, healthy, trial) {
            breaker::Transition::Opened => {
                shared.metrics.set_breaker(store, true);
                tokio::spawn(self.clone().probe_until_up());
            }
            breaker::Transition::Closed => shared.metrics.set_breaker(store, false),
            breaker::Transition::Reopened | breaker::Transition::None => {}
        }
        result
    }

    /// Pings the store every cooldown until it answers, then closes its breaker.
    async fn probe_until_up(self) {
        let breakers = &self.shared.breakers;
        loop {
            tokio::time::sleep(breakers.cooldown).await;
            if !breakers.is_open(self.kind) {
                // A trial call closed it first.
                return;
            }
            if matches!(
                tokio::time::timeout(self.deadline, (self.ping)()).await,
                Ok(Ok(()))
            ) {
                breakers.close(self.kind);
                self.shared.metrics.set_breaker(self.kind, false);
                return;
            }
        }
    }
}
