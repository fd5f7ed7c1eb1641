//! Mutations and ingestion: their effects in every store, and their refusals.

use futures::StreamExt;
use meridian::{seed, AppState};
use redis::AsyncCommands;
use serde_json::{json, Value};

use crate::support::{pending, refusals, user_token, wait_until, TestEnv, TestServer};

fn shape() -> seed::Shape {
    seed::Shape {
        users: 10,
        assets: 4,
        days: 1,
        seed: 5,
        end: chrono::Utc::now(),
        platforms: seed::Platforms::TRADING,
    }
}

async fn seeded() -> (TestEnv, AppState, TestServer) {
    let env = TestEnv::migrated().await;
    env.seed(&shape()).await;
    let state = env.state().await;
    let server = env.spawn().await;
    (env, state, server)
}

fn hash(c: char) -> String {
    format!("0x{}", c.to_string().repeat(64))
}

async fn a_user(state: &AppState) -> String {
    sqlx::query_scalar("SELECT id::text FROM users ORDER BY username LIMIT 1")
        .fetch_one(state.stores().postgres().pool())
        .await
        .expect("a user")
}

async fn counts(state: &AppState) -> (i64, i64, i64, u64, u64) {
    let pool = state.stores().postgres().pool();
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(pool)
        .await
        .expect("users");
    let trades: i64 = sqlx::query_scalar("SELECT count(*) FROM trades")
        .fetch_one(pool)
        .await
        .expect("trades");
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await
        .expect("outbox");
    let ticks: u64 = state
        .stores()
        .clickhouse()
        .client()
        .query("SELECT count() FROM price_ticks")
        .fetch_one()
        .await
        .expect("ticks");
    let profiles = state
        .stores()
        .mongo()
        .database()
        .collection::<mongodb::bson::Document>("profiles")
        .count_documents(mongodb::bson::doc! {})
        .await
        .expect("profiles");
    (users, trades, outbox, ticks, profiles)
}

/// What a case is called, the mutation, its variables, extra headers, and the expected
/// (code, field) of the one error.
type Case<'a> = (
    &'a str,
    &'a str,
    Value,
    &'a [(&'a str, &'a str)],
    (&'a str, &'a str),
);

const REGISTER: &str =
    "mutation($input: RegisterUserInput!) { registerUser(input: $input) { id address username } }";
const PROFILE: &str = "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { displayName bio avatarUrl links { label url } preferences } }";
const TRADE: &str = "mutation($input: RecordTradeInput!) { recordTrade(input: $input) { id txHash side quantity price } }";
const INGEST: &str = "mutation($ticks: [PriceTickInput!]!) { ingestPrices(ticks: $ticks) { accepted prices { symbol price source } } }";

