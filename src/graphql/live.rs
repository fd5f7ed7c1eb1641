//! Subscriptions: prices, leaderboards and trades, fed by Redis pub/sub through the
//! instance's [`Fanout`](crate::events::fanout::Fanout).
//!
//! Delivery policy per subscription:
//! - `priceUpdated`: conflated per symbol; a slow client gets the newest price of each
//!   symbol, skipping intermediate ticks.
//! - `leaderboardUpdated`: the current top on subscribe, then the top after each change;
//!   conflated, so bursts of changes give one update. Following the current period of a
//!   windowed board, also when the next period begins.
//! - `tradeExecuted`: every trade, in order, with up to 256 waiting; a client further
//!   behind gets a SLOW_CONSUMER error and the subscription ends (resubscribe and
//!   re-query to catch up).
//! - `eventRecorded`: every domain event of the chosen kinds and subject, in order, with
//!   the same queue and the same SLOW_CONSUMER rule as `tradeExecuted`.

use async_graphql::{Context, ErrorExtensions, Result, SimpleObject, Subscription, ID};
use futures::{Stream, StreamExt};

use crate::{
    domain::boards::BoardDef,
    error::Error,
    events::{fanout::Delivery, TradeEvent},
    graphql::{
        asset::{normalise_symbol, Price},
        challenge,
        event::Event,
        farming::FarmingEvent,
        leaderboard::{self, Leaderboard},
        scope,
        user::{Chain, Trade},
    },
    loaders::{PriceSource, PriceValue},
    store::{
        clickhouse::FARMING_KINDS,
        postgres::{EventRow, TradeRow},
        redis::LatestPrice,
    },
};

/// Most symbols one `priceUpdated` may follow.
const MAX_SYMBOLS: usize = 50;

#[derive(Default)]
pub struct LiveSubscription;

