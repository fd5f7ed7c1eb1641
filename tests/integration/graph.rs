//! The federated graph, checked against the stores themselves.

use std::collections::HashMap;

use meridian::{seed, AppState};
use redis::AsyncCommands;
use serde_json::{json, Value};

use crate::support::{closed_port, error_codes, user_token, TestEnv, TestServer};

/// Enough users for a top-100 leaderboard, with ticks up to now (for stats24h).
fn shape() -> seed::Shape {
    seed::Shape {
        users: 120,
        assets: 8,
        days: 2,
        seed: 11,
        end: chrono::Utc::now(),
        platforms: seed::Platforms::TRADING,
    }
}

async fn seeded() -> (TestEnv, AppState) {
    let env = TestEnv::migrated().await;
    env.seed(&shape()).await;
    let state = env.state().await;
    (env, state)
}

const DASHBOARD: &str = "query Dashboard($n: Int!) {
  leaderboard(name: \"volume\", top: $n) {
    entries {
      rank score
      user {
        id username
        profile { displayName }
        holdings { quantity asset { symbol name metadata { tags } price { price source } } }
      }
    }
  }
}";

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

// Multi-threaded, as `meridian serve` runs: batching must not depend on scheduling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_costs_one_round_trip_per_loader_whatever_n() {
    let (env, state) = seeded().await;
    let server = env.spawn().await;
    let (small, trips_10) = server.traced(DASHBOARD, json!({ "n": 10 })).await;
    let (large, trips_100) = server.traced(DASHBOARD, json!({ "n": 100 })).await;
    assert!(
        small["errors"].is_null() && large["errors"].is_null(),
        "{small} {large}"
    );
    assert_eq!(
        large["data"]["leaderboard"]["entries"]
            .as_array()
            .map(Vec::len),
        Some(100)
    );
    assert_eq!(trips_10, trips_100);
    // Postgres: users, holdings (joined with their assets). Redis: the leaderboard,
    // prices. MongoDB: profiles, metadata. ClickHouse: nothing (every price is in Redis).
    assert_eq!(
        trips_100,
        json!({ "postgres": 2, "redis": 2, "mongodb": 2, "clickhouse": 0 })
    );

    // The order and scores are Redis's own.
    let mut conn = state.stores().redis().conn();
    let expected: Vec<(String, f64)> = conn
        .zrevrange_withscores(state.stores().redis().leaderboard_key("volume", ""), 0, 99)
        .await
        .expect("zrevrange");
    let entries = large["data"]["leaderboard"]["entries"]
        .as_array()
        .expect("entries");
    for (i, ((member, score), entry)) in expected.iter().zip(entries).enumerate() {
        assert_eq!(entry["rank"], json!(i + 1));
        assert_eq!(entry["user"]["id"].as_str(), Some(member.as_str()));
        assert!(close(entry["score"].as_f64().expect("score"), *score));
    }
    // Every holding's asset and price are there, from Redis.
    for entry in entries {
        for holding in entry["user"]["holdings"].as_array().expect("holdings") {
            assert!(holding["asset"]["name"].is_string());
            assert_eq!(holding["asset"]["price"]["source"], "REDIS");
        }
    }
}

#[tokio::test]
async fn without_the_trace_header_nothing_is_added() {
    let (env, _state) = seeded().await;
    let server = env.spawn().await;
    let response = server
        .graphql("{ leaderboard(name: \"volume\", top: 3) { entries { rank } } }")
        .await;
    assert!(response.get("extensions").is_none(), "{response}");
}

#[tokio::test]
async fn portfolio_value_is_postgres_holdings_times_redis_prices() {
    let (env, state) = seeded().await;
    let server = env.spawn().await;
    let response = server
        .graphql("{ users(first: 30) { edges { node { id portfolioValue } } } }")
        .await;
    assert!(response["errors"].is_null(), "{response}");
    let holdings: Vec<(String, String, f64)> =
        sqlx::query_as("SELECT user_id::text, symbol, quantity::float8 FROM holdings")
            .fetch_all(state.stores().postgres().pool())
            .await
            .expect("holdings");
    let mut conn = state.stores().redis().conn();
    let mut prices: HashMap<String, f64> = HashMap::new();
    for (_, symbol, _) in &holdings {
        if !prices.contains_key(symbol) {
            let raw: String = conn
                .get(state.stores().redis().price_key(symbol))
                .await
                .expect("price");
            let value: Value = serde_json::from_str(&raw).expect("JSON");
            prices.insert(symbol.clone(), value["price"].as_f64().expect("price"));
        }
    }
    let edges = response["data"]["users"]["edges"]
        .as_array()
        .expect("edges");
    assert_eq!(edges.len(), 30);
    for edge in edges {
        let id = edge["node"]["id"].as_str().expect("id");
        let expected: f64 = holdings
            .iter()
            .filter(|(u, _, _)| u == id)
            .map(|(_, s, q)| q * prices[s])
            .sum();
        let got = edge["node"]["portfolioValue"].as_f64().expect("value");
        assert!(close(got, expected), "user {id}: {got} != {expected}");
    }
}