#[tokio::test]
async fn every_mutation_refuses_bad_values_in_every_field_and_writes_nothing() {
    let (_env, state, server) = seeded().await;
    let user = a_user(&state).await;
    let before = counts(&state).await;
    let long = |n: usize| "x".repeat(n);
    let address = format!("0x{}", "ab".repeat(20));
    let trade = |over: Value| {
        let mut input = json!({ "userId": user, "txHash": hash('c'), "symbol": "BTC", "side": "BUY", "quantity": 1.0, "price": 100.0 });
        for (k, v) in over.as_object().expect("object") {
            input[k] = v.clone();
        }
        json!({ "input": input })
    };
    let bearer = format!("Bearer {}", user_token(&state, &user));
    let as_user: &[(&str, &str)] = &[("authorization", bearer.as_str())];
    let deep = json!({ "a": { "b": { "c": { "d": { "e": { "f": 1 } } } } } });
    let cases: Vec<Case> = vec![
        (
            "short address",
            REGISTER,
            json!({ "input": { "address": "0x12", "username": "newbie" } }),
            &[],
            ("BAD_USER_INPUT", "input.address"),
        ),
        (
            "non-hex address",
            REGISTER,
            json!({ "input": { "address": format!("0x{}", "zz".repeat(20)), "username": "newbie" } }),
            &[],
            ("BAD_USER_INPUT", "input.address"),
        ),
        (
            "short username",
            REGISTER,
            json!({ "input": { "address": address, "username": "ab" } }),
            &[],
            ("BAD_USER_INPUT", "input.username"),
        ),
        (
            "username with spaces",
            REGISTER,
            json!({ "input": { "address": address, "username": "two words" } }),
            &[],
            ("BAD_USER_INPUT", "input.username"),
        ),
        (
            "long username",
            REGISTER,
            json!({ "input": { "address": address, "username": long(33) } }),
            &[],
            ("BAD_USER_INPUT", "input.username"),
        ),
        (
            "empty display name",
            PROFILE,
            json!({ "input": { "displayName": " " } }),
            as_user,
            ("BAD_USER_INPUT", "input.displayName"),
        ),
        (
            "long display name",
            PROFILE,
            json!({ "input": { "displayName": long(65) } }),
            as_user,
            ("BAD_USER_INPUT", "input.displayName"),
        ),
        (
            "long bio",
            PROFILE,
            json!({ "input": { "bio": long(501) } }),
            as_user,
            ("BAD_USER_INPUT", "input.bio"),
        ),
        (
            "script avatar",
            PROFILE,
            json!({ "input": { "avatarUrl": "javascript:alert(1)" } }),
            as_user,
            ("BAD_USER_INPUT", "input.avatarUrl"),
        ),
        (
            "long avatar",
            PROFILE,
            json!({ "input": { "avatarUrl": format!("https://a.example/{}", long(3000)) } }),
            as_user,
            ("BAD_USER_INPUT", "input.avatarUrl"),
        ),
        (
            "too many links",
            PROFILE,
            json!({ "input": { "links": vec![json!({ "label": "l", "url": "https://a.example" }); 11] } }),
            as_user,
            ("BAD_USER_INPUT", "input.links"),
        ),
        (
            "empty link label",
            PROFILE,
            json!({ "input": { "links": [{ "label": "", "url": "https://a.example" }] } }),
            as_user,
            ("BAD_USER_INPUT", "input.links[0].label"),
        ),
        (
            "bad link url",
            PROFILE,
            json!({ "input": { "links": [{ "label": "site", "url": "not a url" }] } }),
            as_user,
            ("BAD_USER_INPUT", "input.links[0].url"),
        ),
        (
            "preferences not an object",
            PROFILE,
            json!({ "input": { "preferences": [1, 2] } }),
            as_user,
            ("BAD_USER_INPUT", "input.preferences"),
        ),
        (
            "operator key in preferences",
            PROFILE,
            json!({ "input": { "preferences": { "$where": "1" } } }),
            as_user,
            ("BAD_USER_INPUT", "input.preferences"),
        ),
        (
            "dotted key in preferences",
            PROFILE,
            json!({ "input": { "preferences": { "a.b": 1 } } }),
            as_user,
            ("BAD_USER_INPUT", "input.preferences"),
        ),
        (
            "deep preferences",
            PROFILE,
            json!({ "input": { "preferences": deep } }),
            as_user,
            ("BAD_USER_INPUT", "input.preferences"),
        ),
        (
            "large preferences",
            PROFILE,
            json!({ "input": { "preferences": { "blob": long(5000) } } }),
            as_user,
            ("BAD_USER_INPUT", "input.preferences"),
        ),
        (
            "no profile change",
            PROFILE,
            json!({ "input": {} }),
            as_user,
            ("BAD_USER_INPUT", ""),
        ),
        (
            "profile of an operator, who is not a user",
            PROFILE,
            json!({ "input": { "bio": "hi" } }),
            &[],
            ("FORBIDDEN", ""),
        ),
        (
            "malformed user id",
            TRADE,
            trade(json!({ "userId": "nope" })),
            &[],
            ("BAD_USER_INPUT", "input.userId"),
        ),
        (
            "unknown user",
            TRADE,
            trade(json!({ "userId": uuid::Uuid::new_v4().to_string() })),
            &[],
            ("NOT_FOUND", "input.userId"),
        ),
        (
            "short tx hash",
            TRADE,
            trade(json!({ "txHash": "0x12" })),
            &[],
            ("BAD_USER_INPUT", "input.txHash"),
        ),
        (
            "malformed symbol",
            TRADE,
            trade(json!({ "symbol": "??" })),
            &[],
            ("BAD_USER_INPUT", "input.symbol"),
        ),
        (
            "unknown symbol",
            TRADE,
            trade(json!({ "symbol": "ZZZZ" })),
            &[],
            ("NOT_FOUND", "input.symbol"),
        ),
        (
            "zero quantity",
            TRADE,
            trade(json!({ "quantity": 0.0 })),
            &[],
            ("BAD_USER_INPUT", "input.quantity"),
        ),
        (
            "negative quantity",
            TRADE,
            trade(json!({ "quantity": -3.0 })),
            &[],
            ("BAD_USER_INPUT", "input.quantity"),
        ),
        (
            "huge quantity",
            TRADE,
            trade(json!({ "quantity": 1e20 })),
            &[],
            ("BAD_USER_INPUT", "input.quantity"),
        ),
        (
            "zero price",
            TRADE,
            trade(json!({ "price": 0.0 })),
            &[],
            ("BAD_USER_INPUT", "input.price"),
        ),
        (
            "future trade",
            TRADE,
            trade(json!({ "executedAt": "2999-01-01T00:00:00Z" })),
            &[],
            ("BAD_USER_INPUT", "input.executedAt"),
        ),
        (
            "ancient trade",
            TRADE,
            trade(json!({ "executedAt": "1999-01-01T00:00:00Z" })),
            &[],
            ("BAD_USER_INPUT", "input.executedAt"),
        ),
        (
            "oversell",
            TRADE,
            trade(json!({ "side": "SELL", "quantity": 1e12 })),
            &[],
            ("BAD_USER_INPUT", "input.quantity"),
        ),
        (
            "no ticks",
            INGEST,
            json!({ "ticks": [] }),
            &[],
            ("BAD_USER_INPUT", "ticks"),
        ),
        (
            "unknown tick symbol",
            INGEST,
            json!({ "ticks": [{ "symbol": "BTC", "price": 1.0 }, { "symbol": "NOPE", "price": 1.0 }] }),
            &[],
            ("BAD_USER_INPUT", "ticks[1].symbol"),
        ),
        (
            "negative tick price",
            INGEST,
            json!({ "ticks": [{ "symbol": "BTC", "price": -1.0 }] }),
            &[],
            ("BAD_USER_INPUT", "ticks[0].price"),
        ),
        (
            "negative tick volume",
            INGEST,
            json!({ "ticks": [{ "symbol": "BTC", "price": 1.0, "volume": -1.0 }] }),
            &[],
            ("BAD_USER_INPUT", "ticks[0].volume"),
        ),
        (
            "future tick",
            INGEST,
            json!({ "ticks": [{ "symbol": "BTC", "price": 1.0, "at": "2999-01-01T00:00:00Z" }] }),
            &[],
            ("BAD_USER_INPUT", "ticks[0].ts"),
        ),
    ];
    for (what, query, variables, headers, (code, field)) in cases {
        let response = server.graphql_with(query, variables, headers).await;
        assert_eq!(
            refusals(&response),
            [(code.to_owned(), field.to_owned())],
            "{what}: {response}"
        );
    }
    assert_eq!(
        counts(&state).await,
        before,
        "a refused mutation wrote something"
    );
}

