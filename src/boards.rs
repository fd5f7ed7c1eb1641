//! Boards at run time: the definitions each instance remembers, what an event does to the
//! boards that read its kind, the announcements of a change, and the rebuild of a board
//! from PostgreSQL (reconcile, seeding). Definitions: [`crate::domain::boards`].
//!
//! An instance keeps the declared boards in memory so that reading a board costs no
//! PostgreSQL round trip. The copy is reloaded when it is older than `MAX_AGE`, or when a
//! name it lacks is asked for (at most once per `MIN_RELOAD`, however many requests ask).
//! The relay reads the definitions afresh for every batch it delivers to Redis.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

use crate::{
    domain::boards::{account_member, BoardDef, Period, Score, TRADE},
    error::Error,
    events::TradeEvent,
    store::{
        postgres::EventRow,
        redis::{BoardDelta, BoardMove},
        Stores,
    },
};

/// How long a loaded copy is trusted.
const MAX_AGE: Duration = Duration::from_secs(10);
/// The least time between two reloads caused by unknown names.
const MIN_RELOAD: Duration = Duration::from_secs(1);

/// The declared boards, by name.
pub type Boards = BTreeMap<String, BoardDef>;

/// This instance's copy of the declared boards.
#[derive(Default)]
pub struct BoardDirectory {
    copy: RwLock<Option<(Instant, Arc<Boards>)>>,
    reloading: tokio::sync::Mutex<()>,
}

