//! Subscription fan-out against its floor, printing figures. For each number of
//! subscribers (1,000, 10,000 and 30,000 by default) it starts a server as a process of its
//! own (so that its memory and CPU are its own): first the release `meridian serve`, then
//! the floor (benches/support/fanout_floor.rs, this executable in another mode), connects
//! the subscribers to `tradeExecuted`, publishes trades to the same Redis channel at a
//! fixed rate, and measures delivery latency (publish to client), deliveries, server CPU
//! per million deliveries and server memory per idle subscriber. Last, Meridian alone with
//! `priceUpdated` subscribers (conflated per symbol, so fewer deliveries than updates).
//!
//!   cargo bench --bench fanout
//!   BENCH_FANOUT_LEVELS=1000,10000,30000  subscribers per level
//!   BENCH_FANOUT_DELIVERIES=50000         deliveries per second the publish rate aims at
//!   BENCH_SECONDS=10                      seconds of publishing per run
//!   BENCH_MAX_CONNECTIONS=15000           above this, subscriptions share connections
//!   BENCH_PRICE_SUBSCRIBERS=10000 BENCH_RATE=100   the priceUpdated run (0: skip it)
//!   BENCH_SERVER_WRAPPER="valgrind --tool=massif"   Meridian under a tool
//!
//! A process may hold at most `ulimit -n` sockets (20,000 on this project's CI machines,
//! a hard limit), so above BENCH_MAX_CONNECTIONS each connection carries several
//! subscriptions (graphql-transport-ws multiplexes them by id).
//!
//! Needs the local stack (`scripts/stack up`); loopback only; its namespaces are dropped.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use meridian::{migrate, seed, AppState, Config};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

#[path = "support/fanout_floor.rs"]
mod fanout_floor;
#[path = "support/namespace.rs"]
mod namespace;

use namespace::{env_number, Namespace};

/// Warm-up events carry sequence numbers from here on; they are not measured.
const WARM_UP: usize = 1 << 40;

/// (resident KiB, CPU seconds) of a process, from /proc.
fn usage(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    (rss, ticks / 100.0)
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    // The floor's own process: this executable, started by the bench below.
    if let Ok(listen) = std::env::var("FANOUT_FLOOR_LISTEN") {
        let redis = std::env::var("FANOUT_FLOOR_REDIS")?;
        let channel = std::env::var("FANOUT_FLOOR_CHANNEL")?;
        return runtime.block_on(fanout_floor::serve(&listen, &redis, &channel));
    }
    runtime.block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let namespace = Namespace::create(|c| {
        c.http_addr = format!("127.0.0.1:{port}")
            .parse()
            .expect("a loopback address");
        c.postgres_pool_size = 8;
    })
    .await?;
    let result = run(&namespace.config).await;
    namespace.drop_all().await?;
    result
}

/// A server under measurement.
struct Server {
    name: &'static str,
    child: std::process::Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_meridian(config: &Config) -> anyhow::Result<Server> {
    // BENCH_SERVER_WRAPPER runs the server under a tool (a profiler, say):
    // BENCH_SERVER_WRAPPER="valgrind --tool=massif".
    let wrapper = std::env::var("BENCH_SERVER_WRAPPER").unwrap_or_default();
    let mut words: Vec<&str> = wrapper.split_whitespace().collect();
    words.push(env!("CARGO_BIN_EXE_meridian"));
    let child = std::process::Command::new(words[0])
        .args(&words[1..])
        .arg("serve")
        .envs(namespace::server_env(config))
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let server = Server {
        name: "meridian",
        child,
        url: format!("ws://{}/graphql/ws", config.http_addr),
    };
    wait_for_port(&config.http_addr.to_string()).await?;
    Ok(server)
}

async fn start_floor(config: &Config, channel: &str) -> anyhow::Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let listen = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(std::env::current_exe()?)
        .env("FANOUT_FLOOR_LISTEN", &listen)
        .env("FANOUT_FLOOR_REDIS", &config.redis_url)
        .env("FANOUT_FLOOR_CHANNEL", channel)
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let server = Server {
        name: "floor",
        child,
        url: format!("ws://{listen}/"),
    };
    wait_for_port(&listen).await?;
    Ok(server)
}

