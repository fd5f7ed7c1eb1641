//! Prometheus metrics: per-store requests, errors and latency, and HTTP requests.

use std::time::Duration;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::store::{postgres::OutboxBacklog, postgres::TRADE_DESTINATIONS, StoreKind};

/// The process's metrics. Cheap to clone (the collectors are reference-counted).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    store_requests: IntCounterVec,
    store_errors: IntCounterVec,
    store_latency: HistogramVec,
    http_requests: IntCounterVec,
    relay_rows: IntCounterVec,
    outbox_pending: IntGaugeVec,
    outbox_oldest: GaugeVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let store_requests = IntCounterVec::new(
            Opts::new(
                "meridian_store_requests_total",
                "Round trips to each store, by operation",
            ),
            &["store", "op"],
        )
        .expect("static metric definition");
        let store_errors = IntCounterVec::new(
            Opts::new(
                "meridian_store_errors_total",
                "Store round trips that failed or timed out, by operation",
            ),
            &["store", "op"],
        )
        .expect("static metric definition");
        let store_latency = HistogramVec::new(
            HistogramOpts::new(
                "meridian_store_request_duration_seconds",
                "Latency of store round trips, by operation",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["store", "op"],
        )
        .expect("static metric definition");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "meridian_http_requests_total",
                "HTTP requests, by route and status",
            ),
            &["route", "status"],
        )
        .expect("static metric definition");
        let relay_rows = IntCounterVec::new(
            Opts::new(
                "meridian_relay_rows_total",
                "Outbox rows the relay handled, by destination and outcome",
            ),
            &["destination", "outcome"],
        )
        .expect("static metric definition");
        let outbox_pending = IntGaugeVec::new(
            Opts::new(
                "meridian_outbox_pending",
                "Outbox rows not yet delivered, by destination",
            ),
            &["destination"],
        )
        .expect("static metric definition");
        let outbox_oldest = GaugeVec::new(
            Opts::new(
                "meridian_outbox_lag_seconds",
                "Age of the oldest undelivered outbox row, by destination",
            ),
            &["destination"],
        )
        .expect("static metric definition");
        let build_info = IntGauge::with_opts(
            Opts::new("meridian_build_info", "Always 1; the version is a label")
                .const_label("version", env!("CARGO_PKG_VERSION")),
        )
        .expect("static metric definition");
        build_info.set(1);
        for collector in [
            Box::new(store_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(store_errors.clone()),
            Box::new(store_latency.clone()),
            Box::new(http_requests.clone()),
            Box::new(relay_rows.clone()),
            Box::new(outbox_pending.clone()),
            Box::new(outbox_oldest.clone()),
            Box::new(build_info),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            store_requests,
            store_errors,
            store_latency,
            http_requests,
            relay_rows,
            outbox_pending,
            outbox_oldest,
        }
    }

    /// Records one store round trip.
    pub fn observe_store(&self, store: StoreKind, op: &str, elapsed: Duration, ok: bool) {
        let labels = [store.as_str(), op];
        self.store_requests.with_label_values(&labels).inc();
        self.store_latency
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
        if !ok {
            self.store_errors.with_label_values(&labels).inc();
        }
    }

    /// Records one HTTP request.
    pub fn observe_http(&self, route: &str, status: u16) {
        self.http_requests
            .with_label_values(&[route, &status.to_string()])
            .inc();
    }

    /// Records a relay batch.
    pub fn observe_relay(&self, destination: &str, rows: u64, delivered: bool) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.relay_rows
            .with_label_values(&[destination, outcome])
            .inc_by(rows);
    }

    /// Publishes the outbox backlog (destinations not listed have none).
    pub fn set_backlog(&self, backlog: &[OutboxBacklog]) {
        for destination in TRADE_DESTINATIONS {
            let entry = backlog.iter().find(|b| b.destination == destination);
            self.outbox_pending
                .with_label_values(&[destination])
                .set(entry.map_or(0, |b| b.pending));
            self.outbox_oldest
                .with_label_values(&[destination])
                .set(entry.map_or(0.0, |b| b.oldest_secs));
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(%err, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
