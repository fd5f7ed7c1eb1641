//! `meridian seed`: a deterministic demo dataset in all four stores that agrees with
//! itself, for the platforms asked for (trading, KALE-ndar farming, Fathuss challenges).
//! The run replaces the demo data of this deployment (its Postgres database, ClickHouse
//! database, Mongo database and Redis key prefix); nothing else is touched.

pub mod dataset;
pub mod platforms;
mod progress;
pub mod qicore;
pub(crate) mod rng;
pub mod yields;

pub use dataset::{Dataset, Shape};
pub use progress::Progress;

use std::time::{Duration, Instant};

use anyhow::Context;
use mongodb::bson::doc;

use crate::{
    domain::{self, kinds::Kinds},
    events::relay::{self, RelaySettings},
    store::{
        clickhouse::{ActivityRow, TickRow, TradeEventRow},
        mongo::{AssetMetadataDoc, Link, ProfileDoc},
        postgres::{ArtifactsOutcome, ChallengesOutcome, EventsOutcome, EVENT_DESTINATIONS},
        redis::LatestPrice,
        Stores,
    },
};
use dataset::TICK_SECONDS;
use platforms::PlatformData;

/// Which platforms a seed run writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platforms {
    /// Users, assets, ticks, trades, holdings, prices, profiles and asset metadata.
    pub trading: bool,
    /// KALE-ndar farmers (Stellar) with plant, work and harvest events and their proofs.
    pub kale: bool,
    /// Fathuss coders, the challenge catalogue with its test cases, graded submissions.
    pub fathuss: bool,
    /// YieldSensei: protocols, pools, hourly TVL and APY, daily portfolio snapshots.
    pub yieldsensei: bool,
    /// Astake: Casper stakers' deposits, rewards, unbonds and withdrawals, and token
    /// assets written by the chain indexer and other writers (with their conflicts).
    pub astake: bool,
    /// QiCore: a day of quotes per exchange with market figures, and hourly OHLCV rows.
    pub qicore: bool,
}

impl Platforms {
    pub const ALL: Platforms = Platforms {
        trading: true,
        kale: true,
        fathuss: true,
        yieldsensei: true,
        astake: true,
        qicore: true,
    };
    /// None: combine with `..Platforms::NONE` to name some.
    pub const NONE: Platforms = Platforms {
        trading: false,
        kale: false,
        fathuss: false,
        yieldsensei: false,
        astake: false,
        qicore: false,
    };
    pub const TRADING: Platforms = Platforms {
        trading: true,
        kale: false,
        fathuss: false,
        yieldsensei: false,
        astake: false,
        qicore: false,
    };
}

/// What a seed run wrote.
#[derive(Debug, Clone)]
pub struct SeedReport {
    /// Every user: traders, farmers and coders.
    pub users: usize,
    pub assets: usize,
    pub trades: usize,
    pub holdings: usize,
    pub ticks: u64,
    pub activity_events: usize,
    /// Domain events (farming and submissions), recorded and relayed.
    pub events: usize,
    pub artifacts: usize,
    pub challenges: usize,
    /// Pools, and their TVL and APY samples.
    pub pools: usize,
    pub pool_samples: usize,
    pub snapshots: usize,
    /// Token assets written, and the conflicts their writers left.
    pub tokens: usize,
    pub conflicts: usize,
    /// QiCore's quotes and OHLCV rows.
    pub quotes: usize,
    pub ohlcv: usize,
    pub elapsed: Duration,
}

/// Events per `record_events` call, artifacts per `record_artifacts` call.
const EVENT_CHUNK: usize = 5_000;
const ARTIFACT_CHUNK: usize = 1_000;