async fn wait_for_port(addr: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "nothing listens on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn run(config: &Config) -> anyhow::Result<()> {
    let state = AppState::new(config.clone()).await?;
    migrate::run(state.stores()).await?;
    let shape = seed::Shape {
        users: 10,
        assets: 20,
        days: 1,
        seed: 1,
        end: chrono::Utc::now(),
        platforms: seed::Platforms::TRADING,
    };
    seed::run(
        state.stores(),
        &shape,
        &state.relay_settings(),
        &seed::Progress::quiet(),
    )
    .await?;
    let symbols = state.stores().postgres().asset_symbols().await?;
    let redis = state.stores().redis();
    let bearer = namespace::operator_bearer(config)?;
    let levels: Vec<usize> = std::env::var("BENCH_FANOUT_LEVELS")
        .unwrap_or_else(|_| "1000,10000,30000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let per_second = env_number("BENCH_FANOUT_DELIVERIES", 50_000);
    let seconds = env_number("BENCH_SECONDS", 10);
    let max_connections = env_number("BENCH_MAX_CONNECTIONS", 15_000).max(1) as usize;
    let cores = std::thread::available_parallelism()?.get();
    println!(
        "subscription fan-out, Meridian against its floor (release server processes, loopback, {cores} cores)"
    );

    let trades_channel = redis.trades_channel();
    let mut rows = Vec::new();
    for subscribers in levels {
        let rate = (per_second / subscribers as u64).clamp(1, 1000);
        let mut samples = Vec::new();
        for which in ["meridian", "floor"] {
            wait_unsubscribed(redis, &trades_channel).await?;
            let server = match which {
                "meridian" => start_meridian(config).await?,
                _ => start_floor(config, &trades_channel).await?,
            };
            let phase = Phase {
                subscribers,
                per_connection: subscribers.div_ceil(max_connections),
                rate,
                seconds,
                query: Box::new(|_| ("subscription { tradeExecuted { txHash } }".into(), 0)),
                channels: vec![trades_channel.clone()],
                payload: Box::new(trade_event),
                marker: "\"txHash\":\"0x",
                hex: true,
            };
            let outcome = run_phase(&server, redis, &bearer, &phase).await?;
            eprintln!(
                "fanout: {} with {subscribers} subscribers measured",
                server.name
            );
            samples.push(outcome.sample.clone());
            rows.push((server.name, subscribers, rate, outcome));
        }
        // Both servers must have sent the same message for the same trade.
        let parsed: Vec<serde_json::Value> = samples
            .iter()
            .map(|s| serde_json::from_str(s).unwrap_or_default())
            .collect();
        anyhow::ensure!(
            parsed[0] == parsed[1] && !parsed[0].is_null(),
            "meridian and the floor sent different messages:\n{}\n{}",
            samples[0],
            samples[1]
        );
    }
    print_table(&rows, seconds, max_connections);

    let price_subscribers = env_number("BENCH_PRICE_SUBSCRIBERS", 10_000) as usize;
    if price_subscribers > 0 {
        wait_unsubscribed(redis, &redis.price_channel(&symbols[0])).await?;
        let server = start_meridian(config).await?;
        let price_symbols = symbols.clone();
        let phase = Phase {
            subscribers: price_subscribers,
            per_connection: price_subscribers.div_ceil(max_connections),
            rate: env_number("BENCH_RATE", 100).max(1),
            seconds,
            query: Box::new(move |i| {
                let which = i % price_symbols.len();
                (
                    format!(
                        "subscription {{ priceUpdated(symbols: [\\\"{}\\\"]) {{ price }} }}",
                        price_symbols[which]
                    ),
                    which,
                )
            }),
            channels: symbols.iter().map(|s| redis.price_channel(s)).collect(),
            payload: Box::new({
                let symbols = symbols.clone();
                move |seq| {
                    let which = seq % symbols.len();
                    (
                        which,
                        format!(r#"{{"symbol":"{}","price":{seq},"ts":0}}"#, symbols[which]),
                    )
                }
            }),
            marker: "\"price\":",
            hex: false,
        };
        let outcome = run_phase(&server, redis, &bearer, &phase).await?;
        println!();
        println!(
            "priceUpdated, Meridian alone: {price_subscribers} subscribers on {} symbols, {} updates/s for {seconds} s (conflated per symbol: a subscriber that reads late gets the latest price, not every one)",
            symbols.len(),
            phase.rate
        );
        println!(
            "  delivered {} of {} updates x subscribers; p50 {:.2} ms, p99 {:.2} ms; {:.1} KiB per idle subscriber; {:.2} CPU s per million deliveries",
            outcome.delivered,
            outcome.expected,
            outcome.p50_ms,
            outcome.p99_ms,
            outcome.kib_per_subscriber,
            outcome.cpu_per_million
        );
    }
    Ok(())
}

fn trade_event(seq: usize) -> (usize, String) {
    let nil = uuid::Uuid::nil();
    let event = format!(
        r#"{{"eventId":"{nil}","tradeId":"{nil}","txHash":"0x{seq:064x}","userId":"{nil}","symbol":"BTC","side":"buy","quantity":1.0,"price":1.0,"executedAt":"2026-01-01T00:00:00Z"}}"#
    );
    (0, event)
}

/// Until no server holds a subscription to `channel` (the previous server is gone).
async fn wait_unsubscribed(
    redis: &meridian::store::redis::Redis,
    channel: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if numsub(redis, channel).await? == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "a previous server still subscribes to {channel}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn numsub(redis: &meridian::store::redis::Redis, channel: &str) -> anyhow::Result<i64> {
    let mut conn = redis.conn();
    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut conn)
        .await?;
    Ok(counts.first().map_or(0, |(_, n)| *n))
}

/// One measured run: what subscribers ask for and what is published.
struct Phase {
    subscribers: usize,
    /// Subscriptions per websocket connection.
    per_connection: usize,
    rate: u64,
    seconds: u64,
    /// The subscription query of subscriber `i`, and the channel it listens to.
    query: Box<dyn Fn(usize) -> (String, usize)>,
    /// Channels, and the payload of update `seq` with the channel it goes to.
    channels: Vec<String>,
    payload: Box<dyn Fn(usize) -> (usize, String)>,
    /// Where the sequence number starts in a message, and how it is written.
    marker: &'static str,
    hex: bool,
}

#[derive(Clone)]
struct Outcome {
    connections: usize,
    delivered: u64,
    expected: u64,
    p50_ms: f64,
    p99_ms: f64,
    kib_per_subscriber: f64,
    cpu_per_million: f64,
    /// The message the first subscriber got for the first measured update.
    sample: String,
}

/// What one client connection's task saw.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u32>,
    sample: Option<String>,
}

