//! PostgreSQL: users, assets, holdings, trades, domain events and the outbox (the system
//! of record).

mod artifacts;
mod boards;
mod catalogue;
mod challenges;
mod events;
mod migrate;
mod outbox;
mod reads;
mod seed;
mod tokens;
mod writes;
mod yields;

pub use artifacts::{ArtifactRow, ArtifactsOutcome, LatestProof, ARTIFACT_RECORDED};
pub use boards::BoardScore;
pub use catalogue::{
    AssetNameRow, CatalogueOutcome, CatalogueRefusal, MarketRow, PoolRow, ProtocolRow,
};
pub use challenges::{ChallengeRow, ChallengesOutcome};
pub use events::{EventRow, EventsOutcome, NewEvent, EVENT_DESTINATIONS, EVENT_RECORDED};
pub use migrate::MigrationLock;
pub use outbox::{Backoff, DeadLetter, OutboxBacklog, OutboxClaim, OutboxRow, Settle, Settled};
pub use reads::{AssetRow, DemoActors, HoldingRow, TradeRow, TradeWindow, UserRow};
pub use tokens::{ConflictRow, ResolveRefusal, TokenAssetRow, TokenWrite, TokenWriteResult};
pub use writes::{NewTrade, RegisterOutcome, TradeOutcome, OUTBOX_CHANNEL, TRADE_DESTINATIONS};
pub use yields::{Leadership, PositionRow};

use std::{
    collections::HashSet,
    future::Future,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, Weak,
    },
    time::Duration,
};

use anyhow::Context;
use sqlx::{postgres::PgPoolOptions, PgPool};

use super::{
    call::{Calls, Shared},
    Rows,
};
use crate::{config::Config, error::StoreError, store::StoreKind};

/// How often the replica's replay position is read (and so how soon after a write its
/// writer reads from the replica again, and how soon a replica that came back is used).
const REPLICA_WATCH_EVERY: Duration = Duration::from_millis(100);

/// The PostgreSQL adapter: a connection pool and the queries run on it.
#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
    /// Trade partitions (year, month) known to exist.
    partitions: Arc<Mutex<HashSet<(i32, u32)>>>,
    /// Event partitions (year, month) known to exist.
    event_partitions: Arc<Mutex<HashSet<(i32, u32)>>>,
    calls: Calls,
    /// The read replica, when one is configured.
    replica: Option<ReplicaSide>,
    /// The WAL position (bytes) the replica must have replayed before this adapter's
    /// reads go to it: 0 for any, `u64::MAX` for never (the primary only). Fresh for
    /// each request (see [`Postgres::rebound`]).
    read_floor: Arc<AtomicU64>,
}

/// The replica's pool, its call wrapper, and what the watcher last saw of it.
#[derive(Clone)]
struct ReplicaSide {
    state: Arc<ReplicaState>,
    calls: Calls,
}

struct ReplicaState {
    pool: PgPool,
    /// Whether the replica answered the watcher's last probe (and no read failed since).
    up: AtomicBool,
    /// The WAL position it had replayed at that probe, in bytes.
    replayed: AtomicU64,
}

