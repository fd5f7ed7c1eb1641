//! The bad-input suite: malformed, hostile and oversized requests against a `meridian`
//! process. Each must get its documented status and code; afterwards the server still
//! serves, its memory has not run away, and no store changed.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use meridian::auth::Role;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

use crate::support::{fragment_bomb, small_shape, spawn_binary, token_for, wait_until, TestEnv};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// What one case sends.
enum Send {
    /// POST /graphql with this JSON body.
    Json(Value),
    /// POST /graphql with raw bytes and a content type.
    Raw(Vec<u8>, &'static str),
    /// POST /graphql streaming `n` bytes without a Content-Length.
    Chunked(usize),
    /// GET /graphql with this query string.
    Get(String),
    /// POST to another path with raw bytes.
    Path(&'static str, Vec<u8>),
}

struct Case {
    name: String,
    send: Send,
    /// Overrides the operator token: Some(None) sends no credentials.
    auth: Option<Option<Vec<u8>>>,
    extra_header: Option<(&'static str, String)>,
    status: u16,
    /// Expected `extensions.code` of the first error (or the body's `code`); "" for none.
    code: &'static str,
}

fn case(name: impl Into<String>, send: Send, status: u16, code: &'static str) -> Case {
    Case {
        name: name.into(),
        send,
        auth: None,
        extra_header: None,
        status,
        code,
    }
}

/// `length` fragments, each spreading the next once.
fn chain(length: usize) -> String {
    let mut doc = "query { ...F0 } ".to_owned();
    for i in 0..length {
        doc += &format!("fragment F{i} on Query {{ ...F{} }} ", i + 1);
    }
    doc + &format!("fragment F{length} on Query {{ __typename }}")
}

fn query(q: impl Into<String>) -> Send {
    Send::Json(json!({ "query": q.into() }))
}

fn with_vars(q: &str, variables: Value) -> Send {
    Send::Json(json!({ "query": q, "variables": variables }))
}

fn code_of(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .or_else(|| body["code"].as_str())
        .unwrap_or("")
        .to_owned()
}

/// Strings that would mean something to SQL, MongoDB, Redis, a shell or a browser.
const INJECTIONS: [&str; 6] = [
    "' OR '1'='1' --",
    "\"; DROP TABLE users; --",
    "{\"$gt\": \"\"}",
    "*\r\nFLUSHALL\r\n",
    "../../../etc/passwd\u{0}",
    "<script>alert(1)</script>",
];

/// Every string argument, with a valid frame around it and the outcome an injection
/// string must get there.
fn string_arguments(user: &str) -> Vec<(&'static str, String, &'static str)> {
    let hash = format!("0x{}", "1".repeat(64));
    vec![
        ("user(id)", "query($v: ID!) { user(id: $v) { id } }".into(), "BAD_USER_INPUT"),
        ("user(address)", "query($v: String!) { user(address: $v) { id } }".into(), "BAD_USER_INPUT"),
        ("asset(symbol)", "query($v: String!) { asset(symbol: $v) { name } }".into(), "BAD_USER_INPUT"),
        ("assets(tag)", "query($v: String!) { assets(tag: $v) { edges { cursor } } }".into(), ""),
        ("assets(after)", "query($v: String!) { assets(after: $v) { edges { cursor } } }".into(), "BAD_USER_INPUT"),
        ("users(after)", "query($v: String!) { users(after: $v) { edges { cursor } } }".into(), "BAD_USER_INPUT"),
        ("leaderboard(name)", "query($v: String!) { leaderboard(name: $v) { size } }".into(), "BAD_USER_INPUT"),
        ("User.rank(board)", format!("query($v: String!) {{ user(id: \"{user}\") {{ rank(board: $v) {{ rank }} }} }}"), "BAD_USER_INPUT"),
        ("User.trades(after)", format!("query($v: String!) {{ user(id: \"{user}\") {{ trades(after: $v) {{ edges {{ cursor }} }} }} }}"), "BAD_USER_INPUT"),
        ("loginChallenge(address)", "mutation($v: String!) { loginChallenge(address: $v) { message } }".into(), "BAD_USER_INPUT"),
        ("login(signature)", "mutation($v: String!) { login(address: \"0x0000000000000000000000000000000000000001\", signature: $v) { token } }".into(), "UNAUTHENTICATED"),
        ("registerUser(address)", "mutation($v: String!) { registerUser(input: { address: $v, username: \"injected\" }) { id } }".into(), "BAD_USER_INPUT"),
        ("registerUser(username)", "mutation($v: String!) { registerUser(input: { address: \"0x00000000000000000000000000000000000000aa\", username: $v }) { id } }".into(), "BAD_USER_INPUT"),
        ("recordTrade(userId)", format!("mutation($v: ID!) {{ recordTrade(input: {{ userId: $v, txHash: \"{hash}\", symbol: \"BTC\", side: BUY, quantity: 1, price: 1 }}) {{ id }} }}"), "BAD_USER_INPUT"),
        ("recordTrade(txHash)", format!("mutation($v: String!) {{ recordTrade(input: {{ userId: \"{user}\", txHash: $v, symbol: \"BTC\", side: BUY, quantity: 1, price: 1 }}) {{ id }} }}"), "BAD_USER_INPUT"),
        ("recordTrade(symbol)", format!("mutation($v: String!) {{ recordTrade(input: {{ userId: \"{user}\", txHash: \"{hash}\", symbol: $v, side: BUY, quantity: 1, price: 1 }}) {{ id }} }}"), "BAD_USER_INPUT"),
        ("ingestPrices(symbol)", "mutation($v: String!) { ingestPrices(ticks: [{ symbol: $v, price: 1 }]) { accepted } }".into(), "BAD_USER_INPUT"),
        ("updateProfile(avatarUrl)", format!("mutation($v: String!) {{ updateProfile(userId: \"{user}\", input: {{ avatarUrl: $v }}) {{ bio }} }}"), "BAD_USER_INPUT"),
        ("updateProfile(links.url)", format!("mutation($v: String!) {{ updateProfile(userId: \"{user}\", input: {{ links: [{{ label: \"x\", url: $v }}] }}) {{ bio }} }}"), "BAD_USER_INPUT"),
    ]
}

/// Counts of what every store holds, to show refused requests changed nothing.
async fn snapshot(state: &meridian::AppState) -> Value {
    let pg = state.stores().postgres().pool();
    let mut counts = serde_json::Map::new();
    for table in ["users", "trades", "holdings", "outbox", "trade_tx_hashes"] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(pg)
            .await
            .expect("count");
        counts.insert(table.into(), n.into());
    }
    let profiles = state
        .stores()
        .mongo()
        .database()
        .collection::<mongodb::bson::Document>("profiles")
        .count_documents(mongodb::bson::doc! {})
        .await
        .expect("profiles");
    counts.insert("profiles".into(), profiles.into());
    let mut conn = state.stores().redis().conn();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(state.stores().redis().key("*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    counts.insert("redis_keys".into(), keys.len().into());
    let ticks: u64 = state
        .stores()
        .clickhouse()
        .client()
        .query("SELECT count() FROM price_ticks")
        .fetch_one()
        .await
        .expect("ticks");
    counts.insert("ticks".into(), ticks.into());
    Value::Object(counts)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn hostile_requests_get_their_documented_answers_and_change_nothing() {
    let env = TestEnv::migrated().await;
    env.seed(&small_shape()).await;
    let state = env.state().await;
    let port = crate::support::closed_port();
    let mut config = env.config.clone();
    config.http_addr = format!("127.0.0.1:{port}").parse().expect("address");
    let mut child = spawn_binary(&config);
    let base = format!("http://127.0.0.1:{port}");
    // A client deadline, so that a hang fails the test instead of stalling it.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    wait_until("meridian to listen", 60, || async {
        client.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;

    let user: String = sqlx::query_scalar("SELECT id::text FROM users ORDER BY id LIMIT 1")
        .fetch_one(state.stores().postgres().pool())
        .await
        .expect("a user");
    let operator = token_for(&state, "operator", &[Role::Admin, Role::Service]);
    // A user's token: its bodies are held to MERIDIAN_MAX_BODY_BYTES (1 MiB), while an
    // admin's or a service's get MERIDIAN_MAX_SERVICE_BODY_BYTES (16 MiB).
    let member = token_for(&state, &user, &[Role::User]);
    let codec = meridian::graphql::pagination::CursorCodec::new(Some("test-cursor-secret"));
    let trades_cursor = codec.encode_keyset("trades", chrono::Utc::now(), uuid::Uuid::new_v4());

    let mut cases: Vec<Case> = vec![
        case("depth 1,000", query("{".to_owned() + &"a{".repeat(1000) + "b" + &"}".repeat(1001)), 400, "QUERY_TOO_DEEP"),
        case("depth 15 of real fields", query("{ users(first: 1) { edges { node { trades(first: 1) { edges { node { user { trades(first: 1) { edges { node { user { trades(first: 1) { edges { node { txHash } } } } } } } } } } } } } } }"), 400, "QUERY_TOO_DEEP"),
        case("10,000 aliases", query(format!("{{ {} }}", (0..10_000).map(|i| format!("a{i}: __typename")).collect::<Vec<_>>().join(" "))), 400, "QUERY_TOO_LARGE"),
        case("31 aliases", query(format!("{{ {} }}", (0..31).map(|i| format!("a{i}: __typename")).collect::<Vec<_>>().join(" "))), 400, "TOO_MANY_ALIASES"),
        case("21 root fields", query(format!("{{ {} }}", "health { status } ".repeat(21))), 400, "TOO_MANY_ROOT_FIELDS"),
        case("a fragment cycle", query("fragment A on Query { ...B } fragment B on Query { ...A } { ...A }"), 400, "GRAPHQL_VALIDATION_FAILED"),
        case("a self-referencing fragment", query("fragment A on Query { health { status } ...A } { ...A }"), 400, "GRAPHQL_VALIDATION_FAILED"),
        case("a fragment bomb, 30 levels of __typename", query(fragment_bomb(30, "__typename")), 400, "QUERY_TOO_COMPLEX"),
        case("a fragment bomb, 30 levels of health", query(fragment_bomb(30, "health { status }")), 400, "QUERY_TOO_COMPLEX"),
        case("a chain of 40 fragments", query(chain(40)), 400, "QUERY_TOO_DEEP"),
        case("a NUL in a preference key", with_vars(&format!("mutation($p: JSON!) {{ updateProfile(userId: \"{user}\", input: {{ preferences: $p }}) {{ bio }} }}"), json!({ "p": { "a\u{0}b": 1 } })), 200, "BAD_USER_INPUT"),
        case("a price of 1e308", with_vars("mutation($t: [PriceTickInput!]!) { ingestPrices(ticks: $t) { accepted } }", json!({ "t": [{ "symbol": "BTC", "price": 1e308 }] })), 200, "BAD_USER_INPUT"),
        case("a volume of 1e308", with_vars("mutation($t: [PriceTickInput!]!) { ingestPrices(ticks: $t) { accepted } }", json!({ "t": [{ "symbol": "BTC", "price": 1, "volume": 1e308 }] })), 200, "BAD_USER_INPUT"),
        case("50 directives on a field", query(format!("{{ __typename {} }}", "@include(if: true) ".repeat(50))), 400, "TOO_MANY_DIRECTIVES"),
        case("complexity", query("{ users(first: 100) { edges { node { holdings { asset { name } } trades(first: 100) { edges { node { txHash } } } } } } }"), 400, "QUERY_TOO_COMPLEX"),
        case("6,000 tokens", query(format!("{{ health {{ {} }} }}", "status ".repeat(6000))), 400, "QUERY_TOO_LARGE"),
        case("a 50 MB body", Send::Raw(vec![b' '; 50 * 1024 * 1024], "application/json"), 413, "PAYLOAD_TOO_LARGE"),
        case("a 50 MB chunked body", Send::Chunked(50 * 1024 * 1024), 413, "PAYLOAD_TOO_LARGE"),
        case("a body just over 1 MiB", Send::Raw(format!("{{\"query\":\"{{ __typename }}\",\"x\":\"{}\"}}", "a".repeat(1024 * 1024)).into_bytes(), "application/json"), 413, "PAYLOAD_TOO_LARGE"),
        case("invalid JSON", Send::Raw(b"{\"query\": \"{ __typename }\"".to_vec(), "application/json"), 400, "BAD_REQUEST"),
        case("invalid UTF-8", Send::Raw(b"{\"query\": \"{ \xff\xfe __typename }\"}".to_vec(), "application/json"), 400, "BAD_REQUEST"),
        case("JSON nested 10,000 deep", Send::Raw(("[".repeat(10_000) + &"]".repeat(10_000)).into_bytes(), "application/json"), 400, "BAD_REQUEST"),
        case("a JSON string", Send::Raw(b"\"{ __typename }\"".to_vec(), "application/json"), 400, "BAD_REQUEST"),
        case("query is a number", Send::Json(json!({ "query": 42 })), 400, "BAD_REQUEST"),
        case("no query", Send::Json(json!({})), 400, "BAD_REQUEST"),
        case("an empty body", Send::Raw(Vec::new(), "application/json"), 400, "BAD_REQUEST"),
        case("a batch of 11", Send::Json(Value::Array(vec![json!({ "query": "{ __typename }" }); 11])), 400, "BAD_REQUEST"),
        case("variables not an object", Send::Json(json!({ "query": "{ __typename }", "variables": [1, 2] })), 400, "BAD_REQUEST"),
        case("a syntax error", query("{ health { status "), 400, "GRAPHQL_PARSE_FAILED"),
        case("an unknown field", query("{ nope }"), 400, "GRAPHQL_VALIDATION_FAILED"),
        case("an unknown operation name", Send::Json(json!({ "query": "query A { __typename }", "operationName": "B" })), 400, "GRAPHQL_VALIDATION_FAILED"),
        case("a string where an Int goes", with_vars("query($n: Int!) { users(first: $n) { edges { cursor } } }", json!({ "n": "abc" })), 400, "GRAPHQL_VALIDATION_FAILED"),
        case("a missing variable", with_vars("query($n: Int!) { users(first: $n) { edges { cursor } } }", json!({})), 400, "GRAPHQL_VALIDATION_FAILED"),
        case("an object where a list goes", with_vars("mutation($t: [PriceTickInput!]!) { ingestPrices(ticks: $t) { accepted } }", json!({ "t": { "symbol": "BTC" } })), 400, "GRAPHQL_VALIDATION_FAILED"),
        case("Int overflow", query("{ users(first: 99999999999) { edges { cursor } } }"), 400, "GRAPHQL_VALIDATION_FAILED"),
        case("a negative page", query("{ users(first: -1) { edges { cursor } } }"), 200, "BAD_USER_INPUT"),
        case("a page over the cap", query("{ users(first: 101) { edges { cursor } } }"), 200, "BAD_USER_INPUT"),
        case("20,000 ticks in variables", with_vars("mutation($t: [PriceTickInput!]!) { ingestPrices(ticks: $t) { accepted } }", json!({ "t": vec![json!({ "symbol": "BTC", "price": 1 }); 20_000] })), 200, "BAD_USER_INPUT"),
        case("5,000 profile links", with_vars(&format!("mutation($l: [LinkInput!]!) {{ updateProfile(userId: \"{user}\", input: {{ links: $l }}) {{ bio }} }}"), json!({ "l": vec![json!({ "label": "x", "url": "https://x.example" }); 5_000] })), 200, "BAD_USER_INPUT"),
        case("a garbage cursor", query("{ users(after: \"!!!\") { edges { cursor } } }"), 200, "BAD_USER_INPUT"),
        case("a cursor with a forged signature", query(format!("{{ users(after: \"{}\") {{ edges {{ cursor }} }} }}", base64_json())), 200, "BAD_USER_INPUT"),
        case("a trades cursor on users", query(format!("{{ users(after: \"{trades_cursor}\") {{ edges {{ cursor }} }} }}")), 200, "BAD_USER_INPUT"),
        case("a candle window back to front", query("{ asset(symbol: \"BTC\") { candles(interval: HOUR, from: \"2026-01-02T00:00:00Z\", to: \"2026-01-01T00:00:00Z\") { open } } }"), 200, "BAD_USER_INPUT"),
        case("an unknown persisted query", Send::Json(json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "0".repeat(64) } } })), 400, "PERSISTED_QUERY_NOT_FOUND"),
        case("a malformed persisted query", Send::Json(json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": "x" } } })), 400, "BAD_REQUEST"),
        case("a mutation over GET", Send::Get("query=mutation%20%7B%20logout%20%7D".into()), 405, "BAD_REQUEST"),
        case("text/plain", Send::Raw(b"{ __typename }".to_vec(), "text/plain"), 415, "BAD_REQUEST"),
        case("NDJSON garbage to /ingest/prices", Send::Path("/ingest/prices", b"not json\n{\"symbol\": 1}\n\xff\xfe\n".to_vec()), 200, ""),
        case("a 20 KiB NDJSON line", Send::Path("/ingest/prices", format!("{{\"symbol\":\"{}\"}}\n", "A".repeat(20 * 1024)).into_bytes()), 200, ""),
    ];
    let mut unauthenticated = case(
        "a Basic Authorization header",
        query("{ __typename }"),
        401,
        "UNAUTHENTICATED",
    );
    unauthenticated.auth = Some(Some(b"Basic dXNlcjpwYXNz".to_vec()));
    cases.push(unauthenticated);
    let mut garbage_token = case(
        "a garbage bearer token",
        query("{ __typename }"),
        401,
        "UNAUTHENTICATED",
    );
    garbage_token.auth = Some(Some(b"Bearer abc.def.ghi".to_vec()));
    cases.push(garbage_token);
    let mut binary_token = case(
        "a bearer token that is not text",
        query("{ __typename }"),
        401,
        "UNAUTHENTICATED",
    );
    binary_token.auth = Some(Some(b"Bearer \xff\xfe\x80".to_vec()));
    cases.push(binary_token);
    let mut garbage_token = case(
        "a JWT with a forged alg none",
        query("{ __typename }"),
        401,
        "UNAUTHENTICATED",
    );
    garbage_token.auth = Some(Some(format!("Bearer {}", alg_none(&user)).into_bytes()));
    cases.push(garbage_token);
    let mut anonymous_ingest = case(
        "ingest without credentials",
        Send::Path("/ingest/prices", b"{}\n".to_vec()),
        401,
        "UNAUTHENTICATED",
    );
    anonymous_ingest.auth = Some(None);
    cases.push(anonymous_ingest);
    let mut unacceptable = case("Accept: text/csv", query("{ __typename }"), 406, "");
    unacceptable.extra_header = Some(("accept", "text/csv".into()));
    cases.push(unacceptable);
    for (argument, document, code) in string_arguments(&user) {
        for (i, value) in INJECTIONS.iter().enumerate() {
            cases.push(case(
                format!("injection {i} in {argument}"),
                with_vars(&document, json!({ "v": value })),
                200,
                code,
            ));
        }
    }
    assert!(cases.len() >= 60, "{} cases", cases.len());

    let before = snapshot(&state).await;
    let rss_before = rss_kib(child.id());
    let mut slowest = (Duration::ZERO, String::new());
    let mut timings = Vec::with_capacity(cases.len());
    for case in &cases {
        let url = match &case.send {
            Send::Path(path, _) => format!("{base}{path}"),
            Send::Get(q) => format!("{base}/graphql?{q}"),
            _ => format!("{base}/graphql"),
        };
        let mut request = match &case.send {
            Send::Json(body) => client.post(&url).json(body),
            Send::Raw(bytes, content_type) => client
                .post(&url)
                .header("content-type", *content_type)
                .body(bytes.clone()),
            Send::Chunked(n) => {
                let chunk = vec![b' '; 64 * 1024];
                let stream = futures::stream::iter(
                    (0..n / chunk.len()).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
                );
                client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(reqwest::Body::wrap_stream(stream))
            }
            Send::Get(_) => client.get(&url),
            Send::Path(_, bytes) => client
                .post(&url)
                .header("content-type", "application/x-ndjson")
                .body(bytes.clone()),
        };
        if !matches!(case.extra_header, Some(("accept", _))) {
            request = request.header("accept", GRAPHQL_RESPONSE);
        }
        match &case.auth {
            None => request = request.bearer_auth(&operator),
            Some(Some(value)) => {
                let value = reqwest::header::HeaderValue::from_bytes(value).expect("header bytes");
                request = request.header("authorization", value);
            }
            Some(None) => {}
        }
        if let Some((name, value)) = &case.extra_header {
            request = request.header(*name, value.as_str());
        }
        let started = Instant::now();
        // Large bodies go over a raw socket: the server answers 413 before reading them,
        // and an HTTP client that insists on sending the rest sees a reset instead.
        let oversized = match &case.send {
            Send::Raw(bytes, _) if bytes.len() > 1024 * 1024 => Some((bytes.len(), false)),
            Send::Chunked(n) => Some((*n, true)),
            _ => None,
        };
        if let Some((len, chunked)) = oversized {
            let token = if len > 16 * 1024 * 1024 {
                &operator
            } else {
                &member
            };
            let (status, body) = raw_post(port, token, len, chunked).await;
            let elapsed = started.elapsed();
            assert_eq!(status, case.status, "{}: {body}", case.name);
            assert_eq!(code_of(&body), case.code, "{}: {body}", case.name);
            timings.push(elapsed);
            if elapsed > slowest.0 {
                slowest = (elapsed, case.name.clone());
            }
            continue;
        }
        let response = request.send().await;
        let elapsed = started.elapsed();
        let (status, body) = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                (
                    status,
                    serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
                )
            }
            Err(err) => panic!("{}: no answer: {err}", case.name),
        };
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert_eq!(code_of(&body), case.code, "{}: {body}", case.name);
        if let Send::Path(..) = case.send {
            if case.status == 200 {
                // Every line refused, by number.
                assert_eq!(body["accepted"], 0, "{}: {body}", case.name);
                assert!(body["rejected"].as_u64() > Some(0), "{}: {body}", case.name);
            }
        } else if case.status == 200 && case.code.is_empty() {
            assert!(body["errors"].is_null(), "{}: {body}", case.name);
        }
        timings.push(elapsed);
        if elapsed > slowest.0 {
            slowest = (elapsed, case.name.clone());
        }
    }

    // Websocket protocol garbage: each connection is closed with its code.
    let ws_cases: Vec<(&str, Vec<Message>, u16)> = vec![
        ("not JSON", vec![Message::text("garbage")], 4400),
        (
            "a binary frame",
            vec![Message::binary(vec![0u8, 1, 2])],
            4400,
        ),
        (
            "JSON nested 10,000 deep",
            vec![Message::text("[".repeat(10_000) + &"]".repeat(10_000))],
            4400,
        ),
        (
            "a message over 64 KiB",
            vec![Message::text(format!(
                "{{\"type\":\"ping\",\"x\":\"{}\"}}",
                "a".repeat(70_000)
            ))],
            1009,
        ),
        (
            "an unknown type",
            vec![
                Message::text(r#"{"type":"connection_init"}"#),
                Message::text(r#"{"type":"bogus"}"#),
            ],
            4400,
        ),
        (
            "subscribe before init",
            vec![Message::text(
                r#"{"type":"subscribe","id":"1","payload":{"query":"{ __typename }"}}"#,
            )],
            4401,
        ),
        (
            "a non-string credential",
            vec![Message::text(
                r#"{"type":"connection_init","payload":{"Authorization":[1]}}"#,
            )],
            4403,
        ),
        (
            "a payload that is not an object",
            vec![
                Message::text(r#"{"type":"connection_init"}"#),
                Message::text(r#"{"type":"subscribe","id":"1","payload":7}"#),
            ],
            4400,
        ),
    ];
    let ws_count = ws_cases.len();
    for (what, messages, code) in ws_cases {
        let mut request = format!("ws://127.0.0.1:{port}/graphql/ws")
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        let started = Instant::now();
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connected");
        for message in messages {
            socket.send(message).await.expect("sent");
        }
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Close(frame) = message {
                    return frame.map(|f| u16::from(f.code));
                }
            }
            None
        })
        .await
        .expect("closed within the client deadline");
        assert_eq!(closed, Some(code), "websocket: {what}");
        timings.push(started.elapsed());
    }

    // Still serving, memory bounded, nothing changed.
    let health: Value = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": "{ health { status } }" }))
        .send()
        .await
        .expect("served")
        .json()
        .await
        .expect("json");
    assert!(health["data"]["health"]["status"].is_string(), "{health}");
    let rss_after = rss_kib(child.id());
    assert!(
        rss_after < rss_before + 256 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    assert_eq!(
        snapshot(&state).await,
        before,
        "a refused request changed a store"
    );
    timings.sort();
    println!(
        "bad-input suite: {} HTTP + {ws_count} websocket cases; answer time p50 {:?}, max {:?} ({}); RSS {rss_before} -> {rss_after} KiB",
        cases.len(),
        timings[timings.len() / 2],
        slowest.0,
        slowest.1
    );
    child.kill().expect("stopped");
}

/// POSTs `len` bytes of spaces to /graphql over a raw socket (with a Content-Length, or
/// chunked), writing while reading, and returns the response's status and JSON body.
async fn raw_post(port: u16, token: &str, len: usize, chunked: bool) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (mut read, mut write) = stream.into_split();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {len}")
    };
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: {GRAPHQL_RESPONSE}\r\nAuthorization: Bearer {token}\r\n{framing}\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 64 * 1024];
        let mut sent = 0;
        while sent < len {
            if chunked {
                write
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                write.write_all(&chunk).await?;
                write.write_all(b"\r\n").await?;
            } else {
                write.write_all(&chunk).await?;
            }
            sent += chunk.len();
        }
        std::io::Result::Ok(())
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    let text = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), read.read(&mut buf))
            .await
            .expect("an answer within the client deadline")
            .unwrap_or(0);
        response.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&response).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|l| body.len() >= l) || n == 0 {
                break text;
            }
        } else if n == 0 {
            break text;
        }
    };
    writer.abort();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// An unsigned JWT (`"alg": "none"`) claiming to be an admin.
fn alg_none(user: &str) -> String {
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "JWT" })),
        b64(
            json!({ "sub": user, "exp": 4_000_000_000u64, "iss": "meridian", "aud": "meridian", "roles": ["admin"] })
        )
    )
}

/// base64 of a cursor-shaped JSON object with a made-up signature.
fn base64_json() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"k":"users","p":"2026-01-01T00:00:00Z|00000000-0000-0000-0000-000000000000","s":"forged"}"#)
}
