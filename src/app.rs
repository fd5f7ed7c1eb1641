//! The application state shared by every request, and `run()`, which serves until shutdown.

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::{
    config::Config, graphql, graphql::pagination::CursorCodec, http, metrics::Metrics,
    store::Stores,
};

/// How long in-flight requests get to finish after the shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// State shared by every request: configuration, store adapters and metrics.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    config: Config,
    stores: Stores,
    metrics: Metrics,
    cursors: CursorCodec,
    fanout: crate::events::fanout::Fanout,
    auth: crate::auth::Authenticator,
    allow_list: Option<Arc<crate::graphql::guard::AllowList>>,
    /// Documents that passed the guard, parsed.
    documents: crate::graphql::guard::DocumentCache,
    symbols: crate::symbols::SymbolDirectory,
    boards: crate::boards::BoardDirectory,
    /// Cancelled once, when the process is asked to stop; everything long-lived watches it.
    shutdown: tokio_util::sync::CancellationToken,
    /// Tasks that must end before the process does (websocket sessions).
    tasks: tokio_util::task::TaskTracker,
    /// Whether this instance leads the snapshot job now.
    snapshot_leader: Arc<std::sync::atomic::AtomicBool>,
    /// Set when the shutdown signal arrives: `/readyz` answers 503 while the instance
    /// still serves for `MERIDIAN_SHUTDOWN_DRAIN_MS`, so that load balancers stop
    /// sending it requests before it stops accepting them.
    draining: std::sync::atomic::AtomicBool,
}

impl AppState {
    /// Builds the store clients. Connections open on first use, so this succeeds while a
    /// store is down.
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        let stores = Stores::new(&config, metrics.clone()).await?;
        let cursors = CursorCodec::new(config.cursor_secret.as_deref());
        let source = match crate::store::redis::Topology::from_config(&config) {
            crate::store::redis::Topology::Single(url) => crate::events::fanout::Source::Single(
                redis::Client::open(url.as_str())
                    .context("MERIDIAN_REDIS_URL is not a valid Redis URL")?,
            ),
            crate::store::redis::Topology::Cluster(nodes) => {
                crate::events::fanout::Source::Cluster(nodes, config.store_timeout())
            }
        };
        let fanout = crate::events::fanout::Fanout::start(source, metrics.fanout_reconnects());
        let auth = crate::auth::Authenticator::new(&config.security)?;
        let allow_list = match (
            config.security.persisted_queries,
            &config.security.persisted_queries_file,
        ) {
            (crate::config::PersistedQueries::Allowlist, Some(path)) => {
                Some(Arc::new(crate::graphql::guard::load_allow_list(path)?))
            }
            (crate::config::PersistedQueries::Allowlist, None) => anyhow::bail!(
                "MERIDIAN_PERSISTED_QUERIES=allowlist needs MERIDIAN_PERSISTED_QUERIES_FILE"
            ),
            _ => None,
        };
        Ok(AppState(Arc::new(Inner {
            config,
            stores,
            metrics,
            cursors,
            fanout,
            auth,
            allow_list,
            documents: Default::default(),
            symbols: Default::default(),
            boards: Default::default(),
            shutdown: tokio_util::sync::CancellationToken::new(),
            tasks: tokio_util::task::TaskTracker::new(),
            snapshot_leader: Default::default(),
            draining: Default::default(),
        })))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn stores(&self) -> &Stores {
        &self.0.stores
    }

