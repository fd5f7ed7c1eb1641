//! What third-party clients rely on: the exact shape of a response with field errors (the
//! spec's "Handling Field Errors", which Apollo and urql read literally).

use serde_json::{json, Value};

use meridian::{auth::Role, AppState};

use crate::support::{closed_port, node, small_shape, user_token, wait_until, TestEnv, TestServer};

/// The errors' (path, code) pairs.
fn paths_and_codes(response: &Value) -> Vec<(Value, String)> {
    response["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["path"].clone(),
                        e["extensions"]["code"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_errored_field_is_null_in_data_with_its_error_pointing_at_it() {
    let env = TestEnv::migrated().await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    let state = server.state.clone();
    let users: Vec<String> = sqlx::query_scalar("SELECT id::text FROM users ORDER BY id LIMIT 2")
        .fetch_all(state.stores().postgres().pool())
        .await
        .expect("users");
    let anonymous = |query: &'static str| {
        let request = server
            .anonymous
            .post(server.url("/graphql"))
            .json(&json!({ "query": query }));
        async move {
            request
                .send()
                .await
                .expect("answered")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };

    // UNAUTHENTICATED on a nullable root field, beside one that answers.
    let both = anonymous("{ me { username } health { status } }").await;
    assert_eq!(both["data"]["me"], Value::Null, "{both}");
    assert!(
        both["data"]
            .as_object()
            .is_some_and(|d| d.contains_key("me")),
        "{both}"
    );
    assert!(both["data"]["health"]["status"].is_string(), "{both}");
    assert_eq!(
        paths_and_codes(&both),
        [(json!(["me"]), "UNAUTHENTICATED".into())]
    );

    // The only root field errors: data is an object holding its null, not null itself.
    let only = anonymous("{ me { username } }").await;
    assert_eq!(only["data"], json!({ "me": null }), "{only}");

    // Inside list items, under aliases: every item keeps its key, as null.
    let items = anonymous(
        "{ people: users(first: 2) { edges { node { username owned: holdings { quantity } } } } }",
    )
    .await;
    let nodes: Vec<&Value> = items["data"]["people"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"])
        .collect();
    assert_eq!(nodes.len(), 2, "{items}");
    for (i, node) in nodes.iter().enumerate() {
        assert!(node["username"].is_string(), "{items}");
        assert!(
            node.as_object()
                .is_some_and(|n| n.get("owned") == Some(&Value::Null)),
            "{items}"
        );
        assert!(
            paths_and_codes(&items).contains(&(
                json!(["people", "edges", i, "node", "owned"]),
                "UNAUTHENTICATED".into()
            )),
            "{items}"
        );
    }

    // FORBIDDEN: another user's private field.
    let (_, forbidden) = server
        .graphql_as(
            Some(&user_token(&state, &users[0])),
            "query($id: ID!) { user(id: $id) { id holdings { quantity } } }",
            json!({ "id": users[1] }),
        )
        .await;
    assert_eq!(
        forbidden["data"],
        json!({ "user": { "id": users[1], "holdings": null } }),
        "{forbidden}"
    );
    assert_eq!(
        paths_and_codes(&forbidden),
        [(json!(["user", "holdings"]), "FORBIDDEN".into())]
    );

    // STORE_UNAVAILABLE: with MongoDB at a port nothing listens on, the profile is null and
    // the rest answers.
    let mut config = env.config.clone();
    config.mongo_url = format!("mongodb://127.0.0.1:{}/meridian", closed_port());
    config.store_timeout_ms = 500;
    let mongo_down = TestServer::start(AppState::new(config).await.expect("state")).await;
    let down: Value = mongo_down
        .anonymous
        .post(mongo_down.url("/graphql"))
        .json(&json!({ "query": "{ users(first: 1) { edges { node { username profile { bio } } } } }" }))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    let node = &down["data"]["users"]["edges"][0]["node"];
    assert!(node["username"].is_string(), "{down}");
    assert!(
        node.as_object()
            .is_some_and(|n| n.get("profile") == Some(&Value::Null)),
        "{down}"
    );
    assert_eq!(
        paths_and_codes(&down),
        [(
            json!(["users", "edges", 0, "node", "profile"]),
            "STORE_UNAVAILABLE".into()
        )]
    );
}

#[tokio::test]
async fn large_responses_are_compressed_for_clients_that_accept_it() {
    use std::io::Read;

    let env = TestEnv::migrated().await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    let query = json!({ "query": "{ users(first: 50) { edges { cursor node { id username createdAt profile { displayName bio } } } } }" });
    let fetch = |encoding: &'static str| {
        let request = server
            .anonymous
            .post(server.url("/graphql"))
            .header("accept-encoding", encoding)
            .json(&query);
        async move {
            let response = request.send().await.expect("answered");
            let encoding = response
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap_or_default().to_owned());
            (encoding, response.bytes().await.expect("body").to_vec())
        }
    };
    let (plain_encoding, plain) = fetch("identity").await;
    assert_eq!(plain_encoding, None);
    assert!(
        plain.len() > 1024,
        "a large response: {} bytes",
        plain.len()
    );
    let (encoding, gzipped) = fetch("gzip").await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&gzipped[..])
        .read_to_end(&mut unpacked)
        .expect("valid gzip");
    assert_eq!(unpacked, plain, "the same response, compressed");
    assert!(
        gzipped.len() * 2 < plain.len(),
        "{} of {} bytes",
        gzipped.len(),
        plain.len()
    );
    for (accept, expected) in [("br", "br"), ("zstd", "zstd"), ("gzip;q=0.5, br", "br")] {
        let (encoding, _) = fetch(accept).await;
        assert_eq!(
            encoding.as_deref(),
            Some(expected),
            "Accept-Encoding: {accept}"
        );
    }
    // Small responses go as they are.
    let small = server
        .anonymous
        .post(server.url("/graphql"))
        .header("accept-encoding", "gzip")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("answered");
    assert!(small.headers().get("content-encoding").is_none());
    println!(
        "compression: {} bytes as JSON, {} with gzip",
        plain.len(),
        gzipped.len()
    );
}

#[tokio::test]
async fn refusals_and_errors_read_well_in_clients() {
    let env = TestEnv::migrated().await;
    let server = env.spawn().await;
    // A 401 in the media type the client negotiated.
    let refused = server
        .anonymous
        .post(server.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .header("authorization", "Bearer not-a-token")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), 401);
    assert!(refused.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("application/graphql-response+json"));
    // A parse error is one readable line.
    let broken = server.graphql("{ users( }").await;
    assert_eq!(
        broken["errors"][0]["message"], "syntax error at line 1, column 10: expected name",
        "{broken}"
    );
    // A variable of the wrong type, and a missing one: the messages name the variable.
    let wrong = server
        .graphql_with(
            "query($n: Int!) { users(first: $n) { edges { cursor } } }",
            json!({ "n": "x" }),
            &[],
        )
        .await;
    assert!(
        wrong["errors"].as_array().is_some_and(|e| e
            .iter()
            .all(|e| e["message"].as_str().is_some_and(|m| m.contains("$n")))),
        "{wrong}"
    );
    let missing = server
        .graphql_with(
            "query($n: Int!) { users(first: $n) { edges { cursor } } }",
            json!({}),
            &[],
        )
        .await;
    assert_eq!(
        missing["errors"][0]["message"], "Variable \"$n\" is required and was not provided",
        "{missing}"
    );
    // GET answers say they are not to be cached.
    let get = server
        .anonymous
        .get(server.url("/graphql?query=%7B__typename%7D"))
        .send()
        .await
        .expect("answered");
    assert_eq!(get.status(), 200);
    assert_eq!(get.headers()["cache-control"], "no-store");
}