#[tokio::test]
async fn register_and_profile_and_conflicts() {
    let (_env, state, server) = seeded().await;
    let address = format!("0x{}", "AB".repeat(20));
    let created = server
        .graphql_with(
            REGISTER,
            json!({ "input": { "address": address, "username": "fresh_face" } }),
            &[],
        )
        .await;
    let id = created["data"]["registerUser"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        created["data"]["registerUser"]["address"],
        json!(address.to_lowercase())
    );

    let again = server
        .graphql_with(
            REGISTER,
            json!({ "input": { "address": address.to_lowercase(), "username": "other_name" } }),
            &[],
        )
        .await;
    assert_eq!(
        refusals(&again),
        [("CONFLICT".to_owned(), "input.address".to_owned())]
    );
    let taken = server
        .graphql_with(REGISTER, json!({ "input": { "address": format!("0x{}", "cd".repeat(20)), "username": "fresh_face" } }), &[])
        .await;
    assert_eq!(
        refusals(&taken),
        [("CONFLICT".to_owned(), "input.username".to_owned())]
    );

    // A first update creates the profile; a second changes only what it names.
    let input = json!({ "displayName": "Fresh", "links": [{ "label": "site", "url": "https://fresh.example" }], "preferences": { "theme": "dark", "alerts": [1, 2] } });
    let first = server
        .graphql_with(
            PROFILE,
            json!({ "input": input }),
            &[(
                "authorization",
                &format!("Bearer {}", user_token(&state, &id)),
            )],
        )
        .await;
    assert_eq!(
        first["data"]["updateProfile"]["preferences"],
        json!({ "theme": "dark", "alerts": [1, 2] }),
        "{first}"
    );
    let second = server
        .graphql_with(
            PROFILE,
            json!({ "input": { "bio": "hello" } }),
            &[(
                "authorization",
                &format!("Bearer {}", user_token(&state, &id)),
            )],
        )
        .await;
    assert_eq!(second["data"]["updateProfile"]["displayName"], "Fresh");
    assert_eq!(second["data"]["updateProfile"]["bio"], "hello");
    let stored = state
        .stores()
        .mongo()
        .database()
        .collection::<mongodb::bson::Document>("profiles")
        .find_one(mongodb::bson::doc! { "userId": &id })
        .await
        .expect("find")
        .expect("the profile is stored");
    assert_eq!(stored.get_str("bio").expect("bio"), "hello");
}

