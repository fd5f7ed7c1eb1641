//! Prometheus metrics: per-store requests, errors and latency; HTTP requests and their
//! duration per route; GraphQL operations by name and errors by code; websocket
//! connections and active subscriptions per field; rate-limit refusals; breaker state;
//! fan-out reconnects; the outbox; and the process (RSS, CPU, open fds). The README lists
//! every family.

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
    outbox_dead: IntGaugeVec,
    outbox_oldest: GaugeVec,
    http_duration: HistogramVec,
    operation_duration: HistogramVec,
    graphql_errors: IntCounterVec,
    ws_connections: IntGauge,
    subscriptions: IntGaugeVec,
    rate_limited: IntCounterVec,
    breaker_open: IntGaugeVec,
    fanout_reconnects: prometheus::IntCounter,
    batch_splits: IntCounterVec,
    snapshot_leader: IntGauge,
    snapshots_written: prometheus::IntCounter,
    /// Operation names with a label of their own (at most [`MAX_OPERATION_NAMES`]).
    operation_names: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// Distinct operation names labelled in `meridian_graphql_operation_duration_seconds`;
/// later ones fold into `other`, anonymous operations into `anonymous`.
pub const MAX_OPERATION_NAMES: usize = 100;

const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn histogram(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .expect("static metric definition")
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition")
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric definition")
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
        let outbox_dead = IntGaugeVec::new(
            Opts::new(
                "meridian_outbox_dead",
                "Outbox rows set aside as dead letters (meridian redrive puts them back), by destination",
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
        let http_duration = histogram(
            "meridian_http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            &["route"],
        );
        let operation_duration = histogram(
            "meridian_graphql_operation_duration_seconds",
            "Time to execute a GraphQL operation, by operation name (anonymous and past the first 100 names folded)",
            &["operation"],
        );
        let graphql_errors = counter(
            "meridian_graphql_errors_total",
            "GraphQL errors sent to clients, by extensions.code",
            &["code"],
        );
        let ws_connections = IntGauge::with_opts(Opts::new(
            "meridian_websocket_connections",
            "Open websocket connections",
        ))
        .expect("static metric definition");
        let subscriptions = gauge(
            "meridian_subscriptions_active",
            "Running websocket operations, by root field",
            &["field"],
        );
        let rate_limited = counter(
            "meridian_rate_limit_refusals_total",
            "Requests and websocket operations refused by a rate limit, by allowance",
            &["scope"],
        );
        let breaker_open = gauge(
            "meridian_breaker_open",
            "1 while a store's circuit breaker is open",
            &["store"],
        );
        // Bounded label sets start at zero, so that every family is there from the first
        // scrape and rates have a starting point.
        for store in StoreKind::ALL {
            breaker_open.with_label_values(&[store.as_str()]).set(0);
        }
        for scope in ["principal", "ip"] {
            rate_limited.with_label_values(&[scope]);
        }
        let fanout_reconnects = prometheus::IntCounter::with_opts(Opts::new(
            "meridian_fanout_reconnects_total",
            "Times the pub/sub fan-out lost its Redis connection and reconnected",
        ))
        .expect("static metric definition");
        let batch_splits = counter(
            "meridian_batch_splits_total",
            "Loader batches that started while another batch of the same loader and request was still running (a wave of keys split in two), by loader",
            &["loader"],
        );
        for loader in crate::loaders::LOADERS {
            batch_splits.with_label_values(&[loader]);
        }
        let snapshot_leader = IntGauge::with_opts(Opts::new(
            "meridian_snapshot_leader",
            "1 while this instance leads the portfolio snapshot job",
        ))
        .expect("static metric definition");
        let snapshots_written = prometheus::IntCounter::with_opts(Opts::new(
            "meridian_snapshots_written_total",
            "Users' daily portfolio snapshots this instance wrote",
        ))
        .expect("static metric definition");
        for destination in TRADE_DESTINATIONS {
            for outcome in ["delivered", "failed", "dead"] {
                relay_rows.with_label_values(&[destination, outcome]);
            }
            outbox_pending.with_label_values(&[destination]).set(0);
            outbox_dead.with_label_values(&[destination]).set(0);
            outbox_oldest.with_label_values(&[destination]).set(0.0);
        }
        let process = prometheus::process_collector::ProcessCollector::for_self();
        for collector in [
            Box::new(store_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(store_errors.clone()),
            Box::new(store_latency.clone()),
            Box::new(http_requests.clone()),
            Box::new(relay_rows.clone()),
            Box::new(outbox_pending.clone()),
            Box::new(outbox_dead.clone()),
            Box::new(outbox_oldest.clone()),
            Box::new(build_info),
            Box::new(http_duration.clone()),
            Box::new(operation_duration.clone()),
            Box::new(graphql_errors.clone()),
            Box::new(ws_connections.clone()),
            Box::new(subscriptions.clone()),
            Box::new(rate_limited.clone()),
            Box::new(breaker_open.clone()),
            Box::new(fanout_reconnects.clone()),
            Box::new(batch_splits.clone()),
            Box::new(snapshot_leader.clone()),
            Box::new(snapshots_written.clone()),
            Box::new(process),
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
            outbox_dead,
            outbox_oldest,
            http_duration,
            operation_duration,
            graphql_errors,
            ws_connections,
            subscriptions,
            rate_limited,
            breaker_open,
            fanout_reconnects,
            batch_splits,
            snapshot_leader,
            snapshots_written,
            operation_names: Default::default(),
        }
    }

    /// Records how long an HTTP request took.
    pub fn observe_http_duration(&self, route: &str, elapsed: Duration) {
        self.http_duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// Records one executed GraphQL operation.
    pub fn observe_operation(&self, name: Option<&str>, elapsed: Duration) {
        let label = match name {
            None => "anonymous",
            Some(name) => {
                let mut names = self
                    .operation_names
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if names.contains(name) {
                    name
                } else if names.len() < MAX_OPERATION_NAMES {
                    names.insert(name.to_owned());
                    name
                } else {
                    "other"
                }
            }
        };
        self.operation_duration
            .with_label_values(&[label])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts the errors of a response by code.
    pub fn count_errors(&self, errors: &[async_graphql::ServerError]) {
        for err in errors {
            let code = err
                .extensions
                .as_ref()
                .and_then(|ext| ext.get("code"))
                .and_then(|code| match code {
                    async_graphql::Value::String(s) => Some(s.as_str()),
                    _ => None,
                })
                .unwrap_or("INTERNAL");
            self.graphql_errors.with_label_values(&[code]).inc();
        }
    }

    /// Counts an error sent outside GraphQL execution (a refusal at the door).
    pub fn count_error_code(&self, code: &str) {
        self.graphql_errors.with_label_values(&[code]).inc();
    }

    /// The open websocket connections gauge.
    pub fn ws_connections(&self) -> &IntGauge {
        &self.ws_connections
    }

    /// The running operations gauge of a root field.
    pub fn subscriptions(&self, field: &str) -> IntGauge {
        self.subscriptions.with_label_values(&[field])
    }

    /// Counts a refusal by the `scope` allowance (`principal` or `ip`).
    pub fn count_rate_limited(&self, scope: &str) {
        self.rate_limited.with_label_values(&[scope]).inc();
    }

    /// Publishes a store's breaker state.
    pub fn set_breaker(&self, store: StoreKind, open: bool) {
        self.breaker_open
            .with_label_values(&[store.as_str()])
            .set(i64::from(open));
    }

    /// The counter the fan-out increments on each reconnect.
    pub fn fanout_reconnects(&self) -> prometheus::IntCounter {
        self.fanout_reconnects.clone()
    }

    /// Counts a loader batch that split its wave (see `loaders::BatchQueue`).
    /// Whether this instance leads the snapshot job, and the snapshots it wrote.
    pub fn set_snapshot_leader(&self, leading: bool) {
        self.snapshot_leader.set(i64::from(leading));
    }

    pub fn count_snapshots(&self, users: u64) {
        self.snapshots_written.inc_by(users);
    }

    pub fn count_batch_split(&self, loader: &str) {
        self.batch_splits.with_label_values(&[loader]).inc();
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
    /// Counts outbox rows the relay handled: `outcome` is `delivered`, `failed` (to be
    /// retried) or `dead`.
    pub fn observe_relay(&self, destination: &str, rows: u64, outcome: &str) {
        if rows == 0 {
            return;
        }
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
            self.outbox_dead
                .with_label_values(&[destination])
                .set(entry.map_or(0, |b| b.dead));
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
