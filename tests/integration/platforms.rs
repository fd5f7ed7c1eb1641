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

/// A KALE-ndar dashboard: the top farmers with their stats, proofs and users.
const FARMER_DASHBOARD: &str = "query($n: Int!) { leaderboard(name: \"top_farmers\", top: $n) { \
    entries { rank score account { address user { username } latestProof { cid } \
    farmingStats { plants harvests rewards } } } } }";

#[tokio::test]
async fn the_kale_face_reads_typed_farming_events_stats_and_a_dashboard_in_fixed_round_trips() {
    let env = TestEnv::migrated().await;
    let state = env.state().await;
    let server = env.spawn().await;
    let service = server.token("kale-backend", &[Role::Service]);
    let now = chrono::Utc::now();
    let two_hours_ago = now - chrono::Duration::hours(2);
    // 120 farmers, each planting; the first also works (with a proof) and harvests.
    let farmers: Vec<String> = (0..120u8)
        .map(|i| StellarWallet(ed25519_dalek::SigningKey::from_bytes(&[i; 32])).address())
        .collect();
    let mut events: Vec<Value> = farmers
        .iter()
        .enumerate()
        .map(|(i, f)| {
            json!({ "id": format!("p{i}"), "kind": "farming_plant", "subject": f,
                    "amount": format!("{}", 100 + i), "attributes": { "stake": format!("{}", 100 + i) },
                    "occurredAt": two_hours_ago.to_rfc3339() })
        })
        .collect();
    events.push(
        json!({ "id": "w0", "kind": "farming_work", "subject": farmers[0],
        "attributes": { "work_hash": "0x00000000ff", "zeros": 8 }, "artifact": PROOF,
        "blockNumber": 77, "occurredAt": now.to_rfc3339() }),
    );
    events.push(
        json!({ "id": "h0", "kind": "farming_harvest", "subject": farmers[0],
        "amount": "12.5", "attributes": { "reward": "12.5" }, "occurredAt": now.to_rfc3339() }),
    );
    call(
        &server,
        Some(&service),
        RECORD_EVENTS,
        json!({ "events": events }),
    )
    .await;
    all_delivered(&state).await;

    // Typed events, newest first, with their proof.
    let typed = call(
        &server,
        None,
        "query($f: String!) { farmingEvents(farmer: $f) { edges { node { id phase stake workHash zeros reward \
           blockNumber proof farmer { address } event { kind } } } } }",
        json!({ "f": farmers[0] }),
    )
    .await;
    let phases: Vec<&Value> = typed["farmingEvents"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"]["phase"])
        .collect();
    assert_eq!(phases.len(), 3, "{typed}");
    assert_eq!(*phases.last().expect("oldest"), "PLANT");
    let work = typed["farmingEvents"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"])
        .find(|n| n["phase"] == "WORK")
        .expect("the work");
    assert_eq!(
        *work,
        json!({ "id": "w0", "phase": "WORK", "stake": null, "workHash": "0x00000000ff",
                "zeros": 8, "reward": null, "blockNumber": 77, "proof": PROOF,
                "farmer": { "address": farmers[0] }, "event": { "kind": "farming_work" } })
    );

    // A farmer's stats, all time and in a window without its plant; and everyone's.
    let stats = call(
        &server,
        None,
        "query($f: String!, $since: DateTime!, $from: DateTime!, $to: DateTime!) { \
           all: farmingStats(farmer: $f) { plants works harvests staked rewards firstAt lastAt } \
           recent: farmingStats(farmer: $f, from: $since) { plants harvests rewards } \
           farmingOverview(from: $from, to: $to, interval: HOUR) { \
             totals { start plants works harvests staked rewards activeFarmers } \
             buckets { plants harvests activeFarmers } } }",
        json!({ "f": farmers[0],
                "since": (now - chrono::Duration::hours(1)).to_rfc3339(),
                "from": (now - chrono::Duration::days(1)).to_rfc3339(),
                "to": (now + chrono::Duration::hours(1)).to_rfc3339() }),
    )
    .await;
    let all = &stats["all"];
    assert_eq!(
        (
            &all["plants"],
            &all["works"],
            &all["harvests"],
            &all["staked"],
            &all["rewards"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(100.0), &json!(12.5)),
        "{stats}"
    );
    assert!(
        all["firstAt"].is_string() && all["lastAt"].is_string(),
        "{stats}"
    );
    assert_eq!(
        stats["recent"],
        json!({ "plants": 0, "harvests": 1, "rewards": 12.5 })
    );
    let totals = &stats["farmingOverview"]["totals"];
    assert_eq!(totals["start"], Value::Null);
    assert_eq!(totals["activeFarmers"], json!(120), "{stats}");
    assert_eq!(totals["plants"], json!(120));
    assert_eq!(totals["harvests"], json!(1));
    let staked: f64 = (0..120).map(|i| f64::from(100 + i)).sum();
    assert_eq!(totals["staked"], json!(staked));
    let buckets = stats["farmingOverview"]["buckets"]
        .as_array()
        .expect("buckets");
    assert_eq!(
        buckets
            .iter()
            .map(|b| b["plants"].as_i64().unwrap_or(0))
            .sum::<i64>(),
        120
    );

    // The dashboard costs the same round trips for 10 farmers and for 100: one per
    // (store, loader) per wave.
    let (small, trips_10) = server.traced(FARMER_DASHBOARD, json!({ "n": 10 })).await;
    let (large, trips_100) = server.traced(FARMER_DASHBOARD, json!({ "n": 100 })).await;
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
    // Redis: the board, the proofs; PostgreSQL: users by address; ClickHouse: the stats.
    assert_eq!(
        trips_100,
        json!({ "postgres": 1, "redis": 2, "mongodb": 0, "clickhouse": 1 })
    );
}

#[tokio::test]
async fn farming_event_recorded_pushes_typed_events_of_one_farmer() {
    let env = TestEnv::migrated().await;
    let state = env.state().await;
    let server = env.spawn().await;
    let service = server.token("kale-backend", &[Role::Service]);
    let farmer = StellarWallet(ed25519_dalek::SigningKey::from_bytes(&[9u8; 32])).address();
    let other = StellarWallet(ed25519_dalek::SigningKey::from_bytes(&[10u8; 32])).address();
    let mut socket = open_socket(server.addr.port(), json!({})).await;
    send(
        &mut socket,
        json!({ "id": "f", "type": "subscribe", "payload": { "query":
            "subscription($f: String) { farmingEventRecorded(farmer: $f) { cursor event { id phase reward farmer { address } } } }",
            "variables": { "f": farmer } } }),
    )
    .await;
    crate::support::listened(&state, vec![state.stores().redis().events_channel()]).await;
    call(
        &server,
        Some(&service),
        RECORD_EVENTS,
        json!({ "events": [
            { "id": "o1", "kind": "farming_harvest", "subject": other, "amount": "1",
              "attributes": { "reward": "1" } },
            { "id": "c1", "kind": "challenge_submission", "subject": farmer, "amount": "5",
              "attributes": { "challenge": "x", "score": "5", "passed_tests": 1,
                              "total_tests": 1, "passed": true } },
            { "id": "h1", "kind": "farming_harvest", "subject": farmer, "amount": "3.5",
              "attributes": { "reward": "3.5" } },
        ] }),
    )
    .await;
    let message = loop {
        let message = next_json(&mut socket).await;
        if message["type"] == "next" {
            break message;
        }
    };
    let pushed = &message["payload"]["data"]["farmingEventRecorded"];
    assert!(
        pushed["cursor"].as_str().is_some_and(|c| c.contains('-')),
        "{message}"
    );
    assert_eq!(
        pushed["event"],
        json!({ "id": "h1", "phase": "HARVEST", "reward": "3.5", "farmer": { "address": farmer } })
    );
}

/// A Fathuss dashboard: the newest challenges with their statistics and their boards.
const CHALLENGE_DASHBOARD: &str = "query($n: Int!) { challenges(first: $n) { edges { node { \
    id title stats { attempts completionRate } \
    leaderboard(top: 3) { entries { rank score account { address } } } } } } }";

#[tokio::test]
async fn the_fathuss_face_catalogues_challenges_and_reads_typed_submissions_stats_and_boards() {
    use crate::abuse::{next_json, open_socket, send};

    let env = TestEnv::migrated().await;
    let state = env.state().await;
    let server = env.spawn().await;
    let service = server.token("fathuss-grader", &[Role::Service]);
    let (test_cid, test_sha) = {
        let digest = sha2::Sha256::digest(b"assert two_sum([2, 7], 9) == [0, 1]");
        let hash = cid::multihash::Multihash::<64>::wrap(0x12, &digest).expect("wraps");
        (
            cid::Cid::new_v1(0x55, hash).to_string(),
            hex::encode(digest),
        )
    };
    call(
        &server,
        Some(&service),
        "mutation($a: [ArtifactInput!]!) { recordArtifacts(artifacts: $a) { cid } }",
        json!({ "a": [{ "cid": test_cid, "sha256": test_sha, "size": 36, "mediaType": "text/x-python",
                        "kind": "TEST_CASE", "owner": "0x00000000000000000000000000000000000000f0" }] }),
    )
    .await;
    let upsert = "mutation($c: [ChallengeInput!]!) { upsertChallenges(challenges: $c) { id title difficulty tags testCases { cid kind } } }";
    // 100 challenges, the newest being two-sum (with its test case).
    let mut catalogue: Vec<Value> = (0..99)
        .map(|i| json!({ "id": format!("c{i:03}"), "title": format!("Challenge {i}"), "difficulty": "MEDIUM" }))
        .collect();
    call(&server, Some(&service), upsert, json!({ "c": catalogue })).await;
    let saved = call(
        &server,
        Some(&service),
        upsert,
        json!({ "c": [{ "id": "two-sum", "title": "Two Sum", "difficulty": "EASY",
                        "tags": ["Arrays", "hash"], "testCases": [test_cid] }] }),
    )
    .await;
    assert_eq!(
        saved["upsertChallenges"][0],
        json!({ "id": "two-sum", "title": "Two Sum", "difficulty": "EASY",
                "tags": ["arrays", "hash"], "testCases": [{ "cid": test_cid, "kind": "TEST_CASE" }] })
    );
    // Refusals name the field; nothing is written.
    catalogue.truncate(1);
    catalogue[0]["testCases"] = json!([PROOF]);
    for (challenges, field) in [
        (json!(catalogue), "challenges[0].testCases"),
        (
            json!([{ "id": "Bad Id", "title": "x", "difficulty": "HARD" }]),
            "challenges[0].id",
        ),
    ] {
        let (_, refused) = server
            .graphql_as(Some(&service), upsert, json!({ "c": challenges }))
            .await;
        assert_eq!(
            refusals(&refused),
            [("BAD_USER_INPUT".to_owned(), field.to_owned())],
            "{refused}"
        );
    }
    let user = server.token(&uuid::Uuid::new_v4().to_string(), &[Role::User]);
    let (_, forbidden) = server
        .graphql_as(
            Some(&user),
            upsert,
            json!({ "c": [{ "id": "x", "title": "x", "difficulty": "HARD" }] }),
        )
        .await;
    assert_eq!(
        forbidden["errors"][0]["extensions"]["code"],
        json!("FORBIDDEN")
    );

    // A grader follows two-sum's submissions.
    let mut socket = open_socket(server.addr.port(), json!({})).await;
    send(
        &mut socket,
        json!({ "id": "g", "type": "subscribe", "payload": { "query":
            "subscription { submissionGraded(challenge: \"two-sum\") { cursor submission { id score passed challenge { title } } } }" } }),
    )
    .await;
    crate::support::listened(&state, vec![state.stores().redis().events_channel()]).await;
    let alice = "0x00000000000000000000000000000000000000a1";
    let bob = "0x00000000000000000000000000000000000000b2";
    let graded = |id: &str, who: &str, challenge: &str, score: &str, passed: bool| {
        json!({ "id": id, "kind": "challenge_submission", "subject": who, "amount": score,
            "attributes": { "challenge": challenge, "score": score, "passed_tests": 9,
                            "total_tests": 10, "runtime_ms": 35, "language": "rust",
                            "passed": passed } })
    };
    call(
        &server,
        Some(&service),
        RECORD_EVENTS,
        json!({ "events": [
            graded("s1", alice, "c000", "10", false),
            graded("s2", alice, "two-sum", "70", false),
            graded("s3", alice, "two-sum", "90", true),
            graded("s4", bob, "two-sum", "80", true),
        ] }),
    )
    .await;
    let pushed = loop {
        let message = next_json(&mut socket).await;
        if message["type"] == "next" {
            break message["payload"]["data"]["submissionGraded"]["submission"].clone();
        }
    };
    assert_eq!(
        pushed,
        json!({ "id": "s2", "score": "70", "passed": false, "challenge": { "title": "Two Sum" } })
    );
    all_delivered(&state).await;

    let read = call(
        &server,
        None,
        "query($a: String!) { challenge(id: \"two-sum\") { stats { attempts solvers passed completionRate bestScore } \
           leaderboard(top: 5) { of entries { score account { address } } } } \
           submissions(solver: $a) { edges { node { id challengeId score passedTests totalTests runtimeMs language passed solver { address } } } } }",
        json!({ "a": alice }),
    )
    .await;
    assert_eq!(
        read["challenge"]["stats"],
        json!({ "attempts": 3, "solvers": 2, "passed": 2, "completionRate": 2.0 / 3.0, "bestScore": 90.0 })
    );
    assert_eq!(
        read["challenge"]["leaderboard"],
        json!({ "of": "two-sum", "entries": [
            { "score": 90.0, "account": { "address": alice } },
            { "score": 80.0, "account": { "address": bob } }] })
    );
    let ids: Vec<&Value> = read["submissions"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"]["id"])
        .collect();
    assert_eq!(ids.len(), 3, "{read}");
    let s3 = read["submissions"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"])
        .find(|n| n["id"] == "s3")
        .expect("s3");
    assert_eq!(
        *s3,
        json!({ "id": "s3", "challengeId": "two-sum", "score": "90", "passedTests": 9,
                "totalTests": 10, "runtimeMs": 35, "language": "rust", "passed": true,
                "solver": { "address": alice } })
    );

    // The dashboard costs the same round trips for 10 challenges and for 100.
    let (small, trips_10) = server.traced(CHALLENGE_DASHBOARD, json!({ "n": 10 })).await;
    let (large, trips_100) = server
        .traced(CHALLENGE_DASHBOARD, json!({ "n": 100 }))
        .await;
    assert!(
        small["errors"].is_null() && large["errors"].is_null(),
        "{small} {large}"
    );
    assert_eq!(
        large["data"]["challenges"]["edges"]
            .as_array()
            .map(Vec::len),
        Some(100)
    );
    assert_eq!(trips_10, trips_100);
    // PostgreSQL: the page; ClickHouse: the stats; Redis: every board's top.
    assert_eq!(
        trips_100,
        json!({ "postgres": 1, "redis": 1, "mongodb": 0, "clickhouse": 1 })
    );
}

/// The GraphQL block the README shows after `marker`, as written there.
pub(crate) fn readme_block(marker: &str) -> String {
    let readme = include_str!("../../README.md");
    let from = readme.find(marker).expect("the README has the marker");
    let rest = &readme[from..];
    let open = rest.find("```graphql").expect("a graphql block follows") + "```graphql".len();
    let close = rest[open..].find("```").expect("the block ends");
    rest[open..open + close].to_owned()
}

/// A seed with every platform fills the README's farmer and challenge dashboards, run as
/// written without a token, with figures that are the generated data's own; every store
/// agrees (reconcile is clean, the outbox empty). A seed of KALE-ndar alone replaces all
/// of it: no trades, no challenges, no submissions left anywhere.
#[tokio::test]
async fn seeded_platforms_fill_the_readme_dashboards_and_every_store_agrees() {
    use meridian::seed::{platforms, Platforms};
    use std::collections::HashMap;

    let env = TestEnv::migrated().await;
    let state = env.state().await;
    let mut shape = crate::support::small_shape();
    shape.days = 3;
    shape.end = chrono::Utc::now() - chrono::Duration::minutes(10);
    shape.platforms = Platforms::ALL;
    let report = env.seed(&shape).await;
    let generated = platforms::generate(&shape, true, true);
    let staking = platforms::astake(&shape).0.events.len();
    assert_eq!(report.events, generated.events.len() + staking);
    assert!(report.trades > 0 && report.challenges == 12, "{report:?}");
    assert!(pending(&state, "clickhouse").await == 0 && pending(&state, "redis").await == 0);
    let reconciled = meridian::reconcile::check(state.stores())
        .await
        .expect("reconcile runs");
    assert!(reconciled.is_clean(), "{:?}", reconciled.lines());

    // What the generator made, summed per account.
    let mut stakes: HashMap<String, f64> = HashMap::new();
    let mut points: HashMap<String, f64> = HashMap::new();
    let mut plants = 0;
    for e in &generated.events {
        let amount: f64 = e
            .amount
            .as_deref()
            .unwrap_or("0")
            .parse()
            .expect("a decimal");
        match e.kind.as_str() {
            "farming_plant" => {
                plants += 1;
                *stakes.entry(e.subject.clone()).or_default() += amount;
            }
            "challenge_submission" => *points.entry(e.subject.clone()).or_default() += amount,
            _ => {}
        }
    }
    let top = |sums: &HashMap<String, f64>| {
        let mut scores: Vec<f64> = sums.values().copied().collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        scores
    };

    let server = env.spawn().await;
    let farmers = server
        .graphql(&readme_block("<!-- dashboard: kale -->"))
        .await;
    assert!(farmers["errors"].is_null(), "{farmers}");
    let entries = farmers["data"]["leaderboard"]["entries"]
        .as_array()
        .expect("entries");
    let expected = top(&stakes);
    assert_eq!(entries.len(), expected.len().min(10));
    for (entry, score) in entries.iter().zip(&expected) {
        assert!((entry["score"].as_f64().expect("a score") - score).abs() < 1e-6);
        let account = &entry["account"];
        assert!(account["user"]["username"]
            .as_str()
            .is_some_and(|u| u.starts_with("kale_farmer_")));
        assert!(account["latestProof"]["cid"].is_string(), "{entry}");
        assert!(
            account["farmingStats"]["plants"].as_i64() >= Some(1),
            "{entry}"
        );
    }
    let totals = &farmers["data"]["farmingOverview"]["totals"];
    assert_eq!(totals["plants"].as_i64(), Some(plants));
    let markets = farmers["data"]["markets"]["edges"]
        .as_array()
        .expect("markets");
    assert_eq!(markets.len(), 3, "{farmers}");
    for m in markets {
        let node = &m["node"];
        assert!(node["question"]
            .as_str()
            .is_some_and(|q| q.starts_with("Will KALE")));
        assert!(
            node["creator"]["user"]["username"]
                .as_str()
                .is_some_and(|u| u.starts_with("kale_farmer_")),
            "{node}"
        );
    }
    assert_eq!(totals["activeFarmers"].as_i64(), Some(stakes.len() as i64));

    let coders = server
        .graphql(&readme_block("<!-- dashboard: fathuss -->"))
        .await;
    assert!(coders["errors"].is_null(), "{coders}");
    let challenges = coders["data"]["challenges"]["edges"]
        .as_array()
        .expect("edges");
    assert_eq!(challenges.len(), 10);
    let attempts: i64 = challenges
        .iter()
        .map(|c| c["node"]["stats"]["attempts"].as_i64().expect("attempts"))
        .sum();
    assert!(attempts > 0, "{coders}");
    let board = coders["data"]["leaderboard"]["entries"]
        .as_array()
        .expect("entries");
    let expected = top(&points);
    assert_eq!(board.len(), expected.len().min(10));
    assert!((board[0]["score"].as_f64().expect("a score") - expected[0]).abs() < 1e-6);

    shape.platforms = Platforms {
        kale: true,
        ..Platforms::NONE
    };
    let report = env.seed(&shape).await;
    assert_eq!(report.trades, 0);
    assert_eq!(
        report.events,
        platforms::generate(&shape, true, false).events.len()
    );
    let after = server
        .graphql(
            r#"{ challenges(first: 5) { edges { node { id } } }
                 points: leaderboard(name: "challenge_points", top: 5) { entries { score } }
                 volume: leaderboard(name: "volume", top: 5) { entries { score } }
                 farmers: leaderboard(name: "top_farmers", top: 5) { entries { score } } }"#,
        )
        .await;
    assert!(after["errors"].is_null(), "{after}");
    assert_eq!(after["data"]["challenges"]["edges"], json!([]));
    assert_eq!(after["data"]["points"]["entries"], json!([]));
    assert_eq!(after["data"]["volume"]["entries"], json!([]));
    assert_eq!(
        after["data"]["farmers"]["entries"].as_array().map(Vec::len),
        Some(5)
    );
    let reconciled = meridian::reconcile::check(state.stores())
        .await
        .expect("reconcile runs");
    assert!(reconciled.is_clean(), "{:?}", reconciled.lines());
}

/// The demo feed, on a seed of both platforms alone (no assets, so no ticks or trades),
/// moves farmers through a whole cycle (a harvest with its proof recorded) and records
/// graded submissions, through the API's checks and the outbox; afterwards every store
/// agrees.
#[tokio::test]
async fn the_demo_feed_farms_and_submits_through_the_real_paths() {
    use meridian::seed::Platforms;

    let env = TestEnv::migrated().await;
    let state = env.state().await;
    let shape = crate::support::recent_shape(Platforms {
        kale: true,
        fathuss: true,
        ..Platforms::NONE
    });
    env.seed(&shape).await;
    let count = |sql: &'static str| {
        let state = state.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(state.stores().postgres().pool())
                .await
                .expect("count")
        }
    };
    let harvests =
        || count("SELECT count(*) FROM events WHERE id LIKE 'demo-%' AND kind = 'farming_harvest'");
    let submissions = || {
        count(
            "SELECT count(*) FROM events WHERE id LIKE 'demo-%' AND kind = 'challenge_submission'",
        )
    };
    let proofs = || {
        count(
            "SELECT count(*) FROM artifacts a JOIN artifact_events l ON l.cid = a.cid \
             JOIN event_ids e ON e.uid = l.event_uid WHERE a.kind = 'proof' AND e.id LIKE 'demo-%'",
        )
    };
    assert_eq!(harvests().await + submissions().await, 0);
    // The server runs the relay that carries the feed's events on.
    let _server = env.spawn().await;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let rates = meridian::simulate::Rates {
        ticks_per_sec: 0.0,
        trades_per_sec: 0.0,
        events_per_sec: 80.0,
    };
    let feed = tokio::spawn(meridian::simulate::run(state.clone(), rates, async {
        let _ = stopped.await;
    }));
    wait_until(
        "a demo harvest with its proof, and a submission",
        30,
        || async { harvests().await > 0 && proofs().await > 0 && submissions().await > 0 },
    )
    .await;
    let _ = stop.send(());
    feed.await.expect("join").expect("the feed stops cleanly");
    all_delivered(&state).await;
    let report = meridian::reconcile::check(state.stores())
        .await
        .expect("reconcile runs");
    assert!(report.is_clean(), "{:?}", report.lines());
}