impl BoardDirectory {
    /// The definition of board `name`, or BAD_USER_INPUT naming the boards there are.
    pub async fn get(&self, stores: &Stores, name: &str) -> Result<BoardDef, Error> {
        let boards = self.lookup(stores, Some(name)).await?;
        boards.get(name).cloned().ok_or_else(|| {
            Error::BadUserInput(format!(
                "unknown leaderboard {name:?}; known: {}",
                boards.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// Every declared board.
    pub async fn all(&self, stores: &Stores) -> Result<Arc<Boards>, Error> {
        self.lookup(stores, None).await
    }

    /// Drops the copy, so the next use reloads.
    pub fn forget(&self) {
        *self.copy.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn lookup(&self, stores: &Stores, wanted: Option<&str>) -> Result<Arc<Boards>, Error> {
        let has = |boards: &Boards| wanted.is_none_or(|name| boards.contains_key(name));
        if let Some((at, boards)) = self.current() {
            if at.elapsed() < MAX_AGE && has(&boards) {
                return Ok(boards);
            }
        }
        let _one_at_a_time = self.reloading.lock().await;
        if let Some((at, boards)) = self.current() {
            let fresh = at.elapsed() < MAX_AGE;
            if fresh && (has(&boards) || at.elapsed() < MIN_RELOAD) {
                return Ok(boards);
            }
        }
        let boards = Arc::new(load(stores).await?);
        *self.copy.write().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), boards.clone()));
        Ok(boards)
    }

    fn current(&self) -> Option<(Instant, Arc<Boards>)> {
        self.copy.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The moves one event makes on the boards that read `kind`, at `now`: periods no longer
/// kept (or not begun) are left alone.
fn moves(
    boards: &Boards,
    kind: &str,
    at: DateTime<Utc>,
    amount: Option<f64>,
    attributes: &serde_json::Value,
    now: DateTime<Utc>,
) -> Vec<BoardMove> {
    boards
        .values()
        .filter(|b| b.reads.iter().any(|k| k == kind))
        .filter_map(|b| {
            let part = match b.part_of(attributes) {
                Some(None) => return None,
                Some(Some(value)) => Some(value),
                None => None,
            };
            Some(BoardMove {
                board: b.instance(part.as_deref()),
                period: b.period_at(at, now)?,
                max: b.score == Score::Max,
                value: b.contribution(amount)?,
            })
        })
        .collect()
}

/// What trades do to the boards reading `trade` (the marker is the one trades always had).
pub fn trade_deltas(
    boards: &Boards,
    trades: &[&TradeEvent],
    now: DateTime<Utc>,
) -> Vec<BoardDelta> {
    trades
        .iter()
        .map(|t| BoardDelta {
            marker: format!("applied:leaderboard:{}", t.event_id),
            member: t.user_id.to_string(),
            moves: moves(
                boards,
                TRADE,
                t.executed_at,
                Some(t.notional()),
                &serde_json::Value::Null,
                now,
            ),
        })
        .filter(|d| !d.moves.is_empty())
        .collect()
}

/// What domain events do to the boards reading their kinds.
pub fn event_deltas(boards: &Boards, events: &[&EventRow], now: DateTime<Utc>) -> Vec<BoardDelta> {
    use rust_decimal::prelude::ToPrimitive;
    events
        .iter()
        .map(|e| BoardDelta {
            marker: format!("applied:board:{}", e.uid),
            member: account_member(&e.subject_chain, &e.subject),
            moves: moves(
                boards,
                &e.kind,
                e.occurred_at,
                e.amount.and_then(|a| a.to_f64()),
                &e.attributes,
                now,
            ),
        })
        .filter(|d| !d.moves.is_empty())
        .collect()
}

/// The pub/sub messages announcing that these (board, period) pairs changed: on each
/// period's own channel, and on the board's bare channel for its current period.
pub fn announcements(
    stores: &Stores,
    boards: &Boards,
    changed: impl IntoIterator<Item = (String, String)>,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let changed: BTreeSet<(String, String)> = changed.into_iter().collect();
    let mut out = Vec::new();
    for (name, period) in changed {
        let message = serde_json::json!({ "name": name, "period": period }).to_string();
        let redis = stores.redis();
        out.push((redis.leaderboard_channel(&name, &period), message.clone()));
        let current = boards.get(board_of(&name)).map(|b| b.current(now).name);
        if !period.is_empty() && current.as_deref() == Some(period.as_str()) {
            out.push((redis.leaderboard_channel(&name, ""), message));
        }
    }
    out
}

/// The board a ranking belongs to: `name` of `name~value`.
pub fn board_of(instance: &str) -> &str {
    instance.split_once('~').map_or(instance, |(name, _)| name)
}

/// The (ranking, period) pairs some deltas move.
pub fn changed(deltas: &[BoardDelta]) -> impl Iterator<Item = (String, String)> + '_ {
    deltas
        .iter()
        .flat_map(|d| d.moves.iter())
        .map(|m| (m.board.clone(), m.period.name.clone()))
}

/// One ranking of a board in one period, with its scores as PostgreSQL computes them.
pub struct Expected {
    /// The ranking's name (see [`BoardDef::instance`]).
    pub instance: String,
    pub period: Period,
    pub scores: BTreeMap<String, f64>,
}

/// Every kept period of every ranking of a board, as PostgreSQL computes them: for a
/// board split `by` an attribute, one ranking per value its events have.
pub async fn expected(
    stores: &Stores,
    board: &BoardDef,
    now: DateTime<Utc>,
) -> Result<Vec<Expected>, Error> {
    let scores = stores.postgres().board_scores(board, now).await?;
    let mut by_ranking: BTreeMap<(Option<String>, String), BTreeMap<String, f64>> = BTreeMap::new();
    for s in scores {
        by_ranking
            .entry((s.part, s.period))
            .or_default()
            .insert(s.member, s.score);
    }
    let mut parts: BTreeSet<Option<String>> = by_ranking.keys().map(|k| k.0.clone()).collect();
    if board.by.is_none() {
        parts.insert(None);
    }
    let mut out = Vec::new();
    for part in parts {
        for period in board.kept(now) {
            let scores = by_ranking
                .remove(&(part.clone(), period.name.clone()))
                .unwrap_or_default();
            out.push(Expected {
                instance: board.instance(part.as_deref()),
                period,
                scores,
            });
        }
    }
    Ok(out)
}

/// Rebuilds every kept period of every ranking of a board from PostgreSQL.
pub async fn rebuild(stores: &Stores, board: &BoardDef, now: DateTime<Utc>) -> Result<(), Error> {
    for expected in expected(stores, board, now).await? {
        let entries: Vec<(String, f64)> = expected.scores.into_iter().collect();
        stores
            .redis()
            .replace_leaderboard(&expected.instance, &expected.period, &entries)
            .await?;
    }
    Ok(())
}

/// Rebuilds every declared board from PostgreSQL; returns how many there were.
pub async fn rebuild_all(stores: &Stores, now: DateTime<Utc>) -> Result<usize, Error> {
    let boards = stores.postgres().boards().await?;
    for board in &boards {
        rebuild(stores, board, now).await?;
    }
    Ok(boards.len())
}

/// Loads the declared boards, by name (for the relay and reconcile, which read afresh).
pub async fn load(stores: &Stores) -> Result<Boards, Error> {
    Ok(stores
        .postgres()
        .boards()
        .await?
        .into_iter()
        .map(|b| (b.name.clone(), b))
        .collect())
}
