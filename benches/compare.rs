//! Meridian against the floor (benches/support/floor.rs) and against PostGraphile 4 and 5,
//! side by side in one run, with the same load generator (wrk) on loopback: p50/p99
//! latency at one connection, throughput at 32 and 64, and Meridian's peak RSS per
//! scenario. Then the cost as the data grows: the dataset at 1x, 10x and 100x (users,
//! trades and days of ticks), each scenario's p50 at one connection and throughput at 64,
//! with two scenarios only Meridian runs (30 days of daily candles and `stats24h`, uncached,
//! for every asset).
//!
//!   scripts/bench          (installs wrk and PostGraphile, then runs this and the rest)
//!   cargo bench --bench compare     BENCH_SECONDS=10 BENCH_USERS=1000 BENCH_SCALES=1,10,100
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

/// PostGraphile on the bench's database: v4 (benches/peers) and v5 (benches/peers/v5),
/// each if installed (`npm ci --prefix benches/peers`, and `--prefix benches/peers/v5`).
mod peers {
    use std::process::{Child, Command, Stdio};

    pub struct Peer {
        pub name: &'static str,
        pub port: u16,
        /// The bench's query in this version's names.
        pub query: &'static str,
        child: Child,
    }

    pub struct Peers(pub Vec<Peer>);

    impl Drop for Peers {
        fn drop(&mut self) {
            for peer in &mut self.0 {
                let _ = peer.child.kill();
                let _ = peer.child.wait();
            }
        }
    }

    const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers");