/// The client: one task per connection, reading messages, taking the sequence number out
/// of each without parsing the JSON, and keeping its own latencies (no shared lock).
async fn connect(
    url: &str,
    bearer: &str,
    queries: Vec<String>,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    request
        .headers_mut()
        .insert("Authorization", bearer.parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    socket
        .send(Message::text(r#"{"type":"connection_init"}"#))
        .await?;
    while let Some(message) = socket.next().await {
        if message?.to_text()?.contains("connection_ack") {
            break;
        }
    }
    for (i, query) in queries.iter().enumerate() {
        let subscribe = format!(
            r#"{{"type":"subscribe","id":"{}","payload":{{"query":"{query}"}}}}"#,
            i + 1
        );
        socket.send(Message::text(subscribe)).await?;
    }
    Ok(socket)
}

async fn run_phase(
    server: &Server,
    redis: &meridian::store::redis::Redis,
    bearer: &str,
    phase: &Phase,
) -> anyhow::Result<Outcome> {
    let pid = server.child.id();
    let (rss_idle, _) = usage(pid);
    let updates = (phase.rate * phase.seconds) as usize;
    let origin = Instant::now();
    let published: Arc<Vec<AtomicU64>> =
        Arc::new((0..updates).map(|_| AtomicU64::new(0)).collect());
    let received = Arc::new(AtomicU64::new(0));
    // Every message, warm-up ones too.
    let arrived = Arc::new(AtomicU64::new(0));
    // Subscriptions that have had their first (warm-up) message: live on the server.
    let ready = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut per_channel = vec![0u64; phase.channels.len()];
    let queries: Vec<(String, usize)> = (0..phase.subscribers).map(|i| (phase.query)(i)).collect();
    for (_, channel) in &queries {
        per_channel[*channel] += 1;
    }
    let groups: Vec<Vec<String>> = queries
        .chunks(phase.per_connection)
        .map(|chunk| chunk.iter().map(|(q, _)| q.clone()).collect())
        .collect();
    let connections = groups.len();
    let mut connecting = futures::stream::iter(groups)
        .map(|queries| connect(&server.url, bearer, queries))
        .buffer_unordered(200);
    let (marker, hex) = (phase.marker, phase.hex);
    let mut tasks = Vec::with_capacity(connections);
    let mut first = true;
    while let Some(socket) = connecting.next().await {
        let socket = socket?;
        let (published, received, arrived, ready, mut stopped) = (
            published.clone(),
            received.clone(),
            arrived.clone(),
            ready.clone(),
            stopped.clone(),
        );
        let keep_sample = std::mem::take(&mut first);
        let subscriptions = phase.per_connection;
        tasks.push(tokio::spawn(async move {
            let (_sink, mut incoming) = socket.split();
            let mut seen = Seen::default();
            let mut warm = vec![false; subscriptions];
            loop {
                let message = tokio::select! {
                    message = incoming.next() => message,
                    _ = stopped.changed() => break,
                };
                let Some(Ok(message)) = message else { break };
                arrived.fetch_add(1, Ordering::Relaxed);
                let Ok(text) = message.to_text() else {
                    continue;
                };
                let Some(start) = text.find(marker) else {
                    continue;
                };
                let digits = &text[start + marker.len()..];
                let end = digits
                    .find(|c: char| !c.is_ascii_hexdigit())
                    .unwrap_or(digits.len());
                let seq = if hex {
                    usize::from_str_radix(&digits[..end], 16)
                } else {
                    digits[..end].parse::<usize>()
                };
                let Ok(seq) = seq else { continue };
                if seq >= WARM_UP {
                    let id = text
                        .find("\"id\":\"")
                        .and_then(|at| {
                            let rest = &text[at + 6..];
                            rest[..rest.find('"')?].parse::<usize>().ok()
                        })
                        .unwrap_or(1);
                    if let Some(flag) = warm.get_mut(id.wrapping_sub(1)) {
                        if !*flag {
                            *flag = true;
                            ready.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    continue;
                }
                let now = origin.elapsed().as_micros() as u64;
                if let Some(sent) = published.get(seq) {
                    seen.latencies_us
                        .push(now.saturating_sub(sent.load(Ordering::Acquire)) as u32);
                }
                // Subscription "1"'s message: the floor writes the same bytes for it.
                if keep_sample && seq == 0 && seen.sample.is_none() && text.contains(r#""id":"1""#)
                {
                    seen.sample = Some(text.to_owned());
                }
                received.fetch_add(1, Ordering::Relaxed);
            }
            seen
        }));
    }
    drop(connecting);
    // Warm-up: publish to every channel until every subscription has had a message (it
    // is then live on the server), then until deliveries stop moving.
    let mut conn = redis.conn();
    let started = Instant::now();
    let mut warm_seq = WARM_UP;
    while ready.load(Ordering::Relaxed) < phase.subscribers as u64 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "{}: only {} of {} subscriptions went live",
            server.name,
            ready.load(Ordering::Relaxed),
            phase.subscribers
        );
        for channel in 0..phase.channels.len() {
            let (_, payload) = (phase.payload)(warm_seq + channel);
            let _: i64 = redis::cmd("PUBLISH")
                .arg(&phase.channels[channel])
                .arg(payload)
                .query_async(&mut conn)
                .await?;
        }
        warm_seq += phase.channels.len();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    settle(&arrived).await;
    let (rss_loaded, cpu_before) = usage(pid);

    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / phase.rate));
    let mut expected = 0u64;
    for seq in 0..updates {
        ticker.tick().await;
        let (channel, payload) = (phase.payload)(seq);
        published[seq].store(origin.elapsed().as_micros() as u64, Ordering::Release);
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&phase.channels[channel])
            .arg(payload)
            .query_async(&mut conn)
            .await?;
        expected += per_channel[channel];
    }
    settle(&arrived).await;
    let (_, cpu_after) = usage(pid);
    let _ = stop.send(true);
    let mut all = Vec::new();
    let mut sample = String::new();
    for task in tasks {
        let seen = task.await?;
        all.extend(seen.latencies_us);
        if let Some(text) = seen.sample {
            sample = text;
        }
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let delivered = received.load(Ordering::Relaxed);
    Ok(Outcome {
        connections,
        delivered,
        expected,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        kib_per_subscriber: rss_loaded.saturating_sub(rss_idle) as f64 / phase.subscribers as f64,
        cpu_per_million: (cpu_after - cpu_before) / delivered.max(1) as f64 * 1e6,
        sample,
    })
}

/// Until the delivery count stops moving for half a second.
async fn settle(received: &AtomicU64) {
    let mut last = u64::MAX;
    while received.load(Ordering::Relaxed) != last {
        last = received.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print_table(rows: &[(&str, usize, u64, Outcome)], seconds: u64, max_connections: usize) {
    println!();
    println!(
        "tradeExecuted {{ txHash }}: every trade to every subscriber; {seconds} s of publishing per run; up to {max_connections} connections, then several subscriptions per connection"
    );
    println!();
    println!("| subscribers | connections | trades/s | server | delivered | p50 ms | p99 ms | CPU s per million deliveries | KiB per idle subscriber | meridian / floor: p99, CPU, memory |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, subscribers, rate, o) in rows {
        let ratio = match rows
            .iter()
            .find(|(n, s, _, _)| *n == "meridian" && s == subscribers)
        {
            Some((_, _, _, m)) if *name == "floor" => format!(
                "{:.2}x, {:.2}x, {:.2}x",
                m.p99_ms / o.p99_ms.max(0.001),
                m.cpu_per_million / o.cpu_per_million.max(0.001),
                m.kib_per_subscriber / o.kib_per_subscriber.max(0.001)
            ),
            _ => String::new(),
        };
        println!(
            "| {subscribers} | {} | {rate} | {name} | {} of {} | {:.2} | {:.2} | {:.2} | {:.1} | {ratio} |",
            o.connections,
            o.delivered,
            o.expected,
            o.p50_ms,
            o.p99_ms,
            o.cpu_per_million,
            o.kib_per_subscriber,
        );
    }
}