/// Generates the dataset for `shape` and writes it to every store. The platforms' events
/// and artifacts go through the API's checks and the outbox, and `relay` drains it before
/// the run returns, as a running Meridian would.
pub async fn run(
    stores: &Stores,
    shape: &Shape,
    relay: &RelaySettings,
    progress: &Progress,
) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    let data = if shape.platforms.trading {
        dataset::generate(shape)
    } else {
        Dataset::default()
    };
    let mut platform = platforms::generate(shape, shape.platforms.kale, shape.platforms.fathuss);
    let stakers = if shape.platforms.astake {
        let (staking, stakers) = platforms::astake(shape);
        platform.extend(staking);
        stakers
    } else {
        Vec::new()
    };

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
    write_platforms(stores, &platform, relay, progress)
        .await
        .context("writing the platforms' data")?;
    if shape.platforms.kale {
        let markets = platforms::kale_markets(shape, &platform)
            .into_iter()
            .enumerate()
            .map(|(i, m)| domain::catalogue::check_market(&format!("markets[{i}]"), m))
            .collect::<Result<Vec<_>, _>>()?;
        if let Err(refusal) = stores.postgres().upsert_markets(&markets).await? {
            anyhow::bail!("the KALE-ndar markets were refused: {refusal:?}");
        }
    }
    write_redis(stores, &data, progress)
        .await
        .context("writing Redis")?;
    let (tokens, conflicts) = if shape.platforms.astake {
        write_tokens(stores, shape, &stakers)
            .await
            .context("writing Astake's token assets")?
    } else {
        (0, 0)
    };
    let (quotes, ohlcv) = if shape.platforms.qicore {
        write_market_data(stores, shape, &data, progress)
            .await
            .context("writing QiCore's market data")?
    } else {
        (0, 0)
    };
    let (pools, pool_samples, snapshots) = if shape.platforms.yieldsensei {
        write_yields(stores, shape, &data, progress)
            .await
            .context("writing YieldSensei's data")?
    } else {
        (0, 0, 0)
    };

    Ok(SeedReport {
        users: data.users.len() + platform.users.len(),
        assets: data.assets.len(),
        trades: data.trades.len(),
        holdings: data.holdings.len(),
        ticks: data.tick_count(),
        activity_events,
        events: platform.events.len(),
        artifacts: platform.artifacts.len() + platform.event_artifacts.len(),
        challenges: platform.challenges.len(),
        pools,
        pool_samples,
        snapshots,
        tokens,
        conflicts,
        quotes,
        ohlcv,
        elapsed: started.elapsed(),
    })
}