#[tokio::test]
async fn candles_equal_a_direct_clickhouse_query() {
    let (env, state) = seeded().await;
    let server = env.spawn().await;
    let end = shape().end.timestamp();
    // The window runs past the last tick: buckets without ticks must be absent.
    let (from, to) = (end - 6 * 3600, end + 2 * 3600);
    for (interval, bucket_fn, width) in [
        ("FIVE_MINUTES", "toStartOfFiveMinute", 300),
        ("HOUR", "toStartOfHour", 3600),
        ("DAY", "toStartOfDay", 86400),
    ] {
        let from = from - from.rem_euclid(width);
        let query = format!(
            "{{ asset(symbol: \"btc\") {{ candles(interval: {interval}, from: \"{}\", to: \"{}\") {{ start open high low close volume ticks }} }} }}",
            chrono::DateTime::from_timestamp(from, 0).expect("time").to_rfc3339(),
            chrono::DateTime::from_timestamp(to, 0).expect("time").to_rfc3339(),
        );
        let response = server.graphql(&query).await;
        assert!(response["errors"].is_null(), "{response}");
        let candles = response["data"]["asset"]["candles"]
            .as_array()
            .expect("candles");
        let expected: Vec<(u32, f64, f64, f64, f64, f64, u64)> = state
            .stores()
            .clickhouse()
            .client()
            .query(&format!(
                "SELECT toUInt32({bucket_fn}(ts)) AS b, toFloat64(argMin(price, ts)), toFloat64(max(price)), \
                 toFloat64(min(price)), toFloat64(argMax(price, ts)), toFloat64(sum(volume)), toUInt64(count()) \
                 FROM price_ticks WHERE symbol = 'BTC' AND ts >= toDateTime({from}) AND ts < toDateTime({to}) \
                 GROUP BY b ORDER BY b"
            ))
            .fetch_all()
            .await
            .expect("direct query");
        assert!(!expected.is_empty());
        assert_eq!(candles.len(), expected.len(), "{interval}");
        for (candle, (b, o, h, l, c, v, n)) in candles.iter().zip(&expected) {
            let start =
                chrono::DateTime::parse_from_rfc3339(candle["start"].as_str().expect("start"))
                    .expect("time");
            assert_eq!(start.timestamp(), i64::from(*b), "{interval}");
            assert_eq!(candle["open"].as_f64(), Some(*o));
            assert_eq!(candle["high"].as_f64(), Some(*h));
            assert_eq!(candle["low"].as_f64(), Some(*l));
            assert_eq!(candle["close"].as_f64(), Some(*c));
            assert!(close(candle["volume"].as_f64().expect("volume"), *v));
            assert_eq!(candle["ticks"].as_u64(), Some(*n));
        }
    }
}

#[tokio::test]
async fn a_price_redis_misses_comes_from_clickhouse() {
    let (env, state) = seeded().await;
    let server = env.spawn().await;
    let mut conn = state.stores().redis().conn();
    let _: () = conn
        .del(state.stores().redis().price_key("ETH"))
        .await
        .expect("del");
    let (response, trips) = server
        .traced(
            "{ asset(symbol: \"ETH\") { price { price source at } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        response["data"]["asset"]["price"]["source"], "CLICKHOUSE",
        "{response}"
    );
    assert_eq!(trips["clickhouse"], 1);
    assert_eq!(trips["redis"], 1);
    let last: f64 = state
        .stores()
        .clickhouse()
        .client()
        .query("SELECT toFloat64(argMax(price, ts)) FROM price_ticks WHERE symbol = 'ETH'")
        .fetch_one()
        .await
        .expect("last tick");
    assert_eq!(
        response["data"]["asset"]["price"]["price"].as_f64(),
        Some(last)
    );
}