    /// Whether this instance leads the portfolio snapshot job now (see [`crate::snapshots`]).
    pub fn leads_snapshots(&self) -> bool {
        self.0
            .snapshot_leader
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The relay's pacing, from the configuration.
    pub fn relay_settings(&self) -> crate::events::relay::RelaySettings {
        let c = &self.0.config;
        crate::events::relay::RelaySettings {
            batch: c.relay_batch.max(1),
            poll: Duration::from_millis(c.relay_poll_ms.max(10)),
            retry_base: Duration::from_millis(c.relay_retry_base_ms),
            retry_max: Duration::from_millis(c.relay_retry_max_ms),
            max_attempts: i32::try_from(c.relay_max_attempts.max(1)).unwrap_or(i32::MAX),
            event_stream_len: c.event_stream_len.max(1),
        }
    }

    /// This instance's pub/sub fan-out.
    pub fn fanout(&self) -> &crate::events::fanout::Fanout {
        &self.0.fanout
    }

    /// Checks bearer credentials.
    pub fn auth(&self) -> &crate::auth::Authenticator {
        &self.0.auth
    }

    /// Documents that passed the guard before, parsed (see [`crate::graphql::guard::Guard::parse`]).
    pub fn documents(&self) -> &crate::graphql::guard::DocumentCache {
        &self.0.documents
    }

    /// The registered documents, in allow-list mode.
    pub fn allow_list(&self) -> Option<Arc<crate::graphql::guard::AllowList>> {
        self.0.allow_list.clone()
    }

    /// The catalogue's symbols, as this instance last loaded them.
    pub fn symbols(&self) -> &crate::symbols::SymbolDirectory {
        &self.0.symbols
    }

    /// The declared boards, as this instance last loaded them.
    pub fn boards(&self) -> &crate::boards::BoardDirectory {
        &self.0.boards
    }

    /// Signs and checks pagination cursors.
    pub fn cursors(&self) -> &CursorCodec {
        &self.0.cursors
    }

    /// Whether the instance has been asked to stop and is draining (see [`run`]).
    pub fn draining(&self) -> bool {
        self.0.draining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Cancelled when the process is asked to stop.
    pub fn shutdown(&self) -> &tokio_util::sync::CancellationToken {
        &self.0.shutdown
    }

    /// Tasks the process waits for (up to the grace period) before it exits.
    pub fn tasks(&self) -> &tokio_util::task::TaskTracker {
        &self.0.tasks
    }
}

/// Serves HTTP on `listener` until `shutdown` resolves, then drains: `/readyz` answers 503
/// `draining` while everything is still served for `MERIDIAN_SHUTDOWN_DRAIN_MS` (time for
/// a load balancer's health checks to take the instance out). Then it stops everything
/// through the state's one cancellation token: the listener stops accepting, in-flight requests finish,
/// websocket clients get a 1001 close frame, and the relay ends after its current batch
/// (its claimed rows are delivered or, if the grace period ends first, released as the
/// process exits). The process waits for all of that up to a grace period.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let token = state.shutdown().clone();
    {
        let token = token.clone();
        let state = state.clone();
        tokio::spawn(async move {
            shutdown.await;
            let drain = Duration::from_millis(state.config().shutdown_drain_ms);
            state
                .0
                .draining
                .store(true, std::sync::atomic::Ordering::SeqCst);
            if !drain.is_zero() {
                tracing::info!(
                    ?drain,
                    "draining: readiness fails, requests are still served"
                );
                tokio::time::sleep(drain).await;
            }
            token.cancel();
        });
    }
    let relay = state.config().relay.then(|| {
        tokio::spawn(crate::events::relay::run(
            state.clone(),
            token.clone().cancelled_owned(),
        ))
    });
    if state.config().snapshot_every_secs > 0 {
        tokio::spawn(crate::snapshots::run(
            state.stores().clone(),
            state.metrics().clone(),
            Duration::from_secs(state.config().snapshot_every_secs),
            state.0.snapshot_leader.clone(),
            token.clone(),
        ));
    }

    let schema = graphql::build(state.clone());
    let state_header_timeout_ms = state.config().http_header_timeout_ms;
    let tasks = state.tasks().clone();
    let router = http::router(state, schema);
    let header_timeout = Duration::from_millis(state_header_timeout_ms);
    let server = http::serve::serve(
        listener,
        router,
        header_timeout,
        token.clone().cancelled_owned(),
    );
    let server = tokio::spawn(async move {
        server.await;
        Ok::<(), std::io::Error>(())
    });
    tokio::pin!(server);
    let served = tokio::select! {
        result = &mut server => Some(result),
        () = token.cancelled() => None,
    };
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    let served = match served {
        Some(result) => result,
        None => match tokio::time::timeout_at(deadline, &mut server).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
                server.abort();
                Ok(Ok(()))
            }
        },
    };
    tasks.close();
    if tokio::time::timeout_at(deadline, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("websocket sessions still closing after {SHUTDOWN_GRACE:?}");
    }
    if let Some(relay) = relay {
        match tokio::time::timeout_at(deadline, relay).await {
            Ok(Ok(Err(err))) => tracing::error!(error = format!("{err:#}"), "relay failed"),
            Ok(Err(err)) => tracing::error!(%err, "relay task failed"),
            Err(_) => tracing::warn!(
                "relay still delivering after {SHUTDOWN_GRACE:?}; its claimed rows are released"
            ),
            _ => {}
        }
    }
    served
        .context("server task failed")?
        .context("server failed")
}
