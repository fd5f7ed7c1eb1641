//! `/graphql/ws`: GraphQL over websockets, in both protocols clients use:
//!
//! - `graphql-transport-ws` (the `graphql-ws` npm library, GraphiQL), with the close codes
//!   of its spec: 4400 invalid message, 4401 subscribe before `connection_ack`, 4403 init
//!   refused, 4408 no `connection_init` in time, 4409 duplicate operation id, 4429 a
//!   second `connection_init`, 1009 a message over 64 KiB; the server pings every
//!   keepalive interval.
//! - the legacy `graphql-ws` (subscriptions-transport-ws): `start`/`stop`/`data`, `ka`
//!   keepalives, `connection_error`.
//!
//! Each operation runs in a task of its own and writes its messages to the connection's
//! socket itself, taking turns with the connection's other operations: a client that stops
//! reading stalls its own operations (whose fan-out buffers are bounded) and nothing else.
//!
//! Every operation a client starts (query, mutation or subscription) is counted against
//! the same rate limits as an HTTP request, and is refused with an `error` message for its
//! id when the connection already runs `MERIDIAN_WS_MAX_OPERATIONS`
//! (`TOO_MANY_OPERATIONS`, `scope: connection`) or the client (its principal, or its IP
//! when anonymous) runs `MERIDIAN_WS_MAX_CLIENT_OPERATIONS` on this instance over all its
//! connections (`scope: client`). A connection authenticated with an expiring credential
//! is closed with 4403 when it expires, and every connection with 1001 when the process
//! stops.
//!
//! Why not async-graphql's `GraphQLWebSocket`: it runs every operation inside one stream
//! per connection, so none of the above fits in it. It has no per-operation task or abort,
//! no caps on operations per connection or per client, no rate limit per `subscribe`, no
//! close on credential expiry or shutdown, and it closes with codes of its own choosing
//! where the graphql-transport-ws spec names others (4409, 4429, 1009).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
        State,
    },
    http::HeaderMap,
    response::Response,
};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::task::AbortHandle;

use super::guard::Identity;
use super::HttpState;
use crate::{
    graphql::scope::Viewer,
    ratelimit::{self, Count, Verdict},
};

const TRANSPORT_WS: &str = "graphql-transport-ws";
const LEGACY_WS: &str = "graphql-ws";
/// Largest message a client may send.
const MAX_MESSAGE: usize = 64 * 1024;
/// Per-connection socket buffers. GraphQL messages are small; the library's default of
/// 128 KiB each way would cost a quarter of a megabyte per idle subscriber.
const READ_BUFFER: usize = 8 * 1024;
const WRITE_BUFFER: usize = 8 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Transport,
    Legacy,
}

