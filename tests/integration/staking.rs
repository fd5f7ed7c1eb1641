//! Staking as the Astake seed describes it, against the real stack: staking events summed
//! into an account's metrics at the protocol's exchange rate; token assets written by the
//! chain indexer and other writers, with the conflicts the rule resolves and those an
//! admin resolves, listed and reported by reconcile; the read path through the cache, the
//! primary and the fallback, each field saying where its value came from; round trips
//! constant in the number of accounts and tokens; hostile input.

use meridian::auth::Role;
use serde_json::{json, Value};

use crate::support::{all_delivered, closed_port, refusals, TestEnv, TestServer};

const RECORD: &str = "mutation($events: [EventInput!]!) { recordEvents(events: $events) { id } }";

/// A Casper ed25519 account: 01 and the public key of a key made from `seed`.
fn casper(seed: u8) -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key();
    format!("01{}", hex::encode(key.to_bytes()))
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64()
        .is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
}

fn event(id: &str, kind: &str, subject: &str, amount: &str, attributes: Value) -> Value {
    json!({ "id": id, "kind": kind, "subject": subject, "amount": amount, "attributes": attributes })
}

async fn ok(server: &TestServer, token: &str, query: &str, variables: Value) -> Value {
    let (_, body) = server.graphql_as(Some(token), query, variables).await;
    assert!(body["errors"].is_null(), "{query}: {body}");
    body["data"].clone()
}

const METRICS: &str = "query($a: String!) { stakingMetrics(account: $a) { account { chain address }
    totalStaked rewards shares exchangeRate stakedValue withdrawn pendingTotal events
    pendingUnbonds { amount releaseAt claimable } } }";

#[tokio::test]
async fn staking_events_sum_into_metrics_in_fixed_round_trips() {
    let env = TestEnv::migrated().await;
    let server = env.spawn().await;
    let service = server.token("astake-indexer", &[Role::Service]);
    let (a, b) = (casper(0xa1), casper(0xb2));
    let past = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let future = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    let events = json!([
        event(
            "d1",
            "staking_deposit",
            &a,
            "1000",
            json!({ "validator": "v1", "shares": "1000" })
        ),
        event("r1", "staking_reward", &a, "50", json!({ "era": 101 })),
        event(
            "d2",
            "staking_deposit",
            &b,
            "500",
            json!({ "validator": "v1", "shares": "480" })
        ),
        event(
            "u1",
            "staking_unbond",
            &a,
            "300",
            json!({ "shares": "280", "release_at": past })
        ),
        event(
            "u2",
            "staking_unbond",
            &a,
            "100",
            json!({ "shares": "90", "release_at": future })
        ),
        event("w1", "staking_withdraw", &a, "200", json!({})),
    ]);
    let mut events = events;
    // The two unbonds an hour apart, the withdrawal after both.
    let hour = |h: i64| (chrono::Utc::now() - chrono::Duration::hours(h)).to_rfc3339();
    events[3]["occurredAt"] = json!(hour(3));
    events[4]["occurredAt"] = json!(hour(2));
    events[5]["occurredAt"] = json!(hour(1));
    ok(&server, &service, RECORD, json!({ "events": events })).await;
    all_delivered(&server.state).await;

    let read = ok(&server, &service, METRICS, json!({ "a": a })).await;
    let m = &read["stakingMetrics"];
    assert_eq!(m["account"], json!({ "chain": "CASPER", "address": a }));
    assert!(close(&m["totalStaked"], 600.0), "{m}");
    assert!(close(&m["rewards"], 50.0), "{m}");
    assert!(close(&m["shares"], 630.0), "{m}");
    // (1,500 deposited + 50 rewards - 400 unbonded) / (1,480 minted - 370 burned).
    let rate = 1_150.0 / 1_110.0;
    assert!(close(&m["exchangeRate"], rate), "{m}");
    assert!(close(&m["stakedValue"], 630.0 * rate), "{m}");
    assert!(close(&m["withdrawn"], 200.0), "{m}");
    // Account A's five events (B's deposit is B's).
    assert_eq!(m["events"], 5);
    // The withdrawal paid 200 of the first unbond: 100 of it is left, and all the second.
    let pending = m["pendingUnbonds"].as_array().expect("pending");
    assert_eq!(pending.len(), 2, "{m}");
    assert!(close(&pending[0]["amount"], 100.0), "{m}");
    assert_eq!(pending[0]["claimable"], true);
    assert!(close(&pending[1]["amount"], 100.0), "{m}");
    assert_eq!(pending[1]["claimable"], false);
    assert!(close(&m["pendingTotal"], 200.0), "{m}");
    let nobody = ok(&server, &service, METRICS, json!({ "a": casper(0xcc) })).await;
    assert_eq!(nobody["stakingMetrics"]["events"], 0);
    assert!(close(&nobody["stakingMetrics"]["totalStaked"], 0.0));
    assert_eq!(nobody["stakingMetrics"]["pendingUnbonds"], json!([]));

    // One account or three: the same round trips.
    let dashboard = |n: usize| {
        let fields: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "a{i}: stakingMetrics(account: \"{}\") {{ totalStaked stakedValue pendingUnbonds {{ amount }} }}",
                    casper(0xa1 + i as u8)
                )
            })
            .collect();
        format!("{{ {} }}", fields.join(" "))
    };
    let (one, trips_one) = server.traced(&dashboard(1), json!({})).await;
    assert!(one["errors"].is_null(), "{one}");
    let (three, trips_three) = server.traced(&dashboard(3), json!({})).await;
    assert!(three["errors"].is_null(), "{three}");
    assert_eq!(trips_one, trips_three, "round trips grew with the accounts");

    // Hostile staking events and arguments.
    for (e, field) in [
        (
            event(
                "x1",
                "staking_deposit",
                &a,
                "1",
                json!({ "validator": "v1" }),
            ),
            "events[0].attributes.shares",
        ),
        (
            event(
                "x2",
                "staking_unbond",
                &a,
                "1",
                json!({ "shares": "1", "release_at": "soon" }),
            ),
            "events[0].attributes.release_at",
        ),
        (
            event(
                "x3",
                "staking_deposit",
                &a,
                "1",
                json!({ "validator": "v1", "shares": "many" }),
            ),
            "events[0].attributes.shares",
        ),
    ] {
        let (_, body) = server
            .graphql_as(Some(&service), RECORD, json!({ "events": [e] }))
            .await;
        assert_eq!(
            refusals(&body),
            vec![("BAD_USER_INPUT".to_owned(), field.to_owned())],
            "{body}"
        );
    }
    let (_, body) = server
        .graphql_as(Some(&service), METRICS, json!({ "a": "not an account" }))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
}

