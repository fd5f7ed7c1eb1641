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
        match source {
            Source::Single(client) => {
                tokio::spawn(connection(client, Arc::downgrade(&inner), rx, reconnects));
            }
            Source::Cluster(nodes, timeout) => {
                tokio::spawn(cluster_connection(
                    nodes,
                    timeout,
                    Arc::downgrade(&inner),
                    rx,
                    reconnects,
                ));
            }
        }
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

/// The cluster's pub/sub: shard channels over one cluster connection, whose pushes carry
/// the messages. The connection resubscribes by itself after a node's reconnection or a
/// slot's move; this task rebuilds it only when a command on it fails.
async fn cluster_connection(
    nodes: Vec<String>,
    timeout: Duration,
    inner: std::sync::Weak<Inner>,
    mut control: mpsc::UnboundedReceiver<Control>,
    reconnects: prometheus::IntCounter,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if wanted(&inner).is_some_and(|w| w.is_empty()) {
            match control.recv().await {
                Some(_) => continue,
                None => return,
            }
        }
        let (tx, mut pushes) = mpsc::unbounded_channel::<redis::PushInfo>();
        let client = crate::store::redis::Topology::cluster_builder(&nodes, timeout)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(tx)
            .build();
        let connected = match client {
            Ok(client) => {
                tokio::time::timeout(Duration::from_secs(5), client.get_async_connection()).await
            }
            Err(err) => {
                tracing::error!(%err, "the cluster pub/sub client cannot be built");
                return;
            }
        };
        let Ok(Ok(mut conn)) = connected else {
            tracing::debug!("cluster pub/sub connection failed; retrying in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        };
        let Some(channels) = wanted(&inner) else {
            return;
        };
        let mut healthy = true;
        for channel in &channels {
            if conn.ssubscribe(channel).await.is_err() {
                healthy = false;
                break;
            }
        }
        if healthy {
            backoff = Duration::from_millis(100);
            tracing::debug!(channels = channels.len(), "cluster pub/sub connected");
        }
        while healthy {
            tokio::select! {
                command = control.recv() => {
                    let Some(command) = command else { return };
                    let result = match command {
                        Control::Subscribe(channel) => conn.ssubscribe(&channel).await,
                        Control::Unsubscribe(channel) if !still_wanted(&inner, &channel) => {
                            conn.sunsubscribe(&channel).await
                        }
                        Control::Unsubscribe(_) => Ok(()),
                    };
                    healthy = result.is_ok();
                }
                push = pushes.recv() => match push {
                    Some(push) if push.kind == redis::PushKind::SMessage => {
                        let Some(inner) = inner.upgrade() else { return };
                        let mut data = push.data.into_iter();
                        let channel = data.next().and_then(|v| redis::from_redis_value::<String>(v).ok());
                        let payload = data.next().and_then(|v| redis::from_redis_value::<String>(v).ok());
                        if let (Some(channel), Some(payload)) = (channel, payload) {
                            inner.deliver(&channel, payload.into());
                        }
                    }
                    Some(_) => {}
                    None => healthy = false,
                },
            }
        }
        tracing::warn!("cluster pub/sub connection lost; reconnecting");
        reconnects.inc();
        tokio::time::sleep(backoff).await;
    }
}

/// The pub/sub connection: (re)connects, keeps the wanted channels subscribed, and
/// hands messages to [`Inner::deliver`]. Ends when the fan-out is dropped.
async fn connection(
    client: redis::Client,
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
        let pubsub =
            match tokio::time::timeout(Duration::from_secs(5), client.get_async_pubsub()).await {
                Ok(Ok(pubsub)) => pubsub,
                _ => {
                    tracing::debug!("pub/sub connection failed; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
        let (mut sink, mut messages) = pubsub.split();
        let Some(channels) = wanted(&inner) else {
            return;
        };
        let mut healthy = true;
        for channel in &channels {
            if sink.subscribe(channel).await.is_err() {
                healthy = false;
                break;
            }
        }
        if healthy {
            backoff = Duration::from_millis(100);
            tracing::debug!(channels = channels.len(), "pub/sub connected");
        }
        while healthy {
            tokio::select! {
                command = control.recv() => {
                    let Some(command) = command else { return };
                    let result = match command {
                        Control::Subscribe(channel) => sink.subscribe(&channel).await,
                        Control::Unsubscribe(channel) => {
                            if still_wanted(&inner, &channel) { Ok(()) } else { sink.unsubscribe(&channel).await }
                        }
                    };
                    healthy = result.is_ok();
                }
                message = messages.next() => match message {
                    Some(message) => {
                        let Some(inner) = inner.upgrade() else { return };
                        if let Ok(payload) = message.get_payload::<String>() {
                            inner.deliver(message.get_channel_name(), payload.into());
                        }
                    }
                    None => healthy = false,
                },
            }
        }
        tracing::warn!("pub/sub connection lost; reconnecting");
        reconnects.inc();
        tokio::time::sleep(backoff).await;
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