#[tokio::test]
async fn a_trade_reaches_every_store_once_and_a_repeat_is_idempotent() {
    let (_env, state, server) = seeded().await;
    let user = a_user(&state).await;
    // Subscribe before writing, to see the published event.
    let client = redis::Client::open(server_redis_url(&state)).expect("client");
    let mut pubsub = client.get_async_pubsub().await.expect("pubsub");
    pubsub
        .subscribe(state.stores().redis().trades_channel())
        .await
        .expect("subscribe");

    let volume_before: f64 = state
        .stores()
        .redis()
        .conn()
        .zscore(state.stores().redis().leaderboard_key("volume", ""), &user)
        .await
        .expect("score");
    let input = json!({ "input": { "userId": user, "txHash": hash('e'), "symbol": "ETH", "side": "BUY", "quantity": 2.5, "price": 3000.0 } });
    let first = server.graphql_with(TRADE, input.clone(), &[]).await;
    let trade_id = first["data"]["recordTrade"]["id"]
        .as_str()
        .expect("trade id")
        .to_owned();
    let repeat = server.graphql_with(TRADE, input, &[]).await;
    assert_eq!(
        repeat["data"]["recordTrade"]["id"].as_str(),
        Some(trade_id.as_str()),
        "same hash, same trade"
    );
    let changed = server
        .graphql_with(TRADE, json!({ "input": { "userId": user, "txHash": hash('e'), "symbol": "ETH", "side": "BUY", "quantity": 9.0, "price": 3000.0 } }), &[])
        .await;
    assert_eq!(
        refusals(&changed),
        [("CONFLICT".to_owned(), "input.txHash".to_owned())]
    );

    let message = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        pubsub.on_message().next(),
    )
    .await
    .expect("a trade event is published")
    .expect("a message");
    let event: Value =
        serde_json::from_str(&message.get_payload::<String>().expect("text")).expect("JSON");
    assert_eq!(event["tradeId"], json!(trade_id));

    wait_until("the outbox to drain", 20, || async {
        pending(&state, "clickhouse").await + pending(&state, "redis").await == 0
    })
    .await;
    let in_clickhouse: u64 = state
        .stores()
        .clickhouse()
        .client()
        .query("SELECT count() FROM trade_events FINAL WHERE trade_id = ?")
        .bind(&trade_id)
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(in_clickhouse, 1);
    let volume_after: f64 = state
        .stores()
        .redis()
        .conn()
        .zscore(state.stores().redis().leaderboard_key("volume", ""), &user)
        .await
        .expect("score");
    assert!(
        (volume_after - volume_before - 7500.0).abs() < 1e-6,
        "{volume_before} -> {volume_after}"
    );
    let holding: f64 = sqlx::query_scalar(
        "SELECT quantity::float8 FROM holdings WHERE user_id = $1::uuid AND symbol = 'ETH'",
    )
    .bind(&user)
    .fetch_one(state.stores().postgres().pool())
    .await
    .expect("holding");
    assert!(holding >= 2.5);
    let report = meridian::reconcile::check(state.stores())
        .await
        .expect("reconcile");
    assert!(report.is_clean(), "{:?}", report.lines());
}

fn server_redis_url(state: &AppState) -> String {
    state.config().redis_url.clone()
}

