//! `meridian seed`: a deterministic demo dataset in all four stores that agrees with
//! itself. The run replaces the demo data of this deployment (its Postgres database,
//! ClickHouse database, Mongo database and Redis key prefix); nothing else is touched.

pub mod dataset;
mod progress;
pub(crate) mod rng;

pub use dataset::Shape;
pub use progress::Progress;

use std::time::{Duration, Instant};

use anyhow::Context;
use mongodb::bson::doc;

use crate::store::{
    clickhouse::{ActivityRow, TickRow, TradeEventRow},
    mongo::{AssetMetadataDoc, Link, ProfileDoc},
    redis::LatestPrice,
    Stores,
};
use dataset::{Dataset, TICK_SECONDS};

/// What a seed run wrote.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub users: usize,
    pub assets: usize,
    pub trades: usize,
    pub holdings: usize,
    pub ticks: u64,
    pub activity_events: usize,
    pub elapsed: Duration,
}

/// Generates the dataset for `shape` and writes it to every store.
pub async fn run(
    stores: &Stores,
    shape: &Shape,
    progress: &Progress,
) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    let data = dataset::generate(shape);

    stores
        .postgres()
        .reset_demo_data()
        .await
        .context("resetting PostgreSQL")?;
    stores
        .clickhouse()
        .reset_demo_data()
        .await
        .context("resetting ClickHouse")?;
    stores
        .redis()
        .reset_demo_data()
        .await
        .context("resetting Redis")?;
    stores
        .mongo()
        .reset_demo_data()
        .await
        .context("resetting MongoDB")?;

    write_postgres(stores, &data, progress)
        .await
        .context("writing PostgreSQL")?;
    write_mongo(stores, &data, progress)
        .await
        .context("writing MongoDB")?;
    let activity_events = write_clickhouse(stores, &data, progress)
        .await
        .context("writing ClickHouse")?;
    write_redis(stores, &data, progress)
        .await
        .context("writing Redis")?;

    Ok(SeedReport {
        users: data.users.len(),
        assets: data.assets.len(),
        trades: data.trades.len(),
        holdings: data.holdings.len(),
        ticks: data.tick_count(),
        activity_events,
        elapsed: started.elapsed(),
    })
}

async fn write_postgres(
    stores: &Stores,
    data: &Dataset,
    progress: &Progress,
) -> anyhow::Result<()> {
    let pg = &stores.postgres();
    let stage = progress.stage(
        "postgres users+assets",
        (data.users.len() + data.assets.len()) as u64,
    );
    pg.insert_assets(&data.assets).await?;
    pg.insert_users(&data.users).await?;
    finish(stage, (data.users.len() + data.assets.len()) as u64);

    let mut stage = progress.stage("postgres trades", data.trades.len() as u64);
    pg.insert_trades(&data.trades, |n| stage.inc(n)).await?;
    stage.finish();

    let stage = progress.stage("postgres holdings", data.holdings.len() as u64);
    pg.insert_holdings(&data.holdings).await?;
    finish(stage, data.holdings.len() as u64);
    Ok(())
}

async fn write_mongo(stores: &Stores, data: &Dataset, progress: &Progress) -> anyhow::Result<()> {
    let stage = progress.stage("mongodb profiles", data.users.len() as u64);
    let profiles: Vec<ProfileDoc> = data
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| profile(i, u, data))
        .collect();
    stores.mongo().insert_profiles(&profiles).await?;
    finish(stage, profiles.len() as u64);

    let stage = progress.stage("mongodb asset metadata", data.assets.len() as u64);
    let metadata: Vec<AssetMetadataDoc> = data.assets.iter().map(asset_metadata).collect();
    stores.mongo().insert_asset_metadata(&metadata).await?;
    finish(stage, metadata.len() as u64);
    Ok(())
}