#[tokio::test]
async fn stats24h_is_cached_in_redis() {
    let (env, state) = seeded().await;
    let server = env.spawn().await;
    let query = "{ asset(symbol: \"SOL\") { stats24h { open last changePercent high low volume firstTickAt lastTickAt } } }";
    let (first, trips) = server.traced(query, json!({})).await;
    assert_eq!(trips["clickhouse"], 1, "{first}");
    let (second, trips) = server.traced(query, json!({})).await;
    assert_eq!(
        trips["clickhouse"], 0,
        "the second read is served from the cache"
    );
    assert_eq!(first["data"], second["data"]);

    let mut conn = state.stores().redis().conn();
    let ttl: i64 = conn
        .ttl(state.stores().redis().cache_key("stats24h:SOL"))
        .await
        .expect("ttl");
    assert!((1..=30).contains(&ttl), "ttl {ttl}");

    let stats = &first["data"]["asset"]["stats24h"];
    let last_at = chrono::DateTime::parse_from_rfc3339(stats["lastTickAt"].as_str().expect("time"))
        .expect("time");
    let last: f64 = state
        .stores()
        .clickhouse()
        .client()
        .query("SELECT toFloat64(argMax(price, ts)) FROM price_ticks WHERE symbol = 'SOL'")
        .fetch_one()
        .await
        .expect("last");
    assert_eq!(stats["last"].as_f64(), Some(last));
    // The newest tick's time, read back from ClickHouse (not recomputed from `shape()`,
    // whose end is "now" at each call).
    let newest: u32 = state
        .stores()
        .clickhouse()
        .client()
        .query("SELECT toUInt32(max(ts)) FROM price_ticks WHERE symbol = 'SOL'")
        .fetch_one()
        .await
        .expect("newest tick");
    assert_eq!(last_at.timestamp(), i64::from(newest));
    let (open, last) = (
        stats["open"].as_f64().expect("open"),
        stats["last"].as_f64().expect("last"),
    );
    assert!(close(
        stats["changePercent"].as_f64().expect("change"),
        (last - open) / open * 100.0
    ));
}

#[tokio::test]
async fn activity_buckets_equal_a_direct_clickhouse_query() {
    let (env, state) = seeded().await;
    let server = env.spawn().await;
    let user: (String,) = sqlx::query_as(
        "SELECT user_id::text FROM trades GROUP BY user_id ORDER BY count(*) DESC LIMIT 1",
    )
    .fetch_one(state.stores().postgres().pool())
    .await
    .expect("a trader");
    let end = shape().end.timestamp();
    let from = end - 2 * 86400 - (end - 2 * 86400).rem_euclid(3600);
    let query = format!(
        "{{ user(id: \"{}\") {{ activity(from: \"{}\", to: \"{}\", interval: HOUR) {{ start events trades tradeVolume }} }} }}",
        user.0,
        chrono::DateTime::from_timestamp(from, 0).expect("time").to_rfc3339(),
        chrono::DateTime::from_timestamp(end + 60, 0).expect("time").to_rfc3339(),
    );
    let response = server.graphql(&query).await;
    assert!(response["errors"].is_null(), "{response}");
    let buckets = response["data"]["user"]["activity"]
        .as_array()
        .expect("buckets");
    let expected: Vec<(u32, u64, f64)> = state
        .stores()
        .clickhouse()
        .client()
        .query(&format!(
            "SELECT toUInt32(toStartOfHour(ts)) AS b, toUInt64(count()), toFloat64(sumIf(amount, kind LIKE 'trade%')) \
             FROM activity_events WHERE user_id = '{}' AND ts >= toDateTime({from}) AND ts < toDateTime({}) \
             GROUP BY b ORDER BY b",
            user.0,
            end + 60
        ))
        .fetch_all()
        .await
        .expect("direct query");
    assert!(!expected.is_empty());
    assert_eq!(buckets.len(), expected.len());
    for (bucket, (b, n, volume)) in buckets.iter().zip(&expected) {
        let start = chrono::DateTime::parse_from_rfc3339(bucket["start"].as_str().expect("start"))
            .expect("time");
        assert_eq!(start.timestamp(), i64::from(*b));
        assert_eq!(bucket["events"].as_u64(), Some(*n));
        assert!(close(
            bucket["tradeVolume"].as_f64().expect("volume"),
            *volume
        ));
    }
}