#[Subscription]
impl LiveSubscription {
    /// The latest price of each symbol as it is ingested (conflated per symbol).
    async fn price_updated<'ctx>(
        &self,
        ctx: &Context<'ctx>,
        symbols: Vec<String>,
    ) -> Result<impl Stream<Item = Result<Price>> + 'ctx> {
        if symbols.is_empty() || symbols.len() > MAX_SYMBOLS {
            return Err(
                Error::field("symbols", format!("give 1 to {MAX_SYMBOLS} symbols")).extend(),
            );
        }
        let mut wanted = Vec::with_capacity(symbols.len());
        for (i, symbol) in symbols.iter().enumerate() {
            let symbol = normalise_symbol(symbol)
                .map_err(|e| Error::field(format!("symbols[{i}]"), e.to_string()).extend())?;
            wanted.push(symbol.into_string());
        }
        // Checked against the instance's copy of the catalogue: no round trip per subscribe.
        let app = scope::app(ctx)?;
        let unknown = app.symbols().first_unknown(app.stores(), &wanted).await?;
        if let Some(i) = unknown {
            return Err(
                Error::field(format!("symbols[{i}]"), format!("no asset {}", wanted[i])).extend(),
            );
        }
        let channels = wanted
            .iter()
            .map(|s| app.stores().redis().price_channel(s))
            .collect();
        let events = app
            .fanout()
            .subscribe(channels, Delivery::Latest)
            .into_stream();
        Ok(events.map(|event| {
            let event = event
                .map_err(|_| Error::SlowConsumer("price stream fell behind".into()).extend())?;
            let price: LatestPrice = serde_json::from_str(&event.payload).map_err(|err| {
                Error::Internal(anyhow::anyhow!("malformed price event: {err}")).extend()
            })?;
            Ok(Price::from(PriceValue {
                symbol: price.symbol,
                price: price.price,
                ts: price.ts,
                source: PriceSource::Redis,
            }))
        }))
    }

    /// The top `top` entries of a board: now, and after every change. A windowed board
    /// follows `period` if given (a kept one), else the current period, moving on to
    /// the next when it begins. A board split `by` an attribute follows the ranking `of`
    /// names.
    async fn leaderboard_updated<'ctx>(
        &self,
        ctx: &'ctx Context<'ctx>,
        name: String,
        of: Option<String>,
        top: Option<i32>,
        period: Option<String>,
    ) -> Result<impl Stream<Item = Result<Leaderboard>> + 'ctx> {
        let board = leaderboard::board(ctx, &name).await?;
        let of = leaderboard::ranking_of(&board, of)?;
        let top = leaderboard::check_top(ctx, top)?;
        let fixed = match &period {
            Some(_) => Some(leaderboard::period_of(&board, period.as_deref())?),
            None => None,
        };
        let app = scope::app(ctx)?;
        let channel = app.stores().redis().leaderboard_channel(
            &board.instance(of.as_deref()),
            fixed.as_ref().map_or("", |p| p.name.as_str()),
        );
        let changes = app
            .fanout()
            .subscribe(vec![channel], Delivery::Latest)
            .into_stream()
            .map(|event| event.map(drop));
        // Following the current period, the stream also ticks when the next one begins.
        let rollovers = match &fixed {
            Some(_) => None,
            None => Some(rollovers(board.clone())),
        };
        let changes = futures::stream::select(changes, futures::stream::iter(rollovers).flatten());
        // The first item is the current state; then one per (conflated) change.
        let ticks = futures::stream::once(async { Ok(()) }).chain(changes);
        Ok(ticks.then(move |tick| {
            let board = board.clone();
            let fixed = fixed.clone();
            let of = of.clone();
            async move {
                tick.map_err(|_| {
                    Error::SlowConsumer("leaderboard stream fell behind".into()).extend()
                })?;
                scope::refresh(ctx);
                let period = match fixed {
                    Some(period) => period,
                    None => board.current(chrono::Utc::now()),
                };
                leaderboard::read(ctx, &board, of, period, top).await
            }
        }))
    }

    /// Trades as they are recorded. Trades are private: a user follows their own (the
    /// default); an admin follows one user's, or (without `userId`) everyone's.
    async fn trade_executed<'ctx>(
        &self,
        ctx: &'ctx Context<'ctx>,
        user_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<Trade>> + 'ctx> {
        let viewer = scope::viewer(ctx);
        let principal = viewer.principal()?;
        let user: Option<uuid::Uuid> = match user_id {
            Some(id) => {
                let id = id
                    .parse()
                    .map_err(|_| Error::field("userId", "is not a user id (UUID)").extend())?;
                viewer.may_see(id)?;
                Some(id)
            }
            None if principal.is_admin() => None,
            None => Some(viewer.user_id()?),
        };
        let app = scope::app(ctx)?;
        let events = app
            .fanout()
            .subscribe(vec![app.stores().redis().trades_channel()], Delivery::Queue)
            .into_stream();
        Ok(events
            .filter_map(move |event| async move {
                let event = match event {
                    Ok(event) => event,
                    Err(_) => {
                        let message =
                            "this subscriber fell more than 256 trades behind; resubscribe";
                        return Some(Err(Error::SlowConsumer(message.into()).extend()));
                    }
                };
                let trade: TradeEvent = match serde_json::from_str(&event.payload) {
                    Ok(trade) => trade,
                    Err(err) => {
                        return Some(Err(Error::Internal(anyhow::anyhow!(
                            "malformed trade event: {err}"
                        ))
                        .extend()))
                    }
                };
                if user.is_some_and(|u| u != trade.user_id) {
                    return None;
                }
                Some(Ok(Trade(TradeRow {
                    id: trade.trade_id,
                    tx_hash: trade.tx_hash,
                    user_id: trade.user_id,
                    symbol: trade.symbol,
                    side: trade.side,
                    quantity: trade.quantity,
                    price: trade.price,
                    executed_at: trade.executed_at,
                })))
            })
            .inspect(move |_| scope::refresh(ctx)))
    }

    /// Domain events as they are recorded (after the relay delivers them), optionally of
    /// some kinds and of one subject. Events are public, like the boards they feed.
    ///
    /// Each comes with its `cursor`. A client that reconnects with `after: <the last cursor
    /// it saw>` first receives, in order, every event recorded since (of those the Redis
    /// event stream still keeps, about `MERIDIAN_EVENT_STREAM_LEN`), then the live ones,
    /// with none twice. A cursor older than what is kept is a CURSOR_EXPIRED error:
    /// re-query `events`, then subscribe without `after`.
    async fn event_recorded<'ctx>(
        &self,
        ctx: &'ctx Context<'ctx>,
        kinds: Option<Vec<String>>,
        subject: Option<String>,
        chain: Option<Chain>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<EventRecorded>> + 'ctx> {
        let events = recorded(ctx, kinds.unwrap_or_default(), subject, chain, after).await?;
        Ok(events.map(|item| {
            item.map(|(cursor, row)| EventRecorded {
                cursor,
                event: Event(row),
            })
        }))
    }

    /// KALE-ndar farming events (plant, work, harvest) as they are recorded: of one
    /// farmer, or all; resumable after a cursor, as `eventRecorded`.
    async fn farming_event_recorded<'ctx>(
        &self,
        ctx: &'ctx Context<'ctx>,
        farmer: Option<String>,
        chain: Option<Chain>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<FarmingEventRecorded>> + 'ctx> {
        let kinds = FARMING_KINDS.map(str::to_owned).to_vec();
        let events = recorded(ctx, kinds, farmer, chain, after).await?;
        Ok(events.map(|item| {
            item.map(|(cursor, row)| FarmingEventRecorded {
                cursor,
                event: FarmingEvent(row),
            })
        }))
    }

    /// Fathuss submissions as they are graded: of one challenge, one solver, or all;
    /// resumable after a cursor, as `eventRecorded`.
    async fn submission_graded<'ctx>(
        &self,
        ctx: &'ctx Context<'ctx>,
        challenge: Option<String>,
        solver: Option<String>,
        chain: Option<Chain>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<SubmissionGraded>> + 'ctx> {
        let kinds = vec![challenge::SUBMISSION.to_owned()];
        let events = recorded(ctx, kinds, solver, chain, after).await?;
        Ok(events.filter_map(move |item| {
            let wanted = |row: &EventRow| {
                challenge.as_deref().is_none_or(|c| {
                    row.attributes.get("challenge").and_then(|v| v.as_str()) == Some(c)
                })
            };
            let out = match item {
                Ok((cursor, row)) if wanted(&row) => Some(Ok(SubmissionGraded {
                    cursor,
                    submission: challenge::Submission(row),
                })),
                Ok(_) => None,
                Err(err) => Some(Err(err)),
            };
            async move { out }
        }))
    }
}

