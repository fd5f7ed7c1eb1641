//! Subscriptions: the real `graphql-ws` client, several instances on one Redis, channel
//! release, Redis restarts, slow consumers and protocol abuse.

use std::{process::Stdio, time::Duration};

use meridian::{seed, AppState};
use redis::AsyncCommands;
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStdout, Command},
};

use crate::support::{wait_until, PrivateStore, TestEnv, TestServer};

const JS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js");

fn shape() -> seed::Shape {
    seed::Shape {
        users: 10,
        assets: 4,
        days: 1,
        seed: 9,
        end: chrono::Utc::now(),
        platforms: seed::Platforms::TRADING,
    }
}

/// A node script running against Meridian, its stdout read line by line.
struct Script {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

/// The operator's `Authorization` value.
fn operator(server: &TestServer) -> String {
    format!(
        "Bearer {}",
        server.token("operator", &[meridian::auth::Role::Admin])
    )
}

impl Script {
    /// Runs a script; `authorization` (if any) goes in its websocket upgrade request.
    fn start_with(args: &[&str], authorization: Option<&str>) -> Script {
        let mut command = Command::new("node");
        if let Some(value) = authorization {
            command.env("WS_AUTHORIZATION", value);
        }
        let mut child = command
            .args(args)
            .current_dir(JS)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Script { child, lines }
    }

    fn start(args: &[&str]) -> Script {
        Script::start_with(args, None)
    }

    /// Subscribes as the operator (credentials in the connection_init payload).
    fn subscribe(server: &TestServer, query: &str, count: usize) -> Script {
        let url = format!("ws://{}/graphql/ws", server.addr);
        let params = json!({ "Authorization": operator(server) }).to_string();
        Script::start(&["subscribe.mjs", &url, query, &count.to_string(), &params])
    }

    /// Runs raw protocol steps as the operator (credentials on the upgrade request).
    fn raw(server: &TestServer, protocol: &str, steps: Value) -> Script {
        let url = format!("ws://{}/graphql/ws", server.addr);
        Script::start_with(
            &["ws-script.mjs", &url, protocol, &steps.to_string()],
            Some(&operator(server)),
        )
    }

    /// The next line, as JSON (panics after 30 s or at end of output).
    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("the script printed within 30 s")
            .expect("readable")
            .expect("the script printed a line before exiting");
        serde_json::from_str(&line).expect("a JSON line")
    }

    /// Lines until one matches `pred`, which is returned.
    async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = self.next().await;
            if pred(&line) {
                return line;
            }
        }
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Subscribers Redis has for `channel` (from any instance).
async fn redis_subscribers(state: &AppState, channel: &str) -> i64 {
    let mut conn = state.stores().redis().conn();
    // An error (the connection re-forming after a Redis restart) reads as "not yet".
    let counts: Result<Vec<(String, i64)>, _> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut conn)
        .await;
    counts
        .ok()
        .and_then(|c| c.first().map(|c| c.1))
        .unwrap_or(-1)
}

async fn try_ingest(server: &TestServer, symbol: &str, price: f64) -> bool {
    let response = server
        .graphql_with(
            "mutation($t: [PriceTickInput!]!) { ingestPrices(ticks: $t) { accepted } }",
            json!({ "t": [{ "symbol": symbol, "price": price }] }),
            &[],
        )
        .await;
    response["data"]["ingestPrices"]["accepted"] == 1
}

async fn ingest(server: &TestServer, symbol: &str, price: f64) {
    let response = server
        .graphql_with(
            "mutation($t: [PriceTickInput!]!) { ingestPrices(ticks: $t) { accepted } }",
            json!({ "t": [{ "symbol": symbol, "price": price }] }),
            &[],
        )
        .await;
    assert_eq!(
        response["data"]["ingestPrices"]["accepted"], 1,
        "{response}"
    );
}

async fn seeded() -> (TestEnv, AppState) {
    let env = TestEnv::migrated().await;
    env.seed(&shape()).await;
    let state = env.state().await;
    (env, state)
}

