//! Domain events: `recordEvents` checked against the declared kinds, all or nothing,
//! idempotent by key, and carried by the relay to ClickHouse and subscribers.

use futures::StreamExt;
use meridian::{auth::Role, AppState};
use serde_json::{json, Value};

use crate::support::{pending, refusals, wait_until, TestEnv, TestServer};

const RECORD: &str = "mutation($events: [EventInput!]!) { recordEvents(events: $events) { \
    id kind subject { chain address } occurredAt amount attributes txHash blockNumber artifact } }";

const FARMER: &str = "GAOQJGUAB7NI7K7I62ORBXMN3J4SSWQUQ7FOEPSDJ322W2HMCNWPHXFB";
const PROOF: &str = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o";

async fn started() -> (TestEnv, AppState, TestServer) {
    let env = TestEnv::migrated().await;
    let state = env.state().await;
    let server = env.spawn().await;
    (env, state, server)
}

/// A KALE-ndar farmer's plant, work and harvest, keyed `{prefix}-…`.
fn farming(prefix: &str) -> Value {
    json!([
        { "id": format!("{prefix}-plant"), "kind": "farming_plant", "subject": FARMER,
          "amount": "1000", "attributes": { "stake": "1000" }, "blockNumber": 12345,
          "txHash": "AB".repeat(32) },
        { "id": format!("{prefix}-work"), "kind": "farming_work", "subject": FARMER,
          "attributes": { "work_hash": "0x00000ABCDEF0", "zeros": 5 }, "blockNumber": 12345,
          "artifact": PROOF },
        { "id": format!("{prefix}-harvest"), "kind": "farming_harvest", "subject": FARMER,
          "amount": "50.25", "attributes": { "reward": "50.25", "stake": "1000" },
          "blockNumber": 12346 },
    ])
}

async fn stored_events(state: &AppState) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(state.stores().postgres().pool())
        .await
        .expect("count")
}

#[tokio::test]
async fn farming_events_reach_clickhouse_and_subscribers_once_and_repeats_are_idempotent() {
    let (_env, state, server) = started().await;
    let client = redis::Client::open(state.config().redis_url.clone()).expect("client");
    let mut pubsub = client.get_async_pubsub().await.expect("pubsub");
    pubsub
        .subscribe(state.stores().redis().events_channel())
        .await
        .expect("subscribe");

    let first = server
        .graphql_with(RECORD, json!({ "events": farming("f1") }), &[])
        .await;
    let recorded = first["data"]["recordEvents"].as_array().expect("events");
    assert_eq!(recorded.len(), 3, "{first}");
    // Each field in its normal form.
    assert_eq!(
        recorded[0]["subject"],
        json!({ "chain": "STELLAR", "address": FARMER })
    );
    assert_eq!(recorded[0]["txHash"], json!("ab".repeat(32)));
    assert_eq!(recorded[0]["amount"], json!("1000"));
    assert_eq!(
        recorded[1]["attributes"]["work_hash"],
        json!("0x00000abcdef0")
    );
    assert_eq!(recorded[1]["artifact"], json!(PROOF));
    assert_eq!(recorded[2]["attributes"]["reward"], json!("50.25"));

    // The same keys and bodies: the same events, nothing new.
    let again = server
        .graphql_with(RECORD, json!({ "events": farming("f1") }), &[])
        .await;
    assert_eq!(again["data"]["recordEvents"], first["data"]["recordEvents"]);
    assert_eq!(stored_events(&state).await, 3);

    // A known key with another body, beside a new event: a CONFLICT naming it, and
    // nothing of the call is written.
    let mut changed = farming("f2");
    changed[1] = farming("f1")[2].clone();
    changed[1]["amount"] = json!("60");
    let conflict = server
        .graphql_with(RECORD, json!({ "events": changed }), &[])
        .await;
    assert_eq!(
        refusals(&conflict),
        [("CONFLICT".to_owned(), "events[1].id".to_owned())]
    );
    assert_eq!(stored_events(&state).await, 3);

    let mut published = Vec::new();
    let mut messages = pubsub.on_message();
    while published.len() < 3 {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), messages.next())
            .await
            .expect("the events are published")
            .expect("a message");
        let event: Value =
            serde_json::from_str(&message.get_payload::<String>().expect("text")).expect("JSON");
        assert!(
            event["cursor"].as_str().is_some_and(|c| c.contains('-')),
            "{event}"
        );
        published.push(event["event"]["id"].as_str().expect("id").to_owned());
    }
    published.sort();
    assert_eq!(published, ["f1-harvest", "f1-plant", "f1-work"]);

    wait_until("the outbox to drain", 20, || async {
        pending(&state, "clickhouse").await + pending(&state, "pubsub").await == 0
    })
    .await;
    let (rows, reward): (u64, f64) = state
        .stores()
        .clickhouse()
        .client()
        .query(
            "SELECT count(), sumIf(amount, kind = 'farming_harvest') FROM domain_events FINAL \
             WHERE subject = ?",
        )
        .bind(FARMER)
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(rows, 3);
    assert!((reward - 50.25).abs() < 1e-9, "{reward}");

    // The connection reads them back, newest first, by subject and by kind.
    let page = server
        .graphql_with(
            "query($s: String!) { events(subject: $s, kinds: [\"farming_harvest\", \"farming_plant\"], first: 1) { \
               edges { cursor node { id } } pageInfo { hasNextPage } } }",
            json!({ "s": FARMER }),
            &[],
        )
        .await;
    let edges = page["data"]["events"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 1, "{page}");
    assert_eq!(
        page["data"]["events"]["pageInfo"]["hasNextPage"],
        json!(true)
    );
}

