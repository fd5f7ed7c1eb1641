//! Redis: latest prices, leaderboards, sessions, rate limits, persisted queries, cache
//! and pub/sub.

mod consistency;
mod idempotency;
mod market;
mod reads;
mod security;
mod seed;
mod tokens;
mod writes;

pub use consistency::WRITTEN_KEEP_SECS;
pub use idempotency::IngestProgress;
pub use market::{MarketSnapshot, MARKET_TTL_SECS};
pub use reads::Standing;
pub use security::RateState;
pub use tokens::TOKEN_CACHE_KEEP_SECS;
pub use writes::{BoardDelta, BoardMove};

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use redis::{
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterClientBuilder},
    cluster_async::ClusterConnection,
    cluster_routing::Slot,
    Arg, Cmd, Pipeline, RedisFuture, Value,
};

use super::call::{Calls, Shared};
use crate::{config::Config, error::StoreError, store::StoreKind};

/// Hash tags: the keys (and shard channels) of each group share one hash slot, so that
/// the scripts that touch several of them run on one Redis Cluster node. A group's data
/// lives on one master; groups spread over the masters.
pub mod tags {
    /// Latest prices, their cached 24h statistics and price channels (`set_prices_if_newer`).
    pub const PRICES: &str = "prices";
    /// Leaderboards, their applied-event markers and channels (`apply_board_deltas`).
    pub const BOARDS: &str = "boards";
    /// The domain-event stream, its delivery markers and channel (`publish_events`).
    pub const EVENTS: &str = "events";
    /// Subjects' latest proofs (`set_latest_proofs`).
    pub const PROOFS: &str = "proofs";
    /// Rate-limit allowances: a request's principal and IP allowances are checked and
    /// counted in one script.
    pub const RATE_LIMITS: &str = "ratelimit";
    /// Market snapshots (`set_market`).
    pub const MARKET: &str = "market";
}

/// Where Meridian's Redis is: one server, or a cluster's seed nodes.
#[derive(Clone, Debug)]
pub enum Topology {
    Single(String),
    Cluster(Vec<String>),
}

impl Topology {
    pub fn from_config(config: &Config) -> Topology {
        let nodes: Vec<String> = config
            .redis_cluster_nodes
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                if n.contains("://") {
                    n.to_owned()
                } else {
                    format!("redis://{n}")
                }
            })
            .collect();
        if nodes.is_empty() {
            Topology::Single(config.redis_url.clone())
        } else {
            Topology::Cluster(nodes)
        }
    }

    /// A cluster client on these nodes, with `config`'s timeouts.
    pub fn cluster_builder(nodes: &[String], timeout: Duration) -> ClusterClientBuilder {
        ClusterClientBuilder::new(nodes.to_vec())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(3)
    }
}

/// One multiplexed, self-reconnecting connection to a Redis server or to a Redis Cluster
/// (cheap to clone). Commands are routed by key; a pipeline of commands on keys of
/// several slots is split into one pipeline per slot, run concurrently.
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(LazyCluster),
}

/// A cluster connection opened on first use (and again after a failed first attempt);
/// once open it follows the cluster's topology and reconnects by itself.
#[derive(Clone)]
pub struct LazyCluster {
    client: Arc<ClusterClient>,
    cell: Arc<tokio::sync::OnceCell<ClusterConnection>>,
}

