//! Subscription fan-out benchmark, printing figures. Starts the release `meridian serve`
//! as a process of its own (so that its memory and CPU are its own), connects many
//! websocket subscribers to `priceUpdated` (each to one of the seeded symbols), publishes
//! price events to Redis at a fixed rate, and measures delivery latency, lost messages,
//! server memory per subscriber and server CPU.
//!
//!   cargo bench --bench fanout                                # 10,000 subscribers, 100 updates/s, 20 s
//!   BENCH_SUBSCRIBERS=5000 BENCH_RATE=200 BENCH_SECONDS=30 cargo bench --bench fanout
//!
//! Needs the local stack (`scripts/stack up`); loopback only; its namespaces are dropped.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use meridian::{migrate, seed, AppState, Config};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

#[path = "support/namespace.rs"]
mod namespace;

use namespace::{env_number, Namespace};

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let subscribers = env_number("BENCH_SUBSCRIBERS", 10_000) as usize;
    let rate = env_number("BENCH_RATE", 100).max(1);
    let seconds = env_number("BENCH_SECONDS", 20);
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
    let result = run(&namespace.config, subscribers, rate, seconds).await;
    namespace.drop_all().await?;
    result
}

async fn run(config: &Config, subscribers: usize, rate: u64, seconds: u64) -> anyhow::Result<()> {
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

    let envs = namespace::server_env(config);
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("serve")
        .envs(envs)
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let pid = server.id();
    let outcome = measure(config, &state, &symbols, pid, subscribers, rate, seconds).await;
    let _ = server.kill();
    let _ = server.wait();
    outcome
}

/// One measured phase: what subscribers ask for and what is published.
struct Phase {
    name: &'static str,
    subscribers: usize,
    rate: u64,
    seconds: u64,
    /// The subscription query of subscriber `i`, and the channel it ends up on.
    query: Box<dyn Fn(usize) -> (String, usize)>,
    /// Channels, and the payload of update `seq` with the channel it goes to.
    channels: Vec<String>,
    payload: Box<dyn Fn(usize) -> (usize, String)>,
    /// Where the sequence number starts in a message, and how it is written.
    marker: &'static str,
    hex: bool,
}