#[tokio::test]
async fn hostile_event_inputs_are_refused_by_field_and_write_nothing() {
    // A debug build on a busy machine may need more than the default 10 s for the call of
    // 10,000 events below (a release build takes about one).
    let env = TestEnv::migrated_with(|c| c.security.request_timeout_ms = 120_000).await;
    let state = env.state().await;
    let server = env.spawn().await;
    let one = |change: &dyn Fn(&mut Value)| {
        let mut events = farming("h");
        change(&mut events[0]);
        json!({ "events": events })
    };
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "an undeclared kind",
            one(&|e| e["kind"] = json!("farming_steal")),
            "BAD_USER_INPUT",
            "events[0].kind",
        ),
        (
            "a wrong attribute type",
            one(&|e| e["attributes"]["stake"] = json!(true)),
            "BAD_USER_INPUT",
            "events[0].attributes.stake",
        ),
        (
            "an undeclared attribute",
            one(&|e| e["attributes"]["bonus"] = json!(1)),
            "BAD_USER_INPUT",
            "events[0].attributes.bonus",
        ),
        (
            "a missing attribute",
            one(&|e| e["attributes"] = json!({})),
            "BAD_USER_INPUT",
            "events[0].attributes.stake",
        ),
        (
            "a Stellar address with a bad checksum",
            one(&|e| e["subject"] = json!(FARMER.replace('B', "C"))),
            "BAD_USER_INPUT",
            "events[0].subject",
        ),
        (
            "a truncated EVM address",
            one(&|e| e["subject"] = json!("0x1234")),
            "BAD_USER_INPUT",
            "events[0].subject",
        ),
        (
            "an EVM address named as Casper",
            one(&|e| {
                e["subject"] = json!(format!("0x{}", "ab".repeat(20)));
                e["chain"] = json!("CASPER");
            }),
            "BAD_USER_INPUT",
            "events[0].subject",
        ),
        (
            "a truncated Casper key",
            one(&|e| e["subject"] = json!(format!("01{}", "ab".repeat(31)))),
            "BAD_USER_INPUT",
            "events[0].subject",
        ),
        (
            "a bad CID",
            one(&|e| e["artifact"] = json!("QmNotACid")),
            "BAD_USER_INPUT",
            "events[0].artifact",
        ),
        (
            "a short tx hash",
            one(&|e| e["txHash"] = json!("0xabcd")),
            "BAD_USER_INPUT",
            "events[0].txHash",
        ),
        (
            "an amount with 19 decimals",
            one(&|e| e["amount"] = json!("0.0000000000000000001")),
            "BAD_USER_INPUT",
            "events[0].amount",
        ),
        (
            "an empty key",
            one(&|e| e["id"] = json!("")),
            "BAD_USER_INPUT",
            "events[0].id",
        ),
        (
            "no events",
            json!({ "events": [] }),
            "BAD_USER_INPUT",
            "events",
        ),
    ];
    for (what, variables, code, field) in cases {
        let response = server.graphql_with(RECORD, variables, &[]).await;
        assert_eq!(
            refusals(&response),
            [(code.to_owned(), field.to_owned())],
            "{what}: {response}"
        );
    }
    // Only a service (or an admin) records events.
    let user = server.token(&uuid::Uuid::new_v4().to_string(), &[Role::User]);
    let (_, response) = server
        .graphql_as(Some(&user), RECORD, json!({ "events": farming("u") }))
        .await;
    assert_eq!(refusals(&response)[0].0, "FORBIDDEN", "{response}");
    assert_eq!(stored_events(&state).await, 0);

    // 10,000 events in one call are recorded; 10,001 are refused whole.
    let many = |n: usize| {
        (0..n)
            .map(|i| {
                json!({ "id": format!("bulk-{i}"), "kind": "farming_plant", "subject": FARMER,
                        "amount": "1", "attributes": { "stake": "1" } })
            })
            .collect::<Vec<_>>()
    };
    let too_many = server
        .graphql_with(RECORD, json!({ "events": many(10_001) }), &[])
        .await;
    assert_eq!(
        refusals(&too_many),
        [("BAD_USER_INPUT".to_owned(), "events".to_owned())]
    );
    assert_eq!(stored_events(&state).await, 0);
    let all = server
        .graphql_with(
            "mutation($events: [EventInput!]!) { recordEvents(events: $events) { id } }",
            json!({ "events": many(10_000) }),
            &[],
        )
        .await;
    assert_eq!(
        all["data"]["recordEvents"].as_array().map(Vec::len),
        Some(10_000),
        "{}",
        all["errors"]
    );
    assert_eq!(stored_events(&state).await, 10_000);
}

