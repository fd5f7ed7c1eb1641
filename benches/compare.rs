//! Meridian against the floor (benches/support/floor.rs) and against PostGraphile, side
//! by side in one run, with the same load generator (wrk) on loopback: p50/p99 latency at
//! one connection, throughput at 32 and 64, and Meridian's peak RSS per scenario.
//!
//!   scripts/bench          (installs wrk and PostGraphile, then runs this and the rest)
//!   cargo bench --bench compare     BENCH_SECONDS=10 BENCH_USERS=1000
//!   BENCH_ONLY=candles cargo bench --bench compare   (the candle views' scenario alone)
//!
//! Last, it reads candles from ClickHouse's candle views against the same candles computed
//! from the raw ticks (benches/support/candles.rs).
//!
//! Before measuring, each target's answer is checked: Meridian's and the floor's `data`
//! must be equal, and PostGraphile's must hold the same users and holdings.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use meridian::{migrate, seed, AppState};
use serde_json::{json, Value};

#[path = "support/candles.rs"]
mod candles;
#[path = "support/floor.rs"]
mod floor;
#[path = "support/namespace.rs"]
mod namespace;

use namespace::{env_number, Namespace};

/// What one wrk run measured.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    p50_ms: f64,
    p99_ms: f64,
    rps: f64,
    errors: u64,
}

/// One server a scenario is measured on.
struct Target {
    name: &'static str,
    url: String,
    body: PathBuf,
    auth: Option<String>,
}

struct Scenario {
    name: &'static str,
    /// The stores it reads, for the report.
    stores: &'static str,
    targets: Vec<Target>,
}

#[derive(Default, Clone)]
struct Row {
    scenario: &'static str,
    target: &'static str,
    c1: Run,
    c32: Run,
    c64: Run,
    rss_mib: Option<f64>,
}

fn wrk(target: &Target, connections: u32, seconds: u64) -> anyhow::Result<Run> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/wrk/graphql.lua");
    let output = Command::new("wrk")
        .args([
            &format!("-t{}", connections.min(2)),
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "--timeout",
            "10s",
            "-s",
            script,
            &target.url,
        ])
        .env("BODY", &target.body)
        .env("AUTH", target.auth.clone().unwrap_or_default())
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let run = parse_wrk(&text);
    if run.errors > 0 {
        eprintln!("compare: wrk reported errors on {}:\n{text}", target.name);
    }
    Ok(run)
}

/// Reads p50, p99, requests/s and non-2xx counts from wrk's `--latency` output.
fn parse_wrk(text: &str) -> Run {
    let millis = |v: &str| -> f64 {
        let (number, factor) = if let Some(n) = v.strip_suffix("us") {
            (n, 0.001)
        } else if let Some(n) = v.strip_suffix("ms") {
            (n, 1.0)
        } else if let Some(n) = v.strip_suffix('s') {
            (n, 1000.0)
        } else {
            (v, 1.0)
        };
        number.parse::<f64>().unwrap_or(f64::NAN) * factor
    };
    let mut run = Run::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => run.p50_ms = millis(v),
            ["99%", v] => run.p99_ms = millis(v),
            ["Requests/sec:", v] => run.rps = v.parse().unwrap_or(0.0),
            ["Non-2xx", "or", "3xx", "responses:", n] => run.errors += n.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                run.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    run
}

async fn post(client: &reqwest::Client, target: &Target) -> anyhow::Result<Value> {
    let mut request = client
        .post(&target.url)
        .header("content-type", "application/json")
        .body(std::fs::read(&target.body)?);
    if let Some(auth) = &target.auth {
        request = request.header("authorization", auth);
    }
    Ok(request.send().await?.json().await?)
}

/// Peak RSS of a process, in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

async fn wait_for(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if client.get(url).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{url} did not answer within 60 s")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Writes a GraphQL request body for wrk.
fn body(dir: &Path, name: &str, query: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, json!({ "query": query }).to_string())?;
    Ok(path)
}

/// PostGraphile v4 from benches/peers, if installed (`npm ci --prefix benches/peers`).
fn start_postgraphile(database_url: &str, port: u16) -> Option<Child> {
    let cli = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/peers/node_modules/postgraphile/cli.js"
    );
    if !Path::new(cli).exists() {
        eprintln!(
            "compare: PostGraphile is not installed (npm ci --prefix benches/peers); skipping it"
        );
        return None;
    }
    Command::new("node")
        .args([
            cli,
            "--connection",
            database_url,
            "--schema",
            "public",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--disable-query-log",
            "--disable-default-mutations",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // BENCH_ONLY=candles runs the candle views' scenario alone (no wrk, no PostGraphile).
    let only_candles = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "candles");
    if only_candles {
        return candles::run().await;
    }
    let seconds = env_number("BENCH_SECONDS", 10);
    let users = env_number("BENCH_USERS", 1000) as u32;
    let port = free_port()?;
    let namespace = Namespace::create(|c| {
        c.http_addr = format!("127.0.0.1:{port}")
            .parse()
            .expect("loopback address");
    })
    .await?;
    let result = run(&namespace.config, seconds, users).await;
    namespace.drop_all().await?;
    result?;
    candles::run().await
}