pub async fn upgrade(
    State(state): State<HttpState>,
    identity: Option<axum::Extension<Identity>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let identity = identity.map(|i| i.0).unwrap_or_default();
    let offered = headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let protocol =
        if offered.split(',').any(|p| p.trim() == TRANSPORT_WS) || offered.trim().is_empty() {
            Protocol::Transport
        } else {
            Protocol::Legacy
        };
    let trace = headers
        .get(super::graphql::TRACE_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1");
    ws.protocols([TRANSPORT_WS, LEGACY_WS])
        .max_message_size(MAX_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| serve(socket, state, identity, protocol, trace))
}

/// The auth hook: the credentials in `connection_init`'s payload, `{"Authorization":
/// "Bearer <token>"}` (or `authorization`, or `{"token": "<token>"}`), checked like the
/// HTTP header. Without any, the upgrade request's own `Authorization` header counts;
/// without that either, the connection is anonymous (public subscriptions only).
pub async fn on_connection_init(
    state: &HttpState,
    identity: &Identity,
    payload: &Value,
) -> Result<Viewer, String> {
    let field = payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .map(|v| (v, true))
        .or_else(|| payload.get("token").map(|v| (v, false)));
    let principal = match field {
        None | Some((Value::Null, _)) => identity.principal.clone(),
        Some((Value::String(value), is_header)) => {
            let auth = state.app.auth();
            let stores = state.app.stores();
            let checked = if is_header {
                auth.from_header(stores, value).await
            } else {
                auth.authenticate(stores, value).await
            };
            Some(checked.map_err(|err| crate::error::Error::from(err).to_string())?)
        }
        Some(_) => return Err("the credentials must be a string".into()),
    };
    Ok(Viewer {
        principal,
        ip: identity.ip,
    })
}

/// Websocket operations running per client on this instance.
#[derive(Default)]
pub struct ClientOperations(Mutex<HashMap<String, usize>>);

/// One running operation's place in its client's count; given back when dropped.
pub struct OperationPermit {
    tally: Arc<ClientOperations>,
    client: String,
}

impl ClientOperations {
    /// A place for one more operation of `client`, unless it already runs `max`.
    fn acquire(self: &Arc<Self>, client: String, max: usize) -> Option<OperationPermit> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let running = counts.entry(client.clone()).or_default();
        if *running >= max {
            return None;
        }
        *running += 1;
        Some(OperationPermit {
            tally: self.clone(),
            client,
        })
    }

    /// Operations `client` runs now.
    pub fn running(&self, client: &str) -> usize {
        let counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(client).copied().unwrap_or(0)
    }
}