#[tokio::test]
async fn subscribers_see_the_events_of_their_kinds_and_subject() {
    use crate::abuse::{next_json, open_socket, send};

    let (_env, state, server) = started().await;
    let token = server.token("operator", &[Role::Admin]);
    let mut socket = open_socket(
        server.addr.port(),
        json!({ "Authorization": format!("Bearer {token}") }),
    )
    .await;
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query":
            "subscription($s: String) { eventRecorded(kinds: [\"farming_harvest\"], subject: $s) { event { id kind amount subject { address } } } }",
            "variables": { "s": FARMER } } }),
    )
    .await;
    // Pub/sub keeps nothing for late listeners: write once the instance listens.
    listening(&state).await;
    // Another farmer's harvest, then this farmer's plant and harvest.
    let other = "GDAY755A7ORYYUKE7KA42WU6I4S4DPO2Q6X3YTATHSWAMIIBD2S4UOVV";
    let mut events = farming("s");
    let mut theirs = events[2].clone();
    theirs["id"] = json!("s-other-harvest");
    theirs["subject"] = json!(other);
    events.as_array_mut().expect("array").insert(0, theirs);
    let recorded = server
        .graphql_with(RECORD, json!({ "events": events }), &[])
        .await;
    assert!(recorded["errors"].is_null(), "{recorded}");
    let event = next_json(&mut socket).await;
    assert_eq!(event["type"], "next", "{event}");
    assert_eq!(
        event["payload"]["data"]["eventRecorded"]["event"],
        json!({ "id": "s-harvest", "kind": "farming_harvest", "amount": "50.25",
                "subject": { "address": FARMER } })
    );
    // Once all of those are published, one more harvest of this farmer: the next message
    // is that one, so the other farmer's harvest and the plant were filtered out.
    wait_until("the events to be published", 20, || async {
        pending(&state, "pubsub").await == 0
    })
    .await;
    let mut last = farming("s2")[2].clone();
    last["amount"] = json!("7");
    let recorded = server
        .graphql_with(RECORD, json!({ "events": [last] }), &[])
        .await;
    assert!(recorded["errors"].is_null(), "{recorded}");
    let mut next = next_json(&mut socket).await;
    while next["type"] == "ping" {
        next = next_json(&mut socket).await;
    }
    assert_eq!(
        next["payload"]["data"]["eventRecorded"]["event"]["id"],
        json!("s2-harvest"),
        "{next}"
    );
}

/// Waits until this instance listens on the domain event channel.
async fn listening(state: &AppState) {
    crate::support::listened(state, vec![state.stores().redis().events_channel()]).await;
}

fn plants(prefix: &str, range: std::ops::Range<usize>) -> Value {
    range
        .map(|i| {
            json!({ "id": format!("{prefix}-{i}"), "kind": "farming_plant", "subject": FARMER,
                    "amount": "1", "attributes": { "stake": "1" } })
        })
        .collect()
}

const FOLLOW: &str =
    "subscription($after: String) { eventRecorded(after: $after) { cursor event { id } } }";