#[tokio::test]
async fn pages_walk_every_row_once_in_order() {
    let (env, state) = seeded().await;
    let server = env.spawn().await;
    let pool = state.stores().postgres().pool();

    let expected: Vec<(String,)> =
        sqlx::query_as("SELECT id::text FROM users ORDER BY created_at, id")
            .fetch_all(pool)
            .await
            .expect("ids");
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = server
            .graphql_with(
                "query($after: String) { users(first: 7, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }",
                json!({ "after": after }),
                &[],
            )
            .await;
        let users = &page["data"]["users"];
        seen.extend(
            users["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .map(|e| e["node"]["id"].as_str().expect("id").to_owned()),
        );
        if users["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = users["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(
        seen,
        expected.into_iter().map(|(id,)| id).collect::<Vec<_>>()
    );

    // A user's trades, newest first, across pages.
    let (user, count): (String, i64) =
        sqlx::query_as("SELECT user_id::text, count(*) FROM trades GROUP BY user_id ORDER BY count(*) DESC LIMIT 1")
            .fetch_one(pool)
            .await
            .expect("trader");
    let expected: Vec<(String,)> = sqlx::query_as(
        "SELECT tx_hash FROM trades WHERE user_id = $1::uuid ORDER BY executed_at DESC, id DESC",
    )
    .bind(&user)
    .fetch_all(pool)
    .await
    .expect("trades");
    let mut hashes = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = server
            .graphql_with(
                "query($id: ID!, $after: String) { user(id: $id) { trades(first: 4, after: $after) { edges { node { txHash } } pageInfo { hasNextPage endCursor } } } }",
                json!({ "id": user, "after": after }),
                &[],
            )
            .await;
        let trades = &page["data"]["user"]["trades"];
        hashes.extend(
            trades["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .map(|e| e["node"]["txHash"].as_str().expect("hash").to_owned()),
        );
        if trades["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = trades["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(hashes.len() as i64, count);
    assert_eq!(
        hashes,
        expected.into_iter().map(|(h,)| h).collect::<Vec<_>>()
    );

    // Assets with a tag are those MongoDB tags with it, in symbol order.
    let mut tagged: Vec<String> = {
        use futures::TryStreamExt;
        let docs: Vec<mongodb::bson::Document> = state
            .stores()
            .mongo()
            .database()
            .collection::<mongodb::bson::Document>("asset_metadata")
            .find(mongodb::bson::doc! { "tags": "layer1" })
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("docs");
        docs.iter()
            .map(|d| d.get_str("symbol").expect("symbol").to_owned())
            .collect()
    };
    tagged.sort();
    assert!(tagged.len() >= 2, "the dataset has layer1 assets");
    let page = server.graphql("{ assets(tag: \"layer1\", first: 50) { edges { node { symbol metadata { tags } } } } }").await;
    let symbols: Vec<String> = page["data"]["assets"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            assert!(e["node"]["metadata"]["tags"]
                .as_array()
                .expect("tags")
                .contains(&json!("layer1")));
            e["node"]["symbol"].as_str().expect("symbol").to_owned()
        })
        .collect();
    assert_eq!(symbols, tagged);
}

#[tokio::test]
async fn bad_input_is_refused_with_bad_user_input() {
    let (env, _state) = seeded().await;
    let server = env.spawn().await;
    let page = server
        .graphql("{ users(first: 1) { pageInfo { endCursor } } }")
        .await;
    let users_cursor = page["data"]["users"]["pageInfo"]["endCursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let forged = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("0:{}0123456789abcdef", uuid::Uuid::nil()))
    };
    let cases = [
        ("garbled cursor", "{ users(after: \"%%%not-a-cursor\") { edges { cursor } } }".to_owned()),
        ("forged cursor", format!("{{ users(after: \"{forged}\") {{ edges {{ cursor }} }} }}")),
        ("cursor of another connection", format!("{{ assets(after: \"{users_cursor}\") {{ edges {{ cursor }} }} }}")),
        ("first above the cap", "{ users(first: 101) { edges { cursor } } }".to_owned()),
        ("negative first", "{ assets(first: -1) { edges { cursor } } }".to_owned()),
        (
            "too many candle points",
            "{ asset(symbol: \"BTC\") { candles(interval: MINUTE, from: \"2026-01-01T00:00:00Z\", to: \"2026-01-03T00:00:00Z\") { open } } }"
                .to_owned(),
        ),
        (
            "reversed window",
            "{ asset(symbol: \"BTC\") { candles(interval: HOUR, from: \"2026-01-03T00:00:00Z\", to: \"2026-01-01T00:00:00Z\") { open } } }"
                .to_owned(),
        ),
        ("unknown leaderboard", "{ leaderboard(name: \"nope\") { name } }".to_owned()),
        ("top of zero", "{ leaderboard(name: \"volume\", top: 0) { name } }".to_owned()),
        ("malformed user id", "{ user(id: \"not-a-uuid\") { id } }".to_owned()),
        ("malformed address", "{ user(address: \"0x12\") { id } }".to_owned()),
        ("neither id nor address", "{ user { id } }".to_owned()),
        ("malformed symbol", "{ asset(symbol: \"no spaces!\") { name } }".to_owned()),
    ];
    for (what, query) in cases {
        let response = server.graphql(&query).await;
        assert_eq!(
            error_codes(&response),
            ["BAD_USER_INPUT"],
            "{what}: {response}"
        );
    }
}

#[tokio::test]
async fn missing_entities_are_null_with_not_found_and_me_reads_the_header() {
    let (env, state) = seeded().await;
    let server = env.spawn().await;
    let missing = server
        .graphql(&format!(
            "{{ user(id: \"{}\") {{ id }} }}",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(missing["data"]["user"], Value::Null);
    assert_eq!(error_codes(&missing), ["NOT_FOUND"]);
    let missing = server.graphql("{ asset(symbol: \"ZZZZ\") { name } }").await;
    assert_eq!(missing["data"]["asset"], Value::Null);
    assert_eq!(error_codes(&missing), ["NOT_FOUND"]);

    let (id, username, address): (String, String, String) =
        sqlx::query_as("SELECT id::text, username, address FROM users ORDER BY username LIMIT 1")
            .fetch_one(state.stores().postgres().pool())
            .await
            .expect("a user");
    let bearer = format!("Bearer {}", user_token(&state, &id));
    let me = server
        .graphql_with(
            "{ me { username } }",
            json!({}),
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(
        me["data"]["me"]["username"].as_str(),
        Some(username.as_str()),
        "{me}"
    );
    let (_, anonymous) = server
        .graphql_as(None, "{ me { username } }", json!({}))
        .await;
    assert_eq!(error_codes(&anonymous), ["UNAUTHENTICATED"]);
    let operator = server.graphql("{ me { username } }").await;
    assert_eq!(
        error_codes(&operator),
        ["FORBIDDEN"],
        "an operator is not a user"
    );
    let by_address = server
        .graphql(&format!(
            "{{ user(address: \"{}\") {{ id }} }}",
            address.to_uppercase().replace("0X", "0x")
        ))
        .await;
    assert_eq!(
        by_address["data"]["user"]["id"].as_str(),
        Some(id.as_str()),
        "addresses match case-insensitively"
    );
}

/// Starts a server over the seeded namespace with one store's address replaced.
async fn with_store_at(env: &TestEnv, store: &str, url: String, timeout_ms: u64) -> TestServer {
    let mut config = env.config.clone();
    config.store_timeout_ms = timeout_ms;
    match store {
        "redis" => config.redis_url = url,
        "mongodb" => config.mongo_url = url,
        "clickhouse" => config.clickhouse_url = url,
        "postgres" => config.postgres_url = url,
        other => panic!("unknown store {other}"),
    }
    TestServer::start(AppState::new(config).await.expect("state")).await
}

/// The errors of a response as (path, code, store).
fn errors(response: &Value) -> Vec<(String, String, String)> {
    response["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let path: Vec<String> = e["path"]
                        .as_array()
                        .map(|p| {
                            p.iter()
                                .map(|s| s.to_string().trim_matches('"').to_owned())
                                .collect()
                        })
                        .unwrap_or_default();
                    (
                        path.join("."),
                        e["extensions"]["code"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        e["extensions"]["store"]
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
async fn a_store_that_is_down_fails_only_its_fields() {
    let (env, state) = seeded().await;
    let (id,): (String,) = sqlx::query_as("SELECT user_id::text FROM holdings LIMIT 1")
        .fetch_one(state.stores().postgres().pool())
        .await
        .expect("a holder");
    let query = format!(
        "{{ health {{ status }} user(id: \"{id}\") {{ username profile {{ displayName }} holdings {{ quantity asset {{ symbol price {{ price source }} }} }} }} }}"
    );

    // MongoDB down: the profile is null with STORE_UNAVAILABLE; the rest answers.
    let server = with_store_at(
        &env,
        "mongodb",
        format!("mongodb://127.0.0.1:{}/x", closed_port()),
        1000,
    )
    .await;
    let response = server.graphql(&query).await;
    assert!(
        response["data"]["user"]["username"].is_string(),
        "{response}"
    );
    assert_eq!(response["data"]["user"]["profile"], Value::Null);
    assert!(!response["data"]["user"]["holdings"]
        .as_array()
        .expect("holdings")
        .is_empty());
    assert_eq!(
        errors(&response),
        [(
            "user.profile".to_owned(),
            "STORE_UNAVAILABLE".to_owned(),
            "mongodb".to_owned()
        )]
    );

    // Redis down: prices fall back to ClickHouse's last tick; everything answers.
    let server = with_store_at(
        &env,
        "redis",
        format!("redis://127.0.0.1:{}/", closed_port()),
        1000,
    )
    .await;
    let response = server.graphql(&query).await;
    assert!(
        response["data"]["user"]["profile"]["displayName"].is_string(),
        "{response}"
    );
    let holdings = response["data"]["user"]["holdings"]
        .as_array()
        .expect("holdings");
    assert!(
        holdings
            .iter()
            .all(|h| h["asset"]["price"]["source"] == "CLICKHOUSE"
                && h["asset"]["price"]["price"].is_number()
                && h["quantity"].is_number()),
        "{response}"
    );
    assert_eq!(errors(&response), [], "{response}");

    // ClickHouse down: candles fail (nulling their asset), other root fields answer.
    let server = with_store_at(
        &env,
        "clickhouse",
        format!("http://127.0.0.1:{}", closed_port()),
        1000,
    )
    .await;
    let response = server
        .graphql("{ leaderboard(name: \"volume\", top: 2) { size } asset(symbol: \"BTC\") { candles(interval: HOUR, from: \"2026-01-01T00:00:00Z\", to: \"2026-01-02T00:00:00Z\") { open } } }")
        .await;
    assert!(
        response["data"]["leaderboard"]["size"].is_number(),
        "{response}"
    );
    assert_eq!(response["data"]["asset"], Value::Null);
    assert_eq!(
        errors(&response),
        [(
            "asset.candles".to_owned(),
            "STORE_UNAVAILABLE".to_owned(),
            "clickhouse".to_owned()
        )]
    );
}

#[tokio::test]
async fn a_store_that_does_not_answer_times_out() {
    let (env, state) = seeded().await;
    // A listener that accepts connections and never answers.
    let (port, hold) = crate::support::silent_listener().await;
    let server = with_store_at(&env, "redis", format!("redis://127.0.0.1:{port}/"), 300).await;
    let (id,): (String,) = sqlx::query_as("SELECT user_id::text FROM holdings LIMIT 1")
        .fetch_one(state.stores().postgres().pool())
        .await
        .expect("a holder");
    let response = server
        .graphql(&format!(
            "{{ user(id: \"{id}\") {{ username rank(board: \"volume\") {{ rank }} }} }}"
        ))
        .await;
    assert!(
        response["data"]["user"]["username"].is_string(),
        "{response}"
    );
    assert_eq!(response["data"]["user"]["rank"], Value::Null);
    assert_eq!(
        errors(&response),
        [(
            "user.rank".to_owned(),
            "STORE_UNAVAILABLE".to_owned(),
            "redis".to_owned()
        )]
    );
    hold.abort();
}

/// Every kind of entity, by the ids the graph gives them: each `node` answer is the same
/// object, and `nodes` over all of them costs one round trip per loader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_nodes_fetch_every_entity_by_the_id_it_gave() {
    let (env, _state) = seeded().await;
    let server = env.spawn().await;
    let ids_query = "{ leaderboard(name: \"volume\", top: 3) { id entries { user { id
        trades(first: 1) { nodes { id } }
        holdings { id asset { id price { id } } } } } } }";
    let listed = server.graphql(ids_query).await;
    assert!(listed["errors"].is_null(), "{listed}");
    let board = &listed["data"]["leaderboard"];
    let mut wanted: Vec<(String, &str)> =
        vec![(board["id"].as_str().expect("id").into(), "Leaderboard")];
    for entry in board["entries"].as_array().expect("entries") {
        let user = &entry["user"];
        wanted.push((user["id"].as_str().expect("user id").into(), "User"));
        for trade in user["trades"]["nodes"].as_array().expect("trades") {
            wanted.push((trade["id"].as_str().expect("trade id").into(), "Trade"));
        }
        let holding = &user["holdings"][0];
        wanted.push((
            holding["id"].as_str().expect("holding id").into(),
            "Holding",
        ));
        wanted.push((
            holding["asset"]["id"].as_str().expect("asset id").into(),
            "Asset",
        ));
        wanted.push((
            holding["asset"]["price"]["id"]
                .as_str()
                .expect("price id")
                .into(),
            "Price",
        ));
    }
    assert_eq!(board["id"], "Leaderboard:volume:3");
    assert_eq!(wanted.len(), 1 + 3 * 5, "{listed}");

    let fetch = "query ($ids: [ID!]!) { nodes(ids: $ids) { __typename id
        ... on User { username } ... on Trade { txHash } ... on Asset { symbol }
        ... on Price { price } ... on Holding { quantity } ... on Leaderboard { name } } }";
    let ids: Vec<&str> = wanted.iter().map(|(id, _)| id.as_str()).collect();
    let (fetched, trips) = server.traced(fetch, json!({ "ids": ids })).await;
    assert!(fetched["errors"].is_null(), "{fetched}");
    let nodes = fetched["data"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), wanted.len());
    for (node, (id, typename)) in nodes.iter().zip(&wanted) {
        assert_eq!(node["id"].as_str(), Some(id.as_str()), "{node}");
        assert_eq!(node["__typename"].as_str(), Some(*typename), "{node}");
    }
    // Postgres: users and trades by id (every UUID is asked of both), assets, holdings.
    // Redis: prices, the leaderboard.
    assert_eq!(
        trips,
        json!({ "postgres": 4, "redis": 2, "mongodb": 0, "clickhouse": 0 })
    );

    // `node` gives the same object as the field that listed it.
    let user_id = &wanted[1].0;
    let one = server
        .graphql(&format!(
            "{{ node(id: \"{user_id}\") {{ ... on User {{ username }} }} user(id: \"{user_id}\") {{ username }} }}"
        ))
        .await;
    assert!(one["errors"].is_null(), "{one}");
    assert_eq!(
        one["data"]["node"]["username"],
        one["data"]["user"]["username"]
    );
}

#[tokio::test]
async fn node_ids_that_name_nothing_are_null_and_private_ones_are_forbidden() {
    let (env, state) = seeded().await;
    let server = env.spawn().await;
    for id in [
        uuid::Uuid::new_v4().to_string(),
        "Asset:ZZZZ".into(),
        "Price:ZZZZ".into(),
        format!("Holding:{}:BTC", uuid::Uuid::new_v4()),
    ] {
        let response = server
            .graphql(&format!("{{ node(id: \"{id}\") {{ id }} }}"))
            .await;
        assert_eq!(response, json!({ "data": { "node": null } }), "{id}");
    }
    for id in [
        "Planet:Mars",
        "Asset:not a symbol",
        "Leaderboard:volume",
        "Leaderboard:nope:3",
    ] {
        let response = server
            .graphql(&format!("{{ node(id: \"{id}\") {{ id }} }}"))
            .await;
        assert_eq!(response["data"]["node"], Value::Null, "{response}");
        assert_eq!(
            error_codes(&response),
            ["BAD_USER_INPUT"],
            "{id}: {response}"
        );
    }
    let too_many: Vec<String> = (0..=state.config().max_page_size)
        .map(|i| format!("Asset:A{i}"))
        .collect();
    let response = server
        .graphql_with(
            "query ($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": too_many }),
            &[],
        )
        .await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");

    // Someone else's trade and holding: null with FORBIDDEN at their own index.
    let (owner, trade): (String, String) =
        sqlx::query_as("SELECT user_id::text, id::text FROM trades ORDER BY executed_at LIMIT 1")
            .fetch_one(state.stores().postgres().pool())
            .await
            .expect("a trade");
    let (symbol,): (String,) = sqlx::query_as(
        "SELECT symbol FROM holdings WHERE user_id = $1::uuid AND quantity > 0 LIMIT 1",
    )
    .bind(&owner)
    .fetch_one(state.stores().postgres().pool())
    .await
    .expect("a holding");
    let (other,): (String,) =
        sqlx::query_as("SELECT id::text FROM users WHERE id <> $1::uuid LIMIT 1")
            .bind(&owner)
            .fetch_one(state.stores().postgres().pool())
            .await
            .expect("another user");
    let ids = json!([
        format!("Asset:{symbol}"),
        trade,
        format!("Holding:{owner}:{symbol}")
    ]);
    let query = "query ($ids: [ID!]!) { nodes(ids: $ids) { id } }";
    let (_, stranger) = server
        .graphql_as(
            Some(&user_token(&state, &other)),
            query,
            json!({ "ids": ids }),
        )
        .await;
    assert_eq!(
        stranger["data"]["nodes"][0]["id"],
        format!("Asset:{symbol}"),
        "{stranger}"
    );
    assert_eq!(stranger["data"]["nodes"][1], Value::Null, "{stranger}");
    assert_eq!(stranger["data"]["nodes"][2], Value::Null, "{stranger}");
    assert_eq!(
        error_codes(&stranger),
        ["FORBIDDEN", "FORBIDDEN"],
        "{stranger}"
    );
    let paths: Vec<&Value> = stranger["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| &e["path"])
        .collect();
    assert_eq!(
        paths,
        [&json!(["nodes", 1]), &json!(["nodes", 2])],
        "{stranger}"
    );
    let (_, own) = server
        .graphql_as(
            Some(&user_token(&state, &owner)),
            query,
            json!({ "ids": ids }),
        )
        .await;
    assert!(own["errors"].is_null(), "{own}");
    assert_eq!(own["data"]["nodes"][1]["id"].as_str(), Some(trade.as_str()));
    assert_eq!(
        own["data"]["nodes"][2]["id"],
        format!("Holding:{owner}:{symbol}")
    );
}

/// Two threads that spin until dropped, keeping both cores busy.
struct CpuHogs(
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Vec<std::thread::JoinHandle<()>>,
);

impl CpuHogs {
    fn start() -> CpuHogs {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut spins = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        spins = std::hint::black_box(spins.wrapping_add(1));
                    }
                })
            })
            .collect();
        CpuHogs(stop, threads)
    }
}