/// The metric families the README's table lists, each there once it has had traffic
/// (`meridian_store_errors_total` appears with its first store error).
const FAMILIES: [&str; 20] = [
    "meridian_build_info",
    "meridian_http_requests_total",
    "meridian_http_request_duration_seconds",
    "meridian_graphql_operation_duration_seconds",
    "meridian_graphql_errors_total",
    "meridian_store_requests_total",
    "meridian_store_request_duration_seconds",
    "meridian_websocket_connections",
    "meridian_subscriptions_active",
    "meridian_rate_limit_refusals_total",
    "meridian_breaker_open",
    "meridian_fanout_reconnects_total",
    "meridian_relay_rows_total",
    "meridian_outbox_pending",
    "meridian_outbox_dead",
    "meridian_outbox_lag_seconds",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_start_time_seconds",
];

#[tokio::test]
async fn metrics_parse_and_name_what_operators_need() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

    let env = TestEnv::migrated_with(|c| c.security.rate_limit_ip = 30).await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    // Traffic: named and anonymous operations, an error, a live subscription, then refusals
    // (the websocket's upgrade counts against the same IP allowance).
    let named = server
        .graphql("query Dashboard { users(first: 2) { edges { cursor } } }")
        .await;
    assert!(named["errors"].is_null(), "{named}");
    let _ = server.graphql("{ __typename }").await;
    let failed = server.graphql("{ nope }").await;
    assert_eq!(
        failed["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    let mut request = format!("ws://{}/graphql/ws", server.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    request.headers_mut().insert(
        "Authorization",
        format!(
            "Bearer {}",
            server.token("ops", &[meridian::auth::Role::Admin])
        )
        .parse()
        .expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connected");
    for message in [
        json!({ "type": "connection_init" }),
        json!({ "type": "subscribe", "id": "p", "payload": { "query": "subscription { priceUpdated(symbols: [\"BTC\"]) { price } }" } }),
        json!({ "type": "ping" }),
    ] {
        socket
            .send(Message::text(message.to_string()))
            .await
            .expect("sent");
    }
    // Handled in order: by the pong, the subscription is running.
    loop {
        let Some(Ok(Message::Text(text))) = socket.next().await else {
            panic!("socket ended")
        };
        if text.as_str().contains("\"pong\"") {
            break;
        }
    }

    let mut limited = false;
    for _ in 0..40 {
        let status = server
            .anonymous
            .post(server.url("/graphql"))
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .expect("answered")
            .status();
        limited |= status == 429;
    }
    assert!(limited, "the IP allowance of 30 ran out");
    let text = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("text");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("the Prometheus text format");
    let value = |name: &str, label: (&str, &str)| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    for family in FAMILIES {
        assert!(
            scrape
                .samples
                .iter()
                .any(|s| s.metric == family || s.metric.starts_with(&format!("{family}_"))),
            "{family} missing"
        );
    }
    assert!(
        value(
            "meridian_graphql_errors_total",
            ("code", "GRAPHQL_VALIDATION_FAILED")
        ) >= 1.0
    );
    assert!(value("meridian_graphql_errors_total", ("code", "RATE_LIMITED")) >= 1.0);
    assert!(value("meridian_rate_limit_refusals_total", ("scope", "ip")) >= 1.0);
    assert_eq!(
        value("meridian_subscriptions_active", ("field", "priceUpdated")),
        1.0
    );
    assert_eq!(value("meridian_breaker_open", ("store", "postgres")), 0.0);
    assert!(scrape.samples.iter().any(|s| {
        s.metric == "meridian_graphql_operation_duration_seconds_count"
            && s.labels.get("operation") == Some("Dashboard")
    }));
    assert!(scrape.samples.iter().any(|s| {
        s.metric == "meridian_graphql_operation_duration_seconds_count"
            && s.labels.get("operation") == Some("anonymous")
    }));
    let connections: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "meridian_websocket_connections")
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(connections, 1.0);
}

