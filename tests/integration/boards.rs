//! Declared boards: domain events move the boards that read their kinds (all-time and
//! windowed, once per event), manual boards take `setScore`, reconcile rebuilds any board
//! from PostgreSQL, and `leaderboardUpdated` follows any board and period.

use chrono::{Duration, Utc};
use meridian::{
    auth::Role,
    domain::{boards::BoardDef, kinds::KindsFile},
    AppState,
};
use serde_json::{json, Value};

use crate::support::{refusals, TestEnv, TestServer};

const RECORD: &str = "mutation($events: [EventInput!]!) { recordEvents(events: $events) { id } }";
const BOARD: &str =
    "query($name: String!, $period: String) { leaderboard(name: $name, period: $period) { \
    id name period size entries { rank score member account { chain address } } } }";

const FARMER: &str = "GAOQJGUAB7NI7K7I62ORBXMN3J4SSWQUQ7FOEPSDJ322W2HMCNWPHXFB";
const OTHER: &str = "GDAY755A7ORYYUKE7KA42WU6I4S4DPO2Q6X3YTATHSWAMIIBD2S4UOVV";

async fn started() -> (TestEnv, AppState, TestServer) {
    let env = TestEnv::migrated().await;
    let state = env.state().await;
    let server = env.spawn().await;
    (env, state, server)
}

async fn board_def(state: &AppState, name: &str) -> BoardDef {
    state
        .boards()
        .get(state.stores(), name)
        .await
        .expect("a declared board")
}

fn plant(id: &str, farmer: &str, stake: &str, at: chrono::DateTime<Utc>) -> Value {
    json!({ "id": id, "kind": "farming_plant", "subject": farmer, "amount": stake,
            "attributes": { "stake": stake }, "occurredAt": at.to_rfc3339() })
}

fn harvest(id: &str, farmer: &str, reward: &str, at: chrono::DateTime<Utc>) -> Value {
    json!({ "id": id, "kind": "farming_harvest", "subject": farmer, "amount": reward,
            "attributes": { "reward": reward }, "occurredAt": at.to_rfc3339() })
}

async fn record(server: &TestServer, events: Value) {
    let done = server
        .graphql_with(RECORD, json!({ "events": events }), &[])
        .await;
    assert!(done["errors"].is_null(), "{done}");
}

async fn drained(state: &AppState) {
    crate::support::all_delivered(state).await;
}

