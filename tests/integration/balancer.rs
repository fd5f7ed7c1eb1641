//! Three `meridian serve` processes behind HAProxy (`scripts/balancer`): events written
//! through any instance reach subscribers on every instance, once; rate limits hold across
//! the three; three relays drain one outbox exactly once; a SIGKILLed instance's
//! websocket clients reconnect through the balancer and resume after their cursor, and no
//! acknowledged write is lost; a rolling restart with SIGTERM drops no request.

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use futures::StreamExt;
use meridian::{auth::Role, config::Config, seed};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

use crate::{
    abuse::{next_json, open_socket, send, Socket},
    support::{closed_port, pending, spawn_binary_with, token_for, wait_until, Spawned, TestEnv},
};

/// HAProxy, run by `scripts/balancer` in a directory and on ports of its own.
struct Balancer {
    dir: std::path::PathBuf,
    port: u16,
    stats_port: u16,
}

impl Balancer {
    fn up(backends: &[u16]) -> Balancer {
        let balancer = Balancer {
            dir: std::env::temp_dir().join(format!(
                "meridian-balancer-{}",
                uuid::Uuid::new_v4().simple()
            )),
            port: closed_port(),
            stats_port: closed_port(),
        };
        let mut args = vec!["up".to_owned()];
        args.extend(backends.iter().map(|p| format!("127.0.0.1:{p}")));
        balancer.script(&args);
        balancer
    }