/// Returns the number of activity events written.
async fn write_clickhouse(
    stores: &Stores,
    data: &Dataset,
    progress: &Progress,
) -> anyhow::Result<usize> {
    let ch = &stores.clickhouse();
    let mut stage = progress.stage("clickhouse price ticks", data.tick_count());
    let ticks = data.paths.iter().flat_map(|path| {
        path.prices
            .iter()
            .zip(&path.volumes)
            .enumerate()
            .map(move |(i, (&price, &volume))| TickRow {
                symbol: path.symbol.clone(),
                ts: clamp_ts(path.start + i as i64 * TICK_SECONDS),
                price,
                volume,
            })
    });
    ch.insert_ticks(ticks, |n| stage.inc(n)).await?;
    stage.finish();

    let stage = progress.stage("clickhouse trade events", data.trades.len() as u64);
    let events: Vec<TradeEventRow> = data
        .trades
        .iter()
        .map(|t| TradeEventRow {
            // A trade's id is its event id in ClickHouse, as the relay writes it.
            event_id: t.id.to_string(),
            trade_id: t.id.to_string(),
            user_id: t.user_id.to_string(),
            symbol: t.symbol.clone(),
            side: t.side.as_str().into(),
            quantity: to_f64(t.quantity),
            price: to_f64(t.price),
            executed_at: clamp_ts(t.executed_at.timestamp()),
        })
        .collect();
    ch.insert_trade_events(&events).await?;
    finish(stage, events.len() as u64);

    let activity: Vec<ActivityRow> = data
        .trades
        .iter()
        .map(|t| ActivityRow {
            event_id: t.id.to_string(),
            user_id: t.user_id.to_string(),
            kind: format!("trade_{}", t.side.as_str()),
            symbol: t.symbol.clone(),
            amount: to_f64(t.quantity * t.price),
            ts: clamp_ts(t.executed_at.timestamp()),
        })
        .chain(data.rewards.iter().map(|r| ActivityRow {
            event_id: r.event_id.to_string(),
            user_id: r.user_id.to_string(),
            kind: r.kind.into(),
            symbol: r.symbol.clone(),
            amount: r.amount,
            ts: clamp_ts(r.ts),
        }))
        .collect();
    let stage = progress.stage("clickhouse activity", activity.len() as u64);
    ch.insert_activity(&activity).await?;
    finish(stage, activity.len() as u64);
    Ok(activity.len())
}

async fn write_redis(stores: &Stores, data: &Dataset, progress: &Progress) -> anyhow::Result<()> {
    let stage = progress.stage("redis latest prices", data.paths.len() as u64);
    let prices: Vec<LatestPrice> = data
        .paths
        .iter()
        .map(|path| {
            let (ts, price) = path.last();
            LatestPrice {
                symbol: path.symbol.clone(),
                price,
                ts,
            }
        })
        .collect();
    stores.redis().set_latest_prices(&prices).await?;
    finish(stage, prices.len() as u64);

    // Boards are computed from what Postgres holds, not from the generator.
    let boards = crate::boards::load(stores).await?;
    let stage = progress.stage("redis boards", boards.len() as u64);
    let rebuilt = crate::boards::rebuild_all(stores, chrono::Utc::now()).await?;
    finish(stage, rebuilt as u64);
    Ok(())
}

fn profile(index: usize, user: &dataset::User, data: &Dataset) -> ProfileDoc {
    let favourites: Vec<&str> = data
        .assets
        .iter()
        .skip(index % data.assets.len().max(1))
        .take(3)
        .map(|a| a.symbol.as_str())
        .collect();
    let display = user
        .username
        .split('_')
        .take(2)
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ");
    ProfileDoc {
        user_id: user.id.to_string(),
        display_name: display,
        bio: (!index.is_multiple_of(4))
            .then(|| format!("Trading since {}.", user.created_at.format("%B %Y"))),
        avatar_url: Some(format!("https://avatars.example.com/{}.png", user.address)),
        links: vec![Link {
            label: "explorer".into(),
            url: format!("https://etherscan.io/address/{}", user.address),
        }],
        preferences: doc! {
            "theme": if index.is_multiple_of(2) { "dark" } else { "light" },
            "currency": "USD",
            "favoriteAssets": favourites,
            "notifications": { "email": index.is_multiple_of(3), "push": true },
        },
    }
}

fn asset_metadata(asset: &dataset::Asset) -> AssetMetadataDoc {
    let slug = asset.name.to_lowercase().replace(' ', "-");
    AssetMetadataDoc {
        symbol: asset.symbol.clone(),
        description: format!("{} ({}) on {}.", asset.name, asset.symbol, asset.chain),
        website: Some(format!("https://{slug}.example.org")),
        tags: asset.tags.clone(),
        links: vec![Link {
            label: "docs".into(),
            url: format!("https://docs.{slug}.example.org"),
        }],
    }
}

fn finish(mut stage: progress::Stage, n: u64) {
    stage.inc(n);
    stage.finish();
}

fn clamp_ts(ts: i64) -> u32 {
    u32::try_from(ts.max(0)).unwrap_or(u32::MAX)
}

fn to_f64(d: rust_decimal::Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or_default()
}
