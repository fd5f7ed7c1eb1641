//! The live demo feed: random-walk price ticks and trades, and the seeds' platforms'
//! events (KALE-ndar farmers planting, working and harvesting with a proof; Fathuss coders
//! submitting), written through the real write paths (ticks as `ingestPrices` writes them;
//! trades in the `recordTrade` transaction; events and proofs as `recordEvents` and
//! `recordArtifacts` check and write them; all delivered by the relay), so that GraphiQL
//! subscriptions show prices, farming, submissions and leaderboards move. `meridian
//! simulate` runs it alone; `meridian serve --simulate` runs it in-process.

use std::{collections::HashMap, future::Future, time::Duration};

use anyhow::Context;
use rust_decimal::{
    prelude::{FromPrimitive, ToPrimitive},
    Decimal,
};
use uuid::Uuid;

use crate::{
    domain::{
        artifacts::{self, ArtifactDraft, ArtifactKind},
        challenges::Difficulty,
        events::{self as domain_events, EventDraft},
        kinds::Kinds,
    },
    events::TradeEvent,
    ingest::{self, Latest},
    seed::{platforms, rng::Rng},
    store::{
        clickhouse::TickRow,
        postgres::{ArtifactsOutcome, DemoActors, EventsOutcome, NewTrade, TradeRow},
    },
    values::ChainFamily,
    values::{Symbol, TxHash},
    AppState,
};

/// How much the simulator writes.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Rates {
    /// Price ticks per second, spread over the assets.
    #[arg(long, default_value_t = 20.0)]
    pub ticks_per_sec: f64,
    /// Trades per second.
    #[arg(long, default_value_t = 1.0)]
    pub trades_per_sec: f64,
    /// Platform events per second (farming steps and graded submissions, in turn).
    #[arg(long, default_value_t = 1.0)]
    pub events_per_sec: f64,
}

/// The venues the demo feed quotes.
const EXCHANGES: [&str; 3] = ["binance", "coinbase", "kraken"];

/// Ticks are written in batches this often.
const FLUSH: Duration = Duration::from_millis(250);