/// A graded submission as a subscriber receives it, with the cursor to resume after it.
#[derive(SimpleObject)]
pub struct SubmissionGraded {
    /// Pass as `after` to resume after this submission.
    pub cursor: String,
    pub submission: challenge::Submission,
}

/// Domain events as they are recorded, with their stream cursors: of these kinds (all if
/// none) and this subject (all if none), after a cursor when given (see `eventRecorded`).
async fn recorded<'ctx>(
    ctx: &'ctx Context<'ctx>,
    kinds: Vec<String>,
    subject: Option<String>,
    chain: Option<Chain>,
    after: Option<String>,
) -> Result<impl Stream<Item = Result<(String, EventRow)>> + 'ctx> {
    let subject = super::user::account_arg("subject", subject.as_deref(), chain)?
        .map(|a| a.as_str().to_owned());
    let after = after
        .map(|a| {
            StreamId::parse(&a).ok_or_else(|| {
                Error::field(
                    "after",
                    "is not an event cursor (a stream id such as 1700000000000-0)",
                )
            })
        })
        .transpose()?;
    let app = scope::app(ctx)?;
    let redis = app.stores().redis().clone();
    // Live first, so that nothing falls between the replay and the live events.
    let live = app
        .fanout()
        .subscribe(vec![redis.events_channel()], Delivery::Queue)
        .into_stream()
        .boxed();
    if let Some(after) = after {
        // Events before the oldest kept were removed: one of them may have come after
        // the cursor (a cursor of the very last removed one is refused too).
        let kept_from = redis
            .events_kept_from()
            .await?
            .and_then(|t| StreamId::parse(&t));
        if kept_from.is_some_and(|first| after < first) {
            return Err(Error::CursorExpired(format!(
                "events after {after} are no longer all kept; re-query `events` and subscribe without `after`"
            ))
            .extend());
        }
    }
    let replay = Replay {
        redis,
        last: after,
        replaying: after.is_some(),
        buffer: std::collections::VecDeque::new(),
        failed: false,
        live,
    };
    let raw = futures::stream::unfold(replay, Replay::next);
    Ok(raw
        .filter_map(move |item| {
            let wanted = |row: &EventRow| {
                (kinds.is_empty() || kinds.contains(&row.kind))
                    && subject.as_ref().is_none_or(|s| *s == row.subject)
            };
            let out = match item {
                Err(err) => Some(Err(err.extend())),
                Ok((cursor, row)) if wanted(&row) => Some(Ok((cursor.to_string(), row))),
                Ok(_) => None,
            };
            async move { out }
        })
        .inspect(move |_| scope::refresh(ctx)))
}

