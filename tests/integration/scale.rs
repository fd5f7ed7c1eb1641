//! Meridian against more than one node per store: a PostgreSQL read replica.

use meridian::auth::Role;
use serde_json::{json, Value};

use crate::support::{small_shape, user_token, wait_until, PrivateStore, TestEnv, TestServer};

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
