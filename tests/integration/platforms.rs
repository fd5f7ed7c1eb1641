//! The seeds' platforms end to end: a KALE-ndar farmer (Stellar) signs in and farms, with
//! the proof kept; a Fathuss submission is graded onto its challenge's board and the
//! global one. Every store ends up agreeing, with ClickHouse up or stopped mid-flow.

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use meridian::{auth::Role, AppState};
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::{
    abuse::{next_json, open_socket, send},
    support::{all_delivered, pending, refusals, wait_until, PrivateStore, TestEnv, TestServer},
};

const PROOF: &str = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o";
const RECORD_EVENTS: &str =
    "mutation($events: [EventInput!]!) { recordEvents(events: $events) { id } }";

/// A Stellar wallet's key: its account id, and its SEP-53 signature of a message
/// (ed25519 over sha256("Stellar Signed Message:\n" + message), base64).
struct StellarWallet(ed25519_dalek::SigningKey);

impl StellarWallet {
    fn address(&self) -> String {
        stellar_strkey::ed25519::PublicKey(self.0.verifying_key().to_bytes())
            .to_string()
            .as_str()
            .to_owned()
    }

    fn sign(&self, message: &str) -> String {
        let digest = sha2::Sha256::digest(format!("Stellar Signed Message:\n{message}"));
        base64::engine::general_purpose::STANDARD.encode(self.0.sign(&digest).to_bytes())
    }
}

async fn call(server: &TestServer, token: Option<&str>, query: &str, variables: Value) -> Value {
    let (_, body) = server.graphql_as(token, query, variables).await;
    assert!(body["errors"].is_null(), "{query}: {body}");
    body["data"].clone()
}