/// Runs the feed until `shutdown` resolves.
pub async fn run(
    state: AppState,
    rates: Rates,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let stores = state.stores();
    let symbols = stores
        .postgres()
        .asset_symbols()
        .await
        .context("reading assets")?;
    let users: Vec<Uuid> = stores
        .postgres()
        .user_ids(1000)
        .await
        .context("reading users")?;
    let actors = stores
        .postgres()
        .demo_platform_actors(1000)
        .await
        .context("reading the platforms' accounts")?;
    let trading = !symbols.is_empty() && !users.is_empty();
    anyhow::ensure!(
        trading || !actors.farmers.is_empty() || !actors.coders.is_empty(),
        "no assets, users, farmers or coders: run `meridian seed` first"
    );
    let kinds = Kinds::new(
        stores
            .postgres()
            .event_kinds()
            .await
            .context("reading event kinds")?,
    );
    let mut platforms = Platforms::new(actors);
    let mut pools = PoolFeed::load(stores).await.context("reading pools")?;
    let latest = if symbols.is_empty() {
        Vec::new()
    } else {
        stores
            .redis()
            .latest_prices(&symbols)
            .await
            .context("reading prices")?
    };
    let mut prices: Vec<f64> = latest
        .iter()
        .map(|p| p.as_ref().map_or(100.0, |p| p.price))
        .collect();
    let mut rng = Rng::new(chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64);
    // A circulating supply per asset (a market cap of 1 to 1,000 billion USD at the
    // current price), so that market caps move with prices.
    let supply: Vec<f64> = prices
        .iter()
        .map(|price| (rng.range(1e9, 1e12) / price.max(1e-9)).round())
        .collect();
    let mut flush = tokio::time::interval(FLUSH);
    let ticks_per_flush = rates.ticks_per_sec.max(0.0) * FLUSH.as_secs_f64();
    let trades_per_flush = rates.trades_per_sec.max(0.0) * FLUSH.as_secs_f64();
    let events_per_flush = rates.events_per_sec.max(0.0) * FLUSH.as_secs_f64();
    let (mut tick_credit, mut trade_credit, mut event_credit) = (0.0, 0.0, 0.0);
    let mut next_symbol = 0;
    let mut last_pool_samples = tokio::time::Instant::now();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = flush.tick() => {}
            () = &mut shutdown => return Ok(()),
        }
        if trading {
            tick_credit += ticks_per_flush;
            trade_credit += trades_per_flush;
        }
        event_credit += events_per_flush;
        let now = chrono::Utc::now().timestamp();
        let mut ticks = Vec::new();
        while tick_credit >= 1.0 {
            tick_credit -= 1.0;
            let i = next_symbol % symbols.len();
            next_symbol += 1;
            prices[i] = (prices[i] * (0.002 * rng.normal()).exp() * 1e8).round() / 1e8;
            let volume = (rng.range(0.0, 10.0) * 1e4).round() / 1e4;
            let mut tick = TickRow::plain(symbols[i].clone(), now as u32, prices[i], volume);
            // Several venues quote each asset, a little apart; each tick carries the
            // figures a market-data feed sends with it.
            let exchange = *rng.pick(&EXCHANGES);
            tick.price = (prices[i] * (1.0 + 0.001 * rng.normal()) * 1e8).round() / 1e8;
            tick.exchange = exchange.into();
            tick.source = "meridian-demo".into();
            tick.attribution = format!("simulated {exchange} feed");
            tick.market_cap = Some((prices[i] * supply[i]).round());
            tick.volume_24h = Some((prices[i] * supply[i] * 0.03 * rng.range(0.5, 1.5)).round());
            tick.liquidity = Some((prices[i] * supply[i] * 0.002).round());
            tick.participants = Some(100 + rng.below(5_000) as u32);
            ticks.push(tick);
        }
        if let Err(err) = write_ticks(&state, &ticks).await {
            tracing::warn!(error = %err, "simulated ticks not written");
        }
        if last_pool_samples.elapsed() >= POOL_EVERY {
            last_pool_samples = tokio::time::Instant::now();
            if let Err(err) = pools.step(stores, &mut rng, now).await {
                tracing::warn!(error = %err, "simulated pool samples not written");
            }
        }
        while trade_credit >= 1.0 {
            trade_credit -= 1.0;
            let i = rng.below(symbols.len() as u64) as usize;
            let user = users[rng.below(users.len() as u64) as usize];
            let notional = rng.range(50.0, 5_000.0);
            if let Err(err) = record(&state, &mut rng, user, &symbols[i], prices[i], notional).await
            {
                tracing::warn!(error = %err, "simulated trade not recorded");
            }
        }
        while event_credit >= 1.0 {
            event_credit -= 1.0;
            if let Err(err) = platforms.step(&state, &kinds, &mut rng).await {
                tracing::warn!(error = %err, "simulated platform event not recorded");
            }
        }
    }
}

/// How often the feed moves every pool's TVL and APY.
const POOL_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Every catalogued pool's TVL and APY, moved on a random walk from its newest sample.
struct PoolFeed {
    pools: Vec<crate::store::clickhouse::PoolMetricRow>,
}

impl PoolFeed {
    async fn load(stores: &crate::store::Stores) -> Result<PoolFeed, crate::Error> {
        let ids = stores.postgres().pool_ids().await?;
        if ids.is_empty() {
            return Ok(PoolFeed { pools: Vec::new() });
        }
        let latest = stores.clickhouse().pool_latest(&ids, 0).await?;
        let pools = ids
            .into_iter()
            .map(|pool| {
                latest.iter().find(|m| m.pool == pool).cloned().unwrap_or(
                    crate::store::clickhouse::PoolMetricRow {
                        pool,
                        ts: 0,
                        tvl: 1.0e7,
                        apy: 5.0,
                        source: String::new(),
                    },
                )
            })
            .collect();
        Ok(PoolFeed { pools })
    }

    async fn step(
        &mut self,
        stores: &crate::store::Stores,
        rng: &mut Rng,
        now: i64,
    ) -> Result<(), crate::Error> {
        if self.pools.is_empty() {
            return Ok(());
        }
        for p in &mut self.pools {
            p.tvl = ((p.tvl * (1.0 + 0.003 * rng.normal())).clamp(1.0e5, 5.0e10) * 100.0).round()
                / 100.0;
            p.apy = ((p.apy * (1.0 + 0.01 * rng.normal())).clamp(0.05, 500.0) * 1e4).round() / 1e4;
            p.ts = now as u32;
            p.source = "meridian-demo".into();
        }
        stores.clickhouse().insert_pool_metrics(&self.pools).await
    }
}

