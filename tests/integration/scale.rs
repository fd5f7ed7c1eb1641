//! Meridian against more than one node per store: a PostgreSQL read replica.

use meridian::auth::Role;
use serde_json::{json, Value};

use crate::support::{
    pending, scores, small_shape, user_token, volume_score, wait_until, PrivateStore, TestEnv,
    TestServer,
};

const TRADE: &str =
    "mutation($input: RecordTradeInput!) { recordTrade(input: $input) { id txHash } }";
const TRADES: &str =
    "query($id: ID!) { user(id: $id) { trades(first: 50) { edges { node { txHash } } } } }";

/// The transaction hashes of `user`'s trades as `token` sees them through `server`.
async fn hashes(server: &TestServer, token: &str, user: &str) -> Vec<String> {
    let (status, body) = server
        .graphql_as(Some(token), TRADES, json!({ "id": user }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["user"]["trades"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no trades in {body}"))
        .iter()
        .map(|e| e["node"]["txHash"].as_str().expect("a hash").to_owned())
        .collect()
}

async fn on_replica(replica: &sqlx::PgPool, sql: &str) -> String {
    sqlx::query_scalar::<_, String>(sql)
        .fetch_one(replica)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn queries_read_from_the_replica_and_a_writer_reads_its_own_writes() {
    let primary = PrivateStore::start("postgres");
    let replica = PrivateStore::replica_of(&primary);
    let env = TestEnv::migrated_with(|c| {
        c.postgres_url = primary.url();
        c.postgres_read_url = Some(replica.url());
        c.store_timeout_ms = 2000;
    })
    .await;
    env.seed(&small_shape()).await;
    // Two instances: the writer's next read may land on either.
    let first = env.spawn().await;
    let second = env.spawn().await;
    let state = first.state.clone();
    let users: Vec<String> = sqlx::query_scalar("SELECT id::text FROM users ORDER BY id LIMIT 1")
        .fetch_all(state.stores().postgres().pool())
        .await
        .expect("users");
    let writer = &users[0];
    let writer_token = user_token(&state, writer);
    // Another principal who may see the writer's trades.
    let reader_token = first.token("auditor", &[Role::Admin]);
    for server in [&first, &second] {
        let postgres = server.state.stores().postgres().clone();
        wait_until("the replica to be in use", 30, move || {
            let postgres = postgres.clone();
            async move { postgres.reads_from_replica() }
        })
        .await;
    }
    let standby = sqlx::PgPool::connect(&replica.url())
        .await
        .expect("replica");
    assert_eq!(
        on_replica(&standby, "SELECT pg_is_in_recovery()::text").await,
        "true"
    );
    let before = hashes(&first, &reader_token, writer).await;
    wait_until("the replica to replay the seed", 30, || async {
        hashes(&first, &reader_token, writer).await.len() == before.len()
    })
    .await;

    // Replay stops: what is written now is on the primary only.
    on_replica(&standby, "SELECT pg_wal_replay_pause()::text").await;
    wait_until("replay to be paused", 30, || async {
        on_replica(&standby, "SELECT pg_get_wal_replay_pause_state()").await == "paused"
    })
    .await;
    let hash = format!("0x{}", "5e".repeat(32));
    let input = json!({ "input": {
        "userId": writer, "txHash": hash, "symbol": "BTC", "side": "BUY",
        "quantity": 0.5, "price": 100.0,
    }});
    let (status, written) = first.graphql_as(Some(&writer_token), TRADE, input).await;
    assert_eq!(status, 200, "{written}");
    assert_eq!(
        written["data"]["recordTrade"]["txHash"],
        json!(hash),
        "{written}"
    );

    // The writer sees its trade through either instance (they read the primary)...
    for server in [&first, &second] {
        let seen = hashes(server, &writer_token, writer).await;
        assert!(
            seen.contains(&hash),
            "the writer misses its trade: {seen:?}"
        );
        assert_eq!(seen.len(), before.len() + 1);
    }
    // ...while another viewer reads the paused replica, which has not got it.
    for server in [&first, &second] {
        assert_eq!(hashes(server, &reader_token, writer).await, before);
    }

    // Replay resumes: the reader sees the trade.
    on_replica(&standby, "SELECT pg_wal_replay_resume()::text").await;
    wait_until("the reader to see the trade", 30, || async {
        hashes(&second, &reader_token, writer).await.contains(&hash)
    })
    .await;
    standby.close().await;

    // The replica goes away: reads fall back to the primary at once, and readiness says
    // so without making the instance unready.
    replica.down();
    for server in [&first, &second] {
        let seen = hashes(server, &reader_token, writer).await;
        assert!(seen.contains(&hash), "{seen:?}");
    }
    let response = first
        .anonymous
        .get(first.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(response.status().as_u16(), 200);
    let ready: Value = response.json().await.expect("JSON");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["down"], json!(["postgres_replica"]), "{ready}");
    assert_eq!(
        ready["stores"]["postgres_replica"]["reads"], "primary",
        "{ready}"
    );
    assert_eq!(ready["stores"]["postgres"]["status"], "up", "{ready}");
    assert!(!first.state.stores().postgres().reads_from_replica());
}

/// The answers a dashboard gets from Redis-backed fields (boards, standings, prices, the
/// stats cache), as `token` sees them through `server`.
async fn redis_answers(server: &TestServer, token: &str, user: &str) -> Value {
    const QUERY: &str = "query($u: ID!) { \
        leaderboard(name: \"volume\", top: 10) { size entries { rank score member user { username } } } \
        user(id: $u) { rank(board: \"volume\") { rank score } } \
        assets(first: 6) { edges { node { symbol price { price } stats24h { high low volume } } } } }";
    let mut answers = Vec::new();
    // Twice: the second answer of stats24h comes from the Redis cache.
    for _ in 0..2 {
        let (status, body) = server
            .graphql_as(Some(token), QUERY, json!({ "u": user }))
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        answers.push(body["data"].clone());
    }
    assert_eq!(answers[0], answers[1], "the cached answer differs");
    answers.remove(0)
}

#[tokio::test]
async fn on_a_redis_cluster_every_redis_feature_gives_the_single_servers_answers() {
    let cluster = PrivateStore::start("redis-cluster");
    let single = TestEnv::migrated().await;
    let clustered = TestEnv::migrated_with(|c| {
        c.redis_cluster_nodes = Some(cluster.url());
        c.security.rate_limit_principal = 30;
        c.security.rate_limit_window_secs = 3600;
    })
    .await;
    single.seed(&small_shape()).await;
    clustered.seed(&small_shape()).await;
    let (one, many) = (single.spawn().await, clustered.spawn().await);
    let state = many.state.clone();
    assert!(state.stores().redis().is_cluster());
    // The keys are spread over the masters (the hash-tag groups on theirs, the rest by key).
    let mut masters_with_keys = 0;
    for port in cluster.cluster_ports() {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("node");
        let role: Vec<redis::Value> = redis::cmd("ROLE")
            .query_async(&mut conn)
            .await
            .expect("role");
        let master = matches!(&role[0], redis::Value::BulkString(r) if r == b"master");
        let keys: u64 = redis::cmd("DBSIZE")
            .query_async(&mut conn)
            .await
            .expect("dbsize");
        if master && keys > 0 {
            masters_with_keys += 1;
        }
    }
    assert!(
        masters_with_keys >= 2,
        "keys on {masters_with_keys} master(s)"
    );

    let user: String = sqlx::query_scalar("SELECT id::text FROM users ORDER BY id LIMIT 1")
        .fetch_one(state.stores().postgres().pool())
        .await
        .expect("a user");
    let admin = |server: &TestServer| server.token("auditor", &[Role::Admin]);
    assert_eq!(
        redis_answers(&many, &admin(&many), &user).await,
        redis_answers(&one, &admin(&one), &user).await
    );

    // Live: a trade reaches a subscriber (sharded pub/sub), moves the board, and an event
    // is resumable after its cursor (the stream).
    let token = many.token("operator", &[Role::Admin, Role::Service]);
    let auth = json!({ "Authorization": format!("Bearer {token}") });
    let mut socket = crate::abuse::open_socket(many.addr.port(), auth.clone()).await;
    crate::abuse::send(
        &mut socket,
        json!({ "id": "t", "type": "subscribe", "payload": { "query": "subscription { tradeExecuted { txHash } }" } }),
    )
    .await;
    let shard_subscribers = || {
        let mut conn = state.stores().redis().conn();
        let channel = state.stores().redis().trades_channel();
        async move {
            let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
                .arg("SHARDNUMSUB")
                .arg(&channel)
                .query_async(&mut conn)
                .await
                .expect("shardnumsub");
            counts.first().is_some_and(|(_, n)| *n == 1)
        }
    };
    wait_until("the shard channel to be subscribed", 20, shard_subscribers).await;
    let hash = format!("0x{}", "c1".repeat(32));
    let input = json!({ "input": { "userId": user, "txHash": hash, "symbol": "BTC",
        "side": "BUY", "quantity": 2.0, "price": 50.0 } });
    let (status, body) = many.graphql_as(Some(&token), TRADE, input).await;
    assert_eq!(status, 200, "{body}");
    let next = loop {
        let message = crate::abuse::next_json(&mut socket).await;
        if message["type"] == "next" {
            break message;
        }
    };
    assert_eq!(
        next["payload"]["data"]["tradeExecuted"]["txHash"],
        json!(hash)
    );
    let before = redis_answers(&one, &admin(&one), &user).await["user"]["rank"]["score"]
        .as_f64()
        .expect("a score");
    wait_until("the board to move by the trade", 20, || async {
        redis_answers(&many, &admin(&many), &user).await["user"]["rank"]["score"].as_f64()
            == Some(before + 100.0)
    })
    .await;
    drop(socket);

    // Sessions: a wallet signs in, and its session token works.
    let key = k256::ecdsa::SigningKey::from_slice(&[77u8; 32]).expect("key");
    let address = meridian::auth::wallet::address_of(key.verifying_key());
    let registered = many
        .graphql_with(
            "mutation($a: String!) { registerUser(input: { address: $a, username: \"cluster_user\" }) { id } }",
            json!({ "a": address }),
            &[],
        )
        .await;
    let id = registered["data"]["registerUser"]["id"].clone();
    let login = crate::security::sign_in(&many, &address, |message| {
        meridian::auth::wallet::sign(&key, message)
    })
    .await;
    let session = login["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{login}"));
    let (_, me) = many
        .graphql_as(Some(session), "{ me { id } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["id"], id, "{me}");

    // Automatic persisted queries: registered with the document, then run by hash alone.
    let query = "{ asset(symbol: \"BTC\") { name } }";
    let hash = meridian::digest::sha256_hex(query);
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let send = |body: Value| {
        let client = many.client.clone();
        let url = many.url("/graphql");
        async move {
            let response = client.post(url).json(&body).send().await.expect("sent");
            response.json::<Value>().await.expect("JSON")
        }
    };
    let registered = send(json!({ "query": query, "extensions": extensions })).await;
    assert_eq!(
        registered["data"]["asset"]["name"], "Bitcoin",
        "{registered}"
    );
    let by_hash = send(json!({ "extensions": extensions })).await;
    assert_eq!(by_hash["data"], registered["data"], "{by_hash}");

    // Rate limits: 30 an hour for one principal (the script's keys share a slot).
    let limited = many.token("limited", &[Role::Admin]);
    let mut allowed = 0;
    for _ in 0..35 {
        let (status, _) = many
            .graphql_as(Some(&limited), "{ __typename }", json!({}))
            .await;
        allowed += usize::from(status == 200);
    }
    assert_eq!(allowed, 30);
}

/// The port of the master serving hash slot `slot`, as node `via` sees the cluster.
async fn master_of(via: u16, slot: i64) -> Option<u16> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{via}")).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(&mut conn)
        .await
        .ok()?;
    if !info.contains("cluster_state:ok") {
        return None;
    }
    let ranges: Vec<(i64, i64, (String, i64))> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async::<Vec<redis::Value>>(&mut conn)
        .await
        .ok()?
        .into_iter()
        .filter_map(|range| {
            let redis::Value::Array(parts) = range else {
                return None;
            };
            let start = redis::from_redis_value::<i64>(parts.first()?.clone()).ok()?;
            let end = redis::from_redis_value::<i64>(parts.get(1)?.clone()).ok()?;
            let master = redis::from_redis_value::<(String, i64)>(match parts.get(2)? {
                redis::Value::Array(node) => redis::Value::Array(node[..2].to_vec()),
                _ => return None,
            })
            .ok()?;
            Some((start, end, master))
        })
        .collect();
    ranges
        .into_iter()
        .find(|(start, end, _)| (*start..=*end).contains(&slot))
        .and_then(|(_, _, (_, port))| u16::try_from(port).ok())
}

#[tokio::test]
async fn a_redis_cluster_master_killed_under_load_fails_over_and_no_acknowledged_write_is_lost() {
    use std::sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    };
    use std::time::{Duration, Instant};

    let cluster = PrivateStore::start("redis-cluster");
    let env = TestEnv::migrated_with(|c| {
        c.redis_cluster_nodes = Some(cluster.url());
        c.redis_wait_replicas = 1;
        c.store_timeout_ms = 1000;
        c.relay_retry_max_ms = 500;
        c.relay_max_attempts = 1000;
    })
    .await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    let state = server.state.clone();
    let ports: Vec<u16> = cluster.cluster_ports().collect();
    // The boards' master: the one the volume board's updates go to.
    let client = redis::Client::open(format!("redis://127.0.0.1:{}", ports[0])).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("node");
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(state.stores().redis().leaderboard_key("volume", ""))
        .query_async(&mut conn)
        .await
        .expect("keyslot");
    let victim = master_of(ports[0], slot).await.expect("the boards' master");
    let users: Vec<String> = sqlx::query_scalar("SELECT id::text FROM users ORDER BY id LIMIT 3")
        .fetch_all(state.stores().postgres().pool())
        .await
        .expect("users");
    let before = scores(&state, &users).await;

    // A subscriber to the board: its shard channel is on the master about to die.
    let token = server.token("operator", &[Role::Admin, Role::Service]);
    let auth = json!({ "Authorization": format!("Bearer {token}") });
    let mut socket = crate::abuse::open_socket(server.addr.port(), auth).await;
    crate::abuse::send(
        &mut socket,
        json!({ "id": "b", "type": "subscribe", "payload": { "query": "subscription { leaderboardUpdated(name: \"volume\", top: 100) { entries { member score } } }" } }),
    )
    .await;
    let first = crate::abuse::next_json(&mut socket).await;
    assert_eq!(first["type"], "next", "{first}");

    // Load: trades written (PostgreSQL, then the relay to Redis), and the board read.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(vec![0.0f64; 3]));
    // Acknowledged trades and answered reads so far.
    let (acks, answered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let started = Instant::now();
    // Each side of the load runs at 50 requests a second.
    let pace = || {
        let mut pace = tokio::time::interval(Duration::from_millis(20));
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        pace
    };
    let writer = {
        let (stop, acknowledged, users, acks) = (
            stop.clone(),
            acknowledged.clone(),
            users.clone(),
            acks.clone(),
        );
        let mut pace = pace();
        let (client, url, token) = (
            server.anonymous.clone(),
            server.url("/graphql"),
            token.clone(),
        );
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                pace.tick().await;
                let k = (i % 3) as usize;
                let price = 1.0 + (i % 7) as f64;
                let input = json!({ "input": { "userId": users[k],
                    "txHash": format!("0x{:064x}", 0xfa11_0000 + i), "symbol": "BTC",
                    "side": "BUY", "quantity": 1.0, "price": price } });
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "query": TRADE, "variables": input }))
                    .send()
                    .await;
                if let Ok(response) = response {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    if body["data"]["recordTrade"]["id"].is_string() {
                        acknowledged.lock().expect("acks")[k] += price;
                        acks.fetch_add(1, Ordering::SeqCst);
                    }
                }
                i += 1;
            }
            i
        })
    };
    let reader = {
        let (stop, answered) = (stop.clone(), answered.clone());
        let (client, url) = (server.anonymous.clone(), server.url("/graphql"));
        let mut pace = pace();
        tokio::spawn(async move {
            // (milliseconds since the start, answered)
            let mut reads = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                pace.tick().await;
                let query =
                    json!({ "query": "{ leaderboard(name: \"volume\", top: 3) { size } }" });
                let ok = match client.post(&url).json(&query).send().await {
                    Ok(response) => {
                        let body: Value = response.json().await.unwrap_or(Value::Null);
                        body["data"]["leaderboard"]["size"].is_number()
                    }
                    Err(_) => false,
                };
                answered.fetch_add(usize::from(ok), Ordering::SeqCst);
                reads.push((started.elapsed().as_millis(), ok));
            }
            reads
        })
    };
    // The load is under way (both sides answered) before the kill.
    let under_way = |trades: usize, reads: usize| {
        let (acks, answered) = (acks.clone(), answered.clone());
        move || {
            let done =
                acks.load(Ordering::SeqCst) >= trades && answered.load(Ordering::SeqCst) >= reads;
            async move { done }
        }
    };
    wait_until("the load to be under way", 30, under_way(20, 20)).await;
    let killed_at = started.elapsed().as_millis();
    cluster.kill_cluster_node(victim);
    let survivor = *ports.iter().find(|p| **p != victim).expect("a survivor");
    wait_until("a replica to take over the boards' slot", 60, || async {
        master_of(survivor, slot).await.is_some_and(|m| m != victim)
    })
    .await;
    let promoted_at = started.elapsed().as_millis();
    // The old master comes back as the new one's replica, so writes can be acknowledged
    // by a replica again (MERIDIAN_REDIS_WAIT_REPLICAS=1).
    cluster.restart_cluster_node(victim);
    wait_until("the old master to replicate the new one", 60, || async {
        let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{victim}")) else {
            return false;
        };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
            return false;
        };
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        info.contains("role:slave") && info.contains("master_link_status:up")
    })
    .await;
    // Load goes on past the failover: 20 more trades and reads answered.
    let (trades_now, reads_now) = (acks.load(Ordering::SeqCst), answered.load(Ordering::SeqCst));
    wait_until(
        "the load to go on after the failover",
        30,
        under_way(trades_now + 20, reads_now + 20),
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    let trades = writer.await.expect("writer");
    let reads = reader.await.expect("reader");
    wait_until("the relay to drain the outbox", 90, || async {
        pending(&state, "redis").await == 0
    })
    .await;
    let acknowledged = acknowledged.lock().expect("acks").clone();
    for (k, user) in users.iter().enumerate() {
        let moved = volume_score(&state, user).await - before[k];
        assert!(
            (moved - acknowledged[k]).abs() < 1e-6,
            "user {k}: the board moved {moved}, acknowledged trades' volume {}",
            acknowledged[k]
        );
    }
    let failed: Vec<u128> = reads
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(t, _)| *t)
        .collect();
    let last_failure = failed.last().copied().unwrap_or(killed_at);
    // The subscriber still gets the board's changes: its shard channel was subscribed
    // again on the new master. (Changes published during the failover may be missed, as
    // pub/sub does not keep them.)
    // (Read before the trade: the relay may apply it before the mutation's answer arrives.)
    let target = volume_score(&state, &users[0]).await + 1000.0;
    let (status, body) = server
        .graphql_as(
            Some(&token),
            TRADE,
            json!({ "input": { "userId": users[0], "txHash": format!("0x{:064x}", 0xfa12_0000u64),
                "symbol": "BTC", "side": "BUY", "quantity": 1.0, "price": 1000.0 } }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_until("the last trade on the board", 30, || async {
        (volume_score(&state, &users[0]).await - target).abs() < 1e-6
    })
    .await;
    // Updates queued before are skipped; the one that shows the last trade must come.
    let shows_target = |message: &Value| {
        message["payload"]["data"]["leaderboardUpdated"]["entries"]
            .as_array()
            .is_some_and(|entries| {
                entries.iter().any(|e| {
                    e["member"] == json!(users[0])
                        && e["score"]
                            .as_f64()
                            .is_some_and(|s| (s - target).abs() < 1e-6)
                })
            })
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let message = crate::abuse::next_json(&mut socket).await;
            assert!(
                message["type"] == "next" || message["type"] == "ping",
                "the subscription ended: {message}"
            );
            if shows_target(&message) {
                return;
            }
        }
    })
    .await
    .expect("the board's update after the failover reached the subscriber");

    // After the failover every read is answered.
    for _ in 0..20 {
        let (status, body) = server
            .graphql_as(
                None,
                "{ leaderboard(name: \"volume\", top: 3) { size } }",
                json!({}),
            )
            .await;
        assert_eq!(status, 200);
        assert!(body["data"]["leaderboard"]["size"].is_number(), "{body}");
    }
    println!(
        "failover: master :{victim} killed at {killed_at} ms, replica promoted by {promoted_at} ms; \
         {} of {} board reads failed (STORE_UNAVAILABLE within the 1 s store timeout), the \
         last at {last_failure} ms ({} ms after the kill); {trades} trades written, every \
         acknowledged one on the board",
        failed.len(),
        reads.len(),
        last_failure.saturating_sub(killed_at)
    );
}