/// The KALE-ndar flow of the seed: register, sign in with the wallet, plant, work (with
/// its proof), harvest, record the proof's metadata; `mid_flow` runs after the plant.
/// Then ClickHouse, both boards, the proof cache, a subscriber and reconcile all agree.
async fn kale_flow(state: &AppState, server: &TestServer, mid_flow: impl FnOnce()) {
    let wallet = StellarWallet(ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]));
    let farmer = wallet.address();
    let admin = server.token("operator", &[Role::Admin]);
    let service = server.token("kale-backend", &[Role::Service]);

    let registered = call(
        server,
        Some(&admin),
        "mutation($a: String!) { registerUser(input: { address: $a, username: \"kale_farmer\" }) { id chain } }",
        json!({ "a": farmer }),
    )
    .await;
    assert_eq!(registered["registerUser"]["chain"], json!("STELLAR"));
    let user_id = registered["registerUser"]["id"].clone();
    let challenge = call(
        server,
        None,
        "mutation($a: String!) { loginChallenge(address: $a) { message } }",
        json!({ "a": farmer }),
    )
    .await;
    let message = challenge["loginChallenge"]["message"]
        .as_str()
        .expect("a challenge");
    let login = call(
        server,
        None,
        "mutation($a: String!, $s: String!) { login(address: $a, signature: $s) { token user { id } } }",
        json!({ "a": farmer, "s": wallet.sign(message) }),
    )
    .await;
    assert_eq!(login["login"]["user"]["id"], user_id);
    let session = login["login"]["token"]
        .as_str()
        .expect("a session")
        .to_owned();

    // The farmer's dashboard follows its own events.
    let mut socket = open_socket(server.addr.port(), json!({})).await;
    send(
        &mut socket,
        json!({ "id": "mine", "type": "subscribe", "payload": { "query":
            "subscription($s: String) { eventRecorded(subject: $s) { event { id kind } } }",
            "variables": { "s": farmer } } }),
    )
    .await;
    crate::support::listened(state, vec![state.stores().redis().events_channel()]).await;

    let now = chrono::Utc::now();
    let plant = json!([{ "id": "kale-1-plant", "kind": "farming_plant", "subject": farmer,
        "amount": "1000", "attributes": { "stake": "1000" }, "blockNumber": 12345,
        "txHash": "ab".repeat(32), "occurredAt": now.to_rfc3339() }]);
    call(
        server,
        Some(&service),
        RECORD_EVENTS,
        json!({ "events": plant }),
    )
    .await;
    mid_flow();
    let rest = json!([
        { "id": "kale-1-work", "kind": "farming_work", "subject": farmer,
          "attributes": { "work_hash": "0x0000000abc", "zeros": 7 }, "blockNumber": 12345,
          "artifact": PROOF, "occurredAt": now.to_rfc3339() },
        { "id": "kale-1-harvest", "kind": "farming_harvest", "subject": farmer,
          "amount": "50.25", "attributes": { "reward": "50.25", "stake": "1000" },
          "blockNumber": 12346, "occurredAt": now.to_rfc3339() },
    ]);
    call(
        server,
        Some(&service),
        RECORD_EVENTS,
        json!({ "events": rest }),
    )
    .await;
    call(
        server,
        Some(&service),
        "mutation($a: [ArtifactInput!]!) { recordArtifacts(artifacts: $a) { cid } }",
        json!({ "a": [{ "cid": PROOF, "sha256": "cd".repeat(32), "size": 512,
            "mediaType": "application/octet-stream", "kind": "PROOF", "owner": farmer,
            "events": ["kale-1-work"] }] }),
    )
    .await;

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let message = next_json(&mut socket).await;
        if message["type"] == "next" {
            seen.push(message["payload"]["data"]["eventRecorded"]["event"]["id"].clone());
        }
    }
    assert_eq!(
        seen,
        [
            json!("kale-1-plant"),
            json!("kale-1-work"),
            json!("kale-1-harvest")
        ]
    );

    all_delivered(state).await;
    let (rows, rewards): (u64, f64) = state
        .stores()
        .clickhouse()
        .client()
        .query(
            "SELECT toUInt64(count()), sumIf(amount, kind = 'farming_harvest') \
             FROM domain_events FINAL WHERE subject = ?",
        )
        .bind(&farmer)
        .fetch_one()
        .await
        .expect("clickhouse");
    assert_eq!((rows, rewards), (3, 50.25));

    // The farmer's dashboard, signed in: boards, the latest proof, the user behind it.
    let dashboard = call(
        server,
        Some(&session),
        "query($f: String!) { me { id username } \
           top: leaderboard(name: \"top_farmers\") { entries { score account { address user { id } } } } \
           weekly: leaderboard(name: \"farming_rewards\") { entries { score account { address } } } \
           events(subject: $f, first: 3) { edges { node { kind artifactRecord { kind } subject { \
             latestProof { cid artifact { size } } rank(board: \"top_farmers\") { rank score } } } } } }",
        json!({ "f": farmer }),
    )
    .await;
    assert_eq!(dashboard["me"]["id"], user_id);
    assert_eq!(
        dashboard["top"]["entries"],
        json!([{ "score": 1000.0, "account": { "address": farmer, "user": { "id": user_id } } }])
    );
    assert_eq!(
        dashboard["weekly"]["entries"],
        json!([{ "score": 50.25, "account": { "address": farmer } }])
    );
    let newest = &dashboard["events"]["edges"][0]["node"]["subject"];
    assert_eq!(
        newest["latestProof"],
        json!({ "cid": PROOF, "artifact": { "size": 512.0 } })
    );
    assert_eq!(newest["rank"], json!({ "rank": 1, "score": 1000.0 }));
    let work = dashboard["events"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|e| e["node"]["kind"] == "farming_work")
        .expect("the work event");
    assert_eq!(work["node"]["artifactRecord"], json!({ "kind": "PROOF" }));

    let report = meridian::reconcile::check(state.stores())
        .await
        .expect("reconcile");
    assert!(report.is_clean(), "{:?}", report.lines());
}

#[tokio::test]
async fn a_kale_farmer_signs_in_farms_and_every_store_agrees() {
    let env = TestEnv::migrated().await;
    let state = env.state().await;
    let server = env.spawn().await;
    kale_flow(&state, &server, || {}).await;
}

#[tokio::test]
async fn the_kale_flow_survives_clickhouse_stopping_mid_flow() {
    let clickhouse = PrivateStore::start("clickhouse");
    let env = TestEnv::migrated_with(|c| c.clickhouse_url = clickhouse.url()).await;
    let state = env.state().await;
    let server = env.spawn().await;
    let stopped = std::cell::Cell::new(false);
    // Stopped after the plant; the flow's reads of boards and subscribers go on, and
    // ClickHouse is started again before the flow waits for its backlog.
    let flow = kale_flow(&state, &server, || {
        clickhouse.down();
        stopped.set(true);
    });
    let restart = async {
        wait_until("the flow to stop ClickHouse", 60, || async {
            stopped.get()
        })
        .await;
        wait_until("events to wait for ClickHouse", 60, || async {
            pending(&state, "clickhouse").await >= 2
        })
        .await;
        clickhouse.up();
    };
    tokio::join!(flow, restart);
}