#[tokio::test]
async fn ingest_prices_stores_ticks_publishes_and_invalidates() {
    let (_env, state, server) = seeded().await;
    let redis = &state.stores().redis();
    let mut conn = redis.conn();
    let _: () = conn
        .set(redis.cache_key("stats24h:BTC"), "{}")
        .await
        .expect("set");
    let client = redis::Client::open(server_redis_url(&state)).expect("client");
    let mut pubsub = client.get_async_pubsub().await.expect("pubsub");
    pubsub
        .subscribe(redis.price_channel("BTC"))
        .await
        .expect("subscribe");

    let now = chrono::Utc::now();
    let response = server
        .graphql_with(INGEST, json!({ "ticks": [
            { "symbol": "BTC", "price": 70000.0, "volume": 1.0, "at": now.to_rfc3339() },
            { "symbol": "btc", "price": 69000.0, "at": (now - chrono::Duration::seconds(5)).to_rfc3339() },
        ] }), &[])
        .await;
    assert_eq!(
        response["data"]["ingestPrices"]["accepted"], 2,
        "{response}"
    );
    assert_eq!(
        response["data"]["ingestPrices"]["prices"],
        json!([{ "symbol": "BTC", "price": 70000.0, "source": "REDIS" }])
    );
    let message = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        pubsub.on_message().next(),
    )
    .await
    .expect("a price is published")
    .expect("a message");
    let published: Value =
        serde_json::from_str(&message.get_payload::<String>().expect("text")).expect("JSON");
    assert_eq!(published["price"], 70000.0);
    let cached: Option<String> = conn
        .get(redis.cache_key("stats24h:BTC"))
        .await
        .expect("get");
    assert_eq!(cached, None, "stats24h is invalidated");

    // An older tick does not replace the latest price.
    server
        .graphql_with(INGEST, json!({ "ticks": [{ "symbol": "BTC", "price": 1.0, "at": (now - chrono::Duration::hours(1)).to_rfc3339() }] }), &[])
        .await;
    let latest: String = conn.get(redis.price_key("BTC")).await.expect("price");
    assert_eq!(
        serde_json::from_str::<Value>(&latest).expect("JSON")["price"],
        70000.0
    );
}

#[tokio::test]
async fn ndjson_ingest_keeps_good_lines_and_names_bad_ones() {
    let (_env, state, server) = seeded().await;
    let before: u64 = state
        .stores()
        .clickhouse()
        .client()
        .query("SELECT count() FROM price_ticks")
        .fetch_one()
        .await
        .expect("count");
    let now = chrono::Utc::now().timestamp();
    let body = format!(
        "{{\"symbol\":\"BTC\",\"price\":71000,\"volume\":2,\"ts\":{now}}}\n\
         garbage\n\
         {{\"symbol\":\"NOPE\",\"price\":1}}\n\
         \n\
         {{\"symbol\":\"ETH\",\"price\":-1}}\n\
         {{\"symbol\":\"SOL\",\"price\":150.5,\"extra\":true}}\n\
         {{\"symbol\":\"sol\",\"price\":151.5,\"ts\":\"{}\"}}",
        chrono::Utc::now().to_rfc3339()
    );
    let response: Value = server
        .client
        .post(server.url("/ingest/prices"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(response["accepted"], 2, "{response}");
    assert_eq!(response["rejected"], 4);
    let lines: Vec<u64> = response["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, [2, 3, 5, 6]);
    let after: u64 = state
        .stores()
        .clickhouse()
        .client()
        .query("SELECT count() FROM price_ticks")
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(after, before + 2);
}

#[tokio::test]
async fn oversized_ingest_bodies_get_413() {
    let env = TestEnv::migrated_with(|c| c.ingest_max_bytes = 4096).await;
    env.seed(&shape()).await;
    let state = env.state().await;
    let server = env.spawn().await;
    let count = || async {
        let n: u64 = state
            .stores()
            .clickhouse()
            .client()
            .query("SELECT count() FROM price_ticks")
            .fetch_one()
            .await
            .expect("count");
        n
    };
    let before = count().await;
    let now = chrono::Utc::now().timestamp();
    let line = format!("{{\"symbol\":\"BTC\",\"price\":70000,\"ts\":{now}}}\n");

    // Declared too large: refused before reading, nothing stored.
    let response = server
        .client
        .post(server.url("/ingest/prices"))
        .body(line.repeat(200))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 413);
    assert_eq!(count().await, before);

    // Streamed without a length: refused once past the limit.
    let chunks: Vec<Result<String, std::io::Error>> = (0..200).map(|_| Ok(line.clone())).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let response = server
        .client
        .post(server.url("/ingest/prices"))
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 413);
    let json: Value = response.json().await.expect("JSON");
    assert_eq!(json["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(
        count().await,
        before + json["accepted"].as_u64().expect("accepted"),
        "what it says it kept is what is stored"
    );
}