#[tokio::test]
async fn every_request_has_an_id_and_its_log_lines_carry_it() {
    let env = TestEnv::migrated().await;
    let port = closed_port();
    let mut config = env.config.clone();
    config.http_addr = format!("127.0.0.1:{port}").parse().expect("address");
    let log = std::env::temp_dir().join(format!(
        "meridian-log-{}.txt",
        uuid::Uuid::new_v4().simple()
    ));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("serve")
        .envs(crate::support::config_env(&config))
        .env("MERIDIAN_LOG", "tower_http=debug,meridian=info")
        .env("MERIDIAN_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("meridian starts");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    crate::support::wait_until("meridian to listen", 60, || async {
        client.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = client
        .post(format!("{base}/graphql"))
        .header("x-request-id", "req-abc-123")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.headers()["x-request-id"], "req-abc-123");
    let generated = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("answered");
    let id = generated.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a generated id: {id}");
    crate::support::wait_until("the request's log lines", 10, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let found = text
            .lines()
            .any(|l| l.contains("req-abc-123") && l.contains(trace))
            && text.lines().any(|l| l.contains(&id));
        async move { found }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&log);
}

#[tokio::test]
async fn apollo_client_keeps_partial_data_with_no_missing_field_warnings() {
    let env = TestEnv::migrated().await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    let (ok, found) = node("apollo-errors.mjs", vec![server.url("/graphql")]).await;
    assert!(ok, "{found}");
    assert_eq!(found["warnings"], json!([]), "{found}");
    assert_eq!(found["data"]["me"], Value::Null, "{found}");
    let edges = found["data"]["users"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 2, "{found}");
    for edge in edges {
        assert!(edge["node"]["username"].is_string(), "{found}");
        assert_eq!(edge["node"]["holdings"], Value::Null, "{found}");
    }
    assert_eq!(found["errors"].as_array().map(Vec::len), Some(3), "{found}");
}