async fn run(config: &meridian::Config, seconds: u64, users: u32) -> anyhow::Result<()> {
    let state = AppState::new(config.clone()).await?;
    migrate::run(state.stores()).await?;
    let end: chrono::DateTime<chrono::Utc> = "2026-11-01T00:00:00Z".parse()?;
    let shape = seed::Shape {
        users,
        assets: 20,
        days: 7,
        seed: 42,
        end,
        platforms: seed::Platforms::TRADING,
    };
    let report = seed::run(
        state.stores(),
        &shape,
        &state.relay_settings(),
        &seed::Progress::quiet(),
    )
    .await?;
    eprintln!(
        "compare: dataset seed 42: {} users, {} assets, {} holdings, {} trades, {} ticks (7 days of minutes x 20 assets)",
        report.users, report.assets, report.holdings, report.trades, report.ticks
    );
    let user: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM users ORDER BY created_at, id LIMIT 1")
            .fetch_one(state.stores().postgres().pool())
            .await?;
    let day_from = end - chrono::Duration::days(1);

    let base = format!("http://{}", config.http_addr);
    // The floor, in this process.
    let floor_port = free_port()?;
    let floor_listener = tokio::net::TcpListener::bind(("127.0.0.1", floor_port)).await?;
    let floor = floor::Floor {
        stores: state.stores().clone(),
        user,
        candles_from: day_from.timestamp() as u32,
        candles_to: end.timestamp() as u32,
    };
    tokio::spawn(async move { axum::serve(floor_listener, floor::router(floor)).await });
    // PostGraphile on the same database.
    let peer_port = free_port()?;
    let mut peer = start_postgraphile(&config.postgres_url, peer_port);
    if peer.is_some() {
        wait_for(&format!("http://127.0.0.1:{peer_port}/graphql")).await?;
    }

    let outcome = measure(
        &base,
        floor_port,
        peer.is_some().then_some(peer_port),
        config,
        user,
        day_from,
        end,
        seconds,
    )
    .await;
    if let Some(peer) = &mut peer {
        let _ = peer.kill();
        let _ = peer.wait();
    }
    outcome
}

