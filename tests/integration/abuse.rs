//! Clients that try to take Meridian down or degrade it for others: fragment bombs,
//! subscription floods, websocket operations past the rate limits, data that a store
//! refuses, role confusion, unbounded numbers, slow headers and bodies, expired sockets,
//! batches, and retried ingests. Each case ends with another client still served.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use meridian::auth::Role;
use meridian::store::mongo::{Preferences, ProfilePatch};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

use crate::support::{
    error_codes, fragment_bomb, small_shape, token_for, user_token, wait_until, TestEnv, TestServer,
};

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The id of the seeded users' first.
async fn first_user(server: &TestServer) -> String {
    sqlx::query_scalar("SELECT id::text FROM users ORDER BY id LIMIT 1")
        .fetch_one(server.state.stores().postgres().pool())
        .await
        .expect("a user")
}

/// The resident set of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// A graphql-transport-ws connection past `connection_ack`.
pub(crate) async fn open_socket(port: u16, payload: Value) -> Socket {
    let mut request = format!("ws://127.0.0.1:{port}/graphql/ws")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connected");
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": payload }),
    )
    .await;
    let ack = next_json(&mut socket).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

pub(crate) async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("sent");
}

/// The next JSON message (a client deadline keeps a hang from stalling the test).
pub(crate) async fn next_json(socket: &mut Socket) -> Value {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str()).expect("JSON")
                }
                Some(Ok(Message::Close(frame))) => {
                    return json!({ "closed": frame.map(|f| u16::from(f.code)) })
                }
                Some(Ok(_)) => continue,
                other => panic!("socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a message within the client deadline")
}

/// Every message up to the `pong` answering a `ping` sent now: messages are handled in
/// order, so the replies to everything sent before the ping come before its pong.
async fn drain(socket: &mut Socket) -> Vec<Value> {
    send(socket, json!({ "type": "ping" })).await;
    let mut seen = Vec::new();
    loop {
        let message = next_json(socket).await;
        if message["type"] == "pong" {
            return seen;
        }
        seen.push(message);
    }
}

fn price_subscribe(id: &str) -> Value {
    json!({ "type": "subscribe", "id": id, "payload": {
        "query": "subscription { priceUpdated(symbols: [\"BTC\", \"ETH\"]) { symbol price } }"
    } })
}