/// Asserts two answers equal, numbers within a relative 1e-9 (sums over shards add in
/// another order).
fn assert_close(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                "{path}: {x} != {y}"
            );
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_close(x, y, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys = |o: &serde_json::Map<String, Value>| {
                o.keys().cloned().collect::<std::collections::BTreeSet<_>>()
            };
            assert_eq!(keys(x), keys(y), "{path}: fields");
            for (k, v) in x {
                assert_close(v, &y[k], &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

/// Two deployments seeded alike with every platform, serving, and what they answered.
struct Compared {
    other: TestServer,
    queries: [String; 2],
    answers: Vec<Value>,
}

/// Seeds `single` (the stack's ClickHouse) and `other` with the same shape, then checks
/// that the ClickHouse-backed answers agree and that reconcile is clean on both.
async fn compare_clickhouse(single: &TestEnv, other: &TestEnv) -> Compared {
    // One shape (one end time) for both.
    let shape = crate::support::recent_shape(meridian::seed::Platforms::ALL);
    let (a, b) = (single.seed(&shape).await, other.seed(&shape).await);
    assert_eq!(a.ticks, b.ticks);
    let (one, many) = (single.spawn().await, other.spawn().await);
    let pool = many.state.stores().postgres().pool();
    let user: String = sqlx::query_scalar(
        "SELECT user_id::text FROM trades GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .expect("a trader");
    // An asset QiCore does not quote: it quotes its assets on three exchanges at the same
    // seconds, and which of several ticks of one second is a candle's close is not
    // defined, on one server or on many.
    let symbol: String = sqlx::query_scalar(
        "SELECT symbol FROM assets WHERE symbol <> ALL($1) AND status = 'listed' ORDER BY symbol LIMIT 1",
    )
    .bind(
        meridian::seed::qicore::ASSETS
            .iter()
            .map(|a| a.0.to_owned())
            .collect::<Vec<_>>(),
    )
    .fetch_one(pool)
    .await
    .expect("an asset only the trading data prices");
    let staker: String = sqlx::query_scalar(
        "SELECT subject FROM events WHERE kind = 'staking_deposit' ORDER BY subject LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .expect("a staker");
    let challenge: String = sqlx::query_scalar("SELECT id FROM challenges ORDER BY id LIMIT 1")
        .fetch_one(pool)
        .await
        .expect("a challenge");
    let protocol: String = sqlx::query_scalar("SELECT id FROM protocols ORDER BY id LIMIT 1")
        .fetch_one(pool)
        .await
        .expect("a protocol");
    // Fixed windows (not "the last day", which moves between the two queries), and
    // aggregates that do not depend on which of several ticks of one second comes first
    // (the seed writes some ticks of an asset at the same second: a candle's open and
    // close among them are not defined, on one server or on many).
    let (from, to) = (
        (shape.end - chrono::Duration::days(1)).to_rfc3339(),
        shape.end.to_rfc3339(),
    );
    let queries = [
        format!(
            "{{ asset(symbol: \"{symbol}\") {{ \
               hours: candles(interval: HOUR, from: \"{from}\", to: \"{to}\") {{ start high low volume ticks }} \
               minutes: candles(interval: MINUTE, from: \"{from}\", to: \"{to}\") {{ start high low volume ticks }} }} \
             user(id: \"{user}\") {{ activity(interval: HOUR, from: \"{from}\", to: \"{to}\") {{ start events trades tradeVolume rewards }} \
               portfolioHistory(interval: DAY) {{ day value positions unpriced }} }} }}"
        ),
        format!(
            "{{ farmingOverview(from: \"{from}\", to: \"{to}\", interval: HOUR) {{ \
                 totals {{ plants works harvests rewards activeFarmers }} buckets {{ start plants rewards }} }} \
               challengeStats(id: \"{challenge}\") {{ attempts solvers completionRate medianScore }} \
               stakingMetrics(account: \"{staker}\") {{ totalStaked rewards withdrawn shares exchangeRate stakedValue pendingTotal events }} \
               protocolTvl(protocol: \"{protocol}\", interval: HOUR, from: \"{from}\", to: \"{to}\") {{ at tvl pools }} \
               btc: asset(symbol: \"BTC\") {{ ohlcv(exchange: \"binance\", timeframe: HOUR, from: \"{from}\", to: \"{to}\") {{ start open high low close volume }} }} }}"
        ),
    ];
    let mut answers = Vec::new();
    for query in &queries {
        let admin = |server: &TestServer| server.token("auditor", &[Role::Admin]);
        let (_, a) = one.graphql_as(Some(&admin(&one)), query, json!({})).await;
        let (_, b) = many.graphql_as(Some(&admin(&many)), query, json!({})).await;
        assert!(a.get("errors").is_none(), "single: {a}");
        assert!(b.get("errors").is_none(), "sharded: {b}");
        assert_close(&a["data"], &b["data"], "data");
        answers.push(a["data"].clone());
    }
    // The answers are not empty.
    let filled = |v: &Value| v.as_array().is_some_and(|a| !a.is_empty());
    let (trading, platforms) = (&answers[0], &answers[1]);
    for series in [
        &trading["asset"]["hours"],
        &trading["asset"]["minutes"],
        &trading["user"]["activity"],
        &trading["user"]["portfolioHistory"],
        &platforms["farmingOverview"]["buckets"],
        &platforms["protocolTvl"],
        &platforms["btc"]["ohlcv"],
    ] {
        assert!(filled(series), "an empty series in {answers:?}");
    }
    assert!(platforms["challengeStats"]["attempts"].as_i64() > Some(0));
    assert!(platforms["stakingMetrics"]["totalStaked"].as_f64() > Some(0.0));

    for (name, server) in [("single", &one), ("other", &many)] {
        let report = meridian::reconcile::check(server.state.stores())
            .await
            .expect("reconcile runs");
        assert!(report.is_clean(), "{name}: {report:?}");
    }
    Compared {
        other: many,
        queries,
        answers,
    }
}

/// A second fold of the hourly candles' table `table` (through `client`): reconcile
/// reports it and its repair leaves the answers `compared` got.
async fn fold_twice_and_repair(
    compared: &Compared,
    client: &clickhouse::Client,
    table: &str,
    raw: &str,
) {
    let many = &compared.other;
    client
        .query(&format!(
            "INSERT INTO {table} SELECT symbol, \
             toDateTime(intDiv(toUInt32(ts), 3600) * 3600) AS bucket, argMinState(price, ts), \
             maxState(price), minState(price), argMaxState(price, ts), sumState(volume), \
             countState() FROM {raw} GROUP BY symbol, bucket"
        ))
        .execute()
        .await
        .expect("a second fold");
    let report = meridian::reconcile::check(many.state.stores())
        .await
        .expect("reconcile runs");
    assert!(!report.is_clean(), "the double fold went unseen");
    meridian::reconcile::repair(many.state.stores())
        .await
        .expect("repair runs");
    let report = meridian::reconcile::check(many.state.stores())
        .await
        .expect("reconcile runs");
    assert!(report.is_clean(), "after repair: {report:?}");
    let admin = many.token("auditor", &[Role::Admin]);
    let (_, again) = many
        .graphql_as(Some(&admin), &compared.queries[0], json!({}))
        .await;
    assert_close(&compared.answers[0], &again["data"], "after repair");
}

#[tokio::test]
async fn a_sharded_clickhouse_gives_the_single_servers_answers_and_reconciles_clean() {
    let cluster = PrivateStore::start("clickhouse-cluster");
    let single = TestEnv::migrated().await;
    let sharded = TestEnv::migrated_with(|c| {
        c.clickhouse_url = cluster.url();
        c.clickhouse_cluster = Some("meridian".into());
        c.clickhouse_shard_urls = Some(cluster.shard_urls());
    })
    .await;
    let compared = compare_clickhouse(&single, &sharded).await;
    let many = &compared.other;
    assert!(many.state.stores().clickhouse().is_sharded());

    // Both shards hold rows of each sharded table the seed fills (ticks by symbol, events
    // by id), so the answers were gathered from both.
    let shard = |port: u16| {
        clickhouse::Client::default()
            .with_url(format!("http://127.0.0.1:{port}"))
            .with_database(many.state.stores().clickhouse().database())
            .with_validation(false)
    };
    for port in [cluster.port, cluster.port + 1] {
        for table in [
            "price_ticks_local",
            "domain_events_local",
            "trade_events_local",
        ] {
            let rows: u64 = shard(port)
                .query(&format!("SELECT count() FROM {table}"))
                .fetch_one()
                .await
                .expect("count");
            assert!(rows > 0, "shard :{port} has no rows in {table}");
        }
    }
    // One shard's hourly candles fold its ticks a second time: reconcile sees it, and its
    // repair rebuilds the views shard by shard (truncating a Distributed table would not
    // reach its shards).
    fold_twice_and_repair(
        &compared,
        &shard(cluster.port),
        "candles_1h_local",
        "price_ticks_local",
    )
    .await;
}

/// Meridian's ClickHouse SQL on a current engine: chDB (ClickHouse 26.x) behind
/// tests/chdb/server.py. Migrations, the seed's writes, the reads and reconcile (and its
/// repair) give what they give on the stack's ClickHouse 18.16.
#[tokio::test]
async fn on_a_current_clickhouse_the_sql_gives_the_same_answers_and_reconciles_clean() {
    let current = PrivateStore::start("clickhouse-current");
    let version: String = clickhouse::Client::default()
        .with_url(current.url())
        .with_validation(false)
        .query("SELECT version()")
        .fetch_one()
        .await
        .expect("a version");
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("a major");
    assert!(major >= 24, "not a current ClickHouse: {version}");
    let single = TestEnv::migrated().await;
    let other = TestEnv::migrated_with(|c| c.clickhouse_url = current.url()).await;
    let compared = compare_clickhouse(&single, &other).await;
    let client = clickhouse::Client::default()
        .with_url(current.url())
        .with_database(compared.other.state.stores().clickhouse().database())
        .with_validation(false);
    fold_twice_and_repair(&compared, &client, "candles_1h", "price_ticks").await;
    println!("current ClickHouse: {version}");
}