impl LazyCluster {
    async fn get(&self) -> redis::RedisResult<ClusterConnection> {
        self.cell
            .get_or_try_init(|| self.client.get_async_connection())
            .await
            .cloned()
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_command(cmd),
            RedisConn::Cluster(lazy) => Box::pin(async move {
                let mut conn = lazy.get().await?;
                conn.req_packed_command(cmd).await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(lazy) => Box::pin(async move {
                let conn = lazy.get().await?;
                per_slot(conn, pipeline, offset, count).await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(conn) => conn.get_db(),
            RedisConn::Cluster(_) => 0,
        }
    }
}

/// The hash slot of a pipelined command: that of its first argument (its key, or its
/// shard channel for `SPUBLISH`), except for the commands that name no key.
fn slot_of(cmd: &Cmd) -> Option<Slot> {
    let mut args = cmd.args_iter();
    let Some(Arg::Simple(name)) = args.next() else {
        return None;
    };
    let unkeyed = [&b"PUBLISH"[..], b"WAIT", b"PING", b"MULTI", b"EXEC"];
    if unkeyed.iter().any(|u| name.eq_ignore_ascii_case(u)) {
        return None;
    }
    match args.next() {
        Some(Arg::Simple(key)) => Some(Slot::for_key(key)),
        _ => None,
    }
}

/// Runs a pipeline on a cluster: as it is when its keyed commands share a slot (and
/// always when it is a transaction, which must), else as one pipeline per slot, run
/// concurrently, with the replies put back in the pipeline's order. Unkeyed commands go
/// with the first slot's.
async fn per_slot(
    mut conn: ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
) -> redis::RedisResult<Vec<Value>> {
    let commands: Vec<&Cmd> = pipeline.cmd_iter().collect();
    // (slot, the indices of its commands), in the order slots first appear.
    let mut groups: Vec<(Slot, Vec<usize>)> = Vec::new();
    let mut unkeyed = Vec::new();
    for (i, cmd) in commands.iter().enumerate() {
        match slot_of(cmd) {
            Some(slot) => match groups.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, indices)) => indices.push(i),
                None => groups.push((slot, vec![i])),
            },
            None => unkeyed.push(i),
        }
    }
    if pipeline.is_transaction() || groups.len() <= 1 {
        return conn.req_packed_commands(pipeline, offset, count).await;
    }
    if let Some((_, first)) = groups.first_mut() {
        first.extend(unkeyed);
        first.sort_unstable();
    }
    let runs = groups.into_iter().map(|(_, indices)| {
        let mut part = Pipeline::new();
        for &i in &indices {
            part.add_command(commands[i].clone());
        }
        let mut conn = conn.clone();
        async move {
            let replies = conn.req_packed_commands(&part, 0, part.len()).await?;
            Ok::<_, redis::RedisError>((indices, replies))
        }
    });
    let mut out = vec![Value::Nil; commands.len()];
    for (indices, replies) in futures::future::try_join_all(runs).await? {
        for (i, reply) in indices.into_iter().zip(replies) {
            out[i] = reply;
        }
    }
    Ok(out.into_iter().skip(offset).take(count).collect())
}

/// The Redis adapter: one multiplexed, self-reconnecting connection and a key prefix.
#[derive(Clone)]
pub struct Redis {
    conn: RedisConn,
    prefix: std::sync::Arc<str>,
    calls: Calls,
    /// Replicas that must acknowledge the relay's writes (`MERIDIAN_REDIS_WAIT_REPLICAS`).
    wait_replicas: u32,
}

