//! Artifacts: recorded all or nothing and idempotent by CID, found by owner, kind and
//! event; each subject's latest proof cached in Redis and reconciled.

use chrono::{Duration, Utc};
use meridian::{auth::Role, AppState};
use serde_json::{json, Value};

use crate::support::{refusals, TestEnv, TestServer};

const RECORD_EVENTS: &str =
    "mutation($events: [EventInput!]!) { recordEvents(events: $events) { id } }";
const RECORD: &str = "mutation($a: [ArtifactInput!]!) { recordArtifacts(artifacts: $a) { \
    cid sha256 size mediaType kind name owner { chain address } events { id } } }";

const FARMER: &str = "GAOQJGUAB7NI7K7I62ORBXMN3J4SSWQUQ7FOEPSDJ322W2HMCNWPHXFB";
const PROOF: &str = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o";
const OTHER_PROOF: &str = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
/// A raw CIDv1 of the bytes `test case 1`, with their sha256.
fn raw_test_case() -> (String, String) {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(b"test case 1");
    let hash = cid::multihash::Multihash::<64>::wrap(0x12, &digest).expect("wraps");
    (
        cid::Cid::new_v1(0x55, hash).to_string(),
        hex::encode(digest),
    )
}

async fn started() -> (TestEnv, AppState, TestServer) {
    let env = TestEnv::migrated().await;
    let state = env.state().await;
    let server = env.spawn().await;
    (env, state, server)
}

async fn record_events(server: &TestServer, events: Value) {
    let done = server
        .graphql_with(RECORD_EVENTS, json!({ "events": events }), &[])
        .await;
    assert!(done["errors"].is_null(), "{done}");
}

fn proof(cid: &str, events: &[&str]) -> Value {
    json!({ "cid": cid, "sha256": "ab".repeat(32), "size": 2048, "mediaType": "application/json",
            "kind": "PROOF", "owner": FARMER, "name": "proof.json", "events": events })
}

async fn stored(state: &AppState, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(state.stores().postgres().pool())
        .await
        .expect("count")
}