/// Where each farmer is in the farming cycle.
enum Farming {
    Planted {
        block: i32,
        stake: String,
    },
    Worked {
        block: i32,
        stake: String,
        zeros: u64,
    },
}

/// The platforms' side of the feed: farmers move through plant, work and harvest (with
/// the proof recorded as an artifact), coders submit to challenges; in turn.
struct Platforms {
    actors: DemoActors,
    farming: HashMap<usize, Farming>,
    block: i32,
    turn: u64,
}

impl Platforms {
    fn new(actors: DemoActors) -> Platforms {
        // Blocks move on from a number of the clock's, about one every 5 seconds.
        let block =
            i32::try_from(chrono::Utc::now().timestamp() / 5 % 1_000_000_000).unwrap_or_default();
        Platforms {
            actors,
            farming: HashMap::new(),
            block,
            turn: 0,
        }
    }

    async fn step(&mut self, state: &AppState, kinds: &Kinds, rng: &mut Rng) -> anyhow::Result<()> {
        self.turn += 1;
        let can_farm = !self.actors.farmers.is_empty();
        let can_submit = !self.actors.coders.is_empty() && !self.actors.challenges.is_empty();
        let (draft, proof) = match (can_farm, can_submit) {
            (true, true) if self.turn.is_multiple_of(2) => self.submission(rng),
            (true, _) => self.farm(rng),
            (false, true) => self.submission(rng),
            (false, false) => return Ok(()),
        };
        let now = chrono::Utc::now();
        let event = domain_events::check(kinds, "events[0]", draft, now)?;
        let pg = state.stores().postgres();
        if let EventsOutcome::Conflict { id, .. } = pg.record_events(&[event]).await? {
            anyhow::bail!("event {id} was recorded before with another body");
        }
        if let Some(proof) = proof {
            let artifact = artifacts::check("artifacts[0]", proof)?;
            if !matches!(
                pg.record_artifacts(&[artifact]).await?,
                ArtifactsOutcome::Recorded(_)
            ) {
                anyhow::bail!("the proof was refused");
            }
        }
        Ok(())
    }

    /// The next step of a random farmer's cycle.
    fn farm(&mut self, rng: &mut Rng) -> (EventDraft, Option<ArtifactDraft>) {
        let f = rng.below(self.actors.farmers.len() as u64) as usize;
        let farmer = self.actors.farmers[f].clone();
        let id = format!("demo-{}", Uuid::new_v4());
        let now = chrono::Utc::now().timestamp();
        let tx = Some(rng.hex(64));
        match self.farming.remove(&f) {
            None => {
                self.block += 1 + rng.below(3) as i32;
                let stake = platforms::kale(rng.range(100.0, 5_000.0));
                self.farming.insert(
                    f,
                    Farming::Planted {
                        block: self.block,
                        stake: stake.clone(),
                    },
                );
                let attributes = serde_json::json!({ "stake": stake });
                let draft = platforms::event(
                    id,
                    "farming_plant",
                    &farmer,
                    now,
                    Some(stake),
                    attributes,
                    tx,
                    Some(self.block),
                    None,
                );
                (draft, None)
            }
            Some(Farming::Planted { block, stake }) => {
                let zeros = 4 + rng.below(6);
                self.farming.insert(
                    f,
                    Farming::Worked {
                        block,
                        stake,
                        zeros,
                    },
                );
                let attributes = serde_json::json!({
                    "work_hash": format!("{}{}", "0".repeat(zeros as usize), rng.hex(64 - zeros as usize)),
                    "zeros": zeros,
                });
                let draft = platforms::event(
                    id,
                    "farming_work",
                    &farmer,
                    now,
                    None,
                    attributes,
                    tx,
                    Some(block),
                    None,
                );
                (draft, None)
            }
            Some(Farming::Worked {
                block,
                stake,
                zeros,
            }) => {
                let staked: f64 = stake.parse().unwrap_or_default();
                let reward = platforms::kale(staked * (0.02 + 0.01 * zeros as f64));
                let bytes = format!("kale-ndar proof {farmer} block {block} {id}");
                let (cid, sha256) = platforms::raw_cid(bytes.as_bytes());
                let attributes = serde_json::json!({ "reward": reward, "stake": stake });
                let draft = platforms::event(
                    id.clone(),
                    "farming_harvest",
                    &farmer,
                    now,
                    Some(reward),
                    attributes,
                    tx,
                    Some(block),
                    Some(cid.clone()),
                );
                let proof = ArtifactDraft {
                    cid,
                    sha256,
                    size: bytes.len() as f64,
                    media_type: "application/octet-stream".into(),
                    kind: ArtifactKind::Proof,
                    owner: farmer,
                    chain: Some(ChainFamily::Stellar),
                    name: Some(format!("proof-{block}.bin")),
                    events: vec![id],
                };
                (draft, Some(proof))
            }
        }
    }