/// Apollo Client's normalized cache: the README's dashboard fills one entry per entity,
/// and a `priceUpdated` event changes the watched dashboard's price with no refetch.
#[tokio::test]
async fn apollo_cache_normalizes_the_dashboard_and_a_price_event_updates_it() {
    let env = TestEnv::migrated().await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    let token = server.token("operator", &[Role::Admin, Role::Service]);
    let ws = server.url("/graphql/ws").replacen("http", "ws", 1);
    let (ok, found) = node("apollo-cache.mjs", vec![server.url("/graphql"), ws, token]).await;
    assert!(ok, "{found}");
    assert_eq!(found["warnings"], json!([]), "{found}");
    let keys: Vec<&str> = found["cacheKeys"]
        .as_array()
        .expect("cache keys")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for kind in ["Leaderboard:", "User:", "Holding:", "Asset:", "Price:"] {
        assert!(
            keys.iter().any(|key| key.starts_with(kind)),
            "no {kind} entry in {keys:?}"
        );
    }
    assert!(
        keys.contains(&"Leaderboard:Leaderboard:volume:10"),
        "{keys:?}"
    );
    let symbol = found["symbol"].as_str().expect("symbol");
    let event = &found["event"];
    assert_eq!(event["id"], format!("Price:{symbol}"), "{found}");
    assert_ne!(event["price"], found["before"], "{found}");
    assert_eq!(found["shown"], json!([event["price"]]), "{found}");
    assert_eq!(found["priceEntry"]["price"], event["price"], "{found}");
    assert_eq!(
        found["dashboardFetches"], 1,
        "the update came without a refetch: {found}"
    );
}

#[tokio::test]
async fn graphql_codegen_generates_types_from_the_live_url() {
    let env = TestEnv::migrated().await;
    let server = env.spawn().await;
    let dir = std::env::temp_dir().join(format!(
        "meridian-codegen-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let (ok, found) = node(
        "codegen.mjs",
        vec![server.url("/graphql"), dir.display().to_string()],
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "{found}");
    assert_eq!(
        found["declares"],
        json!([
            "export type Query",
            "export type User",
            "export type DashboardQuery",
            "DateTime"
        ]),
        "{found}"
    );
}

/// A small OTLP/HTTP receiver (JSON encoding): every span it was sent, flattened.
async fn otlp_receiver() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::{extract::State, routing::post, Json, Router};
    type Spans = std::sync::Arc<std::sync::Mutex<Vec<Value>>>;
    async fn receive(State(spans): State<Spans>, Json(body): Json<Value>) -> Json<Value> {
        let mut spans = spans.lock().expect("spans");
        for resource in body["resourceSpans"].as_array().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                for span in scope["spans"].as_array().into_iter().flatten() {
                    let mut span = span.clone();
                    span["resource"] = resource["resource"].clone();
                    spans.push(span);
                }
            }
        }
        Json(json!({}))
    }
    let spans = Spans::default();
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, spans)
}