async fn measure(
    config: &Config,
    state: &AppState,
    symbols: &[String],
    pid: u32,
    subscribers: usize,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<()> {
    let addr = config.http_addr;
    let ready = Instant::now();
    while reqwest::get(format!("http://{addr}/healthz"))
        .await
        .is_err()
    {
        anyhow::ensure!(
            ready.elapsed() < Duration::from_secs(30),
            "meridian did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "meridian subscription fan-out (release server process, loopback, {} cores)",
        std::thread::available_parallelism()?.get()
    );
    let redis = &state.stores().redis();
    let price_symbols = symbols.to_vec();
    let prices = Phase {
        name: "priceUpdated (conflated per symbol)",
        subscribers,
        rate,
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
            let symbols = symbols.to_vec();
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
    let trade_subscribers = env_number("BENCH_TRADE_SUBSCRIBERS", 1_000) as usize;
    let trades = Phase {
        name: "tradeExecuted (queued, not conflated)",
        subscribers: trade_subscribers,
        rate: env_number("BENCH_TRADE_RATE", 100).max(1),
        seconds,
        query: Box::new(|_| ("subscription { tradeExecuted { txHash } }".into(), 0)),
        channels: vec![redis.trades_channel()],
        payload: Box::new(|seq| {
            let nil = uuid::Uuid::nil();
            let event = format!(
                r#"{{"eventId":"{nil}","tradeId":"{nil}","txHash":"0x{seq:064x}","userId":"{nil}","symbol":"BTC","side":"buy","quantity":1.0,"price":1.0,"executedAt":"2026-01-01T00:00:00Z"}}"#
            );
            (0, event)
        }),
        marker: "\"txHash\":\"0x",
        hex: true,
    };
    // The small queued phase first, so that the price phase measures memory from a quiet server.
    let bearer = namespace::operator_bearer(config)?;
    run_phase(addr, redis, pid, &bearer, trades).await?;
    run_phase(addr, redis, pid, &bearer, prices).await
}

async fn run_phase(
    addr: std::net::SocketAddr,
    redis: &meridian::store::redis::Redis,
    pid: u32,
    bearer: &str,
    phase: Phase,
) -> anyhow::Result<()> {
    let (rss_idle, _) = usage(pid);
    let updates = (phase.rate * phase.seconds) as usize;
    let origin = Instant::now();
    let published: Arc<Vec<AtomicU64>> =
        Arc::new((0..updates).map(|_| AtomicU64::new(0)).collect());
    let latencies: Arc<Mutex<Vec<u32>>> = Arc::new(Mutex::new(Vec::new()));
    let received = Arc::new(AtomicU64::new(0));
    let mut per_channel = vec![0u64; phase.channels.len()];

    let connect_started = Instant::now();
    let mut tasks = Vec::with_capacity(phase.subscribers);
    let queries: Vec<(String, usize)> = (0..phase.subscribers).map(|i| (phase.query)(i)).collect();
    for (_, channel) in &queries {
        per_channel[*channel] += 1;
    }
    let mut connecting = futures::stream::iter(queries.into_iter().map(|(query, _)| query))
        .map(|query| async move {
            let mut request = format!("ws://{addr}/graphql/ws").into_client_request()?;
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
            let subscribe =
                format!(r#"{{"type":"subscribe","id":"1","payload":{{"query":"{query}"}}}}"#);
            socket.send(Message::text(subscribe)).await?;
            Ok::<_, anyhow::Error>(socket)
        })
        .buffer_unordered(200);
    let (marker, hex) = (phase.marker, phase.hex);
    while let Some(socket) = connecting.next().await {
        let socket = socket?;
        let (published, latencies, received) =
            (published.clone(), latencies.clone(), received.clone());
        tasks.push(tokio::spawn(async move {
            let (_, mut incoming) = socket.split();
            while let Some(Ok(message)) = incoming.next().await {
                let Ok(text) = message.to_text() else {
                    continue;
                };
                let Some(start) = text.find(marker) else {
                    continue;
                };
                let digits: String = text[start + marker.len()..]
                    .chars()
                    .take_while(char::is_ascii_hexdigit)
                    .collect();
                let seq = if hex {
                    usize::from_str_radix(&digits, 16)
                } else {
                    digits.parse::<usize>()
                };
                let Ok(seq) = seq else { continue };
                let now = origin.elapsed().as_micros() as u64;
                if let Some(sent) = published.get(seq) {
                    if let Ok(mut all) = latencies.lock() {
                        all.push(now.saturating_sub(sent.load(Ordering::Acquire)) as u32);
                    }
                }
                received.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    drop(connecting);
    let connect_secs = connect_started.elapsed().as_secs_f64();
    // Every channel is subscribed by the server before publishing starts.
    let waited = Instant::now();
    loop {
        let mut conn = redis.conn();
        let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&phase.channels)
            .query_async(&mut conn)
            .await?;
        if counts.iter().all(|(_, n)| *n >= 1) {
            break;
        }
        anyhow::ensure!(
            waited.elapsed() < Duration::from_secs(60),
            "the server did not subscribe"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_loaded, cpu_before) = usage(pid);

    let mut conn = redis.conn();
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / phase.rate));
    let mut expected = 0u64;
    let started = Instant::now();
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
    let publish_secs = started.elapsed().as_secs_f64();
    let (_, cpu_after) = usage(pid);
    // Let the last deliveries arrive: until the count stops moving.
    let mut last = u64::MAX;
    while received.load(Ordering::Relaxed) != last {
        last = received.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    let mut all = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let got = received.load(Ordering::Relaxed);
    println!();
    println!("{}", phase.name);
    println!(
        "  subscribers      {} on {} channels; connected in {connect_secs:.1} s",
        phase.subscribers,
        phase.channels.len()
    );
    println!(
        "  updates          {updates} published at {}/s over {publish_secs:.1} s",
        phase.rate
    );
    println!(
        "  deliveries       {got} of {expected} expected; missing: {}",
        expected.saturating_sub(got)
    );
    println!(
        "  latency          p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (publish to client)",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "  server memory    {:.1} MiB before, {:.1} MiB with subscribers: {:.1} KiB per subscriber",
        rss_idle as f64 / 1024.0,
        rss_loaded as f64 / 1024.0,
        (rss_loaded.saturating_sub(rss_idle)) as f64 / phase.subscribers as f64
    );
    println!(
        "  server CPU       {:.2} cores while publishing",
        (cpu_after - cpu_before) / publish_secs
    );
    Ok(())
}