/// The operation refusals among `messages`: (code, scope).
fn refusals(messages: &[Value]) -> Vec<(String, String)> {
    messages
        .iter()
        .filter(|m| m["type"] == "error")
        .map(|m| {
            let ext = &m["payload"][0]["extensions"];
            (
                ext["code"].as_str().unwrap_or_default().to_owned(),
                ext["scope"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A `meridian serve` process over `env` with `edit` applied, listening.
async fn serve_process(
    env: &TestEnv,
    edit: impl FnOnce(&mut meridian::Config),
) -> (crate::support::Spawned, u16) {
    let mut config = env.config.clone();
    edit(&mut config);
    crate::support::serve_listening(&config, &[], std::process::Stdio::null()).await
}

async fn post(client: &reqwest::Client, port: u16, body: Value) -> (u16, Value) {
    let response = client
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .json(&body)
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn fragment_bombs_are_refused_before_anything_expands_them() {
    let env = TestEnv::migrated().await;
    env.seed(&small_shape()).await;
    let (mut child, port) = serve_process(&env, |_| {}).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let rss_before = rss_kib(child.id());
    let bombs = [
        ("__typename", fragment_bomb(30, "__typename")),
        ("health", fragment_bomb(30, "health { status }")),
        (
            "nested",
            fragment_bomb(30, "asset(symbol: \"BTC\") { symbol name }"),
        ),
    ];
    for (what, document) in &bombs {
        assert!(
            document.len() < 2048,
            "a small document: {}",
            document.len()
        );
        // Two bombs at once, and an ordinary query from another client beside them.
        let started = Instant::now();
        let (a, b, ordinary) = tokio::join!(
            post(&client, port, json!({ "query": document })),
            post(&client, port, json!({ "query": document })),
            post(
                &client,
                port,
                json!({ "query": "{ asset(symbol: \"BTC\") { name } }" })
            ),
        );
        let elapsed = started.elapsed();
        for (status, body) in [a, b] {
            assert_eq!(status, 200, "{what}: {body}");
            assert_eq!(error_codes(&body), ["QUERY_TOO_COMPLEX"], "{what}: {body}");
            assert!(body["data"].is_null(), "{what}: {body}");
        }
        assert_eq!(
            ordinary.1["data"]["asset"]["name"], "Bitcoin",
            "{ordinary:?}"
        );
        println!("fragment bomb ({what}, 30 levels, 2^30 fields): refused in {elapsed:?}");
    }
    // A fragment cycle is a validation error, found without following it.
    let (_, cycle) = post(
        &client,
        port,
        json!({ "query": "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }" }),
    )
    .await;
    assert_eq!(
        error_codes(&cycle),
        ["GRAPHQL_VALIDATION_FAILED"],
        "{cycle}"
    );
    let rss_after = rss_kib(child.id());
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    println!("fragment bombs: RSS {rss_before} -> {rss_after} KiB");
    child.kill().expect("stopped");
}

#[tokio::test]
async fn subscription_floods_are_bounded_per_connection_and_per_client() {
    let env = TestEnv::migrated().await;
    env.seed(&small_shape()).await;
    let (mut child, port) = serve_process(&env, |c| {
        c.ws_max_operations = 100;
        c.ws_max_client_operations = 250;
    })
    .await;
    let client = reqwest::Client::new();
    let metrics = || async {
        client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    };
    let postgres_calls = |text: &str| -> f64 {
        text.lines()
            .filter(|l| {
                // The relay's outbox polls run on their own clock; count the rest.
                l.starts_with("meridian_store_requests_total")
                    && l.contains("store=\"postgres\"")
                    && !l.contains("op=\"outbox_")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let rss_before = rss_kib(child.id());
    let calls_before = postgres_calls(&metrics().await);

    // Four anonymous sockets from one address, 150 subscribes each, one socket at a time.
    let mut sockets = Vec::new();
    let mut outcomes = Vec::new();
    for s in 0..4 {
        let mut socket = open_socket(port, Value::Null).await;
        for i in 0..150 {
            send(&mut socket, price_subscribe(&format!("{s}-{i}"))).await;
        }
        outcomes.push(refusals(&drain(&mut socket).await));
        sockets.push(socket);
    }
    let count = |o: &[(String, String)], scope: &str| {
        o.iter()
            .filter(|(code, sc)| code == "TOO_MANY_OPERATIONS" && sc == scope)
            .count()
    };
    // 100 run on each of the first two; the third reaches the client's 250; the fourth
    // runs none.
    let expected = [(50, 0), (50, 0), (0, 100), (0, 150)];
    for (s, (o, want)) in outcomes.iter().zip(expected).enumerate() {
        let got = (count(o, "connection"), count(o, "client"));
        assert_eq!(got, want, "socket {s}: refusals by (connection, client)");
    }
    for o in &outcomes {
        assert_eq!(
            o.len(),
            count(o, "connection") + count(o, "client"),
            "{o:?}"
        );
    }

    // Starting 250 price subscriptions cost PostgreSQL at most the one catalogue load.
    let calls_after = postgres_calls(&metrics().await);
    assert!(
        calls_after - calls_before <= 1.0,
        "{} PostgreSQL calls for 600 subscribes",
        calls_after - calls_before
    );
    // Others are served, the stores are ready, and memory stayed bounded.
    let ready = client
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    let (_, answer) = post(
        &client,
        port,
        json!({ "query": "{ users(first: 2) { edges { node { username } } } }" }),
    )
    .await;
    assert!(answer["errors"].is_null(), "{answer}");
    let rss_after = rss_kib(child.id());
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );

    // Closing the sockets gives their places back.
    drop(sockets);
    wait_until(
        "closed sockets to give back their operations",
        30,
        || async {
            let mut socket = open_socket(port, Value::Null).await;
            send(&mut socket, price_subscribe("again")).await;
            refusals(&drain(&mut socket).await).is_empty()
        },
    )
    .await;
    println!(
        "subscription flood: 600 subscribes, 250 running; PostgreSQL calls +{}; RSS {rss_before} -> {rss_after} KiB",
        calls_after - calls_before
    );
    child.kill().expect("stopped");
}

#[tokio::test]
async fn websocket_operations_count_against_the_rate_limits() {
    let env = TestEnv::migrated_with(|c| {
        c.security.rate_limit_ip = 20;
        c.security.rate_limit_window_secs = 60;
    })
    .await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    // The upgrade is one request; 40 operations follow on the one socket.
    let mut socket = open_socket(server.addr.port(), Value::Null).await;
    for i in 0..40 {
        let query = if i % 2 == 0 {
            "{ __typename }"
        } else {
            "mutation { logout }"
        };
        send(
            &mut socket,
            json!({ "type": "subscribe", "id": format!("q{i}"), "payload": { "query": query } }),
        )
        .await;
    }
    let mut answered = 0;
    let mut limited = 0;
    let mut completed = 0;
    while completed + limited < 40 {
        let message = next_json(&mut socket).await;
        match message["type"].as_str() {
            Some("next") => answered += 1,
            Some("complete") => completed += 1,
            Some("error") => {
                let code = &message["payload"][0]["extensions"]["code"];
                if code == "RATE_LIMITED" {
                    limited += 1;
                } else {
                    // An operation that ran and failed on its own (logout anonymously).
                    completed += 1;
                }
            }
            _ => panic!("unexpected {message}"),
        }
    }
    assert_eq!(limited, 21, "20 allowed, one of them the upgrade");
    assert!(answered <= 19, "{answered} answered");
    // HTTP from the same address shares the exhausted allowance.
    let response = server
        .anonymous
        .post(server.url("/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn data_a_store_refuses_never_opens_its_breaker() {
    let env = TestEnv::migrated().await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    let user = first_user(&server).await;
    let token = user_token(&server.state, &user);
    // Refused at the edge, as the user's own mistake.
    for _ in 0..10 {
        let (_, body) = server
            .graphql_as(
                Some(&token),
                "mutation($p: JSON!) { updateProfile(input: { preferences: $p }) { bio } }",
                json!({ "p": { "a\u{0}b": 1 } }),
            )
            .await;
        assert_eq!(error_codes(&body), ["BAD_USER_INPUT"], "{body}");
    }
    // Past the edge, the driver's own refusal is not an outage either.
    let stores = server.state.stores();
    for _ in 0..10 {
        let preferences = Preferences::from_json(&json!({ "a\u{0}b": 1 })).expect("an object");
        let patch = ProfilePatch {
            preferences: Some(preferences),
            ..ProfilePatch::default()
        };
        let result = stores.mongo().upsert_profile(&user, &patch, "x").await;
        let err = result.expect_err("MongoDB cannot store a key with NUL");
        assert_eq!(err.code(), "INTERNAL", "{err:?}");
    }
    assert!(!stores.circuit_open(meridian::store::StoreKind::Mongo));
    let profiles = server
        .anonymous
        .post(server.url("/graphql"))
        .json(&json!({ "query": "{ users(first: 5) { edges { node { profile { displayName } } } } }" }))
        .send()
        .await
        .expect("answered")
        .json::<Value>()
        .await
        .expect("JSON");
    assert!(profiles["errors"].is_null(), "{profiles}");
}

#[tokio::test]
async fn roles_decide_and_tokens_not_yet_valid_are_refused() {
    let env = TestEnv::migrated().await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    let user = first_user(&server).await;
    // A service token named after a user is not that user.
    let service = token_for(&server.state, &user, &[Role::Service]);
    let (_, read) = server
        .graphql_as(
            Some(&service),
            "query($id: ID!) { user(id: $id) { holdings { quantity } portfolioValue profile { preferences } } }",
            json!({ "id": user }),
        )
        .await;
    let codes = error_codes(&read);
    assert_eq!(codes, ["FORBIDDEN", "FORBIDDEN", "FORBIDDEN"], "{read}");
    assert!(read["data"]["user"]["holdings"].is_null(), "{read}");
    let (_, write) = server
        .graphql_as(
            Some(&service),
            "mutation($id: ID!) { updateProfile(userId: $id, input: { bio: \"pwned\" }) { bio } }",
            json!({ "id": user }),
        )
        .await;
    assert_eq!(error_codes(&write), ["FORBIDDEN"], "{write}");
    let (_, me) = server
        .graphql_as(Some(&service), "{ me { id } }", json!({}))
        .await;
    assert!(me["data"]["me"].is_null(), "{me}");

    // `nbf` an hour ahead: refused now, with the reason.
    let now = jsonwebtoken::get_current_timestamp();
    let claims = meridian::auth::jwt::Claims {
        sub: "ops".into(),
        exp: now + 7200,
        iss: "meridian".into(),
        aud: "meridian".into(),
        iat: Some(now),
        nbf: Some(now + 3600),
        roles: Some(vec![Role::Admin]),
    };
    let early = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(crate::support::TEST_JWT_SECRET.as_bytes()),
    )
    .expect("signed");
    let (status, body) = server
        .graphql_as(Some(&early), "{ __typename }", json!({}))
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(error_codes(&body), ["UNAUTHENTICATED"]);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not valid yet")),
        "{body}"
    );
}

#[tokio::test]
async fn unbounded_numbers_are_refused_and_overflow_is_an_error() {
    let env = TestEnv::migrated().await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    let ingest = "mutation($t: [PriceTickInput!]!) { ingestPrices(ticks: $t) { accepted } }";
    for (tick, field) in [
        (json!({ "symbol": "BTC", "price": 1e308 }), "ticks[0].price"),
        (
            json!({ "symbol": "BTC", "price": 1e-300 }),
            "ticks[0].price",
        ),
        (
            json!({ "symbol": "BTC", "price": 1.0, "volume": 1e308 }),
            "ticks[0].volume",
        ),
    ] {
        let body = server
            .graphql_with(ingest, json!({ "t": [tick] }), &[])
            .await;
        assert_eq!(error_codes(&body), ["BAD_USER_INPUT"], "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    let ndjson = server
        .client
        .post(server.url("/ingest/prices"))
        .body("{\"symbol\":\"BTC\",\"price\":1e308}\n{\"symbol\":\"BTC\",\"price\":2,\"volume\":1e300}\n")
        .send()
        .await
        .expect("answered")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(ndjson["accepted"], 0, "{ndjson}");
    assert_eq!(ndjson["rejected"], 2, "{ndjson}");

    // Rows from before the bounds (written straight to ClickHouse) whose sum overflows:
    // the non-null field is an error with a code, not a silent null. (Nothing has read
    // ETH's statistics yet, so none are cached.)
    let now = chrono::Utc::now().timestamp() as u32;
    let rows = (0..2).map(|i| {
        meridian::store::clickhouse::TickRow::plain("ETH".into(), now - 60 + i, 2000.0, 1.5e308)
    });
    server
        .state
        .stores()
        .clickhouse()
        .insert_ticks(rows, |_| {})
        .await
        .expect("inserted");
    let stats = server
        .graphql("{ asset(symbol: \"ETH\") { symbol stats24h { volume } } }")
        .await;
    assert_eq!(error_codes(&stats), ["NUMERIC_OVERFLOW"], "{stats}");
    assert_eq!(
        stats["errors"][0]["path"],
        json!(["asset", "stats24h"]),
        "{stats}"
    );
    assert_eq!(stats["data"]["asset"]["symbol"], "ETH", "{stats}");
}

#[tokio::test]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    let env = TestEnv::migrated_with(|c| {
        c.http_header_timeout_ms = 300;
        c.http_body_timeout_ms = 300;
    })
    .await;
    let server = env.spawn().await;
    let read_all = |mut stream: tokio::net::TcpStream| async move {
        let mut seen = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut seen))
            .await
            .expect("the server closes the connection")
            .ok();
        String::from_utf8_lossy(&seen).into_owned()
    };
    // Headers that never finish: the connection is closed.
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connected");
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        .await
        .expect("written");
    let answer = read_all(stream).await;
    assert!(!answer.contains("200 OK"), "{answer}");
    // A body that never finishes: 408 with a code.
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connected");
    stream
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":",
        )
        .await
        .expect("written");
    let answer = read_all(stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
    // Others are served.
    let ok = server.graphql("{ __typename }").await;
    assert_eq!(ok["data"]["__typename"], "Query");
}

#[tokio::test]
async fn a_websocket_is_closed_when_its_credentials_expire() {
    let env = TestEnv::migrated().await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    let user = first_user(&server).await;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = meridian::auth::jwt::Claims {
        sub: user,
        exp: now + 2,
        iss: "meridian".into(),
        aud: "meridian".into(),
        iat: Some(now),
        nbf: None,
        roles: None,
    };
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(crate::support::TEST_JWT_SECRET.as_bytes()),
    )
    .expect("signed");
    let mut socket = open_socket(
        server.addr.port(),
        json!({ "Authorization": format!("Bearer {token}") }),
    )
    .await;
    send(
        &mut socket,
        json!({ "type": "subscribe", "id": "t", "payload": { "query": "subscription { tradeExecuted { id } }" } }),
    )
    .await;
    let closed = loop {
        let message = next_json(&mut socket).await;
        if !message["closed"].is_null() {
            break message["closed"].clone();
        }
        assert_ne!(message["type"], "error", "{message}");
    };
    assert_eq!(closed, 4403);
}

#[tokio::test]
async fn a_batch_counts_each_of_its_operations() {
    let env = TestEnv::migrated_with(|c| {
        c.security.rate_limit_ip = 20;
        c.security.rate_limit_window_secs = 60;
    })
    .await;
    let server = env.spawn().await;
    let batch = Value::Array(vec![json!({ "query": "{ __typename }" }); 10]);
    for _ in 0..2 {
        let response = server
            .anonymous
            .post(server.url("/graphql"))
            .json(&batch)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 200);
    }
    let response = server
        .anonymous
        .post(server.url("/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 429, "two batches of 10 used the 20");
}

#[tokio::test]
async fn retried_ingests_store_each_tick_once() {
    let env = TestEnv::migrated().await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    let count = || async {
        server
            .state
            .stores()
            .clickhouse()
            .client()
            .query("SELECT count() FROM price_ticks WHERE symbol = 'SOL'")
            .fetch_one::<u64>()
            .await
            .expect("count")
    };
    let now = chrono::Utc::now().timestamp();
    let body: String = (0..1000)
        .map(|i| {
            format!(
                "{{\"symbol\":\"SOL\",\"price\":{},\"ts\":{}}}\n",
                100 + i,
                now - 1000 + i
            )
        })
        .collect();
    let send = |key: &'static str| {
        let request = server
            .client
            .post(server.url("/ingest/prices"))
            .header("idempotency-key", key)
            .body(body.clone());
        async move {
            let response = request.send().await.expect("answered");
            let replayed = response.headers().contains_key("idempotent-replayed");
            let status = response.status().as_u16();
            (
                status,
                replayed,
                response.json::<Value>().await.expect("JSON"),
            )
        }
    };
    let before = count().await;
    let (status, replayed, first) = send("batch-1").await;
    assert_eq!((status, replayed), (200, false), "{first}");
    assert_eq!(first["accepted"], 1000);
    let (status, replayed, again) = send("batch-1").await;
    assert_eq!((status, replayed), (200, true), "{again}");
    assert_eq!(again, first);
    assert_eq!(count().await, before + 1000, "the retry stored nothing");

    // An attempt that stopped after 400 lines: the retry stores only the other 600.
    let stores = server.state.stores();
    let partial = meridian::store::redis::IngestProgress {
        state: "partial".into(),
        lines: 400,
        accepted: 400,
        rejected: 0,
        summary: None,
    };
    stores
        .redis()
        .record_ingest_key("operator", "batch-2", &partial, 60_000)
        .await
        .expect("recorded");
    let (status, _, resumed) = send("batch-2").await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["accepted"], 1000, "{resumed}");
    assert_eq!(count().await, before + 1600);

    // While an attempt holds its key, a retry is refused rather than run beside it.
    stores
        .redis()
        .claim_ingest_key("operator", "batch-3", 60_000)
        .await
        .expect("claimed");
    let (status, _, busy) = send("batch-3").await;
    assert_eq!(status, 409, "{busy}");
    assert_eq!(count().await, before + 1600);
    let bad = server
        .client
        .post(server.url("/ingest/prices"))
        .header("idempotency-key", "has space")
        .body("")
        .send()
        .await
        .expect("answered");
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_document_at_the_limits_is_still_answered() {
    // The bound on expanded fields refuses bombs, not ordinary fragment use.
    let env = TestEnv::migrated().await;
    env.seed(&small_shape()).await;
    let server: TestServer = env.spawn().await;
    let query = "query { users(first: 3) { edges { node { ...U } } } }
        fragment U on User { id username profile { ...P } }
        fragment P on Profile { displayName bio }";
    let response = server.graphql(query).await;
    assert!(response["errors"].is_null(), "{response}");
    assert_eq!(
        response["data"]["users"]["edges"].as_array().map(Vec::len),
        Some(3)
    );
}