const WRITE: &str = "mutation($w: TokenWriterInput!, $a: [TokenAssetInput!]!) { writeTokenAssets(writer: $w, assets: $a) {
    tokenAsset { tokenId owner { address } value verified contract block }
    applied stale conflicts { id fields status resolution keptWriter otherWriter keptValues otherValues } } }";

const READ: &str =
    "query($ids: [String!]!, $age: Int) { tokenAssets(tokenIds: $ids, maxAge: $age) {
    tokenId owner { address } value verified contract block servedFrom
    provenance { field writer chainIndexer block servedFrom } } }";

fn indexer() -> Value {
    json!({ "name": "casper-indexer", "chainIndexer": true })
}

fn writer(name: &str) -> Value {
    json!({ "name": name })
}

#[tokio::test]
async fn the_chain_wins_conflicts_are_resolved_and_reads_say_where_values_came_from() {
    let env = TestEnv::migrated().await;
    let server = env.spawn().await;
    let service = server.token("astake", &[Role::Service]);
    let admin = server.token("reviewer", &[Role::Admin]);
    let (c1, c2) = (casper(0x11), casper(0x22));

    // The indexer writes a token; another writer disagrees on its owner and loses.
    let first = ok(&server, &service, WRITE, json!({ "w": indexer(), "a": [
        { "tokenId": "asset_1", "owner": c1, "value": "100.5", "verified": true, "contract": "hash-abc", "block": 10 } ] })).await;
    let out = &first["writeTokenAssets"][0];
    assert_eq!(
        out["applied"],
        json!(["contract", "owner", "value", "verified"])
    );
    assert_eq!(out["conflicts"], json!([]));
    let lost = ok(
        &server,
        &service,
        WRITE,
        json!({ "w": writer("wallet-api"), "a": [
        { "tokenId": "asset_1", "owner": c2, "value": "100.5", "block": 12 } ] }),
    )
    .await;
    let out = &lost["writeTokenAssets"][0];
    assert_eq!(out["applied"], json!([]));
    assert_eq!(out["tokenAsset"]["owner"]["address"], c1);
    let chain = &out["conflicts"][0];
    assert_eq!(
        (&chain["fields"], &chain["status"], &chain["resolution"]),
        (&json!(["owner"]), &json!("RESOLVED"), &json!("CHAIN"))
    );
    assert_eq!(chain["keptWriter"], "casper-indexer");
    assert_eq!(chain["otherValues"]["owner"]["address"], c2);
    let chain_id = chain["id"].clone();
    // An older chain state is stale, not a conflict.
    let stale = ok(
        &server,
        &service,
        WRITE,
        json!({ "w": indexer(), "a": [
        { "tokenId": "asset_1", "owner": c2, "block": 9 } ] }),
    )
    .await;
    assert_eq!(stale["writeTokenAssets"][0]["stale"], json!(["owner"]));
    assert_eq!(stale["writeTokenAssets"][0]["conflicts"], json!([]));

    // Two other writers disagree: the stored value stays and an admin decides.
    ok(
        &server,
        &service,
        WRITE,
        json!({ "w": writer("oracle"), "a": [
        { "tokenId": "asset_2", "value": "5", "block": 3 } ] }),
    )
    .await;
    let flagged = ok(
        &server,
        &service,
        WRITE,
        json!({ "w": writer("wallet-api"), "a": [
        { "tokenId": "asset_2", "value": "7", "block": 4 } ] }),
    )
    .await;
    let open = &flagged["writeTokenAssets"][0]["conflicts"][0];
    assert_eq!(open["status"], "OPEN");
    assert_eq!(flagged["writeTokenAssets"][0]["tokenAsset"]["value"], "5");
    let open_id = open["id"].clone();
    let listed = ok(
        &server,
        &admin,
        "{ conflicts(status: OPEN) { id entityId fields keptValues otherValues otherBlock } }",
        json!({}),
    )
    .await;
    assert_eq!(
        listed["conflicts"],
        json!([{ "id": open_id, "entityId": "asset_2", "fields": ["value"], "keptValues": { "value": "5" },
                 "otherValues": { "value": "7" }, "otherBlock": 4 }])
    );
    let report = meridian::reconcile::check(server.state.stores())
        .await
        .expect("reconcile");
    assert!(report.is_clean(), "{:?}", report.lines());
    assert_eq!(report.conflicts.len(), 1, "{:?}", report.lines());
    assert!(
        report.conflicts[0].contains(
            "token_asset asset_2: value by oracle at block 3 against wallet-api at block 4"
        ),
        "{:?}",
        report.conflicts
    );

    // Reads: the primary first, then the cache; maxAge 0 asks the primary again.
    let ids = json!(["asset_1", "asset_2", "asset_9"]);
    let read = ok(&server, &service, READ, json!({ "ids": ids })).await;
    let tokens = read["tokenAssets"].as_array().expect("tokens");
    assert_eq!(tokens[0]["servedFrom"], "PRIMARY");
    assert_eq!(tokens[2], Value::Null);
    let owner = tokens[0]["provenance"]
        .as_array()
        .expect("provenance")
        .iter()
        .find(|p| p["field"] == "owner")
        .expect("owner's provenance")
        .clone();
    assert_eq!(
        owner,
        json!({ "field": "owner", "writer": "casper-indexer", "chainIndexer": true, "block": 10, "servedFrom": "PRIMARY" })
    );
    let again = ok(&server, &service, READ, json!({ "ids": ids })).await;
    assert_eq!(again["tokenAssets"][0]["servedFrom"], "CACHE");
    assert_eq!(
        again["tokenAssets"][0]["provenance"][0]["servedFrom"],
        "CACHE"
    );
    let forced = ok(&server, &service, READ, json!({ "ids": ids, "age": 0 })).await;
    assert_eq!(forced["tokenAssets"][1]["servedFrom"], "PRIMARY");

    // The admin puts the other writer's value in force; the cache does not hide it.
    let resolve = "mutation($id: ID!, $k: ConflictSide!) { resolveConflict(id: $id, keep: $k) { status resolution resolvedBy } }";
    let (_, body) = server
        .graphql_as(
            Some(&service),
            resolve,
            json!({ "id": open_id, "k": "OTHER" }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    let resolved = ok(
        &server,
        &admin,
        resolve,
        json!({ "id": open_id, "k": "OTHER" }),
    )
    .await;
    assert_eq!(
        resolved["resolveConflict"],
        json!({ "status": "RESOLVED", "resolution": "REPLACED", "resolvedBy": "reviewer" })
    );
    let read = ok(&server, &service, READ, json!({ "ids": ["asset_2"] })).await;
    assert_eq!(read["tokenAssets"][0]["value"], "7");
    assert_eq!(
        read["tokenAssets"][0]["provenance"][0]["writer"],
        "wallet-api"
    );
    for (id, message) in [
        (&open_id, "already resolved"),
        (&chain_id, "already resolved"),
    ] {
        let (_, body) = server
            .graphql_as(Some(&admin), resolve, json!({ "id": id, "k": "KEPT" }))
            .await;
        assert_eq!(
            refusals(&body),
            vec![("BAD_USER_INPUT".to_owned(), "id".to_owned())],
            "{body}"
        );
        assert!(body.to_string().contains(message), "{body}");
    }
    let (_, body) = server
        .graphql_as(
            Some(&admin),
            resolve,
            json!({ "id": "999999", "k": "KEPT" }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{body}"
    );
    let none_open = ok(
        &server,
        &admin,
        "{ conflicts(status: OPEN) { id } all: conflicts { id } }",
        json!({}),
    )
    .await;
    assert_eq!(none_open["conflicts"], json!([]));
    assert_eq!(none_open["all"].as_array().map(Vec::len), Some(2));

    // PostgreSQL failing: an instance reads the older cache entries (the fallback).
    ok(&server, &service, READ, json!({ "ids": ["asset_1"] })).await;
    let mut broken = env.config.clone();
    broken.postgres_url = format!("postgres://postgres@127.0.0.1:{}/nowhere", closed_port());
    let cut_off = TestServer::start(meridian::AppState::new(broken).await.expect("state")).await;
    let token = cut_off.token("astake", &[Role::Service]);
    let read = ok(
        &cut_off,
        &token,
        READ,
        json!({ "ids": ["asset_1"], "age": 0 }),
    )
    .await;
    assert_eq!(read["tokenAssets"][0]["servedFrom"], "FALLBACK");
    assert_eq!(read["tokenAssets"][0]["owner"]["address"], c1);
    let (_, body) = cut_off
        .graphql_as(
            Some(&token),
            READ,
            json!({ "ids": ["asset_404"], "age": 0 }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "STORE_UNAVAILABLE",
        "{body}"
    );

    // Two tokens or six: the same round trips.
    let many: Vec<Value> = (0..6)
        .map(|i| json!({ "tokenId": format!("bulk_{i}"), "value": "1", "block": 1 }))
        .collect();
    ok(
        &server,
        &service,
        WRITE,
        json!({ "w": indexer(), "a": many }),
    )
    .await;
    let ids = |n: usize| json!((0..n).map(|i| format!("bulk_{i}")).collect::<Vec<_>>());
    let (_, two) = server
        .traced(READ, json!({ "ids": ids(2), "age": 0 }))
        .await;
    let (_, six) = server
        .traced(READ, json!({ "ids": ids(6), "age": 0 }))
        .await;
    assert_eq!(two, six, "round trips grew with the tokens");

    // Hostile writes.
    for (w, asset, field) in [
        (
            json!({ "name": "Bad Name!" }),
            json!({ "tokenId": "t", "value": "1", "block": 1 }),
            "writer.name",
        ),
        (
            writer("w"),
            json!({ "tokenId": "-bad", "value": "1", "block": 1 }),
            "assets[0].tokenId",
        ),
        (
            writer("w"),
            json!({ "tokenId": "t", "value": "-1", "block": 1 }),
            "assets[0].value",
        ),
        (
            writer("w"),
            json!({ "tokenId": "t", "value": "lots", "block": 1 }),
            "assets[0].value",
        ),
        (
            writer("w"),
            json!({ "tokenId": "t", "owner": "nobody", "block": 1 }),
            "assets[0].owner",
        ),
        (
            writer("w"),
            json!({ "tokenId": "t", "value": "1", "block": -1 }),
            "assets[0].block",
        ),
        (
            writer("w"),
            json!({ "tokenId": "t", "block": 1 }),
            "assets[0]",
        ),
        (
            writer("w"),
            json!({ "tokenId": "t", "contract": "a\u{0}b", "block": 1 }),
            "assets[0].contract",
        ),
    ] {
        let (_, body) = server
            .graphql_as(Some(&service), WRITE, json!({ "w": w, "a": [asset] }))
            .await;
        assert_eq!(
            refusals(&body),
            vec![("BAD_USER_INPUT".to_owned(), field.to_owned())],
            "{body}"
        );
    }
    let twice = json!([{ "tokenId": "t", "value": "1", "block": 1 }, { "tokenId": "t", "value": "2", "block": 1 }]);
    let (_, body) = server
        .graphql_as(
            Some(&service),
            WRITE,
            json!({ "w": writer("w"), "a": twice }),
        )
        .await;
    assert_eq!(
        refusals(&body),
        vec![("BAD_USER_INPUT".to_owned(), "assets".to_owned())]
    );
    let (_, body) = server
        .graphql_as(
            Some(&admin),
            WRITE,
            json!({ "w": writer("w"), "a": [{ "tokenId": "t", "value": "1", "block": 1 }] }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    let (_, body) = server
        .graphql_as(Some(&service), READ, json!({ "ids": ["ok", "no good"] }))
        .await;
    assert_eq!(
        refusals(&body),
        vec![("BAD_USER_INPUT".to_owned(), "tokenIds".to_owned())]
    );
}

/// The README's Astake dashboard on a seed of Astake alone: token owners and values as the
/// rule decided them, each owner's staking figures equal to their generated events, and
/// the two open conflicts listed by `conflicts` and by reconcile, which is otherwise clean.
#[tokio::test]
async fn the_readme_astake_dashboard_runs_on_the_seed() {
    use std::collections::HashMap;

    use meridian::seed::{platforms, Platforms};

    let env = TestEnv::migrated().await;
    let shape = meridian::seed::Shape {
        days: 3,
        ..crate::support::recent_shape(Platforms {
            astake: true,
            ..Platforms::NONE
        })
    };
    let report = env.seed(&shape).await;
    let (generated, stakers) = platforms::astake(&shape);
    assert_eq!(report.events, generated.events.len());
    assert_eq!((report.tokens, report.conflicts), (22, 8));
    let server = env.spawn().await;
    let body = server
        .graphql(&crate::platforms::readme_block(
            "<!-- dashboard: astake -->",
        ))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let tokens = body["data"]["tokenAssets"].as_array().expect("tokens");
    assert_eq!(tokens.len(), 4);

    // The indexer's owner stands against the wallet API's claim.
    let drafts = platforms::astake_tokens(&shape, &stakers);
    let indexed = &drafts[0].tokens;
    assert_eq!(
        tokens[0]["owner"]["address"],
        json!(indexed[0].owner.clone().expect("an owner"))
    );
    let owner_field = tokens[0]["provenance"]
        .as_array()
        .expect("provenance")
        .iter()
        .find(|p| p["field"] == "owner")
        .expect("owner")
        .clone();
    assert_eq!(owner_field["writer"], "casper-indexer");
    assert_eq!(owner_field["chainIndexer"], true);
    // The open conflict leaves the oracle's value in force.
    assert_eq!(tokens[3]["value"], "521");
    assert_eq!(tokens[3]["owner"], Value::Null);

    // Each owner's figures are the sums of their generated events.
    let mut sums: HashMap<String, (f64, f64)> = HashMap::new();
    for e in &generated.events {
        let amount: f64 = e
            .amount
            .as_deref()
            .unwrap_or("0")
            .parse()
            .expect("an amount");
        let entry = sums.entry(e.subject.clone()).or_default();
        match e.kind.as_str() {
            "staking_deposit" => entry.0 += amount,
            "staking_unbond" => entry.0 -= amount,
            "staking_reward" => entry.1 += amount,
            _ => {}
        }
    }
    for token in &tokens[..3] {
        let owner = token["owner"]["address"].as_str().expect("an owner");
        let metrics = &token["owner"]["stakingMetrics"];
        let (staked, rewards) = sums[owner];
        assert!(close(&metrics["totalStaked"], staked.max(0.0)), "{token}");
        assert!(close(&metrics["rewards"], rewards), "{token}");
        assert!(metrics["exchangeRate"].as_f64() >= Some(1.0), "{token}");
        assert!(
            token["owner"]["user"]["username"]
                .as_str()
                .is_some_and(|u| u.starts_with("astake_staker_")),
            "{token}"
        );
    }

    let admin = server.token("reviewer", &[Role::Admin]);
    let open = ok(
        &server,
        &admin,
        "{ conflicts(status: OPEN) { entityId fields keptWriter otherWriter } }",
        json!({}),
    )
    .await;
    assert_eq!(
        open["conflicts"],
        json!([
            { "entityId": "astake_nft_021", "fields": ["value"], "keptWriter": "valuation-oracle", "otherWriter": "wallet-api" },
            { "entityId": "astake_nft_022", "fields": ["value"], "keptWriter": "valuation-oracle", "otherWriter": "wallet-api" }
        ])
    );
    let reconciled = meridian::reconcile::check(server.state.stores())
        .await
        .expect("reconcile runs");
    assert!(reconciled.is_clean(), "{:?}", reconciled.lines());
    assert_eq!(reconciled.conflicts.len(), 2, "{:?}", reconciled.lines());
}
