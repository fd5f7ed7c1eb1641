//! The live demo feed: random-walk price ticks and trades, written through the real write
//! paths (ticks as `ingestPrices` writes them; trades in the `recordTrade` transaction,
//! delivered by the relay), so that GraphiQL subscriptions show prices and leaderboards
//! move. `meridian simulate` runs it alone; `meridian serve --simulate` runs it in-process.

use std::{future::Future, time::Duration};

use anyhow::Context;
use rust_decimal::{
    prelude::{FromPrimitive, ToPrimitive},
    Decimal,
};
use uuid::Uuid;

use crate::{
    events::TradeEvent,
    ingest::{self, Latest},
    seed::rng::Rng,
    store::{
        clickhouse::TickRow,
        postgres::{NewTrade, TradeRow},
    },
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
}

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
    anyhow::ensure!(
        !symbols.is_empty() && !users.is_empty(),
        "no assets or users: run `meridian seed` first"
    );
    let latest = stores
        .redis()
        .latest_prices(&symbols)
        .await
        .context("reading prices")?;
    let mut prices: Vec<f64> = latest
        .iter()
        .map(|p| p.as_ref().map_or(100.0, |p| p.price))
        .collect();
    let mut rng = Rng::new(chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64);
    let mut flush = tokio::time::interval(FLUSH);
    let ticks_per_flush = rates.ticks_per_sec.max(0.0) * FLUSH.as_secs_f64();
    let trades_per_flush = rates.trades_per_sec.max(0.0) * FLUSH.as_secs_f64();
    let (mut tick_credit, mut trade_credit) = (0.0, 0.0);
    let mut next_symbol = 0;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = flush.tick() => {}
            () = &mut shutdown => return Ok(()),
        }
        tick_credit += ticks_per_flush;
        trade_credit += trades_per_flush;
        let now = chrono::Utc::now().timestamp();
        let mut ticks = Vec::new();
        while tick_credit >= 1.0 {
            tick_credit -= 1.0;
            let i = next_symbol % symbols.len();
            next_symbol += 1;
            prices[i] = (prices[i] * (0.002 * rng.normal()).exp() * 1e8).round() / 1e8;
            ticks.push(TickRow {
                symbol: symbols[i].clone(),
                ts: now as u32,
                price: prices[i],
                volume: (rng.range(0.0, 10.0) * 1e4).round() / 1e4,
            });
        }
        if let Err(err) = write_ticks(&state, &ticks).await {
            tracing::warn!(error = %err, "simulated ticks not written");
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
