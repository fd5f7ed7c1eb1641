//! Fan-out of Redis pub/sub to local subscribers.
//!
//! Each instance holds one Redis pub/sub connection. It subscribes to a channel while at
//! least one local subscriber needs it and unsubscribes when the last one leaves. Events
//! reach subscribers through bounded per-subscriber buffers, so a slow consumer never
//! grows memory without bound:
//!
//! - [`Delivery::Queue`] (trades): up to [`QUEUE_CAPACITY`] events wait; a subscriber
//!   that falls further behind is dropped and its stream ends with an error.
//! - [`Delivery::Latest`] (prices, leaderboards): conflated, only the newest event per
//!   channel waits, so a slow consumer skips intermediate values.
//!
//! When the connection drops (Redis restarts), the task reconnects with backoff and
//! subscribes again to every channel still wanted; subscribers' streams go on. Events
//! published while the connection was down are not replayed.
//!
//! On a Redis Cluster the channels are shard channels (`SSUBSCRIBE`; Meridian publishes
//! with `SPUBLISH`): each is subscribed on the master of its slot, over one cluster
//! connection (RESP3, messages arriving as pushes) that follows the cluster's topology
//! and subscribes again where a slot moved after a failover.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use futures::{Stream, StreamExt};
use indexmap::IndexMap;
use tokio::sync::{mpsc, Notify};

/// Events a queued subscriber may have waiting.
pub const QUEUE_CAPACITY: usize = 256;

/// How a subscriber receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Queue,
    Latest,
}

/// One event: its channel and payload.
#[derive(Debug, Clone)]
pub struct Event {
    pub channel: Arc<str>,
    pub payload: Arc<str>,
}

enum Sink {
    Queue {
        tx: mpsc::Sender<Event>,
        overflowed: Arc<AtomicBool>,
    },
    Latest(Arc<Conflated>),
}

#[derive(Default)]
struct Conflated {
    slots: Mutex<IndexMap<Arc<str>, Arc<str>>>,
    notify: Notify,
    closed: AtomicBool,
}

enum Control {
    Subscribe(String),
    Unsubscribe(String),
}

struct Inner {
    registry: Mutex<HashMap<String, HashMap<u64, Sink>>>,
    next_id: AtomicU64,
    control: mpsc::UnboundedSender<Control>,
    overflows: AtomicU64,
}

/// The instance's fan-out. Cheap to clone.
#[derive(Clone)]
pub struct Fanout(Arc<Inner>);

impl Fanout {
    /// Starts the pub/sub connection task (it connects once a channel is wanted).
    pub fn start(source: Source, reconnects: prometheus::IntCounter) -> Fanout {
        let (control, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            registry: Mutex::default(),
            next_id: AtomicU64::new(1),
            control,
            overflows: AtomicU64::new(0),
        });
        tokio::spawn(connection(source, Arc::downgrade(&inner), rx, reconnects));
        Fanout(inner)
    }

    /// Subscribes to `channels`; the returned stream ends (with [`Overflow`]) only if a
    /// queued subscriber falls behind, and unsubscribes when dropped.
    pub fn subscribe(&self, channels: Vec<String>, delivery: Delivery) -> Subscription {
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        let (receiver, sink_for) = match delivery {
            Delivery::Queue => {
                let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
                let overflowed = Arc::new(AtomicBool::new(false));
                let flag = overflowed.clone();
                (
                    Receiver::Queue { rx, overflowed },
                    Box::new(move || Sink::Queue {
                        tx: tx.clone(),
                        overflowed: flag.clone(),
                    }) as Box<dyn Fn() -> Sink>,
                )
            }
            Delivery::Latest => {
                let conflated = Arc::new(Conflated::default());
                let shared = conflated.clone();
                (
                    Receiver::Latest(conflated),
                    Box::new(move || Sink::Latest(shared.clone())) as Box<dyn Fn() -> Sink>,
                )
            }
        };
        if let Ok(mut registry) = self.0.registry.lock() {
            for channel in &channels {
                let subscribers = registry.entry(channel.clone()).or_default();
                if subscribers.is_empty() {
                    let _ = self.0.control.send(Control::Subscribe(channel.clone()));
                }
                subscribers.insert(id, sink_for());
            }
        }
        Subscription {
            fanout: self.clone(),
            id,
            channels,
            receiver,
        }
    }

    /// Channels with local subscribers, and how many each has.
    pub fn channels(&self) -> Vec<(String, usize)> {
        self.0
            .registry
            .lock()
            .map(|r| r.iter().map(|(c, s)| (c.clone(), s.len())).collect())
            .unwrap_or_default()
    }

    /// Subscribers dropped for falling behind, since start.
    pub fn overflows(&self) -> u64 {
        self.0.overflows.load(Ordering::Relaxed)
    }

    fn leave(&self, id: u64, channels: &[String]) {
        if let Ok(mut registry) = self.0.registry.lock() {
            for channel in channels {
                if let Some(subscribers) = registry.get_mut(channel) {
                    subscribers.remove(&id);
                    if subscribers.is_empty() {
                        registry.remove(channel);
                        let _ = self.0.control.send(Control::Unsubscribe(channel.clone()));
                    }
                }
            }
        }
    }
}

