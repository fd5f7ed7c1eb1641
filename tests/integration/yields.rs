//! Yields as the YieldSensei seed describes them, against the real stack: pool samples
//! through the mutation and NDJSON, the hourly and daily views against the same series
//! computed here from the samples, protocol TVL, best yields by strategy, risk, asset
//! and TVL, hostile samples, a yield dashboard in fixed round trips, and the portfolio
//! snapshot job: one leader among instances, another taking over when it stops, and the
//! history it writes.

use std::collections::BTreeMap;

use meridian::{auth::Role, snapshots};
use serde_json::{json, Value};

use crate::support::{refusals, user_token, wait_until, TestEnv, TestServer};

const DAY: i64 = 86_400;

async fn ok(server: &TestServer, token: &str, query: &str, variables: Value) -> Value {
    let (_, body) = server.graphql_as(Some(token), query, variables).await;
    assert!(body["errors"].is_null(), "{query}: {body}");
    body["data"].clone()
}

fn at(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .expect("a time")
        .to_rfc3339()
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64()
        .is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
}

/// Three protocols of three risks and categories, with pools over ETH, USDC and WBTC.
async fn catalogue(server: &TestServer, token: &str) {
    let assets: Vec<Value> = ["ETH", "USDC", "WBTC"]
        .iter()
        .map(|s| json!({ "symbol": s, "name": s, "chain": "ethereum", "decimals": 18 }))
        .collect();
    ok(
        server,
        token,
        "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { symbol } }",
        json!({ "a": assets }),
    )
    .await;
    ok(server, token, "mutation($p: [ProtocolInput!]!) { upsertProtocols(protocols: $p) { id } }", json!({ "p": [
        { "id": "aave", "name": "Aave", "category": "LENDING", "risk": "LOW", "chains": ["ethereum"] },
        { "id": "curve", "name": "Curve", "category": "DEX", "risk": "MEDIUM", "chains": ["ethereum"] },
        { "id": "degen", "name": "Degen Farm", "category": "YIELD", "risk": "HIGH", "chains": ["ethereum"] } ] })).await;
    ok(
        server,
        token,
        "mutation($p: [PoolInput!]!) { upsertPools(pools: $p) { id } }",
        json!({ "p": [
        { "id": "aave-eth", "protocol": "aave", "assets": ["ETH"] },
        { "id": "aave-usdc", "protocol": "aave", "assets": ["USDC"] },
        { "id": "curve-tri", "protocol": "curve", "assets": ["USDC", "ETH", "WBTC"], "feeBps": 4 },
        { "id": "degen-eth", "protocol": "degen", "assets": ["ETH", "USDC"], "feeBps": 100 } ] }),
    )
    .await;
}

const POOLS: [&str; 4] = ["aave-eth", "aave-usdc", "curve-tri", "degen-eth"];

/// Pool `p`'s k-th sample (one every 20 minutes from `base`).
fn sample(p: usize, k: i64, base: i64) -> (i64, f64, f64) {
    let tvl = 1.0e6 * (p as f64 + 1.0) + (k as f64) * 1_000.0 - ((k * 7 % 5) as f64) * 3_000.0;
    let apy = [3.0, 4.5, 6.0, 40.0][p] + ((k * 3 % 7) as f64) * 0.25;
    (base + k * 1_200, tvl, apy)
}

/// The series of pool `p` in buckets of `bucket` over [from, to), computed here.
fn expected(p: usize, samples: i64, base: i64, bucket: i64, from: i64, to: i64) -> Vec<Value> {
    let mut buckets: BTreeMap<i64, Vec<(i64, f64, f64)>> = BTreeMap::new();
    for k in 0..samples {
        let s = sample(p, k, base);
        if s.0 >= from && s.0 < to {
            buckets.entry(s.0 / bucket * bucket).or_default().push(s);
        }
    }
    buckets
        .into_iter()
        .map(|(start, s)| {
            let last = s.iter().max_by_key(|x| x.0).expect("a sample");
            let fold = |f: fn(&(i64, f64, f64)) -> f64, max: bool| {
                s.iter()
                    .map(f)
                    .fold(if max { f64::MIN } else { f64::MAX }, |a, b| {
                        if max {
                            a.max(b)
                        } else {
                            a.min(b)
                        }
                    })
            };
            json!({ "at": at(start), "tvl": last.1, "tvlHigh": fold(|x| x.1, true), "tvlLow": fold(|x| x.1, false),
                    "apy": last.2, "apyHigh": fold(|x| x.2, true), "apyLow": fold(|x| x.2, false),
                    "apyMean": s.iter().map(|x| x.2).sum::<f64>() / s.len() as f64, "samples": s.len() })
        })
        .collect()
}

