//! Write-path benchmark against the local stack (`scripts/stack up`), printing figures:
//!
//! 1. sustained NDJSON ingestion through `POST /ingest/prices` into ClickHouse;
//! 2. the relay's delivery rate: trades recorded with the relay off, then drained;
//! 3. domain events through `recordEvents` over HTTP (calls of 1,000 events, 4 at a time),
//!    then drained by the relay the same way.
//!
//!   cargo bench --bench writes                 # 2,000,000 ticks in 4 streams, 5,000 trades, 50,000 events
//!   BENCH_TICKS=4000000 BENCH_STREAMS=8 BENCH_TRADES=20000 BENCH_EVENTS=100000 cargo bench --bench writes
//!
//! It works in a Postgres database, ClickHouse database, Mongo database and Redis prefix of
//! its own, dropped at the end, and sends traffic only to 127.0.0.1.

use std::time::Instant;

use meridian::{
    events::{relay, TradeEvent},
    migrate, seed,
    store::postgres::NewTrade,
    values::{Symbol, TxHash},
    AppState, Config,
};
use rust_decimal::Decimal;

#[path = "support/namespace.rs"]
mod namespace;

use namespace::{env_number, Namespace};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let ticks = env_number("BENCH_TICKS", 2_000_000) as usize;
    let streams = env_number("BENCH_STREAMS", 4).max(1) as usize;
    let trades = env_number("BENCH_TRADES", 5_000) as usize;
    let events = env_number("BENCH_EVENTS", 50_000) as usize;
    let namespace = Namespace::create(|_| {}).await?;
    let result = run(namespace.config.clone(), ticks, streams, trades, events).await;
    namespace.drop_all().await?;
    result
}

async fn run(
    config: Config,
    ticks: usize,
    streams: usize,
    trades: usize,
    events: usize,
) -> anyhow::Result<()> {
    let state = AppState::new(config).await?;
    migrate::run(state.stores()).await?;
    let shape = seed::Shape {
        users: 100,
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
    events_rate(&state, addr, events).await?;

    let _ = stop.send(());
    server.await??;
    Ok(())
}

async fn count_ticks(state: &AppState) -> anyhow::Result<u64> {
    Ok(state
        .stores()
        .clickhouse()
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
    let symbols: Vec<String> = state.stores().postgres().asset_symbols().await?;
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
    let bearer = namespace::operator_bearer(state.config())?;
    let url = format!("http://{addr}/ingest/prices");
    let started = Instant::now();
    let responses = futures::future::join_all(bodies.into_iter().map(|body| {
        let (client, url, bearer) = (client.clone(), url.clone(), bearer.clone());
        async move {
            client
                .post(url)
                .header("authorization", bearer)
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
    let pg = &state.stores().postgres();
    let users: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM users")
        .fetch_all(pg.pool())
        .await?;
    let symbols = pg.asset_symbols().await?;
    let started = Instant::now();
    let record = |i: usize| {
        let trade = NewTrade {
            id: uuid::Uuid::new_v4(),
            tx_hash: TxHash::parse(&format!("0x{:064x}", 0xbe0000 + i)).expect("a hash"),
            user_id: users[i % users.len()],
            symbol: Symbol::parse(&symbols[i % symbols.len()]).expect("a symbol"),
            side: "buy",
            quantity: Decimal::new(1 + (i % 9) as i64, 1),
            price: Decimal::new(1000 + (i % 500) as i64, 2),
            executed_at: chrono::Utc::now(),
        };
        async move {
            let event_id = uuid::Uuid::new_v4();
            let row = meridian::store::postgres::TradeRow {
                id: trade.id,
                tx_hash: trade.tx_hash.to_string(),
                user_id: trade.user_id,
                symbol: trade.symbol.to_string(),
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
    let rows = drain(state).await?;
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

/// Drains every destination's outbox; returns the rows delivered.
async fn drain(state: &AppState) -> anyhow::Result<usize> {
    let settings = state.relay_settings();
    let drains = meridian::store::postgres::EVENT_DESTINATIONS.map(|d| {
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
    Ok(futures::future::try_join_all(drains)
        .await?
        .into_iter()
        .sum())
}

async fn events_rate(
    state: &AppState,
    addr: std::net::SocketAddr,
    events: usize,
) -> anyhow::Result<()> {
    use futures::StreamExt;
    const PER_CALL: usize = 1_000;
    const FARMER: &str = "GAOQJGUAB7NI7K7I62ORBXMN3J4SSWQUQ7FOEPSDJ322W2HMCNWPHXFB";
    let token = meridian::auth::jwt::mint_hs256(
        &state.config().security,
        "bench",
        &[meridian::auth::Role::Service],
        3600,
    )?;
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/graphql");
    let query = "mutation($events: [EventInput!]!) { recordEvents(events: $events) { id } }";
    let calls = events.div_ceil(PER_CALL);
    let started = Instant::now();
    let results: Vec<anyhow::Result<usize>> = futures::stream::iter(0..calls)
        .map(|call| {
            let batch: Vec<serde_json::Value> = (call * PER_CALL
                ..((call + 1) * PER_CALL).min(events))
                .map(|i| {
                    serde_json::json!({
                        "id": format!("bench-{i}"), "kind": "farming_harvest", "subject": FARMER,
                        "amount": format!("{}.5", i % 100),
                        "attributes": { "reward": format!("{}.5", i % 100) },
                        "blockNumber": i % 1_000_000
                    })
                })
                .collect();
            let request = client
                .post(&url)
                .bearer_auth(&token)
                .json(&serde_json::json!({ "query": query, "variables": { "events": batch } }));
            async move {
                let answer: serde_json::Value = request.send().await?.json().await?;
                anyhow::ensure!(
                    answer["errors"].is_null(),
                    "recordEvents: {}",
                    answer["errors"]
                );
                Ok(answer["data"]["recordEvents"]
                    .as_array()
                    .map_or(0, Vec::len))
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let recorded: usize = results
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .sum();
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(recorded == events, "recorded {recorded} of {events}");
    println!(
        "events  {events} domain events through recordEvents ({PER_CALL} per call, 4 calls at a time, over HTTP): {elapsed:.2} s = {:.0} events/s",
        events as f64 / elapsed
    );
    let started = Instant::now();
    let rows = drain(state).await?;
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(rows == events * 3, "delivered {rows} rows");
    println!(
        "relay   {rows} outbox rows ({events} events x 3 destinations): {elapsed:.2} s = {:.0} events/s",
        events as f64 / elapsed
    );
    Ok(())
}