    /// The arguments both versions take: the database, its public schema, where to listen.
    fn serving(database_url: &str, port: u16) -> Vec<String> {
        [
            "--connection",
            database_url,
            "--schema",
            "public",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    pub async fn start(database_url: &str) -> anyhow::Result<Peers> {
        let mut peers = Peers(Vec::new());
        let v4 = format!("{ROOT}/node_modules/postgraphile/cli.js");
        if std::path::Path::new(&v4).exists() {
            let port = super::free_port()?;
            let child = Command::new("node")
                .arg(&v4)
                .args(serving(database_url, port))
                .args(["--disable-query-log", "--disable-default-mutations"])
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()?;
            peers.0.push(Peer {
                name: "PostGraphile 4.14.1",
                port,
                query: "{ allUsers(first: 50, orderBy: [CREATED_AT_ASC, ID_ASC]) { nodes { username holdingsByUserId(orderBy: SYMBOL_ASC) { nodes { quantity assetBySymbol { name } } } } } }",
                child,
            });
        } else {
            eprintln!("compare: PostGraphile 4 is not installed (npm ci --prefix benches/peers); skipping it");
        }
        let v5 = format!("{ROOT}/v5/node_modules/postgraphile/dist/cli-run.js");
        if std::path::Path::new(&v5).exists() {
            let port = super::free_port()?;
            // Node 20 lacks Promise.withResolvers, which v5 calls; the polyfill adds it.
            let child = Command::new("node")
                .args(["--require", &format!("{ROOT}/v5/polyfill.cjs"), &v5])
                .args(["--preset", "postgraphile/presets/amber"])
                .args(serving(database_url, port))
                .current_dir(format!("{ROOT}/v5"))
                .env("GRAPHILE_ENV", "production")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            peers.0.push(Peer {
                name: "PostGraphile 5.1.5",
                port,
                query: "{ allUsers(first: 50, orderBy: [CREATED_AT_ASC, ROW_ID_ASC]) { nodes { username holdingsByUserId(orderBy: SYMBOL_ASC) { nodes { quantity assetBySymbol { name } } } } } }",
                child,
            });
        } else {
            eprintln!("compare: PostGraphile 5 is not installed (npm ci --prefix benches/peers/v5); skipping it");
        }
        for peer in &peers.0 {
            super::wait_for(&format!("http://127.0.0.1:{}/graphql", peer.port)).await?;
        }
        Ok(peers)
    }
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
    // Sizes of the dataset, as multiples of the first: users, trades and days of ticks.
    let scales: Vec<u32> = std::env::var("BENCH_SCALES")
        .unwrap_or_else(|_| "1,10,100".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .filter(|n| *n > 0)
        .collect();
    let mut grown = Vec::new();
    for (i, scale) in scales.iter().copied().enumerate() {
        let port = free_port()?;
        let namespace = Namespace::create(|c| {
            c.http_addr = format!("127.0.0.1:{port}")
                .parse()
                .expect("loopback address");
            // Seeding 100x writes millions of rows in statements that take longer than a
            // request may.
            c.store_timeout_ms = 600_000;
        })
        .await?;
        let result = run(&namespace.config, seconds, users, scale, i == 0).await;
        namespace.drop_all().await?;
        grown.push(result?);
    }
    print_growth(&grown, seconds);
    candles::run().await
}

/// What one size of the dataset gave.
struct Size {
    scale: u32,
    seeded: seed::SeedReport,
    seed_secs: f64,
    /// (scenario, p50 ms at c1, req/s at c64, bytes of the answer)
    runs: Vec<(&'static str, Run, Run, usize)>,
}

/// Seeds a dataset `scale` times the base size; on the first, measures Meridian against
/// the floor and PostGraphile; on every one, measures Meridian's scenarios alone.
async fn run(
    config: &meridian::Config,
    seconds: u64,
    users: u32,
    scale: u32,
    compare: bool,
) -> anyhow::Result<Size> {
    let state = AppState::new(config.clone()).await?;
    migrate::run(state.stores()).await?;
    // The last tick on the hour before now: `stats24h` reads the day before now.
    let now = chrono::Utc::now().timestamp();
    let end = chrono::DateTime::from_timestamp(now - now.rem_euclid(3600), 0)
        .ok_or_else(|| anyhow::anyhow!("now is out of range"))?;
    let shape = seed::Shape {
        users: users * scale,
        assets: 20,
        days: 7 * scale,
        seed: 42,
        end,
        platforms: seed::Platforms::TRADING,
    };
    let seed_started = std::time::Instant::now();
    let report = seed::run(
        state.stores(),
        &shape,
        &state.relay_settings(),
        &seed::Progress::quiet(),
    )
    .await?;
    let seed_secs = seed_started.elapsed().as_secs_f64();
    eprintln!(
        "compare: dataset {scale}x, seed 42: {} users, {} assets, {} holdings, {} trades, {} ticks ({} days of minutes x 20 assets), seeded in {seed_secs:.0} s",
        report.users, report.assets, report.holdings, report.trades, report.ticks, shape.days
    );
    let user: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM users ORDER BY created_at, id LIMIT 1")
            .fetch_one(state.stores().postgres().pool())
            .await?;
    let window = Window {
        user,
        day_from: end - chrono::Duration::days(1),
        month_from: end - chrono::Duration::days(30),
        end,
    };
    let base = format!("http://{}", config.http_addr);
    if compare {
        let floor_port = free_port()?;
        let floor_listener = tokio::net::TcpListener::bind(("127.0.0.1", floor_port)).await?;
        let floor = floor::Floor {
            stores: state.stores().clone(),
            user,
            candles_from: window.day_from.timestamp() as u32,
            candles_to: end.timestamp() as u32,
        };
        let served =
            tokio::spawn(async move { axum::serve(floor_listener, floor::router(floor)).await });
        let peers = peers::start(&config.postgres_url).await?;
        let outcome = measure(&base, floor_port, &peers, config, &window, seconds).await;
        drop(peers);
        served.abort();
        outcome?;
    }
    let runs = measure_growth(&base, config, &window, seconds).await?;
    Ok(Size {
        scale,
        seeded: report,
        seed_secs,
        runs,
    })
}

/// The user and the time windows the scenarios ask for.
struct Window {
    user: uuid::Uuid,
    day_from: chrono::DateTime<chrono::Utc>,
    month_from: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Meridian's query for each scenario: the six of the comparison, then two that only
/// Meridian runs (30 days of daily candles for every asset, and every asset's `stats24h`).
fn meridian_queries(w: &Window, all: bool) -> Vec<(&'static str, &'static str, String)> {
    let (user, from, month, to) = (
        w.user,
        rfc3339(w.day_from),
        rfc3339(w.month_from),
        rfc3339(w.end),
    );
    let mut queries = vec![
        ("dashboard top 50", "redis, postgres, mongodb", "{ leaderboard(name: \"volume\", top: 50) { entries { rank score user { id username profile { displayName } holdings { quantity asset { symbol name metadata { tags } price { price source } } } } } } }".to_owned()),
        ("50 users, holdings, assets", "postgres", "{ users(first: 50) { edges { node { username holdings { quantity asset { name } } } } } }".to_owned()),
        ("leaderboard top 10", "redis", "{ leaderboard(name: \"volume\", top: 10) { entries { rank score } } }".to_owned()),
        ("one user", "postgres", format!("{{ user(id: \"{user}\") {{ id username address }} }}")),
        ("a day of hourly candles", "clickhouse (meridian: + postgres)", format!("{{ asset(symbol: \"BTC\") {{ candles(interval: HOUR, from: \"{from}\", to: \"{to}\") {{ open high low close volume ticks }} }} }}")),
        ("one profile", "mongodb (meridian: + postgres)", format!("{{ user(id: \"{user}\") {{ profile {{ displayName bio }} }} }}")),
    ];
    if all {
        queries.push(("30 daily candles, 20 assets", "clickhouse + postgres", format!("{{ assets(first: 20) {{ edges {{ node {{ symbol candles(interval: DAY, from: \"{month}\", to: \"{to}\") {{ open high low close volume ticks }} }} }} }} }}")));
        queries.push(("stats24h, 20 assets (uncached)", "clickhouse + postgres", "{ assets(first: 20) { edges { node { symbol stats24h { open last high low volume } } } } }".to_owned()));
    }
    queries
}

/// Meridian alone on every scenario: p50 at one connection, throughput at 64. The
/// `stats24h` cache is off, so that every request computes its statistics.
async fn measure_growth(
    base: &str,
    config: &meridian::Config,
    window: &Window,
    seconds: u64,
) -> anyhow::Result<Vec<(&'static str, Run, Run, usize)>> {
    let dir = std::env::temp_dir().join(format!("meridian-growth-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let admin = namespace::operator_bearer(config)?;
    let client = reqwest::Client::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("serve")
        .envs(namespace::server_env(config))
        .env("MERIDIAN_STATS_CACHE_TTL_SECS", "0")
        .stdout(Stdio::null())
        .spawn()?;
    wait_for(&format!("{base}/healthz")).await?;
    let mut runs = Vec::new();
    let outcome: anyhow::Result<()> = async {
        for (i, (name, _, query)) in meridian_queries(window, true).into_iter().enumerate() {
            let target = Target {
                name: "meridian",
                url: format!("{base}/graphql"),
                body: body(&dir, &format!("growth-{i}"), &query)?,
                auth: Some(admin.clone()),
            };
            let answer = post(&client, &target).await?;
            anyhow::ensure!(
                answer["errors"].is_null() && !answer["data"].is_null(),
                "{name}: meridian answered {answer}"
            );
            let size = answer["data"].to_string().len();
            let c1 = wrk(&target, 1, seconds)?;
            let c64 = wrk(&target, 64, seconds)?;
            runs.push((name, c1, c64, size));
        }
        Ok(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    outcome.map(|()| runs)
}

/// The growth table: each scenario's p50 and throughput per size, against the first size.
fn print_growth(sizes: &[Size], seconds: u64) {
    let Some(first) = sizes.first() else { return };
    println!();
    println!("Cost as the data grows: Meridian alone, wrk {seconds} s per run; p50 at 1 connection, req/s at 64; ratio = this size / the first (p50, req/s)");
    println!();
    for size in sizes {
        println!(
            "- {}x: {} users, {} holdings, {} trades, {} ticks; seeded in {:.0} s",
            size.scale,
            size.seeded.users,
            size.seeded.holdings,
            size.seeded.trades,
            size.seeded.ticks,
            size.seed_secs
        );
    }
    println!();
    let mut header = "| scenario |".to_owned();
    let mut rule = "|---|".to_owned();
    for size in sizes {
        header.push_str(&format!(" {}x p50 ms / req/s c64 |", size.scale));
        rule.push_str("---|");
    }
    header.push_str(" answer bytes (first / last) |");
    rule.push_str("---|");
    println!("{header}");
    println!("{rule}");
    for (i, (name, ..)) in first.runs.iter().enumerate() {
        let mut line = format!("| {name} |");
        for size in sizes {
            let Some((_, c1, c64, _)) = size.runs.get(i) else {
                line.push_str(" |");
                continue;
            };
            let (_, base1, base64, _) = first.runs[i];
            let ratio = if size.scale == first.scale {
                String::new()
            } else {
                format!(
                    " ({:.2}x, {:.2}x)",
                    c1.p50_ms / base1.p50_ms,
                    c64.rps / base64.rps
                )
            };
            line.push_str(&format!(
                " {:.2} / {:.0}{ratio}{} |",
                c1.p50_ms,
                c64.rps,
                if c1.errors + c64.errors > 0 {
                    format!(", {} failed", c1.errors + c64.errors)
                } else {
                    String::new()
                }
            ));
        }
        let last = sizes.last().and_then(|s| s.runs.get(i)).map_or(0, |r| r.3);
        line.push_str(&format!(" {} / {last} |", first.runs[i].3));
        println!("{line}");
    }
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

async fn measure(
    base: &str,
    floor_port: u16,
    peers: &peers::Peers,
    config: &meridian::Config,
    window: &Window,
    seconds: u64,
) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("meridian-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let admin = namespace::operator_bearer(config)?;
    let floor_paths = [
        "/dashboard",
        "/users",
        "/leaderboard",
        "/user",
        "/candles",
        "/profile",
    ];
    let mut scenarios = Vec::new();
    for (i, (name, stores, query)) in meridian_queries(window, false).into_iter().enumerate() {
        let path = floor_paths[i];
        scenarios.push(Scenario {
            name,
            stores,
            targets: vec![
                Target {
                    name: "meridian",
                    url: format!("{base}/graphql"),
                    body: body(&dir, &format!("meridian-{i}"), &query)?,
                    auth: Some(admin.clone()),
                },
                Target {
                    name: "floor",
                    url: format!("http://127.0.0.1:{floor_port}{path}"),
                    body: body(&dir, &format!("floor-{i}"), "")?,
                    auth: None,
                },
            ],
        });
    }
    for (i, peer) in peers.0.iter().enumerate() {
        scenarios[1].targets.push(Target {
            name: peer.name,
            url: format!("http://127.0.0.1:{}/graphql", peer.port),
            body: body(&dir, &format!("peer-{i}"), peer.query)?,
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
        for peer in answers.iter().skip(2) {
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