/// The next `next` message of a socket (keepalive pings skipped).
async fn next_event(socket: &mut crate::abuse::Socket) -> Value {
    loop {
        let message = crate::abuse::next_json(socket).await;
        if message["type"] != "ping" {
            return message;
        }
    }
}

#[tokio::test]
async fn a_subscriber_that_reconnects_after_a_cursor_receives_exactly_what_it_missed_in_order() {
    use crate::abuse::{open_socket, send};

    let (_env, state, server) = started().await;
    let token = server.token("operator", &[Role::Admin]);
    let auth = json!({ "Authorization": format!("Bearer {token}") });
    let mut socket = open_socket(server.addr.port(), auth.clone()).await;
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": FOLLOW } }),
    )
    .await;
    listening(&state).await;
    let first = server
        .graphql_with(RECORD, json!({ "events": plants("r", 0..1) }), &[])
        .await;
    assert!(first["errors"].is_null(), "{first}");
    let seen = next_event(&mut socket).await;
    assert_eq!(
        seen["payload"]["data"]["eventRecorded"]["event"]["id"],
        json!("r-0"),
        "{seen}"
    );
    let cursor = seen["payload"]["data"]["eventRecorded"]["cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    drop(socket);

    // While it is away: 100 events, all delivered to the stream.
    let missed = server
        .graphql_with(RECORD, json!({ "events": plants("r", 1..101) }), &[])
        .await;
    assert!(missed["errors"].is_null(), "{missed}");
    wait_until("the events to be published", 20, || async {
        pending(&state, "pubsub").await == 0
    })
    .await;

    let mut socket = open_socket(server.addr.port(), auth).await;
    send(
        &mut socket,
        json!({ "id": "2", "type": "subscribe", "payload": { "query": FOLLOW, "variables": { "after": cursor } } }),
    )
    .await;
    let mut ids = Vec::new();
    let mut cursors = Vec::new();
    for _ in 0..100 {
        let message = next_event(&mut socket).await;
        assert_eq!(message["type"], "next", "{message}");
        let item = &message["payload"]["data"]["eventRecorded"];
        ids.push(item["event"]["id"].as_str().expect("id").to_owned());
        cursors.push(item["cursor"].as_str().expect("cursor").to_owned());
    }
    let expected: Vec<String> = (1..101).map(|i| format!("r-{i}")).collect();
    assert_eq!(ids, expected);
    let mut sorted = cursors.clone();
    sorted.sort_by_key(|c| {
        let (ms, seq) = c.split_once('-').expect("a stream id");
        (
            ms.parse::<u64>().expect("ms"),
            seq.parse::<u64>().expect("seq"),
        )
    });
    assert_eq!(cursors, sorted, "cursors rise");
    // Then live events, none of the missed ones again.
    listening(&state).await;
    let live = server
        .graphql_with(RECORD, json!({ "events": plants("r", 101..102) }), &[])
        .await;
    assert!(live["errors"].is_null(), "{live}");
    let next = next_event(&mut socket).await;
    assert_eq!(
        next["payload"]["data"]["eventRecorded"]["event"]["id"],
        json!("r-101"),
        "{next}"
    );
}

#[tokio::test]
async fn a_cursor_older_than_the_stream_keeps_is_refused() {
    use crate::abuse::{open_socket, send};

    // A cap of one: Redis trims whole nodes of 100 entries once they are full.
    let env = TestEnv::migrated_with(|c| c.event_stream_len = 1).await;
    let state = env.state().await;
    let server = env.spawn().await;
    let recorded = server
        .graphql_with(RECORD, json!({ "events": plants("x", 0..300) }), &[])
        .await;
    assert!(recorded["errors"].is_null(), "{recorded}");
    wait_until("the events to be published", 20, || async {
        pending(&state, "pubsub").await == 0
    })
    .await;
    let token = server.token("operator", &[Role::Admin]);
    let mut socket = open_socket(
        server.addr.port(),
        json!({ "Authorization": format!("Bearer {token}") }),
    )
    .await;
    for (id, after, code) in [
        ("1", "1-0", "CURSOR_EXPIRED"),
        ("2", "yesterday", "BAD_USER_INPUT"),
    ] {
        send(
            &mut socket,
            json!({ "id": id, "type": "subscribe", "payload": { "query": FOLLOW, "variables": { "after": after } } }),
        )
        .await;
        let answer = next_event(&mut socket).await;
        assert_eq!(answer["type"], "error", "{answer}");
        assert_eq!(
            answer["payload"][0]["extensions"]["code"],
            json!(code),
            "{answer}"
        );
    }
}
