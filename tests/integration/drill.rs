//! The fault drill: each store in turn is stopped under a steady query load and started
//! again. Queries that do not need it keep succeeding; fields that need it fail with
//! STORE_UNAVAILABLE naming it (fast, once its breaker is open); full service returns by
//! itself after the restart. Each drill prints its error counts and latencies.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{small_shape, wait_until, PrivateStore, TestEnv, TestServer};

/// One query of the steady load, and the stores it needs.
struct Probe {
    name: &'static str,
    query: String,
    needs: &'static [&'static str],
}

fn probes(user: &str) -> Vec<Probe> {
    vec![
        Probe {
            name: "user (postgres)",
            query: format!("{{ user(id: \"{user}\") {{ username }} }}"),
            needs: &["postgres"],
        },
        Probe {
            name: "leaderboard size (redis)",
            query: "{ leaderboard(name: \"volume\", top: 1) { size } }".into(),
            needs: &["redis"],
        },
        Probe {
            name: "candles (postgres, clickhouse)",
            query: "{ asset(symbol: \"BTC\") { candles(interval: HOUR, from: \"2026-11-01T00:00:00Z\", to: \"2026-11-01T12:00:00Z\") { open } } }".into(),
            needs: &["postgres", "clickhouse"],
        },
        Probe {
            name: "profile (postgres, mongodb)",
            query: format!("{{ user(id: \"{user}\") {{ profile {{ displayName }} }} }}"),
            needs: &["postgres", "mongodb"],
        },
    ]
}

/// The stores named by a response's errors (empty when it fully succeeded).
fn failed_stores(response: &Value) -> Vec<String> {
    response["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            assert_eq!(e["extensions"]["code"], "STORE_UNAVAILABLE", "{response}");
            e["extensions"]["store"].as_str().unwrap_or("?").to_owned()
        })
        .collect()
}

async fn round(server: &TestServer, probes: &[Probe]) -> Vec<(Vec<String>, Duration)> {
    futures::future::join_all(probes.iter().map(|p| async move {
        let started = Instant::now();
        let response = server.graphql(&p.query).await;
        (failed_stores(&response), started.elapsed())
    }))
    .await
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn drill(store: &'static str) {
    const ROUNDS_DOWN: usize = 40;
    let private = PrivateStore::start(store);
    let label = if store == "mongo" { "mongodb" } else { store };
    let env = TestEnv::migrated_with(|c| {
        match store {
            "postgres" => c.postgres_url = private.url(),
            "redis" => c.redis_url = private.url(),
            "clickhouse" => c.clickhouse_url = private.url(),
            "mongo" => c.mongo_url = private.url(),
            other => panic!("unknown store {other}"),
        }
        c.store_timeout_ms = 1000;
    })
    .await;
    env.seed(&small_shape()).await;
    let server = env.spawn().await;
    let user: String = sqlx::query_scalar("SELECT id::text FROM users LIMIT 1")
        .fetch_one(server.state.stores().postgres().pool())
        .await
        .expect("a user");
    let probes = probes(&user);
    wait_until("every probe to succeed before the drill", 30, || async {
        round(&server, &probes)
            .await
            .iter()
            .all(|(f, _)| f.is_empty())
    })
    .await;

    private.down();
    let stopped = Instant::now();
    let mut failing = Vec::new();
    let mut serving = Vec::new();
    for _ in 0..ROUNDS_DOWN {
        for (probe, (failed, latency)) in probes.iter().zip(round(&server, &probes).await) {
            if probe.needs.contains(&label) {
                assert_eq!(failed, [label], "{}: needs {label}", probe.name);
                failing.push(latency);
            } else {
                assert!(
                    failed.is_empty(),
                    "{} does not need {label}: {failed:?}",
                    probe.name
                );
                serving.push(latency);
            }
        }
    }
    let down_for = stopped.elapsed();

    private.up();
    let restarted = Instant::now();
    wait_until("full service after the restart", 60, || async {
        round(&server, &probes)
            .await
            .iter()
            .all(|(f, _)| f.is_empty())
    })
    .await;
    let recovered = restarted.elapsed();
    failing.sort();
    serving.sort();
    println!(
        "drill {label}: down {:.1} s; {} field errors (STORE_UNAVAILABLE), answered in p50 {:.1} ms / p99 {:.1} ms / max {:.1} ms; {} unaffected queries all succeeded, p50 {:.1} ms / p99 {:.1} ms; full service {:.1} s after restart",
        down_for.as_secs_f64(),
        failing.len(),
        percentile(&failing, 0.5),
        percentile(&failing, 0.99),
        percentile(&failing, 1.0),
        serving.len(),
        percentile(&serving, 0.5),
        percentile(&serving, 0.99),
        recovered.as_secs_f64(),
    );
}

#[tokio::test]
async fn drill_postgres() {
    drill("postgres").await;
}

#[tokio::test]
async fn drill_redis() {
    drill("redis").await;
}

#[tokio::test]
async fn drill_clickhouse() {
    drill("clickhouse").await;
}

#[tokio::test]
async fn drill_mongodb() {
    drill("mongo").await;
}
