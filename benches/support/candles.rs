//! The candle views against the raw ticks, in one run: a namespace seeded with
//! `BENCH_CANDLE_DAYS` (30) days of one-minute ticks for `BENCH_CANDLE_SYMBOLS` (200)
//! assets, then the same candle windows read from the view that answers them and computed
//! from the raw ticks, alternately, `BENCH_CANDLE_RUNS` (15) times each; the table gives
//! the median and the slowest of each, and their ratio.

use std::time::{Duration, Instant};

use meridian::{migrate, seed, store::clickhouse::candle_view, AppState};

use super::namespace::{env_number, Namespace};

/// Runs the scenario in a namespace of its own and prints its table.
pub async fn run() -> anyhow::Result<()> {
    let symbols = env_number("BENCH_CANDLE_SYMBOLS", 200) as u32;
    let days = env_number("BENCH_CANDLE_DAYS", 30) as u32;
    let runs = env_number("BENCH_CANDLE_RUNS", 15) as usize;
    let namespace = Namespace::create(|_| {}).await?;
    let result = measure(&namespace.config, symbols, days, runs).await;
    namespace.drop_all().await?;
    result
}

async fn measure(
    config: &meridian::Config,
    assets: u32,
    days: u32,
    runs: usize,
) -> anyhow::Result<()> {
    let state = AppState::new(config.clone()).await?;
    migrate::run(state.stores()).await?;
    let end: chrono::DateTime<chrono::Utc> = "2026-11-01T00:00:00Z".parse()?;
    let shape = seed::Shape {
        users: 20,
        assets,
        days,
        seed: 7,
        end,
        platforms: seed::Platforms::TRADING,
    };
    let started = Instant::now();
    // A bulk load, as `meridian seed` runs it: each store call may take minutes.
    let bulk = state.stores().with_deadline(Duration::from_secs(1_800));
    let report = seed::run(
        &bulk,
        &shape,
        &state.relay_settings(),
        &seed::Progress::quiet(),
    )
    .await?;
    eprintln!(
        "compare: candles dataset: {} ticks ({days} days of minutes x {assets} assets) seeded, views folded, in {:.1} s",
        report.ticks,
        started.elapsed().as_secs_f64()
    );
    let symbols = state.stores().postgres().asset_symbols().await?;
    let one = vec![symbols[0].clone()];
    let twenty: Vec<String> = symbols.iter().take(20).cloned().collect();
    let end = end.timestamp() as u32 / 86_400 * 86_400;
    let windows: [(&str, u32, u32, &Vec<String>); 6] = [
        ("1 asset, DAY x 30 days", 86_400, 30 * 86_400, &one),
        ("1 asset, HOUR x 7 days", 3_600, 7 * 86_400, &one),
        ("1 asset, FIFTEEN_MINUTES x 2 days", 900, 2 * 86_400, &one),
        ("1 asset, MINUTE x 6 hours", 60, 6 * 3_600, &one),
        ("20 assets, HOUR x 30 days", 3_600, 30 * 86_400, &twenty),
        ("20 assets, DAY x 30 days", 86_400, 30 * 86_400, &twenty),
    ];
    println!();
    println!(
        "candles from the views vs from the raw ticks (ClickHouse of the local stack): {} ticks, {runs} runs each, alternating",
        report.ticks
    );
    println!();
    println!("| window | view | view p50 ms | view max ms | raw p50 ms | raw max ms | raw / view (p50) |");
    println!("|---|---|---|---|---|---|---|");
    let ch = state.stores().clickhouse();
    for (name, bucket, span, list) in windows {
        let from = end - span;
        let view = candle_view(bucket, from, end).unwrap_or("none");
        let (mut from_view, mut from_raw) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let t = Instant::now();
            let a = ch.candles(list, bucket, from, end).await?;
            from_view.push(t.elapsed());
            let t = Instant::now();
            let b = ch.candles_from_ticks(list, bucket, from, end).await?;
            from_raw.push(t.elapsed());
            anyhow::ensure!(
                a.len() == b.len()
                    && a.iter()
                        .zip(&b)
                        .all(|(x, y)| x.close == y.close && x.ticks == y.ticks),
                "{name}: the view and the raw ticks disagree"
            );
        }
        let (vp50, vmax) = stats(&mut from_view);
        let (rp50, rmax) = stats(&mut from_raw);
        println!(
            "| {name} | {view} | {vp50:.1} | {vmax:.1} | {rp50:.1} | {rmax:.1} | {:.1}x |",
            rp50 / vp50
        );
    }
    Ok(())
}

/// Median and maximum, in milliseconds.
fn stats(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
    (
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1]),
    )
}