impl Redis {
    /// Builds the connection lazily; it is opened on first use and re-opened after a drop.
    pub(crate) fn new(config: &Config, shared: &std::sync::Arc<Shared>) -> anyhow::Result<Self> {
        let conn = match Topology::from_config(config) {
            Topology::Single(url) => {
                let client = redis::Client::open(url.as_str())
                    .context("MERIDIAN_REDIS_URL is not a valid Redis URL")?;
                let manager_config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(config.store_timeout()))
                    .set_response_timeout(Some(config.store_timeout()))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500));
                RedisConn::Single(
                    ConnectionManager::new_lazy_with_config(client, manager_config)
                        .context("cannot set up the Redis connection")?,
                )
            }
            Topology::Cluster(nodes) => RedisConn::Cluster(LazyCluster {
                client: Arc::new(
                    Topology::cluster_builder(&nodes, config.store_timeout())
                        .build()
                        .context("MERIDIAN_REDIS_CLUSTER_NODES is not a list of Redis URLs")?,
                ),
                cell: Arc::default(),
            }),
        };
        let probe = conn.clone();
        let calls = Calls::new(
            StoreKind::Redis,
            shared.clone(),
            config.store_timeout(),
            move || {
                let conn = probe.clone();
                Box::pin(async move { ping(conn).await.map_err(StoreError::from) })
            },
        );
        Ok(Redis {
            conn,
            prefix: config.redis_prefix.as_str().into(),
            calls,
            wait_replicas: config.redis_wait_replicas,
        })
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, RedisConn::Cluster(_))
    }

    /// The publish command: sharded (`SPUBLISH`, to the channel's slot's node) on a
    /// cluster, plain `PUBLISH` on one server (what the fan-out subscribes with matches).
    pub fn publish_command(&self) -> &'static str {
        if self.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// After a write the relay settles outbox rows on: waits (`WAIT`, at most half the
    /// store timeout) until `MERIDIAN_REDIS_WAIT_REPLICAS` replicas have it, on the same
    /// connection (on a cluster, every master's), and fails when fewer did, so that the
    /// rows are retried rather than settled on a write a failover could lose. Not an
    /// outage: Redis answered.
    pub(crate) async fn replicated(&self, conn: &mut RedisConn) -> Result<(), redis::RedisError> {
        if self.wait_replicas == 0 {
            return Ok(());
        }
        let timeout_ms = (self.calls.deadline().as_millis() / 2).max(1) as u64;
        let acked: i64 = redis::cmd("WAIT")
            .arg(self.wait_replicas)
            .arg(timeout_ms)
            .query_async(conn)
            .await?;
        if acked >= i64::from(self.wait_replicas) {
            Ok(())
        } else {
            Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "too few replicas acknowledged the write",
                format!("{acked} of {} within {timeout_ms} ms", self.wait_replicas),
            )))
        }
    }

    /// The full key for `name` in hash-tag group `group` (see [`tags`]).
    pub fn tagged(&self, group: &str, name: &str) -> String {
        format!("{}{{{group}}}:{name}", self.prefix)
    }

    pub(crate) fn calls(&self) -> &Calls {
        &self.calls
    }

    /// The same adapter with another call wrapper (see [`crate::store::Stores`]).
    pub(crate) fn rebind(&self, calls: Calls) -> Self {
        Redis {
            calls,
            ..self.clone()
        }
    }

    /// The full key for `name` under this deployment's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Key of the latest price of `symbol`.
    pub fn price_key(&self, symbol: &str) -> String {
        self.tagged(tags::PRICES, &format!("price:{symbol}"))
    }

    /// Key of a board's sorted set: `leaderboard:{name}` for an all-time board,
    /// `leaderboard:{name}:{period}` for one period of a windowed board.
    pub fn leaderboard_key(&self, name: &str, period: &str) -> String {
        if period.is_empty() {
            self.tagged(tags::BOARDS, &format!("leaderboard:{name}"))
        } else {
            self.tagged(tags::BOARDS, &format!("leaderboard:{name}:{period}"))
        }
    }

    /// A connection handle (cheap clone of the multiplexed connection), for tests that
    /// check the store directly. Meridian's own code goes through the typed methods.
    pub fn conn(&self) -> RedisConn {
        self.conn.clone()
    }

    pub async fn ping(&self) -> Result<(), crate::Error> {
        self.calls.run("ping", ping(self.conn())).await
    }
}

async fn ping(mut conn: RedisConn) -> Result<(), redis::RedisError> {
    // On a cluster PING goes to every master: the probe fails while one is unreachable.
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map(drop)
}

/// The latest price of a symbol, as stored under `price:{symbol}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatestPrice {
    pub symbol: String,
    pub price: f64,
    /// Unix seconds of the tick this price comes from.
    pub ts: i64,
}