#[tokio::test]
async fn a_graded_fathuss_submission_moves_its_challenge_board_and_the_global_one() {
    let env = TestEnv::migrated().await;
    let state = env.state().await;
    let server = env.spawn().await;
    let service = server.token("fathuss-grader", &[Role::Service]);
    let alice = "0x00000000000000000000000000000000000000a1";
    let bob = "0x00000000000000000000000000000000000000b2";
    let graded = |id: &str, who: &str, challenge: &str, score: &str| {
        json!({ "id": id, "kind": "challenge_submission", "subject": who, "amount": score,
            "attributes": { "challenge": challenge, "score": score, "passed_tests": 9,
                            "total_tests": 10, "runtime_ms": 35, "language": "rust",
                            "passed": true } })
    };
    call(
        &server,
        Some(&service),
        RECORD_EVENTS,
        json!({ "events": [
            graded("s1", alice, "two-sum", "70"),
            graded("s2", alice, "two-sum", "90"),
            graded("s3", bob, "two-sum", "80"),
            graded("s4", bob, "lru-cache", "60"),
        ] }),
    )
    .await;
    all_delivered(&state).await;
    let boards = call(
        &server,
        None,
        "{ twoSum: leaderboard(name: \"challenge_best\", of: \"two-sum\") { id of entries { score account { address } } } \
           lru: leaderboard(name: \"challenge_best\", of: \"lru-cache\") { entries { score account { address } } } \
           global: leaderboard(name: \"challenge_points\") { entries { score account { address } } } }",
        json!({}),
    )
    .await;
    // Per challenge: each solver's best score; globally: the sum of every graded score.
    assert_eq!(
        boards["twoSum"]["entries"],
        json!([{ "score": 90.0, "account": { "address": alice } },
               { "score": 80.0, "account": { "address": bob } }])
    );
    assert_eq!(boards["twoSum"]["of"], json!("two-sum"));
    assert_eq!(
        boards["lru"]["entries"],
        json!([{ "score": 60.0, "account": { "address": bob } }])
    );
    assert_eq!(
        boards["global"]["entries"],
        json!([{ "score": 160.0, "account": { "address": alice } },
               { "score": 140.0, "account": { "address": bob } }])
    );
    // The ranking's id fetches it again.
    let id = boards["twoSum"]["id"].as_str().expect("id");
    let again = call(
        &server,
        None,
        "query($id: ID!) { node(id: $id) { ... on Leaderboard { of entries { score } } } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        again["node"],
        json!({ "of": "two-sum", "entries": [{ "score": 90.0 }, { "score": 80.0 }] })
    );
    // A split board needs `of`; a board of one ranking refuses it.
    for (query, field) in [
        ("{ leaderboard(name: \"challenge_best\") { size } }", "of"),
        (
            "{ leaderboard(name: \"volume\", of: \"x\") { size } }",
            "of",
        ),
    ] {
        let refused = server.graphql(query).await;
        assert_eq!(
            refusals(&refused),
            [("BAD_USER_INPUT".to_owned(), field.to_owned())],
            "{refused}"
        );
    }
    let report = meridian::reconcile::check(state.stores())
        .await
        .expect("reconcile");
    assert!(report.is_clean(), "{:?}", report.lines());
    // One ranking drifts: reconcile names it, repair rebuilds it.
    let best = state
        .boards()
        .get(state.stores(), "challenge_best")
        .await
        .expect("declared");
    let two_sum = best.instance(Some("two-sum"));
    assert_eq!(two_sum, "challenge_best~dHdvLXN1bQ");
    let key = state.stores().redis().leaderboard_key(&two_sum, "");
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut state.stores().redis().conn())
        .await
        .expect("del");
    let report = meridian::reconcile::check(state.stores())
        .await
        .expect("reconcile");
    assert_eq!(report.redis.len(), 2, "{:?}", report.lines());
    assert!(
        report
            .redis
            .iter()
            .all(|l| l.starts_with("challenge_best~dHdvLXN1bQ ")),
        "{:?}",
        report.redis
    );
    let repaired = meridian::reconcile::repair(state.stores())
        .await
        .expect("repair");
    assert!(repaired.is_clean(), "{:?}", repaired.lines());
}
