//! Faults: stores stopped and started by the test (servers of its own), Meridian killed
//! mid-delivery, and two relays on one outbox. After each, nothing is lost or counted
//! twice, and reconciliation finds no difference.

use std::time::Duration;

use futures::StreamExt;
use meridian::{reconcile, seed, AppState};
use serde_json::{json, Value};

use crate::support::{pending, wait_until, PrivateStore, TestEnv, TestServer};

const TRADES: usize = 1000;
const TRADE: &str = "mutation($input: RecordTradeInput!) { recordTrade(input: $input) { id } }";

fn shape() -> seed::Shape {
    seed::Shape {
        users: 20,
        assets: 4,
        days: 1,
        seed: 3,
        end: chrono::Utc::now(),
        platforms: seed::Platforms::TRADING,
    }
}

/// Records `TRADES` buys over the seeded users and assets, 16 at a time, through `url`;
/// every one must succeed.
async fn record_trades(client: &reqwest::Client, url: &str, state: &AppState) {
    let users: Vec<String> = sqlx::query_scalar("SELECT id::text FROM users ORDER BY id")
        .fetch_all(state.stores().postgres().pool())
        .await
        .expect("users");
    let symbols = ["BTC", "ETH", "SOL", "USDC"];
    let results: Vec<Value> = futures::stream::iter(0..TRADES)
        .map(|i| {
            let input = json!({ "input": {
                "userId": users[i % users.len()],
                "txHash": format!("0x{:064x}", i + 1),
                "symbol": symbols[i % symbols.len()],
                "side": "BUY",
                "quantity": 0.5 + (i % 7) as f64,
                "price": 10.0 + (i % 13) as f64,
            } });
            async move {
                client
                    .post(url)
                    .json(&json!({ "query": TRADE, "variables": input }))
                    .send()
                    .await
                    .expect("sent")
                    .json::<Value>()
                    .await
                    .expect("JSON")
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let failed: Vec<&Value> = results
        .iter()
        .filter(|r| r["data"]["recordTrade"]["id"].is_null())
        .collect();
    assert!(
        failed.is_empty(),
        "{} trades failed, e.g. {}",
        failed.len(),
        failed[0]
    );
}

/// Whether every outbox destination has delivered everything.
async fn drained(state: &AppState) -> bool {
    pending(state, "clickhouse").await
        + pending(state, "redis").await
        + pending(state, "pubsub").await
        == 0
}

async fn trade_count(state: &AppState) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM trades")
        .fetch_one(state.stores().postgres().pool())
        .await
        .expect("count")
}

async fn clickhouse_count(state: &AppState, final_: bool) -> u64 {
    let sql = if final_ {
        "SELECT count() FROM trade_events FINAL"
    } else {
        "SELECT count() FROM trade_events"
    };
    state
        .stores()
        .clickhouse()
        .client()
        .query(sql)
        .fetch_one()
        .await
        .expect("count")
}

async fn assert_reconciled(state: &AppState) {
    let report = reconcile::check(state.stores())
        .await
        .expect("reconcile runs");
    assert!(
        report.is_clean(),
        "reconcile found differences:\n{}",
        report.lines().join("\n")
    );
}

#[tokio::test]
async fn clickhouse_down_delays_delivery_and_loses_nothing() {
    let clickhouse = PrivateStore::start("clickhouse");
    let env = TestEnv::migrated_with(|c| c.clickhouse_url = clickhouse.url()).await;
    env.seed(&shape()).await;
    let state = env.state().await;
    let seeded = trade_count(&state).await;
    let server = env.spawn().await;

    clickhouse.down();
    record_trades(&server.client, &server.url("/graphql"), &state).await;
    assert_eq!(
        pending(&state, "clickhouse").await,
        TRADES as i64,
        "the backlog holds every trade"
    );
    // Other destinations are not held up: they drain while ClickHouse is down.
    wait_until("the Redis and pub/sub backlogs to drain", 30, || async {
        pending(&state, "redis").await + pending(&state, "pubsub").await == 0
    })
    .await;
    assert_eq!(pending(&state, "clickhouse").await, TRADES as i64);

    clickhouse.up();
    wait_until("the ClickHouse backlog to drain", 60, || async {
        pending(&state, "clickhouse").await == 0
    })
    .await;
    assert_eq!(
        clickhouse_count(&state, true).await as i64,
        seeded + TRADES as i64
    );
    assert_reconciled(&state).await;
}

#[tokio::test]
async fn redis_down_delays_leaderboards_and_loses_nothing() {
    let redis = PrivateStore::start("redis");
    let env = TestEnv::migrated_with(|c| c.redis_url = redis.url()).await;
    env.seed(&shape()).await;
    let state = env.state().await;
    let server = env.spawn().await;

    redis.down();
    record_trades(&server.client, &server.url("/graphql"), &state).await;
    assert_eq!(pending(&state, "redis").await, TRADES as i64);

    redis.up();
    wait_until("the Redis backlog to drain", 60, || async {
        pending(&state, "redis").await == 0 && pending(&state, "pubsub").await == 0
    })
    .await;
    assert_reconciled(&state).await;
}

#[tokio::test]
async fn meridian_killed_mid_delivery_loses_and_doubles_nothing() {
    let clickhouse = PrivateStore::start("clickhouse");
    let env = TestEnv::migrated_with(|c| c.clickhouse_url = clickhouse.url()).await;
    env.seed(&shape()).await;
    let state = env.state().await;
    let seeded = trade_count(&state).await;
    let client = crate::support::client_as(&crate::support::token_for(
        &state,
        "operator",
        &[meridian::auth::Role::Service],
    ));
    // Small batches, so that it can be killed part-way through the backlog.
    let mut config = env.config.clone();
    config.relay_batch = 10;
    let (mut child, port) =
        crate::support::serve_listening(&config, &[], std::process::Stdio::null()).await;
    let url = format!("http://127.0.0.1:{port}/graphql");
    clickhouse.down();
    record_trades(&client, &url, &state).await;
    clickhouse.up();
    // Kill it once it has delivered some of the backlog and not all of it.
    wait_until("delivery to start", 60, || async {
        let left = pending(&state, "clickhouse").await;
        left < TRADES as i64
    })
    .await;
    child.kill().expect("SIGKILL");
    let left = pending(&state, "clickhouse").await;
    assert!(
        left > 0,
        "the relay finished before it could be killed; the test proves nothing"
    );

    let (mut child, _) =
        crate::support::serve_listening(&config, &[], std::process::Stdio::null()).await;
    wait_until("the backlog to drain after the restart", 60, || async {
        drained(&state).await
    })
    .await;
    child.kill().expect("stop");
    assert_eq!(
        clickhouse_count(&state, true).await as i64,
        seeded + TRADES as i64
    );
    assert_reconciled(&state).await;
}

#[tokio::test]
async fn two_relays_apply_each_event_exactly_once() {
    let env = TestEnv::migrated_with(|c| c.relay_batch = 20).await;
    env.seed(&shape()).await;
    let state = env.state().await;
    let seeded_raw = clickhouse_count(&state, false).await;
    let (a, b) = (env.state().await, env.state().await);
    let (server_a, _server_b) = (
        TestServer::start(a.clone()).await,
        TestServer::start(b.clone()).await,
    );

    record_trades(&server_a.client, &server_a.url("/graphql"), &state).await;
    wait_until("the outbox to drain", 60, || async {
        drained(&state).await
    })
    .await;
    // Each row went to exactly one relay: no duplicate rows even before FINAL.
    assert_eq!(
        clickhouse_count(&state, false).await,
        seeded_raw + TRADES as u64
    );
    let delivered = |state: &AppState, destination: &str| {
        let text = state.metrics().render();
        let series = format!(
            "meridian_relay_rows_total{{destination=\"{destination}\",outcome=\"delivered\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .map_or(0, |n| n.parse::<u64>().expect("number"))
    };
    for destination in ["clickhouse", "redis", "pubsub"] {
        assert_eq!(
            delivered(&a, destination) + delivered(&b, destination),
            TRADES as u64,
            "{destination}"
        );
    }
    assert_reconciled(&state).await;
    tokio::time::sleep(Duration::ZERO).await;
}

#[tokio::test]
async fn postgres_killed_mid_write_keeps_every_acknowledged_trade() {
    let postgres = PrivateStore::start("postgres");
    let env = TestEnv::migrated_with(|c| {
        c.postgres_url = postgres.url();
        c.store_timeout_ms = 1000;
    })
    .await;
    env.seed(&shape()).await;
    let server = env.spawn().await;
    let state = server.state.clone();
    let users: Vec<String> = sqlx::query_scalar("SELECT id::text FROM users ORDER BY id")
        .fetch_all(state.stores().postgres().pool())
        .await
        .expect("users");
    let before = trade_count(&state).await;

    // Eight writers record trades one after another until told to stop, keeping the
    // tx hash of every trade that was acknowledged.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (client, url) = (server.client.clone(), server.url("/graphql"));
            let (stop, acknowledged, refused) =
                (stop.clone(), acknowledged.clone(), refused.clone());
            let users = users.clone();
            tokio::spawn(async move {
                let mut i = 0usize;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    i += 1;
                    let tx = format!("0x{:016x}{:048x}", w + 1, i);
                    let input = json!({ "input": {
                        "userId": users[(w + i) % users.len()],
                        "txHash": tx,
                        "symbol": "BTC",
                        "side": "BUY",
                        "quantity": 0.25,
                        "price": 100.0,
                    } });
                    let answer = client
                        .post(&url)
                        .json(&json!({ "query": TRADE, "variables": input }))
                        .send()
                        .await;
                    let Ok(answer) = answer else { continue };
                    let body: Value = answer.json().await.unwrap_or_default();
                    if body["data"]["recordTrade"]["id"].is_string() {
                        acknowledged.lock().expect("lock").push(tx);
                    } else {
                        refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    let acked = || acknowledged.lock().expect("lock").len();
    wait_until("200 trades acknowledged", 60, || async { acked() >= 200 }).await;
    postgres.crash().await;
    let at_crash = acked();
    wait_until("writes to fail while PostgreSQL is down", 30, || async {
        refused.load(std::sync::atomic::Ordering::SeqCst) > 0
    })
    .await;
    postgres.up();
    wait_until("writes to be acknowledged again", 60, || async {
        acked() >= at_crash + 100
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for writer in writers {
        writer.await.expect("writer");
    }

    let acknowledged = acknowledged.lock().expect("lock").clone();
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT tx_hash FROM trades WHERE tx_hash = ANY($1)")
            .bind(&acknowledged)
            .fetch_all(state.stores().postgres().pool())
            .await
            .expect("stored trades");
    let stored: std::collections::HashSet<String> = stored.into_iter().collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|t| !stored.contains(*t))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged trades were lost, e.g. {}",
        lost.len(),
        acknowledged.len(),
        lost[0]
    );
    // Everything stored reaches the other stores once the outbox drains.
    wait_until("the outbox to drain", 60, || async {
        drained(&state).await
    })
    .await;
    assert_reconciled(&state).await;
    println!(
        "postgres kill -9: {} trades acknowledged ({at_crash} before the crash), {} refused while down, {} stored in all ({} before), none lost",
        acknowledged.len(),
        refused.load(std::sync::atomic::Ordering::SeqCst),
        trade_count(&state).await,
        before
    );
}

/// Inserts an outbox row no relay can read, for `destination`.
async fn poisoned_row(state: &AppState, destination: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO outbox (event_id, kind, payload, destination, created_at, next_attempt_at) \
         VALUES ($1, 'trade_recorded', '{\"not\": \"a trade\"}', $2, now() - interval '1 minute', now() - interval '1 minute') \
         RETURNING id",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(destination)
    .fetch_one(state.stores().postgres().pool())
    .await
    .expect("inserted")
}

/// A malformed outbox row (inserted by hand, oldest in the queue) is set aside as a dead
/// letter, the trades behind it are delivered, reconcile lists it, metrics count it, and
/// `meridian redrive` queues it again.
#[tokio::test]
async fn a_poisoned_outbox_row_is_dead_lettered_and_the_rows_behind_it_flow() {
    let env = TestEnv::migrated().await;
    env.seed(&shape()).await;
    let state = env.state().await;
    let mut poisoned = Vec::new();
    for destination in ["clickhouse", "redis", "pubsub"] {
        poisoned.push(poisoned_row(&state, destination).await);
    }
    let seeded = trade_count(&state).await;
    let server = env.spawn().await;
    record_trades(&server.client, &server.url("/graphql"), &state).await;
    wait_until("every good row to be delivered", 60, || drained(&state)).await;
    assert_eq!(
        clickhouse_count(&state, true).await as i64,
        seeded + TRADES as i64
    );

    let dead: Vec<(i64, String, i32, String)> = sqlx::query_as(
        "SELECT id, destination, attempts, last_error FROM outbox \
         WHERE dead_at IS NOT NULL AND delivered_at IS NULL ORDER BY id",
    )
    .fetch_all(state.stores().postgres().pool())
    .await
    .expect("dead letters");
    assert_eq!(dead.iter().map(|d| d.0).collect::<Vec<_>>(), poisoned);
    for (_, _, attempts, error) in &dead {
        assert_eq!(*attempts, 1, "a malformed row is dead at its first attempt");
        assert!(error.contains("malformed"), "{error}");
    }
    let report = reconcile::check(state.stores()).await.expect("reconcile");
    assert!(report.is_clean(), "{}", report.lines().join("\n"));
    assert_eq!(report.dead.len(), 3);
    assert_eq!(
        report
            .lines()
            .iter()
            .filter(|l| l.starts_with("outbox: dead letter"))
            .count(),
        3
    );
    let metrics = || async {
        server
            .client
            .get(server.url("/metrics"))
            .send()
            .await
            .expect("scraped")
            .text()
            .await
            .expect("text")
    };
    wait_until("the dead letters to show in /metrics", 30, || async {
        let text = metrics().await;
        ["clickhouse", "redis", "pubsub"].iter().all(|d| {
            text.contains(&format!("meridian_outbox_dead{{destination=\"{d}\"}} 1"))
                && text.contains(&format!(
                    "meridian_relay_rows_total{{destination=\"{d}\",outcome=\"dead\"}} 1"
                ))
        })
    })
    .await;

    // `meridian redrive` puts one back; still unreadable, it is dead again at once.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["redrive", "--id", &poisoned[2].to_string()])
        .envs(crate::support::config_env(&env.config))
        .output()
        .expect("meridian redrive runs");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "redrive: 1 dead letters queued again"
    );
    wait_until("the redriven row to be dead again", 30, || async {
        let row: (i32, bool) =
            sqlx::query_as("SELECT attempts, dead_at IS NOT NULL FROM outbox WHERE id = $1")
                .bind(poisoned[2])
                .fetch_one(state.stores().postgres().pool())
                .await
                .expect("row");
        row == (1, true)
    })
    .await;
}

/// A row its store refuses is retried, and dead after `max_attempts` refusals; a row whose
/// store is down is retried however long the outage lasts.
#[tokio::test]
async fn refusals_count_toward_dead_letters_and_outages_do_not() {
    use meridian::store::postgres::{Backoff, Settle};
    let env = TestEnv::migrated().await;
    let state = env.state().await;
    let postgres = &state.stores().postgres();
    let refused = poisoned_row(&state, "clickhouse").await;
    let unavailable = poisoned_row(&state, "redis").await;
    let backoff = Backoff {
        base: Duration::ZERO,
        max: Duration::ZERO,
        max_attempts: 3,
    };
    let mut dead_after = None;
    for attempt in 1..=5 {
        let claim = postgres
            .claim_outbox("clickhouse", 10)
            .await
            .expect("claim");
        // Once dead, the row is no longer claimed.
        if let Some(claim) = claim {
            assert_eq!(claim.rows.len(), 1);
            let settled = claim
                .settle(&[(refused, Settle::Rejected("refused".into()))], backoff)
                .await
                .expect("settled");
            if settled.dead == 1 {
                dead_after = Some(attempt);
            }
        }
        let claim = postgres.claim_outbox("redis", 10).await.expect("claim");
        let claim = claim.expect("an outage never dead-letters");
        let settled = claim
            .settle(
                &[(unavailable, Settle::Retry("store down".into()))],
                backoff,
            )
            .await
            .expect("settled");
        assert_eq!((settled.retried, settled.dead), (1, 0));
    }
    assert_eq!(dead_after, Some(3));
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM outbox WHERE id = $1")
        .bind(unavailable)
        .fetch_one(postgres.pool())
        .await
        .expect("attempts");
    assert_eq!(attempts, 5);
}

/// SIGTERM with a graphql-ws client subscribed and the relay busy: the client gets a 1001
/// close frame, the process exits by itself (status 0) within the grace period, and the
/// outbox it leaves is whole: a new relay delivers the rest and reconcile agrees.
#[tokio::test]
async fn sigterm_closes_websockets_with_1001_and_leaves_the_outbox_whole() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::{protocol::frame::coding::CloseCode, Message};

    let env = TestEnv::migrated().await;
    env.seed(&shape()).await;
    let state = env.state().await;
    let seeded = trade_count(&state).await;
    let (mut child, port) =
        crate::support::serve_listening(&env.config, &[], std::process::Stdio::null()).await;
    let client = crate::support::client_as(&crate::support::token_for(
        &state,
        "operator",
        &[meridian::auth::Role::Admin, meridian::auth::Role::Service],
    ));
    let url = format!("http://127.0.0.1:{port}/graphql");
    let mut socket = crate::abuse::open_socket(port, json!({})).await;
    crate::abuse::send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": {
            "query": "subscription { priceUpdated(symbols: [\"BTC\"]) { price } }" } }),
    )
    .await;
    record_trades(&client, &url, &state).await;
    child.terminate();

    let close = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("a close frame within 20 s")
    .expect("a close code");
    assert_eq!(close.code, CloseCode::Away, "{close:?}");
    wait_until("meridian to exit", 30, || {
        let exited = child.exited();
        async move { exited.is_some() }
    })
    .await;
    let status = child.exited().expect("exited");
    assert!(status.success(), "{status:?}");

    // Whatever the relay had not delivered is still in the outbox, unclaimed.
    let server = env.spawn().await;
    wait_until("the outbox to drain", 60, || drained(&state)).await;
    assert_eq!(
        clickhouse_count(&state, true).await as i64,
        seeded + TRADES as i64
    );
    assert_reconciled(&state).await;
    drop(server);
}