/// A span attribute's value as a string, whatever its OTLP JSON type.
fn attribute(span: &Value, key: &str) -> Option<String> {
    let value = &span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)?["value"];
    value["stringValue"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| value["intValue"].as_str().map(str::to_owned))
        .or_else(|| value["intValue"].as_i64().map(|n| n.to_string()))
}

/// A request with a W3C `traceparent`, served by a real `meridian serve` exporting to an
/// OTLP receiver: its request, operation and store spans carry the client's trace id and
/// nest under the client's span, and the request's log lines carry the trace id too.
#[tokio::test]
async fn a_traceparent_continues_into_exported_spans_and_log_lines() {
    let env = TestEnv::migrated().await;
    env.seed(&small_shape()).await;
    let (receiver, spans) = otlp_receiver().await;
    let log_path = std::env::temp_dir().join(format!(
        "meridian-otlp-{}.log",
        uuid::Uuid::new_v4().simple()
    ));
    let log = std::fs::File::create(&log_path).expect("log file");
    let (_server, port) = crate::support::serve_listening(
        &env.config,
        &[
            (
                "MERIDIAN_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{receiver}"),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".into()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50".into()),
            ("MERIDIAN_LOG_FORMAT", "json".into()),
            ("MERIDIAN_LOG", "info,tower_http=debug".into()),
        ],
        log.into(),
    )
    .await;
    let client = reqwest::Client::new();

    let trace = uuid::Uuid::new_v4().simple().to_string();
    let parent = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let response: Value = client
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .header("traceparent", format!("00-{trace}-{parent}-01"))
        .json(&json!({
            "query": "query Board { leaderboard(name: \"volume\", top: 3) { entries { user { username } } } }"
        }))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert!(response["errors"].is_null(), "{response}");

    let ours = || -> Vec<Value> {
        let spans = spans.lock().expect("spans");
        spans
            .iter()
            .filter(|s| s["traceId"].as_str() == Some(trace.as_str()))
            .cloned()
            .collect()
    };
    wait_until("the request's spans to be exported", 30, || {
        let found = ours();
        async move {
            found.iter().any(|s| s["name"] == "request")
                && found.iter().any(|s| s["name"] == "graphql Board")
                && found
                    .iter()
                    .filter(|s| attribute(s, "store").is_some())
                    .count()
                    >= 2
        }
    })
    .await;
    let found = ours();
    let named = |name: &str| {
        found
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no {name} span in {found:?}"))
    };
    let request = named("request");
    assert_eq!(request["parentSpanId"].as_str(), Some(parent), "{request}");
    assert_eq!(attribute(request, "path").as_deref(), Some("/graphql"));
    assert_eq!(
        attribute(&request["resource"], "service.name").or_else(|| {
            request["resource"]["attributes"]
                .as_array()
                .and_then(|a| a.iter().find(|a| a["key"] == "service.name"))
                .and_then(|a| a["value"]["stringValue"].as_str().map(str::to_owned))
        }),
        Some("meridian".into())
    );
    let operation = named("graphql Board");
    assert_eq!(operation["parentSpanId"], request["spanId"], "{operation}");
    let leaderboard = named("redis leaderboard_tops");
    assert_eq!(leaderboard["parentSpanId"], operation["spanId"]);
    assert_eq!(attribute(leaderboard, "store").as_deref(), Some("redis"));
    let users = named("postgres users_by_id");
    assert_eq!(users["parentSpanId"], operation["spanId"]);
    assert_eq!(attribute(users, "rows").as_deref(), Some("3"), "{users}");

    // The request's log lines (tower_http's, at DEBUG here) carry the trace id.
    let logged = std::fs::read_to_string(&log_path).expect("log");
    let _ = std::fs::remove_file(&log_path);
    let lines: Vec<Value> = logged
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|l: &Value| l["span"]["path"] == "/graphql")
        .collect();
    assert!(!lines.is_empty(), "no log line of the request in {logged}");
    for line in &lines {
        assert_eq!(
            line["span"]["trace_id"].as_str(),
            Some(trace.as_str()),
            "{line}"
        );
    }
}