impl Postgres {
    /// Builds a lazy pool; connections are opened on first use.
    pub(crate) fn new(config: &Config, shared: &Arc<Shared>) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(config.postgres_pool_size)
            .acquire_timeout(config.store_timeout())
            .idle_timeout(Duration::from_secs(300))
            .connect_lazy(&config.postgres_url)
            .context("MERIDIAN_POSTGRES_URL is not a valid PostgreSQL URL")?;
        let probe = pool.clone();
        let calls = Calls::new(
            StoreKind::Postgres,
            shared.clone(),
            config.store_timeout(),
            move || {
                let pool = probe.clone();
                Box::pin(async move { ping(&pool).await.map_err(StoreError::from) })
            },
        );
        // Set but empty (as a compose file may leave it) means none.
        let read_url = config.postgres_read_url.as_deref().map(str::trim);
        let replica = match read_url.filter(|url| !url.is_empty()) {
            Some(url) => Some(ReplicaSide::new(config, url, shared)?),
            None => None,
        };
        Ok(Postgres {
            pool,
            partitions: Arc::default(),
            event_partitions: Arc::default(),
            calls,
            replica,
            read_floor: Arc::default(),
        })
    }

    /// The same adapter with the call wrappers `change` makes of its own (see
    /// [`crate::store::Stores`]), and, when a replica is configured, a read floor of its own
    /// (0: reads may go to the replica).
    pub(crate) fn rebound(&self, change: impl Fn(&Calls) -> Calls) -> Self {
        Postgres {
            calls: change(&self.calls),
            replica: self.replica.as_ref().map(|r| ReplicaSide {
                state: r.state.clone(),
                calls: change(&r.calls),
            }),
            // Without a replica nothing reads the floor: no allocation per request.
            read_floor: if self.replica.is_some() {
                Arc::default()
            } else {
                self.read_floor.clone()
            },
            ..self.clone()
        }
    }

    /// Whether a read replica is configured.
    pub fn has_replica(&self) -> bool {
        self.replica.is_some()
    }

    /// From now on this adapter reads from the primary only (mutations, subscriptions).
    pub fn pin_primary(&self) {
        self.read_floor.store(u64::MAX, Ordering::Relaxed);
    }

    /// From now on this adapter reads from the replica only once it has replayed the WAL
    /// up to `lsn` (a position from [`Postgres::wal_position`]).
    pub fn read_after(&self, lsn: u64) {
        self.read_floor.fetch_max(lsn, Ordering::Relaxed);
    }

    /// Whether this adapter's reads go to the replica now.
    pub fn reads_from_replica(&self) -> bool {
        self.replica_for_read().is_some()
    }

    fn replica_for_read(&self) -> Option<&ReplicaSide> {
        let replica = self.replica.as_ref()?;
        let floor = self.read_floor.load(Ordering::Relaxed);
        let state = &replica.state;
        (floor != u64::MAX
            && state.up.load(Ordering::Relaxed)
            && state.replayed.load(Ordering::Relaxed) >= floor)
            .then_some(replica)
    }

    /// Runs a read on the replica when this adapter may read there, else on the primary.
    /// A replica that is down or too slow is marked down and the read is run again on
    /// the primary, so a failing replica costs a request time but not an answer.
    pub(crate) async fn read<T, F, Fut>(
        &self,
        op: &'static str,
        query: F,
    ) -> Result<T, crate::Error>
    where
        F: Fn(PgPool) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
        T: Rows,
    {
        if let Some(replica) = self.replica_for_read() {
            match replica
                .calls
                .run(op, query(replica.state.pool.clone()))
                .await
            {
                Ok(value) => return Ok(value),
                Err(
                    err @ (crate::Error::CircuitOpen { .. }
                    | crate::Error::StoreUnavailable { .. }
                    | crate::Error::StoreTimeout { .. }),
                ) => {
                    if replica.state.up.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %err, "the PostgreSQL replica failed a read; reading from the primary");
                    }
                }
                Err(err) => return Err(err),
            }
        }
        self.calls.run(op, query(self.pool.clone())).await
    }

    /// The primary's current WAL position, in bytes: a read that must see every commit
    /// made so far waits for the replica to replay this far.
    pub async fn wal_position(&self) -> Result<u64, crate::Error> {
        let lsn: i64 = self
            .calls
            .run::<i64, sqlx::Error, _>(
                "wal_position",
                sqlx::query_scalar("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8")
                    .fetch_one(&self.pool),
            )
            .await?;
        Ok(u64::try_from(lsn).unwrap_or(0))
    }

    /// Probes the replica (readiness).
    pub async fn ping_replica(&self) -> Result<(), crate::Error> {
        let replica = self.replica.as_ref().ok_or_else(|| {
            crate::Error::Internal(anyhow::anyhow!("no PostgreSQL replica is configured"))
        })?;
        replica
            .calls
            .run("ping", replay_position(&replica.state.pool))
            .await
            .map(drop)
    }

    /// The pool, for tests that check the store directly. Meridian's own code goes
    /// through the typed methods, which own the call wrapper.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<(), crate::Error> {
        self.calls.run("ping", ping(&self.pool)).await
    }

    /// A listener for the outbox's notifications, on a connection of its own.
    pub async fn listen(&self, channel: &str) -> Result<sqlx::postgres::PgListener, crate::Error> {
        self.calls
            .run("outbox_listen", async {
                let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
                listener.listen(channel).await?;
                Ok::<_, sqlx::Error>(listener)
            })
            .await
    }
}

impl ReplicaSide {
    /// A lazy pool on the replica and its watcher, which stops when the adapter is gone.
    fn new(config: &Config, url: &str, shared: &Arc<Shared>) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(config.postgres_pool_size)
            .acquire_timeout(config.store_timeout())
            .idle_timeout(Duration::from_secs(300))
            .connect_lazy(url)
            .context("MERIDIAN_POSTGRES_READ_URL is not a valid PostgreSQL URL")?;
        let state = Arc::new(ReplicaState {
            pool,
            up: AtomicBool::new(false),
            replayed: AtomicU64::new(0),
        });
        let probe = Arc::downgrade(&state);
        let calls = Calls::new(
            StoreKind::PostgresReplica,
            shared.clone(),
            config.store_timeout(),
            move || {
                let state = probe.clone();
                Box::pin(async move {
                    let state = state
                        .upgrade()
                        .ok_or(StoreError::Postgres(sqlx::Error::PoolClosed))?;
                    replay_position(&state.pool)
                        .await
                        .map(drop)
                        .map_err(StoreError::from)
                })
            },
        );
        tokio::spawn(watch_replica(
            Arc::downgrade(&state),
            config.store_timeout(),
        ));
        Ok(ReplicaSide { state, calls })
    }
}

/// How far the server has replayed the WAL, in bytes (a primary: how far it has written,
/// so a read URL that names a primary is simply always fresh).
async fn replay_position(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::int8",
    )
    .fetch_one(pool)
    .await
}

/// Reads the replica's replay position every [`REPLICA_WATCH_EVERY`]: up when it answers
/// within `deadline`, down otherwise. Ends when the adapter is dropped.
async fn watch_replica(state: Weak<ReplicaState>, deadline: Duration) {
    loop {
        let Some(state) = state.upgrade() else {
            return;
        };
        let seen = tokio::time::timeout(deadline, replay_position(&state.pool)).await;
        let up = match seen {
            Ok(Ok(lsn)) => {
                state
                    .replayed
                    .store(u64::try_from(lsn).unwrap_or(0), Ordering::Relaxed);
                true
            }
            Ok(Err(_)) | Err(_) => false,
        };
        let was = state.up.swap(up, Ordering::Relaxed);
        if was != up {
            if up {
                tracing::info!("the PostgreSQL replica answers; queries read from it");
            } else {
                tracing::warn!(
                    "the PostgreSQL replica does not answer; queries read from the primary"
                );
            }
        }
        drop(state);
        tokio::time::sleep(REPLICA_WATCH_EVERY).await;
    }
}

async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(drop)
}
