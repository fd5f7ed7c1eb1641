//! The fan-out floor: the least a websocket broadcaster must do to deliver what Meridian's
//! `tradeExecuted` delivers. One Redis subscription to the same channel; each published
//! trade is parsed once and its `next` message (the same bytes Meridian sends) is built
//! once per subscription id and shared by every connection; each connection speaks just
//! enough graphql-transport-ws (`connection_init`, `subscribe`, `ping`) to be served by
//! the same client. No GraphQL, no auth, no limits.
//!
//! The bench runs it as a process of its own (its own executable, with
//! `FANOUT_FLOOR_LISTEN` set), so that its CPU and memory are measured like Meridian's.

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::{
    handshake::server::{Request, Response},
    http::HeaderValue,
    protocol::WebSocketConfig,
    Message, Utf8Bytes,
};

/// Most subscription ids one connection uses (the bench's ids are "1" to "8").
const MAX_IDS: usize = 8;
/// Events a connection may fall behind before it misses some (Meridian's queue holds 256).
const BACKLOG: usize = 256;

/// One event's `next` message for each subscription id ("1" is index 0).
type Frames = Arc<Vec<Utf8Bytes>>;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Trade {
    tx_hash: String,
}

/// Serves until killed.
pub async fn serve(listen: &str, redis_url: &str, channel: &str) -> anyhow::Result<()> {
    let (events, _) = broadcast::channel::<Frames>(BACKLOG);
    let client = redis::Client::open(redis_url)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    let sender = events.clone();
    tokio::spawn(async move {
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            let Ok(trade) = serde_json::from_str::<Trade>(&payload) else {
                continue;
            };
            let frames = (1..=MAX_IDS)
                .map(|id| {
                    let next = serde_json::json!({
                        "id": id.to_string(),
                        "type": "next",
                        "payload": { "data": { "tradeExecuted": { "txHash": trade.tx_hash } } },
                    });
                    Utf8Bytes::from(next.to_string())
                })
                .collect();
            let _ = sender.send(Arc::new(frames));
        }
    });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let events = events.subscribe();
        tokio::spawn(async move {
            let _ = connection(stream, events).await;
        });
    }
}

// The handshake callback's error is tungstenite's own (large) response type.
#[allow(clippy::result_large_err)]
async fn connection(
    stream: tokio::net::TcpStream,
    mut events: broadcast::Receiver<Frames>,
) -> anyhow::Result<()> {
    // The same socket buffers as Meridian's (src/http/ws.rs).
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024);
    let protocol = |_: &Request, mut response: Response| {
        response.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        Ok(response)
    };
    let socket =
        tokio_tungstenite::accept_hdr_async_with_config(stream, protocol, Some(config)).await?;
    let (mut sink, mut incoming) = socket.split();
    let mut ids: Vec<usize> = Vec::new();
    loop {
        tokio::select! {
            message = incoming.next() => {
                let Some(Ok(message)) = message else { return Ok(()) };
                let Ok(text) = message.to_text() else { continue };
                if text.contains("\"connection_init\"") {
                    sink.send(Message::text(r#"{"type":"connection_ack"}"#)).await?;
                } else if text.contains("\"ping\"") {
                    sink.send(Message::text(r#"{"type":"pong"}"#)).await?;
                } else if text.contains("\"subscribe\"") {
                    let value: serde_json::Value = serde_json::from_str(text)?;
                    let id = value["id"].as_str().and_then(|id| id.parse::<usize>().ok());
                    if let Some(id) = id.filter(|id| (1..=MAX_IDS).contains(id)) {
                        // New subscribers get events from now on, as Meridian's do.
                        events = events.resubscribe();
                        ids.push(id - 1);
                    }
                }
            }
            event = events.recv(), if !ids.is_empty() => match event {
                Ok(frames) => {
                    for id in &ids {
                        sink.feed(Message::Text(frames[*id].clone())).await?;
                    }
                    sink.flush().await?;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
        }
    }
}