/// Meridian as its own release process, fresh for each scenario so that its peak RSS is
/// that scenario's.
async fn start_meridian(config: &meridian::Config, base: &str) -> anyhow::Result<Child> {
    let child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("serve")
        .envs(namespace::server_env(config))
        .stdout(Stdio::null())
        .spawn()?;
    wait_for(&format!("{base}/healthz")).await?;
    Ok(child)
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    base: &str,
    floor_port: u16,
    peer_port: Option<u16>,
    config: &meridian::Config,
    user: uuid::Uuid,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
    seconds: u64,
) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("meridian-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let admin = namespace::operator_bearer(config)?;
    let floor = |path: &str| format!("http://127.0.0.1:{floor_port}{path}");
    let graphql = format!("{base}/graphql");
    let (from, to) = (
        from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let meridian = |name: &str, query: &str| -> anyhow::Result<Target> {
        Ok(Target {
            name: "meridian",
            url: graphql.clone(),
            body: body(&dir, name, query)?,
            auth: Some(admin.clone()),
        })
    };
    let floor_of = |name: &'static str, path: &str| -> anyhow::Result<Target> {
        Ok(Target {
            name: "floor",
            url: floor(path),
            body: body(&dir, &format!("floor-{name}"), "")?,
            auth: None,
        })
    };
    let mut scenarios = vec![
        Scenario {
            name: "dashboard top 50",
            stores: "redis, postgres, mongodb",
            targets: vec![
                meridian("dashboard", "{ leaderboard(name: \"volume\", top: 50) { entries { rank score user { id username profile { displayName } holdings { quantity asset { symbol name metadata { tags } price { price source } } } } } } }")?,
                floor_of("dashboard", "/dashboard")?,
            ],
        },
        Scenario {
            name: "50 users, holdings, assets",
            stores: "postgres",
            targets: vec![
                meridian("users", "{ users(first: 50) { edges { node { username holdings { quantity asset { name } } } } } }")?,
                floor_of("users", "/users")?,
            ],
        },
        Scenario {
            name: "leaderboard top 10",
            stores: "redis",
            targets: vec![
                meridian("leaderboard", "{ leaderboard(name: \"volume\", top: 10) { entries { rank score } } }")?,
                floor_of("leaderboard", "/leaderboard")?,
            ],
        },
        Scenario {
            name: "one user",
            stores: "postgres",
            targets: vec![
                meridian("user", &format!("{{ user(id: \"{user}\") {{ id username address }} }}"))?,
                floor_of("user", "/user")?,
            ],
        },
        Scenario {
            name: "a day of hourly candles",
            stores: "clickhouse (meridian: + postgres)",
            targets: vec![
                meridian("candles", &format!("{{ asset(symbol: \"BTC\") {{ candles(interval: HOUR, from: \"{from}\", to: \"{to}\") {{ open high low close volume ticks }} }} }}"))?,
                floor_of("candles", "/candles")?,
            ],
        },
        Scenario {
            name: "one profile",
            stores: "mongodb (meridian: + postgres)",
            targets: vec![
                meridian("profile", &format!("{{ user(id: \"{user}\") {{ profile {{ displayName bio }} }} }}"))?,
                floor_of("profile", "/profile")?,
            ],
        },
    ];
    if let Some(port) = peer_port {
        scenarios[1].targets.push(Target {
            name: "postgraphile",
            url: format!("http://127.0.0.1:{port}/graphql"),
            body: body(&dir, "postgraphile-users", "{ allUsers(first: 50, orderBy: [CREATED_AT_ASC, ID_ASC]) { nodes { username holdingsByUserId(orderBy: SYMBOL_ASC) { nodes { quantity assetBySymbol { name } } } } } }")?,
            auth: None,
        });
    }

    // Every target must give the same data before it is measured.
    let client = reqwest::Client::new();
    let mut meridian = start_meridian(config, base).await?;
    for scenario in &scenarios {
        let answers: Vec<Value> =
            futures::future::try_join_all(scenario.targets.iter().map(|t| post(&client, t)))
                .await?;
        anyhow::ensure!(
            answers[0]["errors"].is_null(),
            "{}: meridian answered {}",
            scenario.name,
            answers[0]
        );
        anyhow::ensure!(
            answers[0]["data"] == answers[1]["data"],
            "{}: meridian and the floor differ:\n{}\n{}",
            scenario.name,
            answers[0],
            answers[1]
        );
        if let Some(peer) = answers.get(2) {
            let ours: Vec<(String, usize)> = answers[0]["data"]["users"]["edges"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    let n = &e["node"];
                    (
                        n["username"].as_str().unwrap_or("").to_owned(),
                        n["holdings"].as_array().map_or(0, Vec::len),
                    )
                })
                .collect();
            let theirs: Vec<(String, usize)> = peer["data"]["allUsers"]["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| {
                    (
                        n["username"].as_str().unwrap_or("").to_owned(),
                        n["holdingsByUserId"]["nodes"]
                            .as_array()
                            .map_or(0, Vec::len),
                    )
                })
                .collect();
            anyhow::ensure!(
                ours == theirs && ours.len() == 50,
                "PostGraphile's answer differs: {peer}"
            );
        }
    }

    let _ = meridian.kill();
    let _ = meridian.wait();
    let mut rows = Vec::new();
    for scenario in &scenarios {
        let mut meridian = start_meridian(config, base).await?;
        let pid = meridian.id();
        let mut per_target: Vec<Row> = scenario
            .targets
            .iter()
            .map(|t| Row {
                scenario: scenario.name,
                target: t.name,
                ..Row::default()
            })
            .collect();
        // Alternating rounds: each concurrency level runs every target before the next.
        for (level, connections) in [1u32, 32, 64].into_iter().enumerate() {
            for (i, target) in scenario.targets.iter().enumerate() {
                let run = wrk(target, connections, seconds)?;
                match level {
                    0 => per_target[i].c1 = run,
                    1 => per_target[i].c32 = run,
                    _ => per_target[i].c64 = run,
                }
            }
        }
        per_target[0].rss_mib = peak_rss_mib(pid);
        let _ = meridian.kill();
        let _ = meridian.wait();
        eprintln!("compare: {} ({}) measured", scenario.name, scenario.stores);
        rows.extend(per_target);
    }
    print_table(&rows, seconds);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn print_table(rows: &[Row], seconds: u64) {
    println!();
    println!("wrk, loopback, {seconds} s per run; latency at 1 connection, throughput at 32 and 64; ratio = meridian / other");
    println!();
    println!("| scenario | server | p50 ms (c1) | p99 ms (c1) | req/s (c32) | req/s (c64) | failed | meridian peak RSS | meridian / this: p50, req/s c64 |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let meridian = rows
            .iter()
            .find(|r| r.scenario == row.scenario && r.target == "meridian");
        let ratio = match (row.target, meridian) {
            ("meridian", _) | (_, None) => String::new(),
            (_, Some(m)) => format!(
                "{:.2}x, {:.2}x",
                m.c1.p50_ms / row.c1.p50_ms,
                m.c64.rps / row.c64.rps
            ),
        };
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.0} | {:.0} | {} | {} | {} |",
            row.scenario,
            row.target,
            row.c1.p50_ms,
            row.c1.p99_ms,
            row.c32.rps,
            row.c64.rps,
            row.c1.errors + row.c32.errors + row.c64.errors,
            row.rss_mib.map_or(String::new(), |m| format!("{m:.0} MiB")),
            ratio
        );
    }
}