impl Drop for CpuHogs {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.1.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The sum of `meridian_batch_splits_total` over every loader.
fn batch_splits(state: &AppState) -> f64 {
    state
        .metrics()
        .render()
        .lines()
        .filter(|l| l.starts_with("meridian_batch_splits_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// The scheduler's property under the worst scheduling this machine can give it: both
// cores taken by busy loops, so the server's two workers are preempted at random points.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_costs_the_same_round_trips_fifty_times_under_cpu_load() {
    let (env, state) = seeded().await;
    let server = env.spawn().await;
    let splits_before = batch_splits(&state);
    let hogs = CpuHogs::start();
    for run in 0..50 {
        let (response, trips) = server.traced(DASHBOARD, json!({ "n": 100 })).await;
        assert!(response["errors"].is_null(), "run {run}: {response}");
        assert_eq!(
            trips,
            json!({ "postgres": 2, "redis": 2, "mongodb": 2, "clickhouse": 0 }),
            "run {run}"
        );
    }
    drop(hogs);
    assert_eq!(batch_splits(&state), splits_before, "no wave split");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_leaderboard_event_costs_the_same_round_trips_fifty_times_under_cpu_load() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    use crate::abuse::{next_json, send};

    let (env, state) = seeded().await;
    let server = env.spawn().await;
    let mut request = format!("ws://{}/graphql/ws", server.addr)
        .into_client_request()
        .expect("request");
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    headers.insert("x-meridian-trace", "1".parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connected");
    // Holdings are private: an admin sees everyone's.
    let admin = format!(
        "Bearer {}",
        server.token("operator", &[meridian::auth::Role::Admin])
    );
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": admin } }),
    )
    .await;
    assert_eq!(next_json(&mut socket).await["type"], "connection_ack");
    let query = "subscription { leaderboardUpdated(name: \"volume\", top: 100) { entries { rank user { id username profile { displayName } holdings { quantity asset { symbol metadata { tags } price { price } } } } } } }";
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }),
    )
    .await;
    // Postgres: users, holdings. Redis: the board, prices. MongoDB: profiles, metadata.
    let per_event = json!({ "postgres": 2, "redis": 2, "mongodb": 2, "clickhouse": 0 });
    let first = next_json(&mut socket).await;
    assert_eq!(first["type"], "next", "{first}");
    assert_eq!(
        first["payload"]["data"]["leaderboardUpdated"]["entries"]
            .as_array()
            .map(Vec::len),
        Some(100)
    );
    assert!(first["payload"]["errors"].is_null(), "{first}");
    assert_eq!(
        first["payload"]["extensions"]["meridian"]["roundTrips"],
        per_event
    );

    let splits_before = batch_splits(&state);
    let channel = state.stores().redis().leaderboard_channel("volume", "");
    let mut conn = state.stores().redis().conn();
    let hogs = CpuHogs::start();
    for event in 0..50 {
        // One announcement at a time: the stream conflates, so each gives one event.
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(json!({ "name": "volume" }).to_string())
            .query_async(&mut conn)
            .await
            .expect("published");
        // The server's keepalive pings (every 15 s) may come between events.
        let mut update = next_json(&mut socket).await;
        while update["type"] == "ping" {
            update = next_json(&mut socket).await;
        }
        assert_eq!(update["type"], "next", "event {event}: {update}");
        assert!(
            update["payload"]["errors"].is_null(),
            "event {event}: {update}"
        );
        assert_eq!(
            update["payload"]["extensions"]["meridian"]["roundTrips"], per_event,
            "event {event}"
        );
    }
    drop(hogs);
    assert_eq!(batch_splits(&state), splits_before, "no wave split");
}
