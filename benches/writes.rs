//! Write-path benchmark against the local stack (`scripts/stack up`), printing figures:
//!
//! 1. sustained NDJSON ingestion through `POST /ingest/prices` into ClickHouse;
//! 2. the relay's delivery rate: trades recorded with the relay off, then drained.
//!
//!   cargo bench --bench writes                 # 2,000,000 ticks in 4 streams, 5,000 trades
//!   BENCH_TICKS=4000000 BENCH_STREAMS=8 BENCH_TRADES=20000 cargo bench --bench writes
//!
//! It works in a Postgres database, ClickHouse database, Mongo database and Redis prefix of
//! its own, dropped at the end, and sends traffic only to 127.0.0.1.

use std::{collections::HashMap, time::Instant};

use meridian::{
    events::{relay, TradeEvent},
    migrate, seed,
    store::postgres::NewTrade,
    AppState, Config,
};
use rust_decimal::Decimal;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The stack's addresses: `MERIDIAN_*` variables, else `.stack/env`.
fn stack_vars() -> HashMap<String, String> {
    let mut vars = HashMap::new();
    if let Ok(text) = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.stack/env")) {
        for line in text.lines() {
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                vars.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    vars.extend(std::env::vars().filter(|(k, _)| k.starts_with("MERIDIAN_")));
    vars
}

fn with_path(url: &str, path: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let base = url[scheme_end..]
        .find('/')
        .map_or(url, |i| &url[..scheme_end + i]);
    format!("{base}/{path}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let ticks = env_number("BENCH_TICKS", 2_000_000);
    let streams = env_number("BENCH_STREAMS", 4).max(1);
    let trades = env_number("BENCH_TRADES", 5_000);
    let vars = stack_vars();
    let var = |k: &str| {
        vars.get(k)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("{k} is not set: run scripts/stack up"))
    };

    let name = format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let admin_url = var("MERIDIAN_POSTGRES_URL")?;
    let admin = sqlx::PgPool::connect(&admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await?;
    let config = Config {
        http_addr: "127.0.0.1:0".parse()?,
        postgres_url: with_path(&admin_url, &name),
        postgres_pool_size: 16,
        redis_url: var("MERIDIAN_REDIS_URL")?,
        redis_prefix: format!("{name}:"),
        clickhouse_url: var("MERIDIAN_CLICKHOUSE_URL")?,
        clickhouse_database: name.clone(),
        clickhouse_user: "default".into(),
        clickhouse_password: String::new(),
        mongo_url: with_path(&var("MERIDIAN_MONGO_URL")?, &name),
        store_timeout_ms: 10_000,
        max_page_size: 100,
        max_series_points: 1500,
        stats_cache_ttl_secs: 30,
        cursor_secret: None,
        relay: false,
        relay_batch: 500,
        relay_poll_ms: 50,
        relay_retry_base_ms: 250,
        relay_retry_max_ms: 30_000,
        ingest_max_bytes: 1 << 30,
        ws_init_timeout_ms: 10_000,
        ws_keepalive_ms: 15_000,
        log_format: meridian::telemetry::LogFormat::Text,
    };
    let result = run(config.clone(), ticks, streams, trades).await;

    // Clean up whatever happened.
    let state = AppState::new(config).await?;
    let _ = state.stores().redis.reset_demo_data().await;
    let _ = state.stores().mongo.database().drop().await;
    state
        .stores()
        .mongo
        .database()
        .client()
        .clone()
        .shutdown()
        .await;
    let _ = state
        .stores()
        .clickhouse
        .client()
        .query(&format!("DROP DATABASE IF EXISTS `{name}`"))
        .execute()
        .await;
    state.stores().postgres.pool().close().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await?;
    result
}

async fn run(config: Config, ticks: usize, streams: usize, trades: usize) -> anyhow::Result<()> {
    let state = AppState::new(config).await?;
    migrate::run(state.stores()).await?;
    let shape = seed::Shape {
        users: 100,
        assets: 20,
        days: 1,
        seed: 1,
        end: chrono::Utc::now(),
    };
    seed::run(state.stores(), &shape, &seed::Progress::quiet()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(meridian::app::run(listener, state.clone(), async {
        let _ = stopped.await;
    }));

    println!(
        "meridian write-path benchmark (release build, loopback, {} cores)",
        std::thread::available_parallelism()?.get()
    );
    ingest(&state, addr, ticks, streams).await?;
    relay_rate(&state, trades).await?;

    let _ = stop.send(());
    server.await??;
    Ok(())
}

async fn count_ticks(state: &AppState) -> anyhow::Result<u64> {
    Ok(state
        .stores()
        .clickhouse
        .client()
        .query("SELECT count() FROM price_ticks")
        .fetch_one()
        .await?)
}

async fn ingest(
    state: &AppState,
    addr: std::net::SocketAddr,
    ticks: usize,
    streams: usize,
) -> anyhow::Result<()> {
    let symbols: Vec<String> = state.stores().postgres.asset_symbols().await?;
    let start_ts = chrono::Utc::now().timestamp() - 86_400;
    let per_stream = ticks / streams;
    let bodies: Vec<Vec<u8>> = (0..streams)
        .map(|s| {
            let mut body = Vec::with_capacity(per_stream * 64);
            for i in 0..per_stream {
                let n = s * per_stream + i;
                let line = format!(
                    "{{\"symbol\":\"{}\",\"price\":{:.6},\"volume\":{:.3},\"ts\":{}}}\n",
                    symbols[n % symbols.len()],
                    100.0 + (n % 1000) as f64 * 0.01,
                    (n % 50) as f64 * 0.1,
                    start_ts + (n / symbols.len()) as i64 % 86_400
                );
                body.extend_from_slice(line.as_bytes());
            }
            body
        })
        .collect();
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let before = count_ticks(state).await?;
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/ingest/prices");
    let started = Instant::now();
    let responses = futures::future::join_all(bodies.into_iter().map(|body| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            client
                .post(url)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await?
                .json::<serde_json::Value>()
                .await
        }
    }))
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut accepted = 0;
    for response in responses {
        let response = response?;
        accepted += response["accepted"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("ingest failed: {response}"))?;
    }
    let stored = count_ticks(state).await? - before;
    anyhow::ensure!(
        stored == accepted && accepted == (per_stream * streams) as u64,
        "stored {stored}, accepted {accepted}"
    );
    println!(
        "ingest  {accepted} ticks, {streams} concurrent NDJSON streams, {:.1} MB: {elapsed:.2} s = {:.0} ticks/s ({:.1} MB/s); ClickHouse holds all {stored}",
        bytes as f64 / 1e6,
        accepted as f64 / elapsed,
        bytes as f64 / 1e6 / elapsed
    );
    Ok(())
}

async fn relay_rate(state: &AppState, trades: usize) -> anyhow::Result<()> {
    let pg = &state.stores().postgres;
    let users: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM users")
        .fetch_all(pg.pool())
        .await?;
    let symbols = pg.asset_symbols().await?;
    let started = Instant::now();
    let record = |i: usize| {
        let trade = NewTrade {
            id: uuid::Uuid::new_v4(),
            tx_hash: format!("0x{:064x}", 0xbe0000 + i),
            user_id: users[i % users.len()],
            symbol: symbols[i % symbols.len()].clone(),
            side: "buy",
            quantity: Decimal::new(1 + (i % 9) as i64, 1),
            price: Decimal::new(1000 + (i % 500) as i64, 2),
            executed_at: chrono::Utc::now(),
        };
        async move {
            let event_id = uuid::Uuid::new_v4();
            let row = meridian::store::postgres::TradeRow {
                id: trade.id,
                tx_hash: trade.tx_hash.clone(),
                user_id: trade.user_id,
                symbol: trade.symbol.clone(),
                side: "buy".into(),
                quantity: 0.1 * (1 + i % 9) as f64,
                price: (1000 + i % 500) as f64 / 100.0,
                executed_at: trade.executed_at,
            };
            let payload = serde_json::to_value(TradeEvent::new(event_id, &row))?;
            pg.record_trade(&trade, event_id, &payload).await?;
            Ok::<_, anyhow::Error>(())
        }
    };
    use futures::StreamExt;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..trades)
        .map(record)
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<()>>()?;
    let recorded = started.elapsed().as_secs_f64();
    println!("record  {trades} trades (one transaction each, 16 at a time): {recorded:.2} s = {:.0} trades/s", trades as f64 / recorded);

    let settings = state.relay_settings();
    let started = Instant::now();
    let destinations = meridian::store::postgres::TRADE_DESTINATIONS;
    let drains = destinations.map(|d| {
        let settings = settings.clone();
        async move {
            let mut rows = 0;
            loop {
                let n = relay::relay_once(state.stores(), d, &settings).await?;
                if n == 0 {
                    return Ok::<_, anyhow::Error>(rows);
                }
                rows += n;
            }
        }
    });
    let rows: usize = futures::future::try_join_all(drains)
        .await?
        .into_iter()
        .sum();
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(rows == trades * destinations.len(), "delivered {rows} rows");
    let report = meridian::reconcile::check(state.stores()).await?;
    anyhow::ensure!(report.is_clean(), "reconcile: {:?}", report.lines());
    println!(
        "relay   {rows} outbox rows ({trades} trades x 3 destinations, batches of {}): {elapsed:.2} s = {:.0} rows/s, {:.0} trades/s; reconcile clean",
        settings.batch,
        rows as f64 / elapsed,
        trades as f64 / elapsed
    );
    Ok(())
}