/// A farming event as a subscriber receives it, with the cursor to resume after it.
#[derive(SimpleObject)]
pub struct FarmingEventRecorded {
    /// Pass as `after` to resume after this event.
    pub cursor: String,
    pub event: FarmingEvent,
}

/// A domain event as a subscriber receives it, with the cursor to resume after it.
#[derive(SimpleObject)]
pub struct EventRecorded {
    /// Pass as `eventRecorded(after:)` to resume after this event.
    cursor: String,
    event: Event,
}

/// Events kept in the stream read per round trip while catching up.
const REPLAY_PAGE: usize = 500;

/// A Redis stream id: milliseconds, then a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct StreamId(u64, u64);

impl StreamId {
    fn parse(text: &str) -> Option<StreamId> {
        let (ms, seq) = text.split_once('-')?;
        Some(StreamId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// One event subscription: the events kept after its cursor, then the live ones newer
/// than the last it yielded.
struct Replay {
    redis: crate::store::redis::Redis,
    last: Option<StreamId>,
    replaying: bool,
    buffer: std::collections::VecDeque<(String, String)>,
    /// Catching up failed: the error was yielded, and the subscription ends (live events
    /// after a gap would look complete).
    failed: bool,
    live: futures::stream::BoxStream<
        'static,
        Result<crate::events::fanout::Event, crate::events::fanout::Overflow>,
    >,
}

impl Replay {
    async fn next(mut self) -> Option<(Result<(StreamId, EventRow), Error>, Replay)> {
        loop {
            if self.failed {
                return None;
            }
            if let Some((id, json)) = self.buffer.pop_front() {
                let Some(id) = StreamId::parse(&id) else {
                    continue;
                };
                self.last = Some(id);
                let row = serde_json::from_str::<EventRow>(&json).map_err(|err| {
                    Error::Internal(anyhow::anyhow!("malformed domain event {id}: {err}"))
                });
                return Some((row.map(|row| (id, row)), self));
            }
            if self.replaying {
                let from = self.last.map(|l| l.to_string()).unwrap_or_default();
                match self.redis.events_after(&from, REPLAY_PAGE).await {
                    Ok(page) if page.is_empty() => self.replaying = false,
                    Ok(page) => self.buffer.extend(page),
                    Err(err) => {
                        self.failed = true;
                        return Some((Err(err), self));
                    }
                }
                continue;
            }
            let message = self.live.next().await?;
            let Ok(message) = message else {
                let slow = Error::SlowConsumer(
                    "this subscriber fell more than 256 events behind; resubscribe with `after`"
                        .into(),
                );
                return Some((Err(slow), self));
            };
            #[derive(serde::Deserialize)]
            struct Published {
                cursor: String,
                event: EventRow,
            }
            let Ok(published) = serde_json::from_str::<Published>(&message.payload) else {
                let bad = Error::Internal(anyhow::anyhow!("malformed domain event message"));
                return Some((Err(bad), self));
            };
            let Some(id) = StreamId::parse(&published.cursor) else {
                continue;
            };
            // Already yielded while catching up.
            if self.last.is_some_and(|last| id <= last) {
                continue;
            }
            self.last = Some(id);
            return Some((Ok((id, published.event)), self));
        }
    }
}

/// One item each time a new period of a windowed board begins (never, for all time).
fn rollovers<E>(board: BoardDef) -> impl Stream<Item = Result<(), E>> {
    futures::stream::unfold(board, |board| async move {
        let next = board.next_rollover(chrono::Utc::now())?;
        let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        Some((Ok(()), board))
    })
}