#[tokio::test]
async fn graphql_ws_client_receives_prices_and_channels_are_released() {
    let (env, state) = seeded().await;
    let server = env.spawn().await;
    let channel = state.stores().redis().price_channel("BTC");
    let mut client = Script::subscribe(
        &server,
        "subscription { priceUpdated(symbols: [\"btc\"]) { symbol price source } }",
        1,
    );
    assert_eq!(client.next().await["event"], "ready");
    wait_until("the instance to subscribe to the channel", 20, || async {
        redis_subscribers(&state, &channel).await == 1
    })
    .await;
    ingest(&server, "BTC", 72_345.5).await;
    let event = client.until(|l| l["event"] == "next").await;
    assert_eq!(
        event["payload"]["data"]["priceUpdated"],
        json!({ "symbol": "BTC", "price": 72345.5, "source": "REDIS" })
    );
    // The client leaves after one event; the instance releases the channel.
    wait_until("the channel to be released", 20, || async {
        redis_subscribers(&state, &channel).await == 0
    })
    .await;
}

#[tokio::test]
async fn leaderboard_subscribers_see_a_recorded_trade() {
    let (env, state) = seeded().await;
    let server = env.spawn().await;
    let user: String = sqlx::query_scalar("SELECT id::text FROM users ORDER BY username LIMIT 1")
        .fetch_one(state.stores().postgres().pool())
        .await
        .expect("a user");
    let query = "subscription { leaderboardUpdated(name: \"volume\", top: 3) { entries { rank score user { id } } } }";
    let mut client = Script::subscribe(&server, query, 2);
    let initial = client.until(|l| l["event"] == "next").await;
    assert_eq!(
        initial["payload"]["data"]["leaderboardUpdated"]["entries"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    let channel = state.stores().redis().leaderboard_channel("volume", "");
    wait_until("the leaderboard channel subscription", 20, || async {
        redis_subscribers(&state, &channel).await == 1
    })
    .await;
    let trade = server
        .graphql_with(
            "mutation($i: RecordTradeInput!) { recordTrade(input: $i) { id } }",
            json!({ "i": { "userId": user, "txHash": format!("0x{}", "7".repeat(64)), "symbol": "BTC", "side": "BUY", "quantity": 1000.0, "price": 100000.0 } }),
            &[],
        )
        .await;
    assert!(trade["errors"].is_null(), "{trade}");
    let update = client.until(|l| l["event"] == "next").await;
    let top = &update["payload"]["data"]["leaderboardUpdated"]["entries"][0];
    assert_eq!(
        top["user"]["id"],
        json!(user),
        "the big trade puts the user on top: {update}"
    );
    let score: f64 = state
        .stores()
        .redis()
        .conn()
        .zscore(state.stores().redis().leaderboard_key("volume", ""), &user)
        .await
        .expect("score");
    let pushed = top["score"].as_f64().expect("score");
    assert!(
        (pushed - score).abs() <= score.abs() * 1e-12,
        "pushed {pushed}, redis {score}"
    );
}

#[tokio::test]
async fn a_write_on_one_instance_reaches_a_subscriber_on_another() {
    let (env, state) = seeded().await;
    let (a, b) = (env.spawn().await, env.spawn().await);
    let mut client = Script::subscribe(
        &b,
        "subscription { tradeExecuted { txHash quantity asset { symbol } } }",
        1,
    );
    assert_eq!(client.next().await["event"], "ready");
    let channel = state.stores().redis().trades_channel();
    wait_until("instance B to subscribe", 20, || async {
        redis_subscribers(&state, &channel).await >= 1
    })
    .await;
    let user: String = sqlx::query_scalar("SELECT id::text FROM users LIMIT 1")
        .fetch_one(state.stores().postgres().pool())
        .await
        .expect("user");
    let hash = format!("0x{}", "5".repeat(64));
    a.graphql_with(
        "mutation($i: RecordTradeInput!) { recordTrade(input: $i) { id } }",
        json!({ "i": { "userId": user, "txHash": hash, "symbol": "ETH", "side": "BUY", "quantity": 2.0, "price": 3000.0 } }),
        &[],
    )
    .await;
    let event = client.until(|l| l["event"] == "next").await;
    let trade = &event["payload"]["data"]["tradeExecuted"];
    assert_eq!(trade["txHash"], json!(hash));
    assert_eq!(trade["quantity"].as_f64(), Some(2.0));
    assert_eq!(trade["asset"]["symbol"], "ETH");
}

#[tokio::test]
async fn streams_resume_after_redis_restarts() {
    let redis = PrivateStore::start("redis");
    let env = TestEnv::migrated_with(|c| c.redis_url = redis.url()).await;
    env.seed(&shape()).await;
    let state = env.state().await;
    let server = env.spawn().await;
    let channel = state.stores().redis().price_channel("ETH");
    let mut client = Script::subscribe(
        &server,
        "subscription { priceUpdated(symbols: [\"ETH\"]) { price } }",
        2,
    );
    assert_eq!(client.next().await["event"], "ready");
    wait_until("the subscription", 20, || async {
        redis_subscribers(&state, &channel).await == 1
    })
    .await;
    ingest(&server, "ETH", 1111.0).await;
    assert_eq!(
        client.until(|l| l["event"] == "next").await["payload"]["data"]["priceUpdated"]["price"],
        1111.0
    );

    redis.down();
    redis.up();
    // The instance resubscribes by itself; the client never reconnects.
    wait_until("the resubscription", 30, || async {
        redis_subscribers(&state, &channel).await == 1
    })
    .await;
    // The first write after a restart may meet the old connection (STORE_UNAVAILABLE);
    // the connection manager reconnects and the next one goes through.
    wait_until("an ingest to go through", 30, || async {
        try_ingest(&server, "ETH", 2222.0).await
    })
    .await;
    assert_eq!(
        client.until(|l| l["event"] == "next").await["payload"]["data"]["priceUpdated"]["price"],
        2222.0
    );
}

/// A client frame: text, masked (with a zero key, which servers must accept).
fn client_frame(text: &str) -> Vec<u8> {
    let len = text.len();
    let mut frame = vec![0x81];
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(text.as_bytes());
    frame
}

/// Reads from `stream` until `needle` has been seen.
async fn read_until(stream: &mut tokio::net::TcpStream, seen: &mut Vec<u8>, needle: &[u8]) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    while !seen.windows(needle.len()).any(|w| w == needle) {
        let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf))
            .await
            .expect("the server answered")
            .expect("read");
        assert!(n > 0, "the server closed the connection");
        seen.extend_from_slice(&buf[..n]);
    }
}