impl Inner {
    fn deliver(&self, channel: &str, payload: Arc<str>) {
        let Ok(mut registry) = self.registry.lock() else {
            return;
        };
        let Some(subscribers) = registry.get_mut(channel) else {
            return;
        };
        let channel: Arc<str> = channel.into();
        let mut overflowed = Vec::new();
        for (id, sink) in subscribers.iter() {
            match sink {
                Sink::Queue {
                    tx,
                    overflowed: flag,
                } => {
                    if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(Event {
                        channel: channel.clone(),
                        payload: payload.clone(),
                    }) {
                        flag.store(true, Ordering::Release);
                        overflowed.push(*id);
                    }
                }
                Sink::Latest(conflated) => {
                    if let Ok(mut slots) = conflated.slots.lock() {
                        slots.insert(channel.clone(), payload.clone());
                    }
                    conflated.notify.notify_one();
                }
            }
        }
        // Dropping the sender ends the laggard's stream (its flag says why).
        for id in overflowed {
            subscribers.remove(&id);
            self.overflows.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Where the fan-out subscribes: one Redis server, or a cluster (its seed nodes and the
/// store timeout; the fan-out's client adds RESP3 and its push channel).
pub enum Source {
    Single(redis::Client),
    Cluster(Vec<String>, Duration),
}

/// The channels some local subscriber wants, or None once the fan-out is gone.
fn wanted(inner: &std::sync::Weak<Inner>) -> Option<Vec<String>> {
    let inner = inner.upgrade()?;
    let registry = inner.registry.lock().ok()?;
    Some(registry.keys().cloned().collect())
}

/// Whether `channel` is still wanted (a subscriber may have joined since it was left).
fn still_wanted(inner: &std::sync::Weak<Inner>, channel: &str) -> bool {
    inner
        .upgrade()
        .and_then(|i| i.registry.lock().ok().map(|r| r.contains_key(channel)))
        .unwrap_or(false)
}

/// One pub/sub connection as the fan-out drives it: subscribe and unsubscribe a channel,
/// and the next message, `None` once the connection is gone.
trait Channels {
    async fn join(&mut self, channel: &str) -> redis::RedisResult<()>;
    async fn leave(&mut self, channel: &str) -> redis::RedisResult<()>;
    async fn next(&mut self) -> Option<(String, String)>;
}

/// One server: `SUBSCRIBE` on a dedicated pub/sub connection.
struct Plain {
    sink: redis::aio::PubSubSink,
    messages: redis::aio::PubSubStream,
}

impl Channels for Plain {
    async fn join(&mut self, channel: &str) -> redis::RedisResult<()> {
        self.sink.subscribe(channel).await
    }

    async fn leave(&mut self, channel: &str) -> redis::RedisResult<()> {
        self.sink.unsubscribe(channel).await
    }

    async fn next(&mut self) -> Option<(String, String)> {
        loop {
            let message = self.messages.next().await?;
            if let Ok(payload) = message.get_payload::<String>() {
                return Some((message.get_channel_name().to_owned(), payload));
            }
        }
    }
}

/// A cluster: shard channels (`SSUBSCRIBE`) over one cluster connection, whose pushes
/// carry the messages. The connection subscribes again by itself after a node's
/// reconnection or a slot's move.
struct Sharded {
    conn: redis::cluster_async::ClusterConnection,
    pushes: mpsc::UnboundedReceiver<redis::PushInfo>,
}

impl Channels for Sharded {
    async fn join(&mut self, channel: &str) -> redis::RedisResult<()> {
        self.conn.ssubscribe(channel).await
    }

    async fn leave(&mut self, channel: &str) -> redis::RedisResult<()> {
        self.conn.sunsubscribe(channel).await
    }

    async fn next(&mut self) -> Option<(String, String)> {
        loop {
            let push = self.pushes.recv().await?;
            if push.kind != redis::PushKind::SMessage {
                continue;
            }
            let mut data = push.data.into_iter();
            let mut text = || {
                data.next()
                    .and_then(|v| redis::from_redis_value::<String>(v).ok())
            };
            if let (Some(channel), Some(payload)) = (text(), text()) {
                return Some((channel, payload));
            }
        }
    }
}

impl Source {
    /// A new pub/sub connection, or None if it could not be made within 5 s.
    async fn open(&self) -> Option<Connection> {
        let timeout = Duration::from_secs(5);
        match self {
            Source::Single(client) => {
                let pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
                    .await
                    .ok()?
                    .ok()?;
                let (sink, messages) = pubsub.split();
                Some(Connection::Plain(Plain { sink, messages }))
            }
            Source::Cluster(nodes, deadline) => {
                let (tx, pushes) = mpsc::unbounded_channel::<redis::PushInfo>();
                let client = crate::store::redis::Topology::cluster_builder(nodes, *deadline)
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(tx)
                    .build()
                    .ok()?;
                let conn = tokio::time::timeout(timeout, client.get_async_connection())
                    .await
                    .ok()?
                    .ok()?;
                Some(Connection::Sharded(Sharded { conn, pushes }))
            }
        }
    }
}

/// A pub/sub connection of either kind.
enum Connection {
    Plain(Plain),
    Sharded(Sharded),
}

/// The pub/sub connection: (re)connects, keeps the wanted channels subscribed, and
/// hands messages to [`Inner::deliver`]. Ends when the fan-out is dropped.
async fn connection(
    source: Source,
    inner: std::sync::Weak<Inner>,
    mut control: mpsc::UnboundedReceiver<Control>,
    reconnects: prometheus::IntCounter,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        // Idle until some channel is wanted.
        if wanted(&inner).is_some_and(|w| w.is_empty()) {
            match control.recv().await {
                Some(_) => continue,
                None => return,
            }
        }
        let Some(opened) = source.open().await else {
            tracing::debug!("pub/sub connection failed; retrying in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        };
        let ended = match opened {
            Connection::Plain(mut conn) => {
                serve(&mut conn, &inner, &mut control, &mut backoff).await
            }
            Connection::Sharded(mut conn) => {
                serve(&mut conn, &inner, &mut control, &mut backoff).await
            }
        };
        if ended {
            return;
        }
        tracing::warn!("pub/sub connection lost; reconnecting");
        reconnects.inc();
        tokio::time::sleep(backoff).await;
    }
}

/// Subscribes the wanted channels on `conn`, then follows the subscribers' comings and
/// goings and delivers messages until the connection fails (false) or the fan-out is
/// gone (true).
async fn serve(
    conn: &mut impl Channels,
    inner: &std::sync::Weak<Inner>,
    control: &mut mpsc::UnboundedReceiver<Control>,
    backoff: &mut Duration,
) -> bool {
    let Some(channels) = wanted(inner) else {
        return true;
    };
    for channel in &channels {
        if conn.join(channel).await.is_err() {
            return false;
        }
    }
    *backoff = Duration::from_millis(100);
    tracing::debug!(channels = channels.len(), "pub/sub connected");
    loop {
        tokio::select! {
            command = control.recv() => {
                let Some(command) = command else { return true };
                let result = match command {
                    Control::Subscribe(channel) => conn.join(&channel).await,
                    // A subscriber may have joined since the last one left.
                    Control::Unsubscribe(channel) if !still_wanted(inner, &channel) => {
                        conn.leave(&channel).await
                    }
                    Control::Unsubscribe(_) => Ok(()),
                };
                if result.is_err() {
                    return false;
                }
            }
            message = conn.next() => match message {
                Some((channel, payload)) => {
                    let Some(inner) = inner.upgrade() else { return true };
                    inner.deliver(&channel, payload.into());
                }
                None => return false,
            },
        }
    }
}

enum Receiver {
    Queue {
        rx: mpsc::Receiver<Event>,
        overflowed: Arc<AtomicBool>,
    },
    Latest(Arc<Conflated>),
}

/// A subscriber's events. Dropping it unsubscribes.
pub struct Subscription {
    fanout: Fanout,
    id: u64,
    channels: Vec<String>,
    receiver: Receiver,
}

/// A queued subscriber fell more than [`QUEUE_CAPACITY`] events behind and was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

impl Subscription {
    /// The events, in order per channel (conflated for [`Delivery::Latest`]).
    pub fn into_stream(self) -> impl Stream<Item = Result<Event, Overflow>> + Send {
        futures::stream::unfold(
            (self, std::collections::VecDeque::<Event>::new()),
            |(mut sub, mut ready)| async move {
                loop {
                    if let Some(event) = ready.pop_front() {
                        return Some((Ok(event), (sub, ready)));
                    }
                    match &mut sub.receiver {
                        Receiver::Queue { rx, overflowed } => match rx.recv().await {
                            Some(event) => return Some((Ok(event), (sub, ready))),
                            None if overflowed.load(Ordering::Acquire) => {
                                overflowed.store(false, Ordering::Release);
                                return Some((Err(Overflow), (sub, ready)));
                            }
                            None => return None,
                        },
                        Receiver::Latest(conflated) => {
                            if conflated.closed.load(Ordering::Acquire) {
                                return None;
                            }
                            let drained: Vec<Event> = conflated
                                .slots
                                .lock()
                                .map(|mut slots| {
                                    slots
                                        .drain(..)
                                        .map(|(channel, payload)| Event { channel, payload })
                                        .collect()
                                })
                                .unwrap_or_default();
                            if drained.is_empty() {
                                conflated.notify.notified().await;
                            }
                            ready.extend(drained);
                        }
                    }
                }
            },
        )
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Receiver::Latest(conflated) = &self.receiver {
            conflated.closed.store(true, Ordering::Release);
        }
        self.fanout.leave(self.id, &self.channels);
    }
}
