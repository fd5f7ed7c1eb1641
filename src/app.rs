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
}

impl AppState {
    /// Builds the store clients. Connections open on first use, so this succeeds while a
    /// store is down.
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        let stores = Stores::new(&config, metrics.clone()).await?;
        if config.cursor_secret.is_none() {
            tracing::warn!("MERIDIAN_CURSOR_SECRET is not set: pagination cursors are valid only in this process");
        }
        let cursors = CursorCodec::new(config.cursor_secret.as_deref());
        Ok(AppState(Arc::new(Inner {
            config,
            stores,
            metrics,
            cursors,
        })))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn stores(&self) -> &Stores {
        &self.0.stores
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Signs and checks pagination cursors.
    pub fn cursors(&self) -> &CursorCodec {
        &self.0.cursors
    }
}

/// Serves HTTP on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish (up to a grace period).
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let schema = graphql::build(state.clone());
    let router = http::router(state, schema);
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = signalled_tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.context("server task failed")?.context("server failed"),
        _ = signalled_rx => {}
    }
    match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
        Ok(result) => result
            .context("server task failed")?
            .context("server failed"),
        Err(_) => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
            server.abort();
            Ok(())
        }
    }
}