/// Writes the platforms' users and profiles, then their artifacts, challenges and events
/// through the same checks and writes as `recordArtifacts`, `upsertChallenges` and
/// `recordEvents`, and relays the outbox to ClickHouse, the boards, the proof cache and the
/// streams.
async fn write_platforms(
    stores: &Stores,
    data: &PlatformData,
    relay: &RelaySettings,
    progress: &Progress,
) -> anyhow::Result<()> {
    if data.users.is_empty() {
        return Ok(());
    }
    let pg = stores.postgres();
    let stage = progress.stage("platform users+profiles", data.users.len() as u64);
    pg.insert_users(&data.users).await?;
    stores.mongo().insert_profiles(&data.profiles).await?;
    finish(stage, data.users.len() as u64);

    let stage = progress.stage("platform catalogue", data.challenges.len() as u64);
    record_artifacts(stores, &data.artifacts).await?;
    let challenges = data
        .challenges
        .iter()
        .enumerate()
        .map(|(i, c)| {
            domain::challenges::check(
                &format!("challenges[{i}]"),
                &c.id,
                &c.title,
                c.difficulty,
                &c.tags,
                &c.test_cases,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !challenges.is_empty() {
        match pg.upsert_challenges(&challenges).await? {
            ChallengesOutcome::Saved(_) => {}
            ChallengesOutcome::UnknownTestCase { index, cid } => {
                anyhow::bail!("challenges[{index}] names {cid}, which is no test case")
            }
        }
    }
    finish(stage, challenges.len() as u64);

    let mut stage = progress.stage("platform events", data.events.len() as u64);
    let kinds = Kinds::new(pg.event_kinds().await?);
    let now = chrono::Utc::now();
    let events = data
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| domain::events::check(&kinds, &format!("events[{i}]"), e.clone(), now))
        .collect::<Result<Vec<_>, _>>()
        .context("an event of the demo data is refused (is --end in the future?)")?;
    for chunk in events.chunks(EVENT_CHUNK) {
        if let EventsOutcome::Conflict { id, .. } = pg.record_events(chunk).await? {
            anyhow::bail!("event {id} was recorded before with another body");
        }
        stage.inc(chunk.len() as u64);
    }
    stage.finish();
    record_artifacts(stores, &data.event_artifacts).await?;

    let pending = pg
        .outbox_backlog()
        .await?
        .iter()
        .map(|b| b.pending)
        .sum::<i64>();
    let mut stage = progress.stage("relay to clickhouse, boards, streams", pending as u64);
    drain_outbox(stores, relay, |n| stage.inc(n)).await?;
    stage.finish();
    Ok(())
}

/// How long the seed waits for the outbox to drain, retries included.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// Relays every destination until the outbox is empty, as the relay's workers would:
/// a batch a store refuses for a moment is retried after its backoff. Fails on a dead
/// letter, or when rows are still pending after [`DRAIN_LIMIT`].
async fn drain_outbox(
    stores: &Stores,
    relay: &RelaySettings,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<()> {
    let deadline = Instant::now() + DRAIN_LIMIT;
    loop {
        let mut handled = 0;
        for destination in EVENT_DESTINATIONS {
            handled += relay::relay_once(stores, destination, relay).await?;
        }
        progress(handled as u64);
        if handled > 0 {
            continue;
        }
        let backlog = stores.postgres().outbox_backlog().await?;
        let describe = || {
            backlog
                .iter()
                .filter(|b| b.pending > 0 || b.dead > 0)
                .map(|b| format!("{}: {} pending, {} dead", b.destination, b.pending, b.dead))
                .collect::<Vec<_>>()
                .join("; ")
        };
        anyhow::ensure!(
            backlog.iter().all(|b| b.dead == 0),
            "the relay set rows aside as dead letters ({})",
            describe()
        );
        if backlog.iter().all(|b| b.pending == 0) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the outbox did not drain in {} s ({})",
            DRAIN_LIMIT.as_secs(),
            describe()
        );
        // Rows a store refused wait for their retry.
        tokio::time::sleep(relay.poll).await;
    }
}

/// Checks and records artifacts, all of which must be new or the same as before.
async fn record_artifacts(
    stores: &Stores,
    drafts: &[domain::artifacts::ArtifactDraft],
) -> anyhow::Result<()> {
    let artifacts = drafts
        .iter()
        .enumerate()
        .map(|(i, a)| domain::artifacts::check(&format!("artifacts[{i}]"), a.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    for chunk in artifacts.chunks(ARTIFACT_CHUNK) {
        match stores.postgres().record_artifacts(chunk).await? {
            ArtifactsOutcome::Recorded(_) => {}
            ArtifactsOutcome::Conflict { cid, .. } => {
                anyhow::bail!("artifact {cid} was recorded before with another body")
            }
            ArtifactsOutcome::UnknownEvent { id, .. } => {
                anyhow::bail!("an artifact names event {id}, which was never recorded")
            }
        }
    }
    Ok(())
}

async fn write_postgres(
    stores: &Stores,
    data: &Dataset,
    progress: &Progress,
) -> anyhow::Result<()> {
    if data.users.is_empty() {
        return Ok(());
    }
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
    if data.users.is_empty() {
        return Ok(());
    }
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
    if data.users.is_empty() {
        return Ok(0);
    }
    let ch = &stores.clickhouse();
    let mut stage = progress.stage("clickhouse price ticks", data.tick_count());
    let ticks = data.paths.iter().flat_map(|path| {
        path.prices
            .iter()
            .zip(&path.volumes)
            .enumerate()
            .map(move |(i, (&price, &volume))| {
                let ts = clamp_ts(path.start + i as i64 * TICK_SECONDS);
                TickRow::plain(path.symbol.clone(), ts, price, volume)
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

/// Catalogues BTC, ETH, SOL, USDC and USDT where the trading data has not (the platforms
/// that quote or pool them seeded alone).
async fn catalogue_well_known_assets(stores: &Stores) -> anyhow::Result<()> {
    let listed: std::collections::HashSet<String> = stores
        .postgres()
        .asset_statuses()
        .await?
        .into_iter()
        .map(|(symbol, _, _)| symbol)
        .collect();
    let missing: Vec<_> = yields::assets()
        .into_iter()
        .filter(|a| !listed.contains(&a.symbol))
        .collect();
    if !missing.is_empty() {
        stores.postgres().upsert_assets(&missing).await?;
    }
    Ok(())
}

/// QiCore's quotes through the ingest path's checks and writes (ClickHouse, then the
/// newest price and market figures to Redis), and the hourly OHLCV rows.
async fn write_market_data(
    stores: &Stores,
    shape: &Shape,
    data: &Dataset,
    progress: &Progress,
) -> anyhow::Result<(usize, usize)> {
    if data.paths.is_empty() {
        catalogue_well_known_assets(stores).await?;
    }
    let quotes = qicore::ticks(shape, data);
    let stage = progress.stage("market quotes", quotes.len() as u64);
    let known = crate::ingest::KnownSymbols::load(stores).await?;
    let now = crate::ingest::now();
    let rows = quotes
        .iter()
        .map(|q| crate::ingest::check(q, &known, now))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(message, field)| anyhow::anyhow!("a demo quote: {field}: {message}"))?;
    let mut latest = crate::ingest::Latest::default();
    crate::ingest::write(stores, &rows, &mut latest).await?;
    latest.publish(stores).await?;
    finish(stage, rows.len() as u64);
    let bars = qicore::ohlcv(&quotes, u32::try_from(now).unwrap_or(u32::MAX));
    stores.clickhouse().insert_ohlcv(&bars).await?;
    Ok((rows.len(), bars.len()))
}

/// Astake's token assets, through the same rule as `writeTokenAssets`, writer by writer.
async fn write_tokens(
    stores: &Stores,
    shape: &Shape,
    stakers: &[String],
) -> anyhow::Result<(usize, usize)> {
    let mut tokens = std::collections::HashSet::new();
    let mut conflicts = 0;
    for draft in platforms::astake_tokens(shape, stakers) {
        let writer = crate::domain::tokens::Writer {
            name: draft.writer.into(),
            indexer: draft.indexer,
        };
        let writes: Vec<crate::store::postgres::TokenWrite> = draft
            .tokens
            .iter()
            .map(|t| {
                let mut values = std::collections::BTreeMap::new();
                if let Some(owner) = &t.owner {
                    values.insert(
                        "owner".to_owned(),
                        serde_json::json!({ "chain": "casper", "address": owner }),
                    );
                }
                if let Some(value) = &t.value {
                    let value: rust_decimal::Decimal = value.parse()?;
                    values.insert(
                        "value".to_owned(),
                        serde_json::Value::String(value.normalize().to_string()),
                    );
                }
                if let Some(v) = t.verified {
                    values.insert("verified".to_owned(), serde_json::Value::Bool(v));
                }
                if let Some(c) = &t.contract {
                    values.insert("contract".to_owned(), serde_json::Value::String(c.clone()));
                }
                tokens.insert(t.token_id.clone());
                Ok(crate::store::postgres::TokenWrite {
                    token_id: t.token_id.clone(),
                    values,
                    block: t.block,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let results = stores
            .postgres()
            .write_token_assets(&writer, &writes)
            .await?;
        conflicts += results.iter().map(|r| r.conflicts.len()).sum::<usize>();
    }
    Ok((tokens.len(), conflicts))
}

/// YieldSensei's catalogue (its assets where the trading data has not written them),
/// pool samples through the ingest checks, and the traders' daily portfolio snapshots.
async fn write_yields(
    stores: &Stores,
    shape: &Shape,
    data: &Dataset,
    progress: &Progress,
) -> anyhow::Result<(usize, usize, usize)> {
    let pg = stores.postgres();
    catalogue_well_known_assets(stores).await?;
    let pools = yields::pools();
    pg.upsert_protocols(&yields::protocols()).await?;
    if let Err(refusal) = pg.upsert_pools(&pools).await? {
        anyhow::bail!("the demo pools were refused: {refusal:?}");
    }
    let known = crate::ingest::KnownSymbols::load(stores).await?;
    let now = crate::ingest::now();
    let inputs = yields::samples(shape);
    let stage = progress.stage("pool samples", inputs.len() as u64);
    let rows = inputs
        .iter()
        .map(|s| crate::ingest::check_pool(s, &known, now))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(message, field)| anyhow::anyhow!("a demo pool sample: {field}: {message}"))?;
    stores.clickhouse().insert_pool_metrics(&rows).await?;
    finish(stage, rows.len() as u64);
    let snapshots = yields::portfolio_snapshots(data);
    let stage = progress.stage("portfolio snapshots", snapshots.len() as u64);
    stores.clickhouse().insert_snapshots(&snapshots).await?;
    finish(stage, snapshots.len() as u64);
    Ok((pools.len(), rows.len(), snapshots.len()))
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
    if !prices.is_empty() {
        stores.redis().set_latest_prices(&prices).await?;
    }
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
