//! The outbox relay. One worker per destination claims due rows (`FOR UPDATE SKIP
//! LOCKED`, so any number of relays can run against one outbox), delivers them in one
//! batch, and marks them delivered, or failed with a backoff, in the claim's transaction.
//! A destination that is down delays its own rows and nothing else; a relay that dies
//! mid-batch releases its locks and the rows are delivered again. Every destination is
//! idempotent by event, so a redelivery changes nothing:
//!
//! - clickhouse: trade and activity rows keyed by trade id, domain events keyed by their
//!   uid, in ReplacingMergeTree tables, read with FINAL;
//! - redis: the moves of the declared boards reading the event's kind, guarded by a
//!   per-event marker, in one Lua script; and each subject's latest proof (from events
//!   carrying an artifact, and recorded proofs), kept only when newer;
//! - pubsub: at-least-once messages for trades (a subscriber may see a redelivered trade
//!   twice); domain events go to a capped Redis stream and pub/sub once each, guarded by a
//!   per-event marker in the same script.
//!
//! A row its store keeps refusing, or whose payload cannot be read, becomes a dead letter
//! (see [`relay_once`]) instead of blocking the rows behind it.

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{TradeEvent, TRADE_RECORDED};
use crate::{
    app::AppState,
    store::{
        clickhouse::{ActivityRow, DomainEventRow, TradeEventRow},
        postgres::{
            ArtifactRow, Backoff, EventRow, LatestProof, Settle, ARTIFACT_RECORDED, EVENT_RECORDED,
            OUTBOX_CHANNEL, TRADE_DESTINATIONS,
        },
        Stores,
    },
};

/// How the relay paces itself.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub batch: i64,
    /// How often to look for due rows when no notification arrives.
    pub poll: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Refusals after which a row is set aside as a dead letter.
    pub max_attempts: i32,
    /// Domain events kept in the Redis stream (approximately).
    pub event_stream_len: u64,
}

/// Runs the relay until `shutdown` resolves.
pub async fn run(
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settings = state.relay_settings();
    let wake = Arc::new(Notify::new());
    let stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(listen(state.clone(), wake.clone(), stop.clone()));
    for destination in TRADE_DESTINATIONS {
        tasks.spawn(worker(
            state.clone(),
            destination,
            settings.clone(),
            wake.clone(),
            stop.clone(),
        ));
    }
    tasks.spawn(report_backlog(state.clone(), stop.clone()));
    shutdown.await;
    stop.cancel();
    while let Some(result) = tasks.join_next().await {
        result.context("relay task panicked")?;
    }
    Ok(())
}

/// Wakes the workers on every outbox notification; reconnects after a failure.
async fn listen(state: AppState, wake: Arc<Notify>, stop: CancellationToken) {
    loop {
        let connected = async {
            let mut listener = state.stores().postgres().listen(OUTBOX_CHANNEL).await?;
            loop {
                listener.recv().await?;
                wake.notify_waiters();
            }
            #[allow(unreachable_code)]
            Ok::<(), anyhow::Error>(())
        };
        tokio::select! {
            result = connected => {
                if let Err(err) = result {
                    tracing::debug!(%err, "outbox listener lost; workers poll meanwhile");
                }
            }
            () = stop.cancelled() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = stop.cancelled() => return,
        }
    }
}