impl Drop for OperationPermit {
    fn drop(&mut self) {
        let mut counts = self.tally.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(running) = counts.get_mut(&self.client) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

/// Whom the per-client operation limit counts: the principal, else the IP.
fn client_key(viewer: &Viewer) -> String {
    match (&viewer.principal, viewer.ip) {
        (Some(p), _) => format!("principal:{}", p.subject),
        (None, Some(ip)) => format!("ip:{ip}"),
        (None, None) => "anonymous".into(),
    }
}

/// An operation refused before it started: the `error` message's payload.
fn refusal(code: &str, message: String, extra: Value) -> Value {
    let mut extensions = json!({ "code": code });
    if let (Some(ext), Value::Object(more)) = (extensions.as_object_mut(), extra) {
        ext.extend(more);
    }
    json!([{ "message": message, "extensions": extensions }])
}

struct Connection {
    state: HttpState,
    identity: Identity,
    protocol: Protocol,
    out: Outbox,
    viewer: Option<Viewer>,
    operations: Arc<Mutex<HashMap<String, AbortHandle>>>,
    /// The upgrade request sent `x-meridian-trace: 1`: every event reports its round trips.
    trace: bool,
}

/// Why a connection is closed.
struct Close(u16, String);

/// Holds a gauge up while it lives.
struct Counted(prometheus::IntGauge);

impl Counted {
    fn new(gauge: prometheus::IntGauge) -> Counted {
        gauge.inc();
        Counted(gauge)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The label an operation counts under in `meridian_subscriptions_active`: a subscription
/// root field of the schema, or the operation's kind (bounded whatever clients send).
fn operation_label(state: &HttpState, request: &async_graphql::Request) -> String {
    use async_graphql::parser::types::{OperationType, Selection};
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
        return "invalid".into();
    };
    let wanted = request.operation_name.as_deref();
    let Some(op) = doc
        .operations
        .iter()
        .find_map(|(name, op)| match (wanted, name) {
            (Some(w), Some(n)) if w == n.as_str() => Some(op),
            (None, _) => Some(op),
            _ => None,
        })
    else {
        return "invalid".into();
    };
    match op.node.ty {
        OperationType::Query => "query".into(),
        OperationType::Mutation => "mutation".into(),
        OperationType::Subscription => op
            .node
            .selection_set
            .node
            .items
            .iter()
            .find_map(|item| match &item.node {
                Selection::Field(f) => Some(f.node.name.node.as_str()),
                _ => None,
            })
            .filter(|name| state.subscription_fields.contains(*name))
            .unwrap_or("other")
            .to_owned(),
    }
}

async fn serve(
    socket: WebSocket,
    state: HttpState,
    identity: Identity,
    protocol: Protocol,
    trace: bool,
) {
    let _open = Counted::new(state.app.metrics().ws_connections().clone());
    // The process waits for this session to send its close frame before it exits.
    let _tracked = state.app.tasks().token();
    let shutdown = state.app.shutdown().clone();
    let (sink, mut incoming) = socket.split();
    let out = Outbox(Arc::new(tokio::sync::Mutex::new(sink)));
    let config = state.app.config().clone();
    let mut conn = Connection {
        state,
        identity,
        protocol,
        out: out.clone(),
        viewer: None,
        operations: Arc::default(),
        trace,
    };
    let init_deadline = tokio::time::sleep(Duration::from_millis(config.ws_init_timeout_ms));
    tokio::pin!(init_deadline);
    let mut keepalive =
        tokio::time::interval(Duration::from_millis(config.ws_keepalive_ms.max(100)));
    keepalive.tick().await;
    // When the connection's credential expires (set once `connection_init` is accepted).
    let expiry = tokio::time::sleep(Duration::from_secs(86_400 * 365));
    tokio::pin!(expiry);
    let mut expires = false;

    let close = loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                break Some(Close(1001, "Meridian is shutting down".into()));
            }
            () = &mut init_deadline, if conn.viewer.is_none() => {
                break Some(Close(4408, "Connection initialisation timeout".into()));
            }
            () = &mut expiry, if expires => {
                break Some(Close(4403, "Forbidden: the credentials have expired".into()));
            }
            _ = keepalive.tick(), if conn.viewer.is_some() => {
                let ping = match protocol {
                    Protocol::Transport => json!({ "type": "ping" }),
                    Protocol::Legacy => json!({ "type": "ka" }),
                };
                // Skipped while a message is being written: the connection is busy anyway.
                let _ = out.try_send(text(&ping)).await;
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Text(body))) => {
                    if let Err(close) = conn.handle(body.as_str()).await {
                        break Some(close);
                    }
                    if !expires {
                        let until = conn.viewer.as_ref().and_then(|v| v.principal.as_ref()?.expires_at);
                        if let Some(until) = until {
                            let left = (until - chrono::Utc::now()).to_std().unwrap_or_default();
                            expiry.as_mut().reset(tokio::time::Instant::now() + left);
                            expires = true;
                        }
                    }
                }
                Some(Ok(Message::Binary(_))) => break Some(Close(4400, "binary messages are not GraphQL messages".into())),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                // A frame over the size limit: 1009, as RFC 6455 says.
                Some(Err(err)) if is_too_long(&err) => {
                    break Some(Close(1009, format!("messages are limited to {MAX_MESSAGE} bytes")))
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break None,
            },
        }
    };
    if let Ok(operations) = conn.operations.lock() {
        operations.values().for_each(AbortHandle::abort);
    }
    if let Some(Close(code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        };
        let closing = out.send(Message::Close(Some(frame)));
        let _ = tokio::time::timeout(Duration::from_secs(5), closing).await;
    }
    drop(conn);
    let _ = tokio::time::timeout(Duration::from_secs(5), out.close()).await;
}

/// The connection's sending half, shared by the session and its operations: each writes
/// its own messages, in turn (the lock is fair), so that an event costs no hop through
/// another task on its way to the socket.
#[derive(Clone)]
struct Outbox(Arc<tokio::sync::Mutex<futures::stream::SplitSink<WebSocket, Message>>>);

impl Outbox {
    /// Writes one message; an error means the connection is gone.
    async fn send(&self, message: Message) -> Result<(), axum::Error> {
        self.0.lock().await.send(message).await
    }

    /// Writes one message unless another is being written.
    async fn try_send(&self, message: Message) -> Result<(), axum::Error> {
        match self.0.try_lock() {
            Ok(mut sink) => sink.send(message).await,
            Err(_) => Ok(()),
        }
    }