#[tokio::test]
async fn artifacts_are_recorded_once_and_found_by_owner_kind_and_event() {
    let (_env, state, server) = started().await;
    record_events(
        &server,
        json!([{ "id": "w1", "kind": "farming_work", "subject": FARMER,
                 "attributes": { "work_hash": "0x0000abcd" }, "artifact": PROOF }]),
    )
    .await;
    let (test_cid, test_sha) = raw_test_case();
    let test_case = json!({ "cid": test_cid, "sha256": test_sha, "size": 11,
        "mediaType": "text/plain", "kind": "TEST_CASE", "owner": FARMER });
    let artifacts = json!([proof(PROOF, &["w1"]), test_case]);
    let first = server
        .graphql_with(RECORD, json!({ "a": artifacts }), &[])
        .await;
    assert_eq!(
        first["data"]["recordArtifacts"][0],
        json!({ "cid": PROOF, "sha256": "ab".repeat(32), "size": 2048.0,
                "mediaType": "application/json", "kind": "PROOF", "name": "proof.json",
                "owner": { "chain": "STELLAR", "address": FARMER },
                "events": [{ "id": "w1" }] }),
        "{first}"
    );
    assert_eq!(
        first["data"]["recordArtifacts"][1]["kind"],
        json!("TEST_CASE")
    );

    // The same again: the same records; another body for a CID: a CONFLICT, nothing new.
    let again = server
        .graphql_with(RECORD, json!({ "a": artifacts }), &[])
        .await;
    assert_eq!(again["data"], first["data"]);
    let mut changed = proof(PROOF, &["w1"]);
    changed["size"] = json!(4096);
    let conflict = server
        .graphql_with(
            RECORD,
            json!({ "a": [proof(OTHER_PROOF, &[]), changed] }),
            &[],
        )
        .await;
    assert_eq!(
        refusals(&conflict),
        [("CONFLICT".to_owned(), "artifacts[1].cid".to_owned())],
        "{conflict}"
    );
    let unknown = server
        .graphql_with(RECORD, json!({ "a": [proof(OTHER_PROOF, &["nope"])] }), &[])
        .await;
    assert_eq!(
        refusals(&unknown),
        [(
            "BAD_USER_INPUT".to_owned(),
            "artifacts[0].events".to_owned()
        )],
        "{unknown}"
    );
    assert_eq!(stored(&state, "artifacts").await, 2);

    // Found by CID (any spelling), owner, kind and event; events point back.
    let v1 = cid::Cid::try_from(PROOF)
        .expect("cid")
        .into_v1()
        .expect("v1")
        .to_string();
    let found = server
        .graphql(&format!(
            "{{ artifact(cid: \"{PROOF}\") {{ cid }} \
               missing: artifact(cid: \"{OTHER_PROOF}\") {{ cid }} \
               mine: artifacts(owner: \"{FARMER}\") {{ edges {{ node {{ cid }} }} }} \
               tests: artifacts(kind: TEST_CASE) {{ edges {{ node {{ cid }} }} }} \
               backing: artifacts(event: \"w1\") {{ edges {{ node {{ cid }} }} }} \
               events(kinds: [\"farming_work\"]) {{ edges {{ node {{ artifactRecord {{ kind size }} }} }} }} }}"
        ))
        .await;
    assert!(found["errors"].is_null(), "{found}");
    assert_eq!(found["data"]["artifact"]["cid"], json!(PROOF));
    assert_eq!(found["data"]["missing"], Value::Null);
    assert_eq!(
        found["data"]["mine"]["edges"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        found["data"]["tests"]["edges"],
        json!([{ "node": { "cid": test_cid } }])
    );
    assert_eq!(
        found["data"]["backing"]["edges"],
        json!([{ "node": { "cid": PROOF } }])
    );
    assert_eq!(
        found["data"]["events"]["edges"][0]["node"]["artifactRecord"],
        json!({ "kind": "PROOF", "size": 2048.0 })
    );
    let by_v1 = server
        .graphql(&format!("{{ artifact(cid: \"{v1}\") {{ cid }} }}"))
        .await;
    assert_eq!(
        by_v1["data"]["artifact"],
        Value::Null,
        "a CIDv1 names another record: {by_v1}"
    );
}

#[tokio::test]
async fn bad_artifacts_are_refused_naming_the_field() {
    let (_env, state, server) = started().await;
    let (test_cid, _) = raw_test_case();
    let cases: Vec<(&str, Value)> = vec![
        ("artifacts[0].cid", json!({ "cid": "Qmnope" })),
        ("artifacts[0].sha256", json!({ "sha256": "12" })),
        ("artifacts[0].sha256", json!({ "cid": test_cid })),
        ("artifacts[0].size", json!({ "size": -1 })),
        ("artifacts[0].size", json!({ "size": 1.5 })),
        ("artifacts[0].mediaType", json!({ "mediaType": "json" })),
        ("artifacts[0].owner", json!({ "owner": "0x1234" })),
        ("artifacts[0].name", json!({ "name": "" })),
    ];
    for (field, edit) in cases {
        let mut artifact = proof(PROOF, &[]);
        for (k, v) in edit.as_object().expect("object") {
            artifact[k] = v.clone();
        }
        let refused = server
            .graphql_with(RECORD, json!({ "a": [artifact] }), &[])
            .await;
        assert_eq!(
            refusals(&refused),
            [("BAD_USER_INPUT".to_owned(), field.to_owned())],
            "{field}: {refused}"
        );
    }
    let many: Vec<Value> = (0..1_001).map(|_| proof(PROOF, &[])).collect();
    let too_many = server.graphql_with(RECORD, json!({ "a": many }), &[]).await;
    assert_eq!(
        refusals(&too_many),
        [("BAD_USER_INPUT".to_owned(), "artifacts".to_owned())],
        "{too_many}"
    );
    let user = server.token(&uuid::Uuid::new_v4().to_string(), &[Role::User]);
    let (_, forbidden) = server
        .graphql_as(Some(&user), RECORD, json!({ "a": [proof(PROOF, &[])] }))
        .await;
    assert_eq!(
        forbidden["errors"][0]["extensions"]["code"],
        json!("FORBIDDEN"),
        "{forbidden}"
    );
    assert_eq!(stored(&state, "artifacts").await, 0);
}

#[tokio::test]
async fn the_latest_proof_per_subject_is_cached_and_reconciled() {
    let (_env, state, server) = started().await;
    let latest = || async {
        let read = server
            .graphql(&format!(
                "{{ events(subject: \"{FARMER}\", first: 1) {{ edges {{ node {{ subject {{ \
                 latestProof {{ cid artifact {{ kind }} }} }} }} }} }} }}"
            ))
            .await;
        read["data"]["events"]["edges"][0]["node"]["subject"]["latestProof"].clone()
    };
    let drained = || crate::support::all_delivered(&state);
    let an_hour_ago = Utc::now() - Duration::hours(1);
    record_events(
        &server,
        json!([{ "id": "w1", "kind": "farming_work", "subject": FARMER,
                 "attributes": { "work_hash": "0x01" }, "artifact": OTHER_PROOF,
                 "occurredAt": an_hour_ago.to_rfc3339() }]),
    )
    .await;
    drained().await;
    assert_eq!(
        latest().await,
        json!({ "cid": OTHER_PROOF, "artifact": null })
    );

    // A proof recorded now is later than the event's.
    let recorded = server
        .graphql_with(RECORD, json!({ "a": [proof(PROOF, &[])] }), &[])
        .await;
    assert!(recorded["errors"].is_null(), "{recorded}");
    drained().await;
    assert_eq!(
        latest().await,
        json!({ "cid": PROOF, "artifact": { "kind": "PROOF" } })
    );
    // An event from before it, carrying another proof, does not replace it.
    record_events(
        &server,
        json!([{ "id": "w2", "kind": "farming_work", "subject": FARMER,
                 "attributes": { "work_hash": "0x02" }, "artifact": OTHER_PROOF,
                 "occurredAt": (an_hour_ago + Duration::minutes(1)).to_rfc3339() }]),
    )
    .await;
    drained().await;
    assert_eq!(latest().await["cid"], json!(PROOF));
    let report = meridian::reconcile::check(state.stores())
        .await
        .expect("reconcile");
    assert!(report.is_clean(), "{:?}", report.lines());

    // The cache loses it: reconcile says so, and repair puts it back.
    let _: () = redis::cmd("DEL")
        .arg(state.stores().redis().proof_key("stellar", FARMER))
        .query_async(&mut state.stores().redis().conn())
        .await
        .expect("del");
    let report = meridian::reconcile::check(state.stores())
        .await
        .expect("reconcile");
    assert_eq!(
        report.redis,
        [format!(
            "proof stellar:{FARMER}: postgres {PROOF}, missing in redis"
        )]
    );
    let repaired = meridian::reconcile::repair(state.stores())
        .await
        .expect("repair");
    assert!(repaired.is_clean(), "{:?}", repaired.lines());
    assert_eq!(latest().await["cid"], json!(PROOF));
}