/// (member, score) of a board's entries, as the API gives them.
fn scores(response: &Value) -> Vec<(String, f64)> {
    response["data"]["leaderboard"]["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("entries: {response}"))
        .iter()
        .map(|e| {
            (
                e["account"]["address"]
                    .as_str()
                    .expect("address")
                    .to_owned(),
                e["score"].as_f64().expect("score"),
            )
        })
        .collect()
}

async fn read(server: &TestServer, name: &str, period: Option<&str>) -> Value {
    server
        .graphql_with(BOARD, json!({ "name": name, "period": period }), &[])
        .await
}

#[tokio::test]
async fn farming_events_move_their_boards_once_per_period_and_reconcile_rebuilds_them() {
    let (_env, state, server) = started().await;
    let now = Utc::now();
    let last_week = now - Duration::days(7);
    let long_ago = now - Duration::weeks(20);
    record(
        &server,
        json!([
            plant("p1", FARMER, "1000", now),
            plant("p2", OTHER, "300", last_week),
            plant("p3", OTHER, "900", long_ago),
            harvest("h1", FARMER, "50.5", now),
            harvest("h2", FARMER, "10", now),
            harvest("h3", OTHER, "70", last_week),
            // Older than the 12 weeks farming_rewards keeps: on no weekly board.
            harvest("h4", OTHER, "999", long_ago),
        ]),
    )
    .await;
    drained(&state).await;

    // All time: every stake planted, highest first, members as accounts.
    let top = read(&server, "top_farmers", None).await;
    assert_eq!(
        scores(&top),
        [(OTHER.to_owned(), 1200.0), (FARMER.to_owned(), 1000.0)],
        "{top}"
    );
    assert_eq!(top["data"]["leaderboard"]["period"], Value::Null);
    assert_eq!(
        top["data"]["leaderboard"]["entries"][0]["member"],
        json!(format!("stellar:{OTHER}"))
    );
    assert_eq!(
        top["data"]["leaderboard"]["entries"][0]["account"]["chain"],
        json!("STELLAR")
    );

    // Weekly: the current week by default, last week by name; each key expires.
    let rewards = board_def(&state, "farming_rewards").await;
    let this_week = rewards.current(now).name;
    let previous = rewards.period_at(last_week, now).expect("kept").name;
    let current = read(&server, "farming_rewards", None).await;
    assert_eq!(scores(&current), [(FARMER.to_owned(), 60.5)], "{current}");
    assert_eq!(current["data"]["leaderboard"]["period"], json!(this_week));
    let before = read(&server, "farming_rewards", Some(&previous)).await;
    assert_eq!(scores(&before), [(OTHER.to_owned(), 70.0)], "{before}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(
            state
                .stores()
                .redis()
                .leaderboard_key("farming_rewards", &this_week),
        )
        .query_async(&mut state.stores().redis().conn())
        .await
        .expect("ttl");
    assert!(
        ttl > 0 && ttl <= 12 * 7 * 24 * 3600,
        "the weekly key expires after its retention: ttl {ttl}"
    );
    // A period no longer kept, or not written as the window writes it, is refused.
    let gone = rewards.period_name(long_ago);
    for period in [gone.as_str(), "2026-11", "last week"] {
        let refused = read(&server, "farming_rewards", Some(period)).await;
        assert_eq!(
            refusals(&refused),
            [("BAD_USER_INPUT".to_owned(), "period".to_owned())],
            "{period}: {refused}"
        );
    }

    // An account's place, from an event's subject.
    let ranked = server
        .graphql(&format!(
            "{{ events(subject: \"{FARMER}\", first: 1) {{ edges {{ node {{ subject {{ \
             rank(board: \"farming_rewards\") {{ rank score period }} }} }} }} }} }}"
        ))
        .await;
    assert_eq!(
        ranked["data"]["events"]["edges"][0]["node"]["subject"]["rank"],
        json!({ "rank": 1, "score": 60.5, "period": this_week }),
        "{ranked}"
    );

    // Delivered again (a relay that died before marking them): nothing moves twice.
    sqlx::query("UPDATE outbox SET delivered_at = NULL WHERE destination = 'redis'")
        .execute(state.stores().postgres().pool())
        .await
        .expect("redeliver");
    drained(&state).await;
    assert_eq!(
        scores(&read(&server, "top_farmers", None).await)[0].1,
        1200.0
    );
    let report = meridian::reconcile::check(state.stores())
        .await
        .expect("reconcile");
    assert!(report.is_clean(), "{:?}", report.lines());

    // Redis loses a board and another drifts: reconcile names both, repair rebuilds them.
    let mut conn = state.stores().redis().conn();
    let _: () = redis::cmd("DEL")
        .arg(state.stores().redis().leaderboard_key("top_farmers", ""))
        .query_async(&mut conn)
        .await
        .expect("del");
    let _: f64 = redis::cmd("ZINCRBY")
        .arg(
            state
                .stores()
                .redis()
                .leaderboard_key("farming_rewards", &previous),
        )
        .arg(5)
        .arg(format!("stellar:{OTHER}"))
        .query_async(&mut conn)
        .await
        .expect("zincrby");
    let report = meridian::reconcile::check(state.stores())
        .await
        .expect("reconcile");
    let lines = report.lines().join("\n");
    assert!(lines.contains("top_farmers stellar:"), "{lines}");
    assert!(
        lines.contains(&format!(
            "farming_rewards {previous} stellar:{OTHER}: postgres 70, redis 75"
        )),
        "{lines}"
    );
    let repaired = meridian::reconcile::repair(state.stores())
        .await
        .expect("repair");
    assert!(repaired.is_clean(), "{:?}", repaired.lines());
    assert_eq!(
        scores(&read(&server, "top_farmers", None).await),
        [(OTHER.to_owned(), 1200.0), (FARMER.to_owned(), 1000.0)]
    );
    assert_eq!(
        scores(&read(&server, "farming_rewards", Some(&previous)).await),
        [(OTHER.to_owned(), 70.0)]
    );
}

#[tokio::test]
async fn set_score_moves_manual_boards_only_and_reconcile_keeps_what_it_set() {
    let (_env, state, server) = started().await;
    let set = "mutation($board: String!, $member: String!, $score: Float!) { \
        setScore(board: $board, member: $member, score: $score) { rank score member account { address } } }";
    let service = server.token("kale-backend", &[Role::Service]);
    let call = |board: &'static str, member: &'static str, score: f64, token: Option<String>| {
        let server = &server;
        async move {
            server
                .graphql_as(
                    token.as_deref(),
                    set,
                    json!({ "board": board, "member": member, "score": score }),
                )
                .await
                .1
        }
    };
    let first = call("farming_bonus", FARMER, 1000.0, Some(service.clone())).await;
    assert_eq!(
        first["data"]["setScore"],
        json!({ "rank": 1, "score": 1000.0, "member": format!("stellar:{FARMER}"),
                "account": { "address": FARMER } }),
        "{first}"
    );
    let second = call("farming_bonus", OTHER, 1500.0, Some(service.clone())).await;
    assert_eq!(second["data"]["setScore"]["rank"], json!(1), "{second}");
    // Set again: replaced, not added.
    let again = call("farming_bonus", FARMER, 2000.0, Some(service.clone())).await;
    assert_eq!(again["data"]["setScore"]["rank"], json!(1), "{again}");
    assert_eq!(
        scores(&read(&server, "farming_bonus", None).await),
        [(FARMER.to_owned(), 2000.0), (OTHER.to_owned(), 1500.0)]
    );

    // Boards moved by events refuse it; so do strangers, unknown boards, bad addresses.
    let derived = call("top_farmers", FARMER, 1.0, Some(service.clone())).await;
    assert_eq!(
        refusals(&derived),
        [("BAD_USER_INPUT".to_owned(), "board".to_owned())],
        "{derived}"
    );
    let bad_member = call("farming_bonus", "GNOTANACCOUNT", 1.0, Some(service.clone())).await;
    assert_eq!(
        refusals(&bad_member),
        [("BAD_USER_INPUT".to_owned(), "member".to_owned())],
        "{bad_member}"
    );
    let unknown = call("no_such_board", FARMER, 1.0, Some(service.clone())).await;
    assert_eq!(
        unknown["errors"][0]["extensions"]["code"],
        json!("BAD_USER_INPUT"),
        "{unknown}"
    );
    assert!(
        unknown["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("farming_bonus")),
        "{unknown}"
    );
    let user = server.token(&uuid::Uuid::new_v4().to_string(), &[Role::User]);
    let forbidden = call("farming_bonus", FARMER, 1.0, Some(user)).await;
    assert_eq!(
        forbidden["errors"][0]["extensions"]["code"],
        json!("FORBIDDEN"),
        "{forbidden}"
    );
    let anonymous = call("farming_bonus", FARMER, 1.0, None).await;
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"],
        json!("UNAUTHENTICATED"),
        "{anonymous}"
    );

    // The scores set are kept in PostgreSQL: Redis losing them is repaired.
    let _: () = redis::cmd("DEL")
        .arg(state.stores().redis().leaderboard_key("farming_bonus", ""))
        .query_async(&mut state.stores().redis().conn())
        .await
        .expect("del");
    let report = meridian::reconcile::check(state.stores())
        .await
        .expect("reconcile");
    assert_eq!(report.redis.len(), 2, "{:?}", report.lines());
    let repaired = meridian::reconcile::repair(state.stores())
        .await
        .expect("repair");
    assert!(repaired.is_clean(), "{:?}", repaired.lines());
    assert_eq!(
        scores(&read(&server, "farming_bonus", None).await),
        [(FARMER.to_owned(), 2000.0), (OTHER.to_owned(), 1500.0)]
    );
}

#[tokio::test]
async fn boards_refuse_what_they_do_not_have() {
    let (_env, _state, server) = started().await;
    let unknown = read(&server, "nope", None).await;
    assert_eq!(
        unknown["errors"][0]["extensions"]["code"],
        json!("BAD_USER_INPUT"),
        "{unknown}"
    );
    let all_time = read(&server, "volume", Some("2026-W01")).await;
    assert_eq!(
        refusals(&all_time),
        [("BAD_USER_INPUT".to_owned(), "period".to_owned())],
        "{all_time}"
    );
    // A user ranks on trade boards; an account on boards of accounts.
    let registered = server
        .graphql(&format!(
            "mutation {{ registerUser(input: {{ address: \"{FARMER}\", username: \"farmer\" }}) {{ \
             rank(board: \"top_farmers\") {{ rank }} }} }}"
        ))
        .await;
    assert_eq!(
        refusals(&registered),
        [("BAD_USER_INPUT".to_owned(), "board".to_owned())],
        "{registered}"
    );
    record(&server, json!([plant("r1", FARMER, "1", Utc::now())])).await;
    let account = server
        .graphql(&format!(
            "{{ events(subject: \"{FARMER}\", first: 1) {{ edges {{ node {{ subject {{ \
             rank(board: \"volume\") {{ rank }} user {{ username }} }} }} }} }} }}"
        ))
        .await;
    assert_eq!(
        refusals(&account),
        [("BAD_USER_INPUT".to_owned(), "board".to_owned())],
        "{account}"
    );
    let listed = server
        .graphql("{ boards { name reads score window retention member currentPeriod } }")
        .await;
    let boards = listed["data"]["boards"].as_array().expect("boards");
    let names: Vec<&str> = boards.iter().filter_map(|b| b["name"].as_str()).collect();
    for name in [
        "volume",
        "trades",
        "top_farmers",
        "farming_rewards",
        "farming_bonus",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let weekly = boards
        .iter()
        .find(|b| b["name"] == "farming_rewards")
        .expect("farming_rewards");
    assert_eq!(weekly["window"], json!("week"));
    assert_eq!(weekly["retention"], json!(12));
    assert_eq!(weekly["member"], json!("account"));
    assert!(weekly["currentPeriod"]
        .as_str()
        .is_some_and(|p| p.contains("-W")));
}

#[tokio::test]
async fn a_catalogue_file_replaces_the_declared_boards() {
    let env = TestEnv::migrated().await;
    let mut file = KindsFile::parse(meridian::domain::kinds::BUILTIN).expect("built-in");
    let boards = file.boards.as_mut().expect("boards");
    boards.retain(|b| b.name != "farming_bonus");
    let mut daily = boards
        .iter()
        .find(|b| b.name == "farming_rewards")
        .expect("farming_rewards")
        .clone();
    daily.name = "harvests_daily".into();
    daily.score = meridian::domain::boards::Score::Count;
    daily.window = meridian::domain::boards::Window::Day;
    daily.retention = Some(3);
    boards.push(daily);
    let state = env.state().await;
    let report = meridian::migrate::run_with_kinds(state.stores(), &file)
        .await
        .expect("migrate");
    assert_eq!(report.boards, 2, "one board added, one removed: {report:?}");
    let server = env.spawn().await;
    record(
        &server,
        json!([
            harvest("d1", FARMER, "5", Utc::now()),
            harvest("d2", FARMER, "6", Utc::now()),
        ]),
    )
    .await;
    let fresh = env.state().await;
    drained(&fresh).await;
    assert_eq!(
        scores(&read(&server, "harvests_daily", None).await),
        [(FARMER.to_owned(), 2.0)]
    );
    let removed = read(&server, "farming_bonus", None).await;
    assert_eq!(
        removed["errors"][0]["extensions"]["code"],
        json!("BAD_USER_INPUT"),
        "{removed}"
    );
    // A board reading a kind nobody declared is refused when the file is read.
    let mut broken: Value = serde_json::from_str(meridian::domain::kinds::BUILTIN).expect("JSON");
    broken["boards"][0]["reads"] = json!(["farming_replant"]);
    let err = KindsFile::parse(&broken.to_string()).expect_err("refused");
    assert!(err.to_string().contains("farming_replant"), "{err}");
}

#[tokio::test]
async fn leaderboard_updated_follows_a_windowed_board_current_or_named() {
    use crate::abuse::{next_json, open_socket, send};

    let (_env, state, server) = started().await;
    let now = Utc::now();
    let rewards = board_def(&state, "farming_rewards").await;
    let previous = rewards
        .period_at(now - Duration::days(7), now)
        .expect("kept")
        .name;
    let mut socket = open_socket(server.addr.port(), json!({})).await;
    let query = "subscription($period: String) { leaderboardUpdated(name: \"farming_rewards\", period: $period) { period entries { score account { address } } } }";
    send(
        &mut socket,
        json!({ "id": "current", "type": "subscribe", "payload": { "query": query } }),
    )
    .await;
    send(
        &mut socket,
        json!({ "id": "previous", "type": "subscribe",
                "payload": { "query": query, "variables": { "period": previous } } }),
    )
    .await;
    // Each starts with the board as it is: empty.
    let mut first = std::collections::BTreeMap::new();
    while first.len() < 2 {
        let message = next_json(&mut socket).await;
        if message["type"] == "next" {
            first.insert(
                message["id"].as_str().expect("id").to_owned(),
                message["payload"]["data"]["leaderboardUpdated"].clone(),
            );
        }
    }
    assert_eq!(
        first["current"],
        json!({ "period": rewards.current(now).name, "entries": [] })
    );
    assert_eq!(
        first["previous"],
        json!({ "period": previous, "entries": [] })
    );
    let redis = state.stores().redis();
    crate::support::listened(
        &state,
        vec![
            redis.leaderboard_channel("farming_rewards", ""),
            redis.leaderboard_channel("farming_rewards", &previous),
        ],
    )
    .await;

    // A harvest last week moves only the named period's subscription; one now, the other.
    record(
        &server,
        json!([harvest("l1", OTHER, "70", now - Duration::days(7))]),
    )
    .await;
    let moved = next_update(&mut socket).await;
    assert_eq!(moved.0, "previous");
    assert_eq!(
        moved.1["entries"],
        json!([{ "score": 70.0, "account": { "address": OTHER } }])
    );
    record(&server, json!([harvest("c1", FARMER, "5", Utc::now())])).await;
    let moved = next_update(&mut socket).await;
    assert_eq!(moved.0, "current");
    assert_eq!(
        moved.1["entries"],
        json!([{ "score": 5.0, "account": { "address": FARMER } }])
    );
}

/// The next `next` message's (subscription id, leaderboard), skipping pings.
async fn next_update(socket: &mut crate::abuse::Socket) -> (String, Value) {
    loop {
        let message = crate::abuse::next_json(socket).await;
        if message["type"] == "next" {
            return (
                message["id"].as_str().expect("id").to_owned(),
                message["payload"]["data"]["leaderboardUpdated"].clone(),
            );
        }
        assert_eq!(message["type"], "ping", "{message}");
    }
}
