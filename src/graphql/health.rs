//! `health`: whether Meridian can reach each of its stores.

use async_graphql::{Context, Enum, Object, SimpleObject};

use crate::app::AppState;

#[derive(Default)]
pub struct HealthQuery;

/// Overall status: OK when every store answers.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum HealthStatus {
    Ok,
    Degraded,
}

/// Meridian's view of its stores.
#[derive(SimpleObject)]
pub struct Health {
    pub status: HealthStatus,
    /// The running Meridian version.
    pub version: String,
    pub stores: Vec<StoreHealth>,
}

/// One store, as seen by this instance.
#[derive(SimpleObject)]
pub struct StoreHealth {
    /// postgres, clickhouse, redis or mongodb.
    pub name: String,
    pub up: bool,
    /// Round-trip time of the probe, in milliseconds.
    pub latency_ms: f64,
}

#[Object]
impl HealthQuery {
    /// Probes each store now (concurrently, each under the store timeout).
    async fn health(&self, ctx: &Context<'_>) -> async_graphql::Result<Health> {
        let state = ctx.data::<AppState>()?;
        let stores: Vec<StoreHealth> = state
            .stores()
            .readiness()
            .await
            .into_iter()
            .map(|s| StoreHealth {
                name: s.store.as_str().into(),
                up: s.up,
                latency_ms: s.latency_ms,
            })
            .collect();
        let status = if stores.iter().all(|s| s.up) {
            HealthStatus::Ok
        } else {
            HealthStatus::Degraded
        };
        Ok(Health {
            status,
            version: env!("CARGO_PKG_VERSION").into(),
            stores,
        })
    }
}
