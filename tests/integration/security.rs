//! Authentication, authorization, rate limits, query limits, persisted queries and
//! graceful degradation, against the real stack.

use jsonwebtoken::{jwk::JwkSet, Algorithm, EncodingKey, Header};
use meridian::{
    auth::{jwt::Claims, wallet, Role},
    config::PersistedQueries,
    AppState,
};
use serde_json::{json, Value};

use crate::support::{
    error_codes, small_shape, user_token, wait_until, PrivateStore, TestEnv, TestServer,
};

/// Two users who both hold something.
async fn two_holders(state: &AppState) -> (String, String) {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT user_id::text FROM holdings ORDER BY 1 LIMIT 2")
            .fetch_all(state.stores().postgres().pool())
            .await
            .expect("holders");
    (ids[0].clone(), ids[1].clone())
}

const PRIVATE: &str = "query($id: ID!) { user(id: $id) { username holdings { quantity } portfolioValue trades(first: 2) { edges { node { txHash } } } profile { displayName preferences } } }";

/// The codes of the errors under `user.<field>`, by field.
fn field_codes(response: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = response["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let path: Vec<String> = e["path"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                .collect();
            (
                path.join("."),
                e["extensions"]["code"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn private_fields_are_for_their_owner_and_admins() {
    let env = TestEnv::migrated().await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    let state = &server.state;
    let (alice, bob) = two_holders(state).await;
    let alice_token = user_token(state, &alice);
    let vars = |id: &str| json!({ "id": id });

    // Alice sees her own private fields.
    let (status, own) = server
        .graphql_as(Some(&alice_token), PRIVATE, vars(&alice))
        .await;
    assert_eq!(status, 200);
    assert!(own["errors"].is_null(), "{own}");
    assert!(!own["data"]["user"]["holdings"]
        .as_array()
        .expect("list")
        .is_empty());

    // Bob's are null with FORBIDDEN for her; his public fields still answer.
    let (_, other) = server
        .graphql_as(Some(&alice_token), PRIVATE, vars(&bob))
        .await;
    assert!(other["data"]["user"]["username"].is_string(), "{other}");
    for field in ["holdings", "portfolioValue", "trades"] {
        assert!(other["data"]["user"][field].is_null(), "{field}: {other}");
    }
    let expected: Vec<(String, String)> = [
        "user.holdings",
        "user.portfolioValue",
        "user.profile.preferences",
        "user.trades",
    ]
    .iter()
    .map(|p| (p.to_string(), "FORBIDDEN".to_owned()))
    .collect();
    let mut got = field_codes(&other);
    got.retain(|(path, _)| path != "user.profile");
    assert_eq!(got, expected, "{other}");

    // Anonymous: UNAUTHENTICATED on the same fields.
    let (_, anonymous) = server.graphql_as(None, PRIVATE, vars(&bob)).await;
    assert!(field_codes(&anonymous)
        .iter()
        .all(|(_, code)| code == "UNAUTHENTICATED"));
    assert_eq!(field_codes(&anonymous).len(), 4, "{anonymous}");

    // An admin sees everything.
    let admin = server.token("ops", &[Role::Admin]);
    let (_, all) = server.graphql_as(Some(&admin), PRIVATE, vars(&bob)).await;
    assert!(all["errors"].is_null(), "{all}");
    assert!(all["data"]["user"]["holdings"].is_array());

    // Alice may not record a trade for Bob, nor ingest prices; nothing is written.
    let trades_before: i64 = sqlx::query_scalar("SELECT count(*) FROM trades")
        .fetch_one(state.stores().postgres().pool())
        .await
        .expect("count");
    let record = "mutation($u: ID!) { recordTrade(input: { userId: $u, txHash: \"0x1111111111111111111111111111111111111111111111111111111111111111\", symbol: \"BTC\", side: BUY, quantity: 1, price: 10 }) { id } }";
    let (_, refused) = server
        .graphql_as(Some(&alice_token), record, json!({ "u": bob }))
        .await;
    assert_eq!(error_codes(&refused), ["FORBIDDEN"], "{refused}");
    let (_, refused) = server
        .graphql_as(
            Some(&alice_token),
            "mutation { ingestPrices(ticks: [{ symbol: \"BTC\", price: 1 }]) { accepted } }",
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&refused), ["FORBIDDEN"], "{refused}");
    let ndjson = server
        .anonymous
        .post(server.url("/ingest/prices"))
        .bearer_auth(&alice_token)
        .body("{\"symbol\":\"BTC\",\"price\":1}\n")
        .send()
        .await
        .expect("sent");
    assert_eq!(ndjson.status(), 403);
    let trades_after: i64 = sqlx::query_scalar("SELECT count(*) FROM trades")
        .fetch_one(state.stores().postgres().pool())
        .await
        .expect("count");
    assert_eq!(trades_before, trades_after);
    // Her own trade is fine.
    let own_trade = record.replace("0x1111", "0x2222");
    let (_, ok) = server
        .graphql_as(Some(&alice_token), &own_trade, json!({ "u": alice }))
        .await;
    assert!(ok["data"]["recordTrade"]["id"].is_string(), "{ok}");
}

/// Signs `claims` with `key` under `alg`, with an optional `kid`.
fn sign(claims: &Claims, alg: Algorithm, kid: Option<&str>, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("signed")
}

fn claims(sub: &str, exp_offset: i64, aud: &str, iss: &str) -> Claims {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    Claims {
        sub: sub.to_owned(),
        exp: (now + exp_offset) as u64,
        iss: iss.to_owned(),
        aud: aud.to_owned(),
        iat: Some(now as u64),
        nbf: None,
        roles: None,
    }
}

/// A private key made by `openssl genpkey`, as PEM.
fn openssl_key(dir: &std::path::Path, name: &str, args: &[&str]) -> Vec<u8> {
    let path = dir.join(name);
    let status = std::process::Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .arg("-out")
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl genpkey {args:?}");
    std::fs::read(path).expect("key written")
}

#[tokio::test]
async fn bad_tokens_are_refused_and_jwks_keys_are_honoured() {
    let dir = std::env::temp_dir().join(format!("meridian-jwks-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let rsa = EncodingKey::from_rsa_pem(&openssl_key(
        &dir,
        "rsa.pem",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    ))
    .expect("RSA key");
    let ec = EncodingKey::from_ec_pem(&openssl_key(
        &dir,
        "ec.pem",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    ))
    .expect("EC key");
    let mut rsa_jwk =
        jsonwebtoken::jwk::Jwk::from_encoding_key(&rsa, Algorithm::RS256).expect("jwk");
    rsa_jwk.common.key_id = Some("rsa-1".into());
    let mut ec_jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&ec, Algorithm::ES256).expect("jwk");
    ec_jwk.common.key_id = Some("ec-1".into());
    let jwks = dir.join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_vec(&JwkSet {
            keys: vec![rsa_jwk, ec_jwk],
        })
        .expect("json"),
    )
    .expect("jwks written");

    let env = TestEnv::migrated_with(|c| c.security.jwks_file = Some(jwks.clone())).await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    let (alice, _) = two_holders(&server.state).await;
    let secret = EncodingKey::from_secret(crate::support::TEST_JWT_SECRET.as_bytes());
    let wrong_secret = EncodingKey::from_secret(b"another-secret-of-enough-length-0123456789");
    let good = claims(&alice, 600, "meridian", "meridian");
    let me = "{ me { id } }";

    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "HS256",
            sign(&good, Algorithm::HS256, None, &secret),
            200,
            "",
        ),
        (
            "RS256 from the JWKS",
            sign(&good, Algorithm::RS256, Some("rsa-1"), &rsa),
            200,
            "",
        ),
        (
            "ES256 from the JWKS",
            sign(&good, Algorithm::ES256, Some("ec-1"), &ec),
            200,
            "",
        ),
        (
            "expired",
            sign(
                &claims(&alice, -3600, "meridian", "meridian"),
                Algorithm::HS256,
                None,
                &secret,
            ),
            401,
            "expired",
        ),
        (
            "wrong signature",
            sign(&good, Algorithm::HS256, None, &wrong_secret),
            401,
            "signature",
        ),
        (
            "wrong audience",
            sign(
                &claims(&alice, 600, "someone-else", "meridian"),
                Algorithm::HS256,
                None,
                &secret,
            ),
            401,
            "audience",
        ),
        (
            "wrong issuer",
            sign(
                &claims(&alice, 600, "meridian", "mallory"),
                Algorithm::HS256,
                None,
                &secret,
            ),
            401,
            "issuer",
        ),
        (
            "unknown kid",
            sign(&good, Algorithm::RS256, Some("nope"), &rsa),
            401,
            "kid",
        ),
        (
            "RS256 key under the EC kid",
            sign(&good, Algorithm::RS256, Some("ec-1"), &rsa),
            401,
            "kid",
        ),
        ("garbage", "not.a.jwt".to_owned(), 401, "not a JWT"),
        (
            "unknown session",
            "mrd_0123456789abcdef".to_owned(),
            401,
            "session",
        ),
    ];
    for (what, token, status, message) in cases {
        let (got, body) = server.graphql_as(Some(&token), me, json!({})).await;
        assert_eq!(got, status, "{what}: {body}");
        if status == 200 {
            assert_eq!(body["data"]["me"]["id"], alice.as_str(), "{what}: {body}");
        } else {
            assert_eq!(error_codes(&body), ["UNAUTHENTICATED"], "{what}");
            let text = body["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(text.contains(message), "{what}: {text}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_wallet_signs_in_and_out_with_a_session() {
    let env = TestEnv::migrated().await;
    let server = env.spawn().await;
    let key = k256::ecdsa::SigningKey::from_slice(&[42u8; 32]).expect("key");
    let address = wallet::address_of(key.verifying_key());
    let registered = server
        .graphql_with(
            "mutation($a: String!) { registerUser(input: { address: $a, username: \"wallet_user\" }) { id } }",
            json!({ "a": address }),
            &[],
        )
        .await;
    let id = registered["data"]["registerUser"]["id"]
        .as_str()
        .expect("registered")
        .to_owned();

    let challenge = |server: &TestServer| {
        let address = address.clone();
        let client = server.anonymous.clone();
        let url = server.url("/graphql");
        async move {
            let body: Value = client
                .post(url)
                .json(&json!({ "query": "mutation($a: String!) { loginChallenge(address: $a) { message expiresAt } }", "variables": { "a": address } }))
                .send()
                .await
                .expect("sent")
                .json()
                .await
                .expect("json");
            body["data"]["loginChallenge"]["message"]
                .as_str()
                .expect("a challenge")
                .to_owned()
        }
    };
    const LOGIN: &str = "mutation($a: String!, $s: String!) { login(address: $a, signature: $s) { token user { id } } }";

    // A signature by another key is refused, and uses up the challenge.
    let message = challenge(&server).await;
    let other = k256::ecdsa::SigningKey::from_slice(&[43u8; 32]).expect("key");
    let (_, forged) = server
        .graphql_as(
            None,
            LOGIN,
            json!({ "a": address, "s": wallet::sign(&other, &message) }),
        )
        .await;
    assert_eq!(error_codes(&forged), ["UNAUTHENTICATED"], "{forged}");
    let (_, replay) = server
        .graphql_as(
            None,
            LOGIN,
            json!({ "a": address, "s": wallet::sign(&key, &message) }),
        )
        .await;
    assert_eq!(
        error_codes(&replay),
        ["UNAUTHENTICATED"],
        "a used challenge: {replay}"
    );

    // The right signature opens a session that works as a bearer token.
    let message = challenge(&server).await;
    assert!(message.contains(&address), "{message}");
    let (_, session) = server
        .graphql_as(
            None,
            LOGIN,
            json!({ "a": address, "s": wallet::sign(&key, &message) }),
        )
        .await;
    let token = session["data"]["login"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(session["data"]["login"]["user"]["id"], id.as_str());
    let (_, me) = server
        .graphql_as(Some(&token), "{ me { id } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["id"], id.as_str(), "{me}");
    // Redis keeps a hash of the token, never the token.
    let mut conn = server.state.stores().redis().conn();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(server.state.stores().redis().key("session:*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].contains(&token[4..]));

    // Logout revokes it.
    let (_, out) = server
        .graphql_as(Some(&token), "mutation { logout }", json!({}))
        .await;
    assert_eq!(out["data"]["logout"], true, "{out}");
    let (status, after) = server
        .graphql_as(Some(&token), "{ me { id } }", json!({}))
        .await;
    assert_eq!(status, 401, "{after}");
}

#[tokio::test]
async fn two_instances_share_one_rate_limit() {
    const LIMIT: u32 = 5;
    let env = TestEnv::migrated_with(|c| {
        c.security.rate_limit_principal = LIMIT;
        c.security.rate_limit_ip = 1000;
        // A long window: the allowance cannot refill while the test runs.
        c.security.rate_limit_window_secs = 3600;
    })
    .await;
    let a = env.spawn().await;
    let b = env.spawn().await;
    let token = a.token("limited-client", &[Role::Service]);
    let query = "{ rateLimitStatus { windowSeconds principal { limit remaining } ip { limit } } }";
    for i in 0..LIMIT {
        let server = if i % 2 == 0 { &a } else { &b };
        let (status, body) = server.graphql_as(Some(&token), query, json!({})).await;
        assert_eq!(status, 200, "request {i}: {body}");
        let status_now = &body["data"]["rateLimitStatus"];
        assert_eq!(status_now["principal"]["limit"], LIMIT);
        assert_eq!(
            status_now["principal"]["remaining"],
            LIMIT - 1 - i,
            "{body}"
        );
        assert_eq!(status_now["windowSeconds"], 3600);
    }
    let over = a
        .anonymous
        .post(b.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(over.status(), 429);
    let retry: u64 = over.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry >= 1);
    let body: Value = over.json().await.expect("json");
    assert_eq!(error_codes(&body), ["RATE_LIMITED"]);
    // Another principal is not affected.
    let (status, _) = a
        .graphql_as(
            Some(&a.token("other-client", &[Role::Service])),
            "{ __typename }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn query_limits_persisted_queries_and_the_execution_timeout() {
    let env = TestEnv::migrated_with(|c| {
        c.security.max_depth = 6;
        c.security.max_aliases = 3;
        c.security.max_root_fields = 3;
        c.security.max_complexity = 500;
        c.security.max_tokens = 400;
        c.security.introspection = false;
    })
    .await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    let cases: Vec<(&str, String, &str)> = vec![
        ("depth", "{ leaderboard(name: \"volume\") { entries { user { holdings { asset { metadata { description } } } } } } }".into(), "QUERY_TOO_DEEP"),
        ("aliases", "{ a: health { status } b: health { status } c: health { status } d: health { status } }".into(), "TOO_MANY_ALIASES"),
        ("root fields", "{ health { status } leaderboard(name: \"volume\") { size } users { totalCount } asset(symbol: \"BTC\") { name } }".into(), "TOO_MANY_ROOT_FIELDS"),
        ("complexity", "{ users(first: 100) { edges { node { username holdings { quantity } } } } }".into(), "QUERY_TOO_COMPLEX"),
        ("tokens", format!("{{ health {{ {} }} }}", "status ".repeat(500)), "QUERY_TOO_LARGE"),
        ("introspection off", "{ __schema { types { name } } }".into(), "INTROSPECTION_DISABLED"),
    ];
    for (what, query, code) in cases {
        let response = server.graphql(&query).await;
        assert_eq!(error_codes(&response), [code], "{what}: {response}");
        assert!(response["data"].is_null(), "{what}");
    }

    // Automatic persisted queries: unknown hash, register, then by hash alone.
    let query = "{ asset(symbol: \"BTC\") { name } }";
    let hash = meridian::digest::sha256_hex(query);
    let by_hash =
        json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
    let send = |body: Value| {
        let client = server.client.clone();
        let url = server.url("/graphql");
        async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("sent")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let unknown = send(by_hash.clone()).await;
    assert_eq!(
        error_codes(&unknown),
        ["PERSISTED_QUERY_NOT_FOUND"],
        "{unknown}"
    );
    let mut register = by_hash.clone();
    register["query"] = json!(query);
    let registered = send(register).await;
    assert_eq!(
        registered["data"]["asset"]["name"], "Bitcoin",
        "{registered}"
    );
    let hit = send(by_hash).await;
    assert_eq!(hit["data"]["asset"]["name"], "Bitcoin", "{hit}");
    let mismatch = send(json!({ "query": "{ health { status } }", "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } })).await;
    assert_eq!(error_codes(&mismatch), ["BAD_REQUEST"], "{mismatch}");

    // Allow-list mode runs only registered documents.
    let allowed = "{ health { status } }";
    let list = std::env::temp_dir().join(format!(
        "meridian-allow-{}.json",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(
        &list,
        json!({ meridian::digest::sha256_hex(allowed): allowed }).to_string(),
    )
    .expect("written");
    let mut config = env.config.clone();
    config.security.persisted_queries = PersistedQueries::Allowlist;
    config.security.persisted_queries_file = Some(list.clone());
    let strict = TestServer::start(AppState::new(config).await.expect("state")).await;
    let ok = strict.graphql(allowed).await;
    assert!(ok["data"]["health"]["status"].is_string(), "{ok}");
    let refused = strict.graphql("{ asset(symbol: \"BTC\") { name } }").await;
    assert_eq!(
        error_codes(&refused),
        ["OPERATION_NOT_ALLOWED"],
        "{refused}"
    );
    let _ = std::fs::remove_file(list);

    // An operation slower than the request timeout is cut off with TIMEOUT: Redis here
    // accepts connections and never answers, and its store timeout is longer.
    let (port, hold) = crate::support::silent_listener().await;
    let mut config = env.config.clone();
    config.redis_url = format!("redis://127.0.0.1:{port}/");
    config.store_timeout_ms = 30_000;
    config.security.request_timeout_ms = 300;
    let slow = TestServer::start(AppState::new(config).await.expect("state")).await;
    let response = slow
        .graphql("{ leaderboard(name: \"volume\") { size } }")
        .await;
    assert_eq!(error_codes(&response), ["TIMEOUT"], "{response}");
    hold.abort();
}

#[tokio::test]
async fn a_failing_store_opens_its_breaker_and_stale_metadata_is_served() {
    let mongo = PrivateStore::start("mongo");
    let env = TestEnv::migrated_with(|c| {
        c.mongo_url = mongo.url();
        c.store_timeout_ms = 1000;
        c.resilience.breaker_failures = 3;
        c.resilience.breaker_cooldown_ms = 200;
    })
    .await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    let query = "{ asset(symbol: \"BTC\") { name metadata { description } } }";
    let fresh = server.graphql(query).await;
    assert!(
        fresh["data"]["asset"]["metadata"]["description"].is_string(),
        "{fresh}"
    );
    assert!(fresh["extensions"]["meridian"]["stale"].is_null());

    mongo.down();
    // Metadata comes from memory, marked stale.
    let stale = server.graphql(query).await;
    assert_eq!(stale["data"], fresh["data"], "{stale}");
    let notes = &stale["extensions"]["meridian"]["stale"][0];
    assert_eq!(notes["store"], "mongodb", "{stale}");
    assert_eq!(notes["keys"], json!(["BTC"]));
    // Profiles have no fallback; after 3 failures the breaker fails fast.
    let profile = "{ users(first: 1) { edges { node { profile { displayName } } } } }";
    for _ in 0..3 {
        let r = server.graphql(profile).await;
        assert_eq!(error_codes(&r), ["STORE_UNAVAILABLE"], "{r}");
    }
    let fast = server.graphql(profile).await;
    assert_eq!(fast["errors"][0]["extensions"]["circuit"], "open", "{fast}");
    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        ready.status(),
        200,
        "mongodb down degrades, it does not make us unready"
    );
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["down"], json!(["mongodb"]));

    mongo.up();
    wait_until("the breaker to close after mongodb returns", 30, || async {
        error_codes(&server.graphql(profile).await).is_empty()
    })
    .await;
    let ready: Value = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["status"], "ready", "{ready}");
}

#[tokio::test]
async fn responses_carry_security_headers_and_cors() {
    let env = TestEnv::migrated_with(|c| {
        c.security.cors_origins = "https://app.example".into();
        c.security.hsts = true;
    })
    .await;
    let server = env.spawn().await;
    let response = server
        .client
        .post(server.url("/graphql"))
        .header("origin", "https://app.example")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("sent");
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers.contains_key("content-security-policy"));
    assert!(headers.contains_key("strict-transport-security"));
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    let preflight = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/graphql"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("sent");
    assert!(!preflight
        .headers()
        .contains_key("access-control-allow-origin"));
}

/// Registers `address` (as the admin) and returns the user's id and chain.
async fn register(server: &TestServer, address: &str, username: &str) -> Value {
    server
        .graphql_with(
            "mutation($a: String!, $u: String!) { registerUser(input: { address: $a, username: $u }) { id chain address } }",
            json!({ "a": address, "u": username }),
            &[],
        )
        .await
}

/// Asks for a challenge, signs it with `sign`, logs in; returns the login response.
pub(crate) async fn sign_in(
    server: &TestServer,
    address: &str,
    sign: impl Fn(&str) -> String,
) -> Value {
    let (_, challenge) = server
        .graphql_as(
            None,
            "mutation($a: String!) { loginChallenge(address: $a) { message } }",
            json!({ "a": address }),
        )
        .await;
    let message = challenge["data"]["loginChallenge"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("a challenge: {challenge}"))
        .to_owned();
    let (_, login) = server
        .graphql_as(
            None,
            "mutation($a: String!, $s: String!) { login(address: $a, signature: $s) { token user { id chain } } }",
            json!({ "a": address, "s": sign(&message) }),
        )
        .await;
    login
}

// The Stellar SDK (npm @stellar/stellar-base) makes the key and the SEP-53 signature.
#[tokio::test]
async fn a_stellar_account_signs_in_with_the_stellar_sdk() {
    let env = TestEnv::migrated().await;
    let server = env.spawn().await;
    let admin = server.token("operator", &[Role::Admin]);
    let (ok, out) =
        crate::support::node("stellar-login.mjs", vec![server.url("/graphql"), admin]).await;
    assert!(ok, "{out}");
    let address = out["address"].as_str().expect("an account id");
    assert!(address.starts_with('G') && address.len() == 56, "{out}");
    let registered = &out["registered"]["data"]["registerUser"];
    assert_eq!(registered["chain"], "STELLAR", "{out}");
    assert_eq!(registered["address"], address);
    assert_eq!(out["login"]["user"]["id"], registered["id"], "{out}");
    assert_eq!(out["me"]["data"]["me"]["id"], registered["id"], "{out}");
    assert_eq!(out["me"]["data"]["me"]["chain"], "STELLAR");
    assert_eq!(out["forged"], json!(["UNAUTHENTICATED"]), "{out}");
}

#[tokio::test]
async fn casper_keys_of_both_kinds_sign_in() {
    use ed25519_dalek::Signer as _;
    use k256::ecdsa::signature::Signer as _;

    let env = TestEnv::migrated().await;
    let server = env.spawn().await;
    let prefixed = |message: &str| format!("{}{message}", wallet::CASPER_PREFIX);

    // 01: ed25519, the signature over the prefixed message's bytes.
    let ed = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]);
    let ed_address = format!("01{}", hex::encode(ed.verifying_key().as_bytes()));
    // 02: secp256k1, ECDSA over the sha256 of those bytes.
    let secp = k256::ecdsa::SigningKey::from_slice(&[6u8; 32]).expect("key");
    let secp_address = format!(
        "02{}",
        hex::encode(secp.verifying_key().to_sec1_point(true).as_bytes())
    );
    let sign_ed = |message: &str| hex::encode(ed.sign(prefixed(message).as_bytes()).to_bytes());
    let sign_secp = |message: &str| {
        let signature: k256::ecdsa::Signature = secp.sign(prefixed(message).as_bytes());
        hex::encode(signature.to_bytes())
    };
    for (address, username, sign, forge) in [
        (
            &ed_address,
            "casper_ed",
            &sign_ed as &dyn Fn(&str) -> String,
            &sign_secp as &dyn Fn(&str) -> String,
        ),
        (&secp_address, "casper_secp", &sign_secp, &sign_ed),
    ] {
        let registered = register(&server, address, username).await;
        let user = &registered["data"]["registerUser"];
        assert_eq!(user["chain"], "CASPER", "{registered}");
        assert_eq!(user["address"], address.as_str());
        let login = sign_in(&server, address, sign).await;
        assert_eq!(login["data"]["login"]["user"]["id"], user["id"], "{login}");
        assert_eq!(login["data"]["login"]["user"]["chain"], "CASPER");
        // The other kind's signature (a forged one, for this key) is refused.
        let forged = sign_in(&server, address, forge).await;
        assert_eq!(error_codes(&forged), ["UNAUTHENTICATED"], "{forged}");
    }
}

#[tokio::test]
async fn addresses_of_every_family_are_checked_by_their_own_rules() {
    let env = TestEnv::migrated().await;
    let server = env.spawn().await;
    let stellar = stellar_strkey::ed25519::PublicKey([7u8; 32])
        .to_string()
        .as_str()
        .to_owned();
    let mut stellar_bad_crc = stellar.clone();
    let last = if stellar.ends_with('A') { "B" } else { "A" };
    stellar_bad_crc.replace_range(55..56, last);
    let casper = format!(
        "01{}",
        hex::encode(
            ed25519_dalek::SigningKey::from_bytes(&[5u8; 32])
                .verifying_key()
                .as_bytes()
        )
    );
    let cases: [(&str, Option<&str>); 8] = [
        // EIP-55: one letter's case changed.
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", None),
        (&stellar_bad_crc, None),
        (&stellar[..50], None),
        (&casper[..60], None),
        ("0302aa", None),
        // Cross-family: a valid address of one family named as another.
        (
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            Some("STELLAR"),
        ),
        (&stellar, Some("CASPER")),
        (&casper, Some("EVM")),
    ];
    for (i, (address, chain)) in cases.iter().enumerate() {
        let body = server
            .graphql_with(
                "mutation($a: String!, $c: Chain) { registerUser(input: { address: $a, username: $u, chain: $c }) { id } }"
                    .replace("$u", &format!("\"bad_{i}\""))
                    .as_str(),
                json!({ "a": address, "c": chain }),
                &[],
            )
            .await;
        assert_eq!(
            error_codes(&body),
            ["BAD_USER_INPUT"],
            "{address} {chain:?}: {body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["field"], "input.address",
            "{body}"
        );
    }
    // The same addresses, rightly named, are accepted; each keeps one spelling.
    for (address, chain, stored) in [
        (
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "EVM",
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed".to_owned(),
        ),
        (&stellar.to_ascii_lowercase(), "STELLAR", stellar.clone()),
        (&casper.to_ascii_uppercase(), "CASPER", casper.clone()),
    ] {
        let body = server
            .graphql_with(
                "mutation($a: String!, $c: Chain, $u: String!) { registerUser(input: { address: $a, username: $u, chain: $c }) { chain address } }",
                json!({ "a": address, "c": chain, "u": format!("good_{}", chain.to_ascii_lowercase()) }),
                &[],
            )
            .await;
        assert_eq!(body["data"]["registerUser"]["chain"], chain, "{body}");
        assert_eq!(body["data"]["registerUser"]["address"], stored.as_str());
    }
    // A challenge for a malformed address names the argument.
    let (_, body) = server
        .graphql_as(
            None,
            "mutation($a: String!) { loginChallenge(address: $a) { message } }",
            json!({ "a": stellar_bad_crc }),
        )
        .await;
    assert_eq!(error_codes(&body), ["BAD_USER_INPUT"], "{body}");
}