/// Whether two series are equal, numbers within 1e-9 (the mean is a float sum).
fn same_series(got: &Value, want: &[Value]) -> bool {
    let got = got.as_array().expect("a list");
    got.len() == want.len()
        && got.iter().zip(want).all(|(g, w)| {
            w.as_object()
                .expect("an object")
                .iter()
                .all(|(k, v)| match v {
                    Value::Number(n) if k != "samples" => {
                        close(&g[k], n.as_f64().expect("a number"))
                    }
                    other => g[k] == *other,
                })
        })
}

const INGEST: &str =
    "mutation($s: [PoolSampleInput!]!) { ingestPoolMetrics(samples: $s) { accepted } }";

const DASHBOARD: &str = "query($n: Int!, $from: DateTime!, $to: DateTime!) {
  protocols(first: $n) { edges { node { id tvl tvlHistory(interval: DAY, from: $from, to: $to) { at tvl pools }
    pools { id latest { tvl apy } history(interval: HOUR, from: $from, to: $to) { apy } } } } }
  bestYields(first: 3) { pool { id protocol { risk } } apy } }";

#[tokio::test]
async fn pool_series_are_kept_by_views_ranked_and_served_in_fixed_round_trips() {
    let env = TestEnv::migrated().await;
    let server = env.spawn().await;
    let service = server.token("yield-feed", &[Role::Service]);
    catalogue(&server, &service).await;
    // Three days of samples every 20 minutes, ending before today.
    let base = (chrono::Utc::now().timestamp() / DAY - 3) * DAY;
    let samples = 3 * 72;
    // Even samples through the mutation, odd ones through NDJSON beside a tick.
    for (p, pool) in POOLS.iter().enumerate() {
        let batch: Vec<Value> = (0..samples)
            .step_by(2)
            .map(|k| {
                let (ts, tvl, apy) = sample(p, k, base);
                json!({ "pool": pool, "tvl": tvl, "apy": apy, "at": at(ts), "source": "defillama" })
            })
            .collect();
        let done = ok(&server, &service, INGEST, json!({ "s": batch })).await;
        assert_eq!(done["ingestPoolMetrics"]["accepted"], samples / 2, "{done}");
    }
    let mut lines: Vec<String> = vec![json!({ "symbol": "ETH", "price": 3000.0 }).to_string()];
    for (p, pool) in POOLS.iter().enumerate() {
        for k in (1..samples).step_by(2) {
            let (ts, tvl, apy) = sample(p, k, base);
            lines.push(json!({ "pool": pool, "tvl": tvl, "apy": apy, "ts": ts }).to_string());
        }
    }
    lines.push(json!({ "pool": "nope", "tvl": 1.0, "apy": 1.0 }).to_string());
    lines.push(json!({ "pool": "aave-eth", "tvl": -1.0, "apy": 1.0 }).to_string());
    lines.push(json!({ "pool": "aave-eth", "tvl": 1.0 }).to_string());
    let answer: Value = server
        .client
        .post(server.url("/ingest/prices"))
        .body(lines.join("\n"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    let sent = 1 + POOLS.len() as i64 * samples / 2;
    assert_eq!(answer["accepted"], sent, "{answer}");
    assert_eq!(answer["rejected"], 3, "{answer}");
    let messages: Vec<&str> = answer["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(messages[0].starts_with("pool: unknown pool"), "{answer}");
    assert!(messages[1].starts_with("tvl: "), "{answer}");
    assert!(messages[2].starts_with("not a pool sample"), "{answer}");

    // Hours and days from the views, 40 minutes from the samples: the same as computed here.
    let (from, to) = (base + 3_600, base + 2 * DAY);
    for (interval, bucket, from, to) in [
        ("HOUR", 3_600, from, to),
        ("DAY", DAY, base, base + 3 * DAY),
        ("FIFTEEN_MINUTES", 900, base + 900, base + 6 * 3_600),
    ] {
        let q = format!(
            "{{ pool(id: \"curve-tri\") {{ history(interval: {interval}, from: \"{}\", to: \"{}\") {{
                 at tvl tvlHigh tvlLow apy apyHigh apyLow apyMean samples }} }} }}",
            at(from),
            at(to)
        );
        let got = ok(&server, &service, &q, json!({})).await;
        let want = expected(2, samples, base, bucket, from, to);
        assert!(
            same_series(&got["pool"]["history"], &want),
            "{interval}: {got} against {want:?}"
        );
    }
    // Reconcile finds the views equal to the samples; a day folded twice is reported and
    // rebuilt by the repair, after which the series reads as before.
    let stores = server.state.stores();
    let clean = meridian::reconcile::check(stores).await.expect("reconcile");
    assert!(clean.is_clean(), "{:?}", clean.lines());
    stores
        .clickhouse()
        .client()
        .query(
            "INSERT INTO pool_metrics_1d SELECT pool, toDateTime(intDiv(toUInt32(ts), 86400) * 86400) AS bucket, \
             argMaxState(tvl, ts), maxState(tvl), minState(tvl), argMaxState(apy, ts), maxState(apy), \
             minState(apy), sumState(apy), countState() \
             FROM pool_metrics WHERE pool = 'aave-usdc' AND ts < toDateTime(?) GROUP BY pool, bucket",
        )
        .bind(base + DAY)
        .execute()
        .await
        .expect("a double count");
    let found = meridian::reconcile::check(stores).await.expect("reconcile");
    let date = chrono::DateTime::from_timestamp(base, 0)
        .expect("a day")
        .date_naive();
    assert_eq!(
        found.clickhouse,
        [format!(
            "pool_metrics_1d aave-usdc {date}: samples 72, view 144"
        )],
        "{:?}",
        found.lines()
    );
    let repaired = meridian::reconcile::repair(stores).await.expect("repair");
    assert!(repaired.is_clean(), "{:?}", repaired.lines());
    let q = format!(
        "{{ pool(id: \"aave-usdc\") {{ history(interval: DAY, from: \"{}\", to: \"{}\") {{
             at tvl tvlHigh tvlLow apy apyHigh apyLow apyMean samples }} }} }}",
        at(base),
        at(base + 3 * DAY)
    );
    let got = ok(&server, &service, &q, json!({})).await;
    let want = expected(1, samples, base, DAY, base, base + 3 * DAY);
    assert!(same_series(&got["pool"]["history"], &want), "{got}");

    // A protocol's TVL: its pools' last TVL of each day, summed.
    let tvl = ok(
        &server,
        &service,
        "query($f: DateTime!, $t: DateTime!) { protocolTvl(protocol: \"aave\", interval: DAY, from: $f, to: $t) { at tvl pools } }",
        json!({ "f": at(base), "t": at(base + 3 * DAY) }),
    )
    .await;
    let days = tvl["protocolTvl"].as_array().expect("a list");
    assert_eq!(days.len(), 3, "{tvl}");
    for (d, day) in days.iter().enumerate() {
        let last = (d as i64 + 1) * 72 - 1;
        let want = sample(0, last, base).1 + sample(1, last, base).1;
        assert!(close(&day["tvl"], want), "{tvl}");
        assert_eq!(day["pools"], 2);
    }

    // Best yields: ranked by the newest APY, and filtered.
    let newest = |p: usize| sample(p, samples - 1, base).2;
    let best = ok(
        &server,
        &service,
        "{ all: bestYields { pool { id } apy tvl }
           safe: bestYields(maxRisk: MEDIUM, asset: \"eth\") { pool { id } }
           lending: bestYields(strategy: LENDING, minTvl: 1500000) { pool { id } }
           one: bestYields(first: 1) { pool { id protocol { name } } } }",
        json!({}),
    )
    .await;
    let mut ranked: Vec<(usize, f64)> = (0..4).map(|p| (p, newest(p))).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let ids: Vec<&str> = best["all"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|y| y["pool"]["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ranked.iter().map(|(p, _)| POOLS[*p]).collect::<Vec<_>>()
    );
    assert!(close(&best["all"][0]["apy"], ranked[0].1), "{best}");
    let safe: Vec<&str> = best["safe"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|y| y["pool"]["id"].as_str())
        .collect();
    let mut safe_sorted = safe.clone();
    safe_sorted.sort_unstable();
    assert_eq!(safe_sorted, ["aave-eth", "curve-tri"], "{best}");
    assert_eq!(best["lending"], json!([{ "pool": { "id": "aave-usdc" } }]));
    assert_eq!(
        best["one"],
        json!([{ "pool": { "id": "degen-eth", "protocol": { "name": "Degen Farm" } } }])
    );

    // Hostile samples and arguments.
    for (sample, field) in [
        (
            json!({ "pool": "nope", "tvl": 1.0, "apy": 1.0 }),
            "samples[0].pool",
        ),
        (
            json!({ "pool": "aave-eth", "tvl": -5.0, "apy": 1.0 }),
            "samples[0].tvl",
        ),
        (
            json!({ "pool": "aave-eth", "tvl": 1e17, "apy": 1.0 }),
            "samples[0].tvl",
        ),
        (
            json!({ "pool": "aave-eth", "tvl": 1.0, "apy": -101.0 }),
            "samples[0].apy",
        ),
        (
            json!({ "pool": "aave-eth", "tvl": 1.0, "apy": 2e6 }),
            "samples[0].apy",
        ),
        (
            json!({ "pool": "aave-eth", "tvl": 1.0, "apy": 1.0, "at": "2099-01-01T00:00:00Z" }),
            "samples[0].at",
        ),
        (
            json!({ "pool": "aave-eth", "tvl": 1.0, "apy": 1.0, "source": "a\u{0}b" }),
            "samples[0].source",
        ),
    ] {
        let (_, body) = server
            .graphql_as(Some(&service), INGEST, json!({ "s": [sample] }))
            .await;
        assert_eq!(
            refusals(&body),
            vec![("BAD_USER_INPUT".to_owned(), field.to_owned())],
            "{body}"
        );
    }
    let (_, body) = server
        .graphql_as(Some(&service), INGEST, json!({ "s": [] }))
        .await;
    assert_eq!(
        refusals(&body),
        vec![("BAD_USER_INPUT".to_owned(), "samples".to_owned())]
    );
    let user = user_token(&server.state, &uuid::Uuid::new_v4().to_string());
    let (_, body) = server
        .graphql_as(
            Some(&user),
            INGEST,
            json!({ "s": [{ "pool": "aave-eth", "tvl": 1.0, "apy": 1.0 }] }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    for (query, field) in [
        ("{ bestYields(first: 0) { apy } }", "first"),
        ("{ bestYields(minTvl: -1) { apy } }", "minTvl"),
        ("{ bestYields(asset: \"not a symbol!\") { apy } }", "asset"),
    ] {
        let (_, body) = server.graphql_as(Some(&service), query, json!({})).await;
        assert_eq!(
            refusals(&body),
            vec![("BAD_USER_INPUT".to_owned(), field.to_owned())],
            "{query}: {body}"
        );
    }
    let (_, body) = server
        .graphql_as(
            Some(&service),
            "{ protocolTvl(protocol: \"aave\", interval: MINUTE, from: \"2020-01-01T00:00:00Z\", to: \"2026-01-01T00:00:00Z\") { tvl } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );

    // The dashboard costs the same round trips for one protocol and for three.
    let window = json!({ "from": at(base), "to": at(base + 2 * DAY) });
    let mut vars = window.clone();
    vars["n"] = json!(1);
    let (one, trips_one) = server.traced(DASHBOARD, vars.clone()).await;
    assert!(one["errors"].is_null(), "{one}");
    vars["n"] = json!(3);
    let (three, trips_three) = server.traced(DASHBOARD, vars).await;
    assert!(three["errors"].is_null(), "{three}");
    let aave = &one["data"]["protocols"]["edges"][0]["node"];
    assert!(
        close(
            &aave["tvl"],
            sample(0, samples - 1, base).1 + sample(1, samples - 1, base).1
        ),
        "{aave}"
    );
    assert_eq!(aave["tvlHistory"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        aave["pools"][0]["history"].as_array().map(Vec::len),
        Some(48)
    );
    assert_eq!(
        trips_one, trips_three,
        "round trips grew with the protocols"
    );
}

#[tokio::test]
async fn one_instance_leads_the_snapshot_job_and_another_takes_over() {
    let env = TestEnv::migrated_with(|c| c.snapshot_every_secs = 1).await;
    env.seed(&crate::support::small_shape()).await;
    let first = env.spawn().await;
    let second = env.spawn().await;
    let leads = |s: &TestServer| s.state.leads_snapshots();
    wait_until("one instance to lead the snapshot job", 30, || async {
        leads(&first) || leads(&second)
    })
    .await;
    assert!(!(leads(&first) && leads(&second)), "both instances lead");
    let (leader, follower) = if leads(&first) {
        (first, second)
    } else {
        (second, first)
    };
    let gauge = |s: &TestServer| {
        s.state
            .metrics()
            .render()
            .lines()
            .find(|l| l.starts_with("meridian_snapshot_leader "))
            .map(str::to_owned)
    };
    assert_eq!(
        gauge(&leader).as_deref(),
        Some("meridian_snapshot_leader 1")
    );
    assert_eq!(
        gauge(&follower).as_deref(),
        Some("meridian_snapshot_leader 0")
    );

    // A user's snapshot of today is their portfolio value.
    let user: String = sqlx::query_scalar(
        "SELECT user_id::text FROM holdings GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 1",
    )
    .fetch_one(leader.state.stores().postgres().pool())
    .await
    .expect("a user with holdings");
    let token = user_token(&leader.state, &user);
    let query = "query($id: ID!) { user(id: $id) { portfolioValue portfolioHistory { day value positions unpriced } } }";
    let today = chrono::Utc::now().timestamp() / DAY * DAY;
    wait_until("today's snapshot", 30, || async {
        let (_, body) = follower
            .graphql_as(Some(&token), query, json!({ "id": user }))
            .await;
        body["data"]["user"]["portfolioHistory"]
            .as_array()
            .is_some_and(|h| h.len() == 1)
    })
    .await;
    let (_, body) = follower
        .graphql_as(Some(&token), query, json!({ "id": user }))
        .await;
    let read = &body["data"]["user"];
    let point = &read["portfolioHistory"][0];
    assert_eq!(point["day"], at(today), "{body}");
    assert!(
        close(
            &point["value"],
            read["portfolioValue"].as_f64().expect("a value")
        ),
        "{body}"
    );
    assert!(
        point["positions"].as_i64().expect("positions") >= 1,
        "{body}"
    );
    assert_eq!(point["unpriced"], 0, "{body}");

    // The leader stops: its session ends, and the other instance takes the job over.
    leader.stop().await.expect("the leader stops");
    wait_until("the other instance to take the job over", 30, || async {
        follower.state.leads_snapshots()
    })
    .await;
    assert_eq!(
        gauge(&follower).as_deref(),
        Some("meridian_snapshot_leader 1")
    );

    // Earlier days at other prices, grouped by day and by week; private to the user.
    let stores = follower.state.stores();
    for (days_ago, price) in [(9_i64, 100.0), (8, 200.0)] {
        let symbols: Vec<String> = sqlx::query_scalar("SELECT DISTINCT symbol FROM holdings")
            .fetch_all(stores.postgres().pool())
            .await
            .expect("symbols");
        let ticks: Vec<Value> = symbols
            .iter()
            .map(|s| json!({ "symbol": s, "price": price }))
            .collect();
        let done = ok(
            &follower,
            &follower.token("feed", &[Role::Service]),
            "mutation($t: [PriceTickInput!]!) { ingestPrices(ticks: $t) { accepted } }",
            json!({ "t": ticks }),
        )
        .await;
        assert_eq!(done["ingestPrices"]["accepted"], symbols.len(), "{done}");
        let taken = snapshots::take(
            stores,
            chrono::Utc::now() - chrono::Duration::days(days_ago),
        )
        .await
        .expect("snapshot taken");
        assert!(taken.users >= 40, "{taken:?}");
    }
    let quantity: f64 =
        sqlx::query_scalar("SELECT sum(quantity)::float8 FROM holdings WHERE user_id = $1::uuid")
            .bind(&user)
            .fetch_one(stores.postgres().pool())
            .await
            .expect("quantity");
    let history = "query($id: ID!, $from: DateTime!) { user(id: $id) {
        days: portfolioHistory(from: $from) { day value }
        weeks: portfolioHistory(interval: WEEK, from: $from) { at day } } }";
    let from = at(today - 9 * DAY);
    let (_, body) = follower
        .graphql_as(Some(&token), history, json!({ "id": user, "from": from }))
        .await;
    let days = body["data"]["user"]["days"].as_array().expect("days");
    assert_eq!(days.len(), 3, "{body}");
    assert_eq!(days[0]["day"], at(today - 9 * DAY));
    assert!(close(&days[0]["value"], quantity * 100.0), "{body}");
    assert!(close(&days[1]["value"], quantity * 200.0), "{body}");
    let weeks = body["data"]["user"]["weeks"].as_array().expect("weeks");
    // Each week stands for itself with its newest day; the last is today's.
    assert_eq!(weeks.last().expect("a week")["day"], at(today), "{body}");
    assert!(
        weeks.len() == 2 || weeks.len() == 3,
        "nine days span two or three ISO weeks: {body}"
    );
    let stranger = user_token(&follower.state, &uuid::Uuid::new_v4().to_string());
    let (_, body) = follower
        .graphql_as(
            Some(&stranger),
            history,
            json!({ "id": user, "from": from }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
}

/// The README's YieldSensei dashboard on a seed of trading and YieldSensei: the best
/// yields in order and within the risk, each protocol's TVL the sum of its pools' newest
/// generated samples, and a trader's portfolio history one snapshot per seeded day whose
/// last value is their portfolio value now.
#[tokio::test]
async fn the_readme_yield_dashboard_runs_on_the_seed() {
    use meridian::seed::{yields, Platforms};

    let env = TestEnv::migrated().await;
    let shape = meridian::seed::Shape {
        days: 2,
        ..crate::support::recent_shape(Platforms {
            trading: true,
            yieldsensei: true,
            ..Platforms::NONE
        })
    };
    let report = env.seed(&shape).await;
    assert_eq!(report.pools, 14);
    assert_eq!(report.pool_samples, 14 * 48);
    let server = env.spawn().await;
    let body = server
        .graphql(&crate::platforms::readme_block(
            "<!-- dashboard: yieldsensei -->",
        ))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let data = &body["data"];

    // The newest generated sample of each pool.
    let mut newest: BTreeMap<String, (i64, f64, f64)> = BTreeMap::new();
    for s in yields::samples(&shape) {
        let Some(meridian::ingest::TickTime::Unix(ts)) = s.ts else {
            panic!("the seed stamps its samples")
        };
        if newest.get(&s.pool).is_none_or(|n| n.0 < ts) {
            newest.insert(s.pool.clone(), (ts, s.tvl, s.apy));
        }
    }
    let best = data["bestYields"].as_array().expect("best yields");
    assert_eq!(best.len(), 5, "{body}");
    for pair in best.windows(2) {
        assert!(pair[0]["apy"].as_f64() >= pair[1]["apy"].as_f64(), "{body}");
    }
    for y in best {
        assert_ne!(y["pool"]["protocol"]["risk"], "HIGH", "{body}");
        let id = y["pool"]["id"].as_str().expect("an id");
        assert!(close(&y["apy"], newest[id].2), "{y}");
    }
    let protocols = data["protocols"]["edges"].as_array().expect("protocols");
    assert_eq!(protocols.len(), 8, "{body}");
    for p in protocols {
        let node = &p["node"];
        let id = node["id"].as_str().expect("an id");
        let want: f64 = newest
            .iter()
            .filter(|(pool, _)| pool.starts_with(&format!("{id}-")))
            .map(|(_, n)| n.1)
            .sum();
        assert!(close(&node["tvl"], want), "{node}");
        let days = node["tvlHistory"].as_array().expect("days");
        assert!(!days.is_empty() && days.len() <= 3, "{node}");
        assert!(close(&days.last().expect("today")["tvl"], want), "{node}");
    }
    assert_eq!(data["gainers"].as_array().map(Vec::len), Some(3), "{body}");

    // A trader's history: one snapshot per seeded day, the last their value now.
    let user: String = sqlx::query_scalar(
        "SELECT user_id::text FROM holdings GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 1",
    )
    .fetch_one(server.state.stores().postgres().pool())
    .await
    .expect("a trader");
    let token = user_token(&server.state, &user);
    let (_, body) = server
        .graphql_as(
            Some(&token),
            "query($id: ID!) { user(id: $id) { portfolioValue portfolioHistory { day value positions } } }",
            json!({ "id": user }),
        )
        .await;
    let read = &body["data"]["user"];
    let history = read["portfolioHistory"].as_array().expect("history");
    assert!(history.len() == 2 || history.len() == 3, "{body}");
    assert!(
        close(
            &history.last().expect("a day")["value"],
            read["portfolioValue"].as_f64().expect("a value")
        ),
        "{body}"
    );
}