    async fn close(&self) {
        let _ = self.0.lock().await.close().await;
    }
}

/// Whether a read failed because a frame or message was over the size limit.
fn is_too_long(err: &axum::Error) -> bool {
    use tungstenite::error::{CapacityError, Error};
    std::error::Error::source(err)
        .and_then(|inner| inner.downcast_ref::<Error>())
        .is_some_and(|inner| matches!(inner, Error::Capacity(CapacityError::MessageTooLong { .. })))
}

/// A `next` (or legacy `data`) message, serialized without building a JSON value first.
#[derive(serde::Serialize)]
struct OperationMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    payload: &'a async_graphql::Response,
}

fn text(value: &Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

impl Connection {
    async fn send(&self, value: Value) {
        let _ = self.out.send(text(&value)).await;
    }

    async fn handle(&mut self, body: &str) -> Result<(), Close> {
        let invalid = |why: &str| Close(4400, why.to_owned());
        let message: Value =
            serde_json::from_str(body).map_err(|_| invalid("the message is not JSON"))?;
        let kind = message
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("the message has no type"))?;
        match (self.protocol, kind) {
            (_, "connection_init") => {
                if self.viewer.is_some() {
                    return Err(Close(4429, "Too many initialisation requests".into()));
                }
                let payload = message.get("payload").cloned().unwrap_or(Value::Null);
                match on_connection_init(&self.state, &self.identity, &payload).await {
                    Ok(viewer) => {
                        self.viewer = Some(viewer);
                        self.send(json!({ "type": "connection_ack" })).await;
                    }
                    Err(reason) => match self.protocol {
                        Protocol::Transport => {
                            return Err(Close(4403, format!("Forbidden: {reason}")))
                        }
                        Protocol::Legacy => {
                            self.send(json!({ "type": "connection_error", "payload": { "message": reason } })).await;
                            return Err(Close(1000, "connection refused".into()));
                        }
                    },
                }
            }
            (Protocol::Transport, "ping") => self.send(json!({ "type": "pong" })).await,
            (Protocol::Transport, "pong") => {}
            (Protocol::Transport, "subscribe") | (Protocol::Legacy, "start") => {
                let Some(viewer) = self.viewer.clone() else {
                    return Err(Close(4401, "Unauthorized".into()));
                };
                let id = message
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| invalid("an operation needs an id"))?;
                let payload = message
                    .get("payload")
                    .cloned()
                    .ok_or_else(|| invalid("an operation needs a payload"))?;
                let request: async_graphql::Request = serde_json::from_value(payload)
                    .map_err(|_| invalid("the payload is not a GraphQL request"))?;
                match self.admit(&viewer).await {
                    Ok(permit) => self.start(id.to_owned(), request.data(viewer), permit)?,
                    Err(errors) => {
                        if let Some(code) = errors[0]["extensions"]["code"].as_str() {
                            self.state.app.metrics().count_error_code(code);
                        }
                        self.send(json!({ "type": "error", "id": id, "payload": errors }))
                            .await;
                    }
                }
            }
            (Protocol::Transport, "complete") | (Protocol::Legacy, "stop") => {
                let id = message
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("complete needs an id"))?;
                let stopped = self
                    .operations
                    .lock()
                    .ok()
                    .and_then(|mut ops| ops.remove(id));
                if let Some(handle) = stopped {
                    handle.abort();
                    if self.protocol == Protocol::Legacy {
                        self.send(json!({ "type": "complete", "id": id })).await;
                    }
                }
            }
            (Protocol::Legacy, "connection_terminate") => {
                return Err(Close(1000, "terminated".into()))
            }
            (_, other) => return Err(invalid(&format!("unknown message type {other:?}"))),
        }
        Ok(())
    }

    /// Whether one more operation may start: the connection's and the client's limits on
    /// running operations, then the rate limits (an operation counts as a request).
    async fn admit(&self, viewer: &Viewer) -> Result<OperationPermit, Value> {
        let config = self.state.app.config();
        let running = self.operations.lock().map_or(0, |ops| ops.len());
        if running >= config.ws_max_operations {
            return Err(refusal(
                "TOO_MANY_OPERATIONS",
                format!(
                    "this connection already runs {} operations; complete one first",
                    config.ws_max_operations
                ),
                json!({ "scope": "connection", "limit": config.ws_max_operations }),
            ));
        }
        let permit = self
            .state
            .ws_clients
            .acquire(client_key(viewer), config.ws_max_client_operations)
            .ok_or_else(|| {
                refusal(
                    "TOO_MANY_OPERATIONS",
                    format!(
                        "you already run {} operations on this server; complete some first",
                        config.ws_max_client_operations
                    ),
                    json!({ "scope": "client", "limit": config.ws_max_client_operations }),
                )
            })?;
        let verdict = ratelimit::check(
            self.state.app.stores(),
            &config.security,
            viewer.principal.as_ref(),
            viewer.ip,
            Count::Requests(1),
        )
        .await;
        if let Verdict::Limited {
            retry_after_secs,
            allowances,
        } = verdict
        {
            return Err(refusal(
                "RATE_LIMITED",
                super::guard::limited_message(retry_after_secs, &allowances),
                json!({ "retryAfter": retry_after_secs }),
            ));
        }
        Ok(permit)
    }

    fn start(
        &self,
        id: String,
        request: async_graphql::Request,
        permit: OperationPermit,
    ) -> Result<(), Close> {
        let mut operations = self
            .operations
            .lock()
            .map_err(|_| Close(1011, "internal error".into()))?;
        if operations.contains_key(&id) {
            return match self.protocol {
                Protocol::Transport => {
                    Err(Close(4409, format!("Subscriber for {id} already exists")))
                }
                Protocol::Legacy => Err(Close(4400, format!("operation {id} is already running"))),
            };
        }
        let schema = self.state.schema.clone();
        // Session data, because the subscription hook runs before the request's own data
        // is attached.
        let mut session = async_graphql::Data::default();
        if self.trace {
            session.insert(crate::graphql::scope::TraceRequested);
        }
        let session = Arc::new(session);
        let metrics = self.state.app.metrics().clone();
        let running = Counted::new(metrics.subscriptions(&operation_label(&self.state, &request)));
        let out = self.out.clone();
        let registry = self.operations.clone();
        let protocol = self.protocol;
        let task_id = id.clone();
        let task = tokio::spawn(async move {
            // Held while the operation runs; aborting the task gives them back too.
            let _permit = permit;
            let _running = running;
            let id = task_id;
            let data_type = if protocol == Protocol::Transport {
                "next"
            } else {
                "data"
            };
            let mut responses = schema.execute_stream_with_session_data(request, session);
            let mut first = true;
            while let Some(mut response) = responses.next().await {
                crate::graphql::guard::ensure_codes(&mut response);
                metrics.count_errors(&response.errors);
                // A request that fails before it starts is an `error` message, not data.
                if first
                    && response.data == async_graphql::Value::Null
                    && !response.errors.is_empty()
                {
                    let errors = serde_json::to_value(&response.errors).unwrap_or(Value::Null);
                    let _ = out
                        .send(text(
                            &json!({ "type": "error", "id": id, "payload": errors }),
                        ))
                        .await;
                    if let Ok(mut ops) = registry.lock() {
                        ops.remove(&id);
                    }
                    return;
                }
                first = false;
                // Written straight from the response: no JSON tree in between.
                let message = OperationMessage {
                    id: &id,
                    kind: data_type,
                    payload: &response,
                };
                let Ok(body) = serde_json::to_string(&message) else {
                    return;
                };
                if out
                    .send(Message::Text(Utf8Bytes::from(body)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if let Ok(mut ops) = registry.lock() {
                ops.remove(&id);
            }
            let _ = out
                .send(text(&json!({ "type": "complete", "id": id })))
                .await;
        });
        operations.insert(id, task.abort_handle());
        Ok(())
    }
}
