//! What third-party clients rely on: the exact shape of a response with field errors (the
//! spec's "Handling Field Errors", which Apollo and urql read literally).

use serde_json::{json, Value};

use meridian::AppState;

use crate::support::{closed_port, small_shape, user_token, TestEnv, TestServer};

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
        .fetch_all(state.stores().postgres.pool())
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