async fn worker(
    state: AppState,
    destination: &'static str,
    settings: RelaySettings,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        if stop.is_cancelled() {
            return;
        }
        let notified = wake.notified();
        let busy = match relay_once(state.stores(), destination, &settings).await {
            Ok(delivered) => delivered > 0,
            Err(err) => {
                tracing::warn!(
                    destination,
                    error = format!("{err:#}"),
                    "relay round failed"
                );
                false
            }
        };
        if busy {
            continue;
        }
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep(settings.poll) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Claims and delivers one batch of `destination`; returns how many rows it handled.
///
/// A batch is delivered whole when it can be. When its store refuses it (not an outage),
/// its rows are delivered one by one, so that one bad row fails alone: it is retried
/// with the backoff and dead-lettered after `max_attempts` refusals, and the rows behind it
/// go through. A row whose payload cannot be read is dead at once. An outage fails the
/// batch as it is, to be retried, and never counts toward dead-lettering.
pub async fn relay_once(
    stores: &Stores,
    destination: &str,
    settings: &RelaySettings,
) -> anyhow::Result<usize> {
    let claim = stores
        .postgres()
        .claim_outbox(destination, settings.batch)
        .await
        .context("claiming outbox rows")?;
    let Some(claim) = claim else { return Ok(0) };
    let handled = claim.rows.len();
    let mut outcomes: Vec<(i64, Settle)> = Vec::with_capacity(handled);
    // The readable events, and their rows' ids, index for index.
    let mut ids: Vec<i64> = Vec::with_capacity(handled);
    let mut events: Vec<Outgoing> = Vec::with_capacity(handled);
    for row in &claim.rows {
        let read = match row.kind.as_str() {
            TRADE_RECORDED => {
                serde_json::from_value::<TradeEvent>(row.payload.clone()).map(Outgoing::Trade)
            }
            EVENT_RECORDED => {
                serde_json::from_value::<EventRow>(row.payload.clone()).map(Outgoing::Domain)
            }
            ARTIFACT_RECORDED => {
                serde_json::from_value::<ArtifactRow>(row.payload.clone()).map(Outgoing::Artifact)
            }
            _ => {
                // Nothing to deliver for kinds this relay does not know.
                outcomes.push((row.id, Settle::Delivered));
                continue;
            }
        };
        match read {
            Ok(event) => {
                ids.push(row.id);
                events.push(event);
            }
            Err(err) => outcomes.push((
                row.id,
                Settle::Dead(format!("outbox row {} is malformed: {err}", row.id)),
            )),
        }
    }
    if !events.is_empty() {
        match deliver(stores, destination, settings, &events).await {
            Ok(()) => outcomes.extend(ids.iter().map(|id| (*id, Settle::Delivered))),
            Err(err) if is_outage(&err) || events.len() == 1 => {
                let outcome = failure(&err);
                outcomes.extend(ids.iter().map(|id| (*id, outcome.clone())));
            }
            Err(err) => {
                tracing::info!(
                    destination,
                    rows = events.len(),
                    error = format!("{err:#}"),
                    "batch refused; delivering its rows one by one"
                );
                let mut outage: Option<Settle> = None;
                for (id, event) in ids.iter().zip(&events) {
                    let outcome = match &outage {
                        Some(outcome) => outcome.clone(),
                        None => {
                            match deliver(
                                stores,
                                destination,
                                settings,
                                std::slice::from_ref(event),
                            )
                            .await
                            {
                                Ok(()) => Settle::Delivered,
                                Err(err) => failure(&err),
                            }
                        }
                    };
                    if matches!(outcome, Settle::Retry(_)) {
                        outage = Some(outcome.clone());
                    }
                    outcomes.push((*id, outcome));
                }
            }
        }
    }
    let backoff = Backoff {
        base: settings.retry_base,
        max: settings.retry_max,
        max_attempts: settings.max_attempts,
    };
    let settled = claim.settle(&outcomes, backoff).await?;
    if settled.retried > 0 || settled.dead > 0 {
        let reasons: Vec<&str> = outcomes
            .iter()
            .filter_map(|(_, o)| match o {
                Settle::Retry(e) | Settle::Rejected(e) | Settle::Dead(e) => Some(e.as_str()),
                Settle::Delivered => None,
            })
            .take(3)
            .collect();
        tracing::warn!(
            destination,
            retried = settled.retried,
            dead = settled.dead,
            errors = ?reasons,
            "outbox rows not delivered"
        );
    }
    let metrics = stores.metrics();
    metrics.observe_relay(destination, settled.delivered, "delivered");
    metrics.observe_relay(destination, settled.retried, "failed");
    metrics.observe_relay(destination, settled.dead, "dead");
    Ok(handled)
}

/// Whether a delivery failed because its store is unavailable (not because of the rows):
/// down, too slow, or behind an open circuit breaker.
fn is_outage(err: &anyhow::Error) -> bool {
    err.downcast_ref::<crate::Error>()
        .is_some_and(|e| e.is_store_outage() || matches!(e, crate::Error::CircuitOpen { .. }))
}

fn failure(err: &anyhow::Error) -> Settle {
    let reason = format!("{err:#}");
    if is_outage(err) {
        Settle::Retry(reason)
    } else {
        Settle::Rejected(reason)
    }
}

/// An outbox event on its way: a trade, a domain event, or a recorded proof.
enum Outgoing {
    Trade(TradeEvent),
    Domain(EventRow),
    Artifact(ArtifactRow),
}

async fn deliver(
    stores: &Stores,
    destination: &str,
    settings: &RelaySettings,
    events: &[Outgoing],
) -> anyhow::Result<()> {
    let trades: Vec<&TradeEvent> = events
        .iter()
        .filter_map(|e| match e {
            Outgoing::Trade(t) => Some(t),
            _ => None,
        })
        .collect();
    let domain: Vec<&EventRow> = events
        .iter()
        .filter_map(|e| match e {
            Outgoing::Domain(d) => Some(d),
            _ => None,
        })
        .collect();
    let artifacts: Vec<&ArtifactRow> = events
        .iter()
        .filter_map(|e| match e {
            Outgoing::Artifact(a) => Some(a),
            _ => None,
        })
        .collect();
    if !trades.is_empty() {
        deliver_trades(stores, destination, &trades).await?;
    }
    if !domain.is_empty() {
        deliver_domain(stores, destination, settings, &domain).await?;
    }
    if !artifacts.is_empty() && destination == "redis" {
        let proofs: Vec<LatestProof> = artifacts
            .iter()
            .map(|a| LatestProof {
                chain: a.owner_chain.clone(),
                subject: a.owner.clone(),
                cid: a.cid.clone(),
                at: a.recorded_at,
            })
            .collect();
        stores.redis().set_latest_proofs(&proofs, false).await?;
    }
    Ok(())
}

async fn deliver_trades(
    stores: &Stores,
    destination: &str,
    events: &[&TradeEvent],
) -> anyhow::Result<()> {
    match destination {
        "clickhouse" => {
            let trades: Vec<TradeEventRow> = events.iter().map(|e| trade_event_row(e)).collect();
            let activity: Vec<ActivityRow> = events.iter().map(|e| activity_row(e)).collect();
            stores.clickhouse().insert_trade_events(&trades).await?;
            stores.clickhouse().insert_activity(&activity).await?;
        }
        "redis" => {
            let boards = crate::boards::load(stores).await?;
            let now = chrono::Utc::now();
            let deltas = crate::boards::trade_deltas(&boards, events, now);
            apply_boards(stores, &boards, &deltas, now).await?;
        }
        "pubsub" => {
            let messages: Vec<(String, String)> = events
                .iter()
                .map(|e| Ok((stores.redis().trades_channel(), serde_json::to_string(e)?)))
                .collect::<Result<_, serde_json::Error>>()?;
            stores.redis().publish(&messages).await?;
        }
        other => anyhow::bail!("unknown outbox destination {other}"),
    }
    Ok(())
}

/// Domain events: their ClickHouse rows, their moves on the boards that read their kinds
/// and the latest-proof cache, and their entries in the Redis event stream with their pub/sub messages (each once per
/// event, guarded by a marker).
async fn deliver_domain(
    stores: &Stores,
    destination: &str,
    settings: &RelaySettings,
    events: &[&EventRow],
) -> anyhow::Result<()> {
    match destination {
        "clickhouse" => {
            let rows: Vec<DomainEventRow> = events.iter().map(|e| domain_event_row(e)).collect();
            stores.clickhouse().insert_domain_events(&rows).await?;
        }
        "redis" => {
            let boards = crate::boards::load(stores).await?;
            let now = chrono::Utc::now();
            let deltas = crate::boards::event_deltas(&boards, events, now);
            apply_boards(stores, &boards, &deltas, now).await?;
            // An event carrying an artifact (a farming proof) makes it its subject's
            // latest proof, unless a later one is cached.
            let proofs: Vec<LatestProof> = events
                .iter()
                .filter_map(|e| {
                    Some(LatestProof {
                        chain: e.subject_chain.clone(),
                        subject: e.subject.clone(),
                        cid: e.artifact.clone()?,
                        at: e.occurred_at,
                    })
                })
                .collect();
            stores.redis().set_latest_proofs(&proofs, false).await?;
        }
        "pubsub" => {
            let entries: Vec<(String, String)> = events
                .iter()
                .map(|e| Ok((e.uid.to_string(), serde_json::to_string(e)?)))
                .collect::<Result<_, serde_json::Error>>()?;
            stores
                .redis()
                .publish_events(&entries, settings.event_stream_len)
                .await?;
        }
        other => anyhow::bail!("unknown outbox destination {other}"),
    }
    Ok(())
}

/// Applies board moves once per event, then announces the periods they moved.
async fn apply_boards(
    stores: &Stores,
    boards: &crate::boards::Boards,
    deltas: &[crate::store::redis::BoardDelta],
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    if stores.redis().apply_board_deltas(deltas).await? > 0 {
        let announce =
            crate::boards::announcements(stores, boards, crate::boards::changed(deltas), now);
        stores.redis().publish(&announce).await?;
    }
    Ok(())
}

/// A domain event's row in ClickHouse: keyed by its uid.
pub fn domain_event_row(e: &EventRow) -> DomainEventRow {
    use rust_decimal::prelude::ToPrimitive;
    DomainEventRow {
        uid: e.uid.to_string(),
        id: e.id.clone(),
        kind: e.kind.clone(),
        subject_chain: e.subject_chain.clone(),
        subject: e.subject.clone(),
        amount: e.amount.and_then(|a| a.to_f64()).unwrap_or(0.0),
        has_amount: u8::from(e.amount.is_some()),
        attributes: e.attributes.to_string(),
        tx_hash: e.tx_hash.clone().unwrap_or_default(),
        block_number: e
            .block_number
            .and_then(|b| u64::try_from(b).ok())
            .unwrap_or(0),
        artifact: e.artifact.clone().unwrap_or_default(),
        occurred_at: unix(e.occurred_at),
    }
}

/// A trade's row in ClickHouse: keyed by the trade id, whoever writes it.
pub fn trade_event_row(e: &TradeEvent) -> TradeEventRow {
    TradeEventRow {
        event_id: e.trade_id.to_string(),
        trade_id: e.trade_id.to_string(),
        user_id: e.user_id.to_string(),
        symbol: e.symbol.clone(),
        side: e.side.clone(),
        quantity: e.quantity,
        price: e.price,
        executed_at: unix(e.executed_at),
    }
}

pub fn activity_row(e: &TradeEvent) -> ActivityRow {
    ActivityRow {
        event_id: e.trade_id.to_string(),
        user_id: e.user_id.to_string(),
        kind: format!("trade_{}", e.side),
        symbol: e.symbol.clone(),
        amount: e.notional(),
        ts: unix(e.executed_at),
    }
}

fn unix(at: chrono::DateTime<chrono::Utc>) -> u32 {
    u32::try_from(at.timestamp().max(0)).unwrap_or(u32::MAX)
}

/// Publishes the outbox backlog to the metrics every few seconds.
async fn report_backlog(state: AppState, stop: CancellationToken) {
    loop {
        let stores = state.stores();
        if let Ok(backlog) = stores.postgres().outbox_backlog().await {
            state.metrics().set_backlog(&backlog);
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            () = stop.cancelled() => return,
        }
    }
}