    /// A random coder's graded submission to a random challenge.
    fn submission(&mut self, rng: &mut Rng) -> (EventDraft, Option<ArtifactDraft>) {
        let coder = rng.pick(&self.actors.coders).clone();
        let (challenge, difficulty) = rng.pick(&self.actors.challenges).clone();
        let total = platforms::tests_for(
            Difficulty::from_stored(&difficulty).unwrap_or(Difficulty::Medium),
        );
        let passed = rng.below(total + 1);
        let score = format!("{:.2}", (passed * 100) as f64 / total as f64);
        let attributes = serde_json::json!({
            "challenge": challenge,
            "score": score,
            "passed_tests": passed,
            "total_tests": total,
            "runtime_ms": 5 + rng.below(1_995),
            "language": *rng.pick(&["rust", "python", "typescript", "go"]),
            "passed": passed == total,
        });
        let draft = platforms::event(
            format!("demo-{}", Uuid::new_v4()),
            "challenge_submission",
            &coder,
            chrono::Utc::now().timestamp(),
            Some(score),
            attributes,
            None,
            None,
            None,
        );
        (draft, None)
    }
}

async fn write_ticks(state: &AppState, ticks: &[TickRow]) -> Result<(), crate::Error> {
    if ticks.is_empty() {
        return Ok(());
    }
    let stores = state.stores();
    let mut latest = Latest::default();
    ingest::write(stores, ticks, &mut latest).await?;
    latest.publish(stores).await.map(drop)
}

async fn record(
    state: &AppState,
    rng: &mut Rng,
    user: Uuid,
    symbol: &str,
    price: f64,
    notional: f64,
) -> Result<(), crate::Error> {
    let quantity = Decimal::from_f64(notional / price)
        .unwrap_or_default()
        .round_dp(8);
    let price = Decimal::from_f64(price).unwrap_or_default().round_dp(8);
    if quantity.is_zero() || price.is_zero() {
        return Ok(());
    }
    let trade = NewTrade {
        id: Uuid::new_v4(),
        tx_hash: TxHash::parse(&format!("0x{}", rng.hex(64))).expect("64 hex digits"),
        user_id: user,
        symbol: Symbol::parse(symbol).map_err(|rule| {
            crate::Error::Internal(anyhow::anyhow!("stored symbol {symbol:?} {rule}"))
        })?,
        side: "buy",
        quantity,
        price,
        executed_at: chrono::Utc::now(),
    };
    let event_id = Uuid::new_v4();
    let row = TradeRow {
        id: trade.id,
        tx_hash: trade.tx_hash.to_string(),
        user_id: user,
        symbol: trade.symbol.to_string(),
        side: "buy".into(),
        quantity: trade.quantity.to_f64().unwrap_or_default(),
        price: trade.price.to_f64().unwrap_or_default(),
        executed_at: trade.executed_at,
    };
    let payload = serde_json::to_value(TradeEvent::new(event_id, &row))
        .map_err(|e| crate::Error::Internal(e.into()))?;
    let stores = state.stores();
    stores
        .postgres()
        .record_trade(&trade, event_id, &payload)
        .await
        .map(drop)
}