    fn script(&self, args: &[String]) {
        let output =
            std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/balancer"))
                .args(args)
                .env("MERIDIAN_BALANCER_DIR", &self.dir)
                .env("MERIDIAN_BALANCER_PORT", self.port.to_string())
                .env("MERIDIAN_BALANCER_STATS_PORT", self.stats_port.to_string())
                .output()
                .expect("scripts/balancer runs");
        assert!(
            output.status.success(),
            "scripts/balancer {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Each instance's state as HAProxy sees it (`UP`, `DOWN`, ...), in config order.
    async fn states(&self) -> Vec<String> {
        let csv = reqwest::get(format!("http://127.0.0.1:{}/stats;csv", self.stats_port))
            .await
            .expect("stats answer")
            .text()
            .await
            .expect("stats text");
        csv.lines()
            .map(|line| line.split(',').collect::<Vec<_>>())
            .filter(|f| f.first() == Some(&"instances") && f.get(1) != Some(&"BACKEND"))
            .map(|f| f.get(17).copied().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until HAProxy sees the instances in `want` (e.g. `["UP", "DOWN", "UP"]`).
    async fn wait_for(&self, want: &[&str]) {
        let what = format!("HAProxy to see {want:?}");
        wait_until(&what, 30, || async {
            let states = self.states().await;
            states.iter().map(String::as_str).eq(want.iter().copied())
        })
        .await;
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.script(&["down".to_owned()]));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `meridian serve` on `port` (its address replaced in `config`), once it answers.
async fn serve_on(config: &Config, port: u16) -> Spawned {
    let mut config = config.clone();
    config.http_addr = format!("127.0.0.1:{port}").parse().expect("address");
    let child = spawn_binary_with(&config, &[], std::process::Stdio::null());
    let client = reqwest::Client::new();
    wait_until("meridian to be ready", 60, || async {
        client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    child
}

/// Waits until `instances` processes subscribe to `channel` in Redis.
async fn subscribed(state: &meridian::AppState, channel: &str, instances: i64) {
    wait_until("the instances to subscribe", 20, || {
        let mut conn = state.stores().redis().conn();
        async move {
            let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(channel)
                .query_async(&mut conn)
                .await
                .expect("numsub");
            counts.first().is_some_and(|(_, n)| *n == instances)
        }
    })
    .await;
}

/// Open websocket connections of the instance on `port` (its `/metrics`).
async fn websockets(port: u16) -> i64 {
    let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await else {
        return -1;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("meridian_websocket_connections "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1)
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Result<(u16, Value), reqwest::Error> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

const TRADE: &str = "mutation($input: RecordTradeInput!) { recordTrade(input: $input) { id } }";
const TRADES: &str = "subscription { tradeExecuted { id } }";
const RECORD: &str = "mutation($events: [EventInput!]!) { recordEvents(events: $events) { id } }";
const FOLLOW: &str = "subscription($after: String) { eventRecorded(kinds: [\"farming_plant\"], after: $after) { cursor event { id } } }";
const FARMER: &str = "GAOQJGUAB7NI7K7I62ORBXMN3J4SSWQUQ7FOEPSDJ322W2HMCNWPHXFB";

/// Reads `count` trade ids from a `tradeExecuted` socket, then a little more to catch a
/// duplicate: returns every id it saw.
async fn trade_ids(socket: &mut Socket, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < count {
        let message = next_json(socket).await;
        if message["type"] == "next" {
            let id = &message["payload"]["data"]["tradeExecuted"]["id"];
            ids.push(id.as_str().expect("an id").to_owned());
        }
    }
    ids
}

/// A graphql-transport-ws client through the balancer that follows farming plants and,
/// whenever its connection ends, reconnects and resumes after the last cursor it saw.
async fn follow(
    port: u16,
    auth: Value,
    seen: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
) {
    let mut after: Option<String> = None;
    loop {
        let Some(mut socket) = try_open(port, auth.clone()).await else {
            // A client's wait before trying again, as graphql-ws clients have
            // (`retryWait`): the balancer may still route to the dead instance.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        connections.fetch_add(1, Ordering::SeqCst);
        let subscribe = json!({ "id": "f", "type": "subscribe",
            "payload": { "query": FOLLOW, "variables": { "after": after } } });
        if socket
            .send(Message::text(subscribe.to_string()))
            .await
            .is_err()
        {
            continue;
        }
        while let Some(Ok(message)) = socket.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(text.as_str()).expect("JSON");
            if value["type"] == "next" {
                let item = &value["payload"]["data"]["eventRecorded"];
                after = item["cursor"].as_str().map(str::to_owned);
                let id = item["event"]["id"].as_str().expect("an id").to_owned();
                seen.lock().expect("seen").push(id);
            }
        }
    }
}

/// One connection attempt with its `connection_ack`; None if either fails.
async fn try_open(port: u16, payload: Value) -> Option<Socket> {
    use futures::SinkExt;
    let mut request = format!("ws://127.0.0.1:{port}/graphql/ws")
        .into_client_request()
        .ok()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().ok()?,
    );
    let connect = tokio_tungstenite::connect_async(request);
    let (mut socket, _) = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .ok()?
        .ok()?;
    let init = json!({ "type": "connection_init", "payload": payload });
    socket.send(Message::text(init.to_string())).await.ok()?;
    let ack = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .ok()??
        .ok()?;
    matches!(ack, Message::Text(ref t) if t.as_str().contains("connection_ack")).then_some(socket)
}

use futures::SinkExt as _;

#[tokio::test]
async fn three_instances_behind_haproxy_share_events_limits_and_the_outbox_and_survive_kills_and_restarts(
) {
    let env = TestEnv::migrated_with(|c| {
        c.security.trusted_proxies = 1;
        c.security.rate_limit_principal = 100;
        c.security.rate_limit_window_secs = 3600;
        c.shutdown_drain_ms = 1500;
    })
    .await;
    env.seed(&seed::Shape {
        users: 12,
        ..crate::support::small_shape()
    })
    .await;
    let state = env.state().await;
    let ports: Vec<u16> = (0..3).map(|_| closed_port()).collect();
    let mut instances = Vec::new();
    for port in &ports {
        instances.push(serve_on(&env.config, *port).await);
    }
    let balancer = Balancer::up(&ports);
    balancer.wait_for(&["UP", "UP", "UP"]).await;
    let graphql = balancer.url("/graphql");
    let http = reqwest::Client::new();
    let operator = token_for(&state, "operator", &[Role::Admin, Role::Service]);
    let auth = json!({ "Authorization": format!("Bearer {operator}") });

    // 1. A subscriber on each instance; 30 trades through the balancer, so through all
    // three instances, relayed by three relays. Each subscriber gets each trade once, and
    // the volume board moves by exactly the trades' volume.
    let mut sockets = Vec::new();
    for port in &ports {
        let mut socket = open_socket(*port, auth.clone()).await;
        send(
            &mut socket,
            json!({ "id": "t", "type": "subscribe", "payload": { "query": TRADES } }),
        )
        .await;
        sockets.push(socket);
    }
    subscribed(&state, &state.stores().redis().trades_channel(), 3).await;
    let users: Vec<String> = sqlx::query_scalar("SELECT id::text FROM users ORDER BY id LIMIT 3")
        .fetch_all(state.stores().postgres().pool())
        .await
        .expect("users");
    let before = crate::support::scores(&state, &users).await;
    let mut recorded = HashSet::new();
    for i in 0..30 {
        let input = json!({ "input": {
            "userId": users[i % 3], "txHash": format!("0x{:064x}", 0xba1a_0000 + i),
            "symbol": "BTC", "side": "BUY", "quantity": 1.0, "price": 10.0 + i as f64,
        }});
        let (status, body) = post(&http, &graphql, &operator, TRADE, input)
            .await
            .expect("request");
        assert_eq!(status, 200, "{body}");
        recorded.insert(
            body["data"]["recordTrade"]["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    wait_until("the three relays to drain the outbox", 30, || async {
        pending(&state, "clickhouse").await == 0
            && pending(&state, "redis").await == 0
            && pending(&state, "pubsub").await == 0
    })
    .await;
    for socket in &mut sockets {
        let ids = trade_ids(socket, 30).await;
        assert_eq!(
            ids.iter().collect::<HashSet<_>>().len(),
            30,
            "a trade twice"
        );
        assert_eq!(ids.into_iter().collect::<HashSet<_>>(), recorded);
    }
    for (k, user) in users.iter().enumerate() {
        let volume: f64 = (0..30)
            .filter(|i| i % 3 == k)
            .map(|i| 10.0 + i as f64)
            .sum();
        let moved = crate::support::volume_score(&state, user).await - before[k];
        assert!(
            (moved - volume).abs() < 1e-6,
            "board moved {moved}, trades' volume {volume}"
        );
    }
    drop(sockets);

    // 2. One principal's allowance (100 per hour) holds across the three instances.
    let limited = token_for(&state, "limited", &[Role::Admin]);
    let mut statuses = Vec::new();
    for _ in 0..110 {
        let (status, _) = post(&http, &graphql, &limited, "{ __typename }", json!({}))
            .await
            .expect("request");
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 100);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 10);

    // 3. A follower through the balancer; its instance is SIGKILLed while events are
    // written. It reconnects through the balancer, resumes after its cursor, and has
    // every acknowledged event exactly once, in order.
    wait_until("the trade subscribers to be gone", 20, || async {
        let mut open = 0;
        for port in &ports {
            open += websockets(*port).await;
        }
        open == 0
    })
    .await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let follower = tokio::spawn(follow(
        balancer.port,
        auth.clone(),
        seen.clone(),
        connections.clone(),
    ));
    let open_sockets = || async {
        let mut open = Vec::new();
        for port in &ports {
            open.push(websockets(*port).await);
        }
        open
    };
    wait_until("the follower to connect", 20, || async {
        open_sockets().await.iter().sum::<i64>() == 1
    })
    .await;
    let victim = open_sockets()
        .await
        .iter()
        .position(|n| *n == 1)
        .expect("the follower's instance");
    subscribed(&state, &state.stores().redis().events_channel(), 1).await;
    let recorder = token_for(&state, "recorder", &[Role::Service]);
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for i in 0..60 {
        if i == 20 {
            let count = acknowledged.len();
            wait_until("the follower to see the first events", 20, || async {
                seen.lock().expect("seen").len() >= count
            })
            .await;
            instances[victim].kill().expect("SIGKILL");
        }
        let id = format!("kill-{i}");
        let event = json!([{ "id": id, "kind": "farming_plant", "subject": FARMER,
            "amount": "1", "attributes": { "stake": "1" } }]);
        match post(
            &http,
            &graphql,
            &recorder,
            RECORD,
            json!({ "events": event }),
        )
        .await
        {
            Ok((200, body)) if body["errors"].is_null() => acknowledged.push(id),
            _ => refused += 1,
        }
    }
    let mut states = vec!["UP"; 3];
    states[victim] = "DOWN";
    balancer.wait_for(&states).await;
    wait_until(
        "the follower to have every acknowledged event",
        30,
        || async {
            let seen = seen.lock().expect("seen");
            acknowledged.iter().all(|id| seen.contains(id))
        },
    )
    .await;
    follower.abort();
    let seen = seen.lock().expect("seen").clone();
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "an event twice: {seen:?}");
    let order: Vec<&String> = seen.iter().filter(|id| acknowledged.contains(id)).collect();
    assert_eq!(
        order,
        acknowledged.iter().collect::<Vec<_>>(),
        "acknowledged events out of order"
    );
    assert!(
        connections.load(Ordering::SeqCst) >= 2,
        "the follower never reconnected"
    );
    println!(
        "SIGKILL: {} of 60 writes acknowledged, {refused} refused; follower connected {} times",
        acknowledged.len(),
        connections.load(Ordering::SeqCst)
    );
    instances[victim] = serve_on(&env.config, ports[victim]).await;
    balancer.wait_for(&["UP", "UP", "UP"]).await;

    // 4. A rolling restart (SIGTERM, wait, start again) under steady load drops nothing.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (http, url, stop) = (http.clone(), graphql.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                let query =
                    json!({ "query": "{ users(first: 3) { edges { node { username } } } }" });
                match http.post(&url).json(&query).send().await {
                    Ok(r) if r.status().is_success() => {
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        match body["data"]["users"]["edges"].as_array() {
                            Some(edges) if edges.len() == 3 => ok += 1,
                            _ => failed.push(body.to_string()),
                        }
                    }
                    Ok(r) => failed.push(format!("status {}", r.status())),
                    Err(e) => failed.push(format!("{e:?}")),
                }
            }
            (ok, failed)
        }));
    }
    for k in 0..3 {
        instances[k].terminate();
        wait_until("the instance to exit", 30, || {
            let exited = instances[k].exited().is_some();
            async move { exited }
        })
        .await;
        instances[k] = serve_on(&env.config, ports[k]).await;
        balancer.wait_for(&["UP", "UP", "UP"]).await;
    }
    stop.store(true, Ordering::SeqCst);
    let (mut served, mut failures) = (0, Vec::new());
    for task in load {
        let (ok, failed) = task.await.expect("load task");
        served += ok;
        failures.extend(failed);
    }
    println!(
        "rolling restart: {served} requests served, {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "requests failed: {failures:?}");
    assert!(served > 0);
}