// Multi-threaded: the publisher, the fan-out and the connection run side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_at_its_bound() {
    use tokio::io::AsyncWriteExt;
    let (_env, state) = seeded().await;
    let server = TestServer::start(state.clone()).await;
    // A websocket client with a tiny receive buffer that stops reading after subscribing.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let mut stream = socket.connect(server.addr).await.expect("connect");
    let handshake = format!(
        "GET /graphql/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: graphql-transport-ws\r\nAuthorization: {}\r\n\r\n",
        server.addr,
        operator(&server)
    );
    stream
        .write_all(handshake.as_bytes())
        .await
        .expect("handshake");
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, b"\r\n\r\n").await;
    assert!(
        seen.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    stream
        .write_all(&client_frame(r#"{"type":"connection_init"}"#))
        .await
        .expect("init");
    read_until(&mut stream, &mut seen, b"connection_ack").await;
    let subscribe = r#"{"type":"subscribe","id":"1","payload":{"query":"subscription { tradeExecuted { id txHash side quantity price notional executedAt } }"}}"#;
    stream
        .write_all(&client_frame(subscribe))
        .await
        .expect("subscribe");
    let channel = state.stores().redis().trades_channel();
    wait_until("the subscription", 20, || async {
        redis_subscribers(&state, &channel).await == 1
    })
    .await;

    // Publish far more than the socket buffers, the connection's queue and the
    // subscriber's 256-event buffer hold: the subscriber must be dropped, not buffered.
    let event = json!({
        "eventId": uuid::Uuid::nil(), "tradeId": uuid::Uuid::nil(), "txHash": format!("0x{}", "1".repeat(64)),
        "userId": uuid::Uuid::nil(), "symbol": "BTC", "side": "buy", "quantity": 1.0, "price": 1.0,
        "executedAt": "2026-01-01T00:00:00Z",
    })
    .to_string();
    let mut conn = state.stores().redis().conn();
    let mut published = 0;
    while state.fanout().overflows() == 0 {
        assert!(
            published < 100_000,
            "published {published} events and the subscriber was never dropped"
        );
        let mut pipe = redis::pipe();
        for _ in 0..100 {
            pipe.publish(&channel, &event).ignore();
        }
        let _: () = pipe.query_async(&mut conn).await.expect("publish");
        published += 100;
    }
    assert_eq!(state.fanout().overflows(), 1);
    // The laggard is gone from the fan-out, and the instance left the channel.
    wait_until("the channel to be released", 20, || async {
        redis_subscribers(&state, &channel).await == 0
    })
    .await;
    assert!(state.fanout().channels().iter().all(|(c, _)| c != &channel));
    drop(stream);
}

#[tokio::test]
async fn protocol_abuse_gets_the_spec_close_codes_and_others_keep_being_served() {
    let env = TestEnv::migrated_with(|c| {
        c.ws_init_timeout_ms = 300;
        c.ws_keepalive_ms = 200;
    })
    .await;
    let server = env.spawn().await;
    let init = json!({ "send": { "type": "connection_init" } });
    let ack = json!({ "wait": "connection_ack" });
    let subscribe = |id: &str| json!({ "send": { "type": "subscribe", "id": id, "payload": { "query": "subscription { tradeExecuted { txHash } }" } } });
    let cases = [
        (
            "subscribe before connection_ack",
            json!([subscribe("1")]),
            4401,
        ),
        (
            "a duplicate operation id",
            json!([init, ack, subscribe("1"), subscribe("1")]),
            4409,
        ),
        ("no connection_init in time", json!([]), 4408),
        (
            "a garbage frame",
            json!([{ "send": "this is not json" }]),
            4400,
        ),
        (
            "an unknown message type",
            json!([init, ack, { "send": { "type": "bogus" } }]),
            4400,
        ),
        ("a second connection_init", json!([init, ack, init]), 4429),
        (
            "a subscribe without an id",
            json!([init, ack, { "send": { "type": "subscribe", "payload": { "query": "{ __typename }" } } }]),
            4400,
        ),
        (
            "connection_init refused by the auth hook",
            json!([{ "send": { "type": "connection_init", "payload": { "Authorization": 42 } } }]),
            4403,
        ),
    ];
    for (what, steps, code) in cases {
        let mut script = Script::raw(&server, "graphql-transport-ws", steps);
        let closed = script.until(|l| l.get("close").is_some()).await;
        assert_eq!(closed["close"], code, "{what}: {closed}");
        // The server still serves others.
        let health = server.graphql("{ __typename }").await;
        assert_eq!(health["data"]["__typename"], "Query", "{what}");
    }

    // Keepalive: an acknowledged connection gets pings, answers a ping with a pong, and a
    // query runs over the socket.
    let mut script = Script::raw(
        &server,
        "graphql-transport-ws",
        json!([
            init, ack,
            { "send": { "type": "ping" } },
            { "send": { "type": "subscribe", "id": "q", "payload": { "query": "{ __typename }" } } },
        ]),
    );
    script.until(|l| l["message"]["type"] == "pong").await;
    let next = script.until(|l| l["message"]["type"] == "next").await;
    assert_eq!(next["message"]["payload"]["data"]["__typename"], "Query");
    script
        .until(|l| l["message"]["type"] == "complete" && l["message"]["id"] == "q")
        .await;
    script.until(|l| l["message"]["type"] == "ping").await;
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_works() {
    let env = TestEnv::migrated_with(|c| c.ws_keepalive_ms = 200).await;
    let server = env.spawn().await;
    let mut script = Script::raw(
        &server,
        "graphql-ws",
        json!([
            { "send": { "type": "connection_init", "payload": {} } },
            { "wait": "connection_ack" },
            { "send": { "type": "start", "id": "a", "payload": { "query": "{ __typename }" } } },
            { "wait": "complete" },
            { "send": { "type": "start", "id": "b", "payload": { "query": "subscription { tradeExecuted { txHash } }" } } },
            { "send": { "type": "stop", "id": "b" } },
            { "wait": "complete" },
            { "wait": "ka" },
            { "send": { "type": "connection_terminate" } },
        ]),
    );
    let data = script.until(|l| l["message"]["type"] == "data").await;
    assert_eq!(data["message"]["payload"]["data"]["__typename"], "Query");
    let stopped = script
        .until(|l| l["message"]["type"] == "complete" && l["message"]["id"] == "b")
        .await;
    assert_eq!(stopped["message"]["id"], "b");
    script.until(|l| l["message"]["type"] == "ka").await;
    script.until(|l| l.get("close").is_some()).await;
}

#[tokio::test]
async fn the_demo_feed_writes_ticks_and_trades_through_the_real_paths() {
    let (env, state) = seeded().await;
    let server = env.spawn().await;
    let channel = state.stores().redis().price_channel("BTC");
    let mut client = Script::subscribe(
        &server,
        "subscription { priceUpdated(symbols: [\"BTC\"]) { price } }",
        1,
    );
    assert_eq!(client.next().await["event"], "ready");
    wait_until("the subscription", 20, || async {
        redis_subscribers(&state, &channel).await == 1
    })
    .await;
    let trades_before: i64 = sqlx::query_scalar("SELECT count(*) FROM trades")
        .fetch_one(state.stores().postgres().pool())
        .await
        .expect("count");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let rates = meridian::simulate::Rates {
        ticks_per_sec: 400.0,
        trades_per_sec: 40.0,
        events_per_sec: 0.0,
    };
    let feed = tokio::spawn(meridian::simulate::run(state.clone(), rates, async {
        let _ = stopped.await;
    }));
    // A subscriber sees a simulated price; trades land in Postgres and the outbox drains.
    let event = client.until(|l| l["event"] == "next").await;
    assert!(
        event["payload"]["data"]["priceUpdated"]["price"]
            .as_f64()
            .is_some_and(|p| p > 0.0),
        "{event}"
    );
    wait_until("simulated trades", 20, || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM trades")
            .fetch_one(state.stores().postgres().pool())
            .await
            .expect("count");
        n > trades_before
    })
    .await;
    let _ = stop.send(());
    feed.await.expect("join").expect("the feed stops cleanly");
    wait_until("the outbox to drain", 30, || async {
        crate::support::pending(&state, "clickhouse").await
            + crate::support::pending(&state, "redis").await
            == 0
    })
    .await;
    let report = meridian::reconcile::check(state.stores())
        .await
        .expect("reconcile");
    assert!(report.is_clean(), "{:?}", report.lines());
}

#[tokio::test]
async fn graphiql_in_a_real_browser_receives_a_subscription() {
    crate::support::require_chromium();
    let (env, state) = seeded().await;
    let server = env.spawn().await;
    let url = server.url("/graphql");
    let mut browser = Script::start(&[
        "graphiql-subscription.mjs",
        &url,
        "subscription { priceUpdated(symbols: [\"SOL\"]) { symbol price } }",
        "4242.125",
    ]);
    assert_eq!(browser.next().await["event"], "running");
    let channel = state.stores().redis().price_channel("SOL");
    wait_until("the page's subscription to reach Redis", 30, || async {
        redis_subscribers(&state, &channel).await == 1
    })
    .await;
    ingest(&server, "SOL", 4242.125).await;
    assert_eq!(
        browser.next().await["event"],
        "seen",
        "the page showed the new price"
    );
}

#[tokio::test]
async fn websocket_credentials_decide_whose_trades_a_client_may_follow() {
    let (_env, state) = seeded().await;
    let server = TestServer::start(state.clone()).await;
    let ids: Vec<String> = sqlx::query_scalar("SELECT id::text FROM users ORDER BY id LIMIT 2")
        .fetch_all(state.stores().postgres().pool())
        .await
        .expect("users");
    let (alice, bob) = (&ids[0], &ids[1]);
    let url = format!("ws://{}/graphql/ws", server.addr);
    let alice_bearer = format!("Bearer {}", crate::support::user_token(&state, alice));
    let trades = |id: &str, user: Option<&str>| {
        let args = user.map_or_else(String::new, |u| format!("(userId: \"{u}\")"));
        json!({ "send": { "type": "subscribe", "id": id, "payload": { "query": format!("subscription {{ tradeExecuted{args} {{ txHash }} }}") } } })
    };
    // Credentials in connection_init (no header on the upgrade request).
    let steps = json!([
        { "send": { "type": "connection_init", "payload": { "Authorization": alice_bearer } } },
        { "wait": "connection_ack" },
        trades("other", Some(bob)),
        trades("own", None),
    ]);
    let mut script = Script::start(&[
        "ws-script.mjs",
        &url,
        "graphql-transport-ws",
        &steps.to_string(),
    ]);
    let refused = script
        .until(|l| l["message"]["id"] == "other" && l["message"]["type"] != "complete")
        .await;
    assert!(
        refused.to_string().contains("FORBIDDEN"),
        "another user's trades: {refused}"
    );
    // Her own trades (the default) are fine: a trade of hers arrives.
    let hash = format!("0x{}", "ab".repeat(32));
    let recorded = server
        .graphql_with(
            "mutation($u: ID!, $h: String!) { recordTrade(input: { userId: $u, txHash: $h, symbol: \"BTC\", side: BUY, quantity: 1, price: 10 }) { id } }",
            json!({ "u": alice, "h": hash }),
            &[],
        )
        .await;
    assert!(
        recorded["data"]["recordTrade"]["id"].is_string(),
        "{recorded}"
    );
    let own = script
        .until(|l| l["message"]["id"] == "own" && l["message"]["type"] == "next")
        .await;
    assert_eq!(
        own["message"]["payload"]["data"]["tradeExecuted"]["txHash"],
        hash.as_str(),
        "{own}"
    );

    // Without credentials: UNAUTHENTICATED; with a bad token: closed with 4403.
    let steps = json!([
        { "send": { "type": "connection_init" } },
        { "wait": "connection_ack" },
        trades("1", None),
    ]);
    let mut anonymous = Script::start(&[
        "ws-script.mjs",
        &url,
        "graphql-transport-ws",
        &steps.to_string(),
    ]);
    let answer = anonymous
        .until(|l| l["message"]["id"] == "1" && l["message"]["type"] != "complete")
        .await;
    assert!(answer.to_string().contains("UNAUTHENTICATED"), "{answer}");
    let steps = json!([
        { "send": { "type": "connection_init", "payload": { "Authorization": "Bearer not-a-token" } } },
    ]);
    let mut bad = Script::start(&[
        "ws-script.mjs",
        &url,
        "graphql-transport-ws",
        &steps.to_string(),
    ]);
    let closed = bad.until(|l| l.get("close").is_some()).await;
    assert_eq!(closed["close"], 4403, "{closed}");
}

#[tokio::test]
async fn graphiql_works_for_a_newcomer_with_no_console_errors() {
    crate::support::require_chromium();
    let (env, _state) = seeded().await;
    let server = env.spawn().await;
    let mut browser = Script::start(&["graphiql-newcomer.mjs", &server.url("/graphql")]);
    let found = browser.next().await;
    assert!(found["failed"].is_null(), "{found}");
    assert_eq!(found["consoleErrors"], json!([]), "{found}");
    for field in ["me", "users", "asset", "leaderboard", "health"] {
        assert!(
            found["queryFields"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == field)),
            "the docs explorer lacks {field}: {found}"
        );
    }
    assert!(
        found["hints"]
            .as_array()
            .is_some_and(|h| h.iter().any(|x| x == "users")),
        "{found}"
    );
    assert!(
        found["defaultQuery"]
            .as_str()
            .is_some_and(|q| q.contains("health")),
        "{found}"
    );
    assert!(
        found["credentialsNote"]
            .as_str()
            .is_some_and(|n| n.contains("Authorization")),
        "{found}"
    );
    assert!(
        found["headersAfterReload"]
            .as_str()
            .is_some_and(|h| h.contains("x-meridian-trace")),
        "a header typed in the Headers tab survives a reload: {found}"
    );
}

#[tokio::test]
async fn the_reference_dashboard_updates_live_with_no_console_errors() {
    crate::support::require_chromium();
    let (env, state) = seeded().await;
    let server = env.spawn().await;
    let admin = server.token("ops", &[meridian::auth::Role::Admin]);
    let url = format!("{}#token={admin}", server.url("/dashboard"));
    let mut browser = Script::start(&["dashboard.mjs", &url, "4,242.125"]);
    let ready = browser.next().await;
    assert_eq!(ready["event"], "ready", "{ready}");
    assert!(ready["rows"].as_u64().unwrap_or(0) >= 3, "{ready}");
    assert!(ready["sparklines"].as_u64().unwrap_or(0) >= 3, "{ready}");
    assert!(ready["board"].as_u64().unwrap_or(0) >= 1, "{ready}");
    assert!(ready["positions"].as_u64().unwrap_or(0) >= 1, "{ready}");
    // Once the page's price subscription reaches Redis, a price reaches the page live.
    let channel = state.stores().redis().price_channel("SOL");
    wait_until(
        "the page's price subscription to reach Redis",
        30,
        || async { redis_subscribers(&state, &channel).await == 1 },
    )
    .await;
    ingest(&server, "SOL", 4242.125).await;
    let updated = browser.next().await;
    assert_eq!(updated["event"], "updated", "{updated}");
    assert_eq!(updated["changed"], true, "{updated}");
    assert_eq!(updated["consoleErrors"], json!([]), "{updated}");
}
