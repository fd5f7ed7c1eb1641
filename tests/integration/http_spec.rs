//! GraphQL over HTTP: the npm `graphql-http` server audits against a spawned Meridian.

use std::process::Command;

use crate::support::TestEnv;

#[tokio::test]
async fn graphql_http_audits_pass() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/graphql-http")
            .exists(),
        "tests/js/node_modules is missing: run `npm ci --prefix tests/js` (scripts/test does)"
    );
    let env = TestEnv::migrated().await;
    let server = env.spawn().await;
    let url = server.url("/graphql");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("http-audit.mjs")
            .arg(url)
            .current_dir(dir)
            .output()
    })
    .await
    .expect("join")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .expect("a JSON summary line");
    assert!(output.status.success(), "a MUST audit failed:\n{stdout}");
    assert!(summary["error"].is_null(), "{summary}");
    assert!(
        summary["ok"].as_u64().unwrap_or(0) >= 50,
        "too few audits ran: {summary}"
    );
}

#[tokio::test]
async fn status_codes_and_media_types() {
    let env = TestEnv::new().await;
    let server = env.spawn().await;
    let post = |accept: &'static str, body: &'static str| {
        server
            .client
            .post(server.url("/graphql"))
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(body)
            .send()
    };
    let ok = post(
        "application/graphql-response+json",
        r#"{"query":"{ __typename }"}"#,
    )
    .await
    .expect("sent");
    assert_eq!(ok.status(), 200);
    assert!(ok.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("application/graphql-response+json"));

    // A request error: 400 with graphql-response+json, 200 with application/json; no data.
    let invalid = post(
        "application/graphql-response+json",
        r#"{"query":"{ nope }"}"#,
    )
    .await
    .expect("sent");
    assert_eq!(invalid.status(), 400);
    let body: serde_json::Value = invalid.json().await.expect("JSON");
    assert!(
        body.get("data").is_none() && body["errors"].is_array(),
        "{body}"
    );
    let legacy = post("application/json", r#"{"query":"{ nope }"}"#)
        .await
        .expect("sent");
    assert_eq!(legacy.status(), 200);
    assert!(legacy.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("application/json"));

    let garbage = post("application/json", "{ not json").await.expect("sent");
    assert_eq!(garbage.status(), 400);
    let unacceptable = post("text/csv", r#"{"query":"{ __typename }"}"#)
        .await
        .expect("sent");
    assert_eq!(unacceptable.status(), 406);
    let text = server
        .client
        .post(server.url("/graphql"))
        .header("content-type", "text/plain")
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(text.status(), 415);

    // Mutations are not carried by GET.
    let get = server
        .client
        .get(server.url("/graphql?query=mutation%20%7B%20__typename%20%7D"))
        .header("accept", "application/graphql-response+json")
        .send()
        .await
        .expect("sent");
    assert_eq!(get.status(), 405);
}

#[tokio::test]
async fn graphql_js_introspection_builds_a_schema_at_the_default_limits() {
    // The default limits, as a newcomer's server has them.
    let env = TestEnv::migrated_with(|c| {
        c.security.max_depth = meridian::config::SecurityConfig::default().max_depth
    })
    .await;
    let server = env.spawn().await;
    let (ok, found) = crate::support::node("introspection.mjs", vec![server.url("/graphql")]).await;
    assert!(ok, "introspection refused: {found}");
    assert_eq!(found["status"], 200, "{found}");
    for field in [
        "me",
        "user",
        "users",
        "asset",
        "assets",
        "leaderboard",
        "health",
    ] {
        assert!(
            found["queryFields"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == field)),
            "{field} missing: {found}"
        );
    }
    assert!(
        found["dateTime"]
            .as_str()
            .is_some_and(|d| d.starts_with("A point in time")),
        "{found}"
    );
    assert_eq!(
        found["description"],
        meridian::graphql::SCHEMA_DESCRIPTION,
        "{found}"
    );
}
