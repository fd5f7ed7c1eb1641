//! `meridian reconcile [--repair]`: checks that the data derived from PostgreSQL agrees
//! with it: ClickHouse trade counts and volumes per day and symbol, domain event counts
//! and amounts per day and kind, every score of every
//! kept period of every declared board in Redis, and each subject's cached latest proof. `--repair` rebuilds both from
//! PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;

use crate::{
    events::{relay, TradeEvent},
    store::{
        clickhouse::{DayTotals, Folded},
        postgres::{DeadLetter, LatestProof, OutboxBacklog},
        Stores,
    },
};

/// Rows per insert while rebuilding ClickHouse.
const REBUILD_CHUNK: i64 = 10_000;

/// What reconciliation found.
#[derive(Debug, Default)]
pub struct Report {
    /// Outbox rows still to deliver (differences they explain are expected).
    pub pending: Vec<OutboxBacklog>,
    /// Outbox rows set aside as dead letters (the first 100).
    pub dead: Vec<DeadLetter>,
    pub clickhouse: Vec<String>,
    pub redis: Vec<String>,
    /// Writers' conflicts awaiting an admin (`resolveConflict`): not a store disagreeing,
    /// so they do not make the report unclean, but they are listed.
    pub conflicts: Vec<String>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.clickhouse.is_empty() && self.redis.is_empty()
    }

    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .pending
            .iter()
            .filter(|b| b.pending > 0)
            .map(|b| {
                format!(
                    "outbox: {} events pending for {} (oldest {:.0}s)",
                    b.pending, b.destination, b.oldest_secs
                )
            })
            .collect();
        lines.extend(self.dead.iter().map(|d| {
            format!(
                "outbox: dead letter {} for {} ({} of event {}, since {}) after {} attempts: {} (meridian redrive --id {} retries it)",
                d.id, d.destination, d.kind, d.event_id, d.dead_at.to_rfc3339(), d.attempts, d.last_error, d.id
            )
        }));
        lines.extend(self.conflicts.iter().map(|c| format!("conflicts: {c}")));
        lines.extend(self.clickhouse.iter().map(|d| format!("clickhouse: {d}")));
        lines.extend(self.redis.iter().map(|d| format!("redis: {d}")));
        lines
    }
}

/// Each view's rows per key and UTC day against the raw rows' (a view missing an insert,
/// or counting one twice, shows): the candle views against the ticks, the pool series
/// against the pool samples.
async fn view_differences(stores: &Stores, kind: Folded) -> anyhow::Result<Vec<String>> {
    let raw = stores.clickhouse().rows_per_day(kind, None).await?;
    let mut differences = Vec::new();
    for &(_, view) in kind.views() {
        let folded = stores.clickhouse().rows_per_day(kind, Some(view)).await?;
        if folded == raw {
            continue;
        }
        let key = |r: &crate::store::clickhouse::DayTicksRow| (r.symbol.clone(), r.day);
        let raw_by: std::collections::BTreeMap<_, u64> =
            raw.iter().map(|r| (key(r), r.ticks)).collect();
        let view_by: std::collections::BTreeMap<_, u64> =
            folded.iter().map(|r| (key(r), r.ticks)).collect();
        let mut days: Vec<_> = raw_by.keys().chain(view_by.keys()).cloned().collect();
        days.sort();
        days.dedup();
        for (symbol, day) in days {
            let (a, b) = (
                raw_by.get(&(symbol.clone(), day)).copied().unwrap_or(0),
                view_by.get(&(symbol.clone(), day)).copied().unwrap_or(0),
            );
            if a != b {
                let date = chrono::DateTime::from_timestamp(i64::from(day) * 86_400, 0)
                    .map(|d| d.date_naive().to_string())
                    .unwrap_or_default();
                let noun = kind.noun();
                differences.push(format!("{view} {symbol} {date}: {noun} {a}, view {b}"));
            }
        }
    }
    Ok(differences)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) + 1e-9
}

/// Compares ClickHouse and Redis with PostgreSQL.
pub async fn check(stores: &Stores) -> anyhow::Result<Report> {
    let pending = stores
        .postgres()
        .outbox_backlog()
        .await
        .context("reading the outbox")?;
    let dead = stores
        .postgres()
        .dead_letters(100)
        .await
        .context("reading the outbox's dead letters")?;
    let pg = stores
        .postgres()
        .trade_totals()
        .await
        .context("reading PostgreSQL trades")?;
    let ch = stores
        .clickhouse()
        .trade_totals()
        .await
        .context("reading ClickHouse trade events")?;
    let mut clickhouse = compare_totals(&pg, &ch, ("trades", "volume"));
    let pg = stores
        .postgres()
        .event_totals()
        .await
        .context("reading PostgreSQL domain events")?;
    let ch = stores
        .clickhouse()
        .event_totals()
        .await
        .context("reading ClickHouse domain events")?;
    clickhouse.extend(compare_totals(&pg, &ch, ("events", "amount")));
    clickhouse.extend(
        view_differences(stores, Folded::Ticks)
            .await
            .context("comparing the candle views with the ticks")?,
    );
    clickhouse.extend(
        view_differences(stores, Folded::PoolSamples)
            .await
            .context("comparing the pool series with the samples")?,
    );

    let now = chrono::Utc::now();
    let boards = crate::boards::load(stores)
        .await
        .context("reading the declared boards")?;
    let mut redis = Vec::new();
    for board in boards.values() {
        let expected = crate::boards::expected(stores, board, now)
            .await
            .with_context(|| format!("computing board {} in PostgreSQL", board.name))?;
        for expected in expected {
            let actual: BTreeMap<String, f64> = stores
                .redis()
                .leaderboard_all(&expected.instance, &expected.period.name)
                .await
                .context("reading Redis")?
                .into_iter()
                .collect();
            let label = if expected.period.name.is_empty() {
                expected.instance.clone()
            } else {
                format!("{} {}", expected.instance, expected.period.name)
            };
            redis.extend(compare_scores(&label, &expected.scores, &actual));
        }
    }
    redis.extend(
        proof_differences(stores)
            .await?
            .iter()
            .map(|(proof, cached)| match cached {
                Some(cid) => format!(
                    "proof {}:{}: postgres {}, redis {cid}",
                    proof.chain, proof.subject, proof.cid
                ),
                None => format!(
                    "proof {}:{}: postgres {}, missing in redis",
                    proof.chain, proof.subject, proof.cid
                ),
            }),
    );
    let (open, oldest) = stores
        .postgres()
        .open_conflicts(20)
        .await
        .context("reading the writers' conflicts")?;
    let mut conflicts: Vec<String> = oldest
        .iter()
        .map(|c| {
            format!(
                "#{} {} {}: {} by {} at block {} against {} at block {}, open since {}",
                c.id,
                c.entity,
                c.entity_id,
                c.fields.join(", "),
                c.kept_source,
                c.kept_block,
                c.other_source,
                c.other_block,
                c.detected_at.to_rfc3339()
            )
        })
        .collect();
    if open > oldest.len() as i64 {
        conflicts.push(format!(
            "{} more open conflicts",
            open - oldest.len() as i64
        ));
    }
    Ok(Report {
        pending,
        dead,
        clickhouse,
        redis,
        conflicts,
    })
}

/// Each subject whose cached latest proof is not the one PostgreSQL names, with the CID
/// cached (None: nothing is).
async fn proof_differences(stores: &Stores) -> anyhow::Result<Vec<(LatestProof, Option<String>)>> {
    let expected = stores
        .postgres()
        .latest_proofs()
        .await
        .context("computing the latest proofs in PostgreSQL")?;
    let mut out = Vec::new();
    for chunk in expected.chunks(1_000) {
        let subjects: Vec<(String, String)> = chunk
            .iter()
            .map(|p| (p.chain.clone(), p.subject.clone()))
            .collect();
        let cached = stores
            .redis()
            .latest_proofs(&subjects)
            .await
            .context("reading the proof cache")?;
        for (proof, cached) in chunk.iter().zip(cached) {
            let same = cached
                .as_ref()
                .is_some_and(|(cid, at)| *cid == proof.cid && *at == proof.at);
            if !same {
                out.push((proof.clone(), cached.map(|(cid, _)| cid)));
            }
        }
    }
    Ok(out)
}

fn compare_scores(
    board: &str,
    expected: &BTreeMap<String, f64>,
    actual: &BTreeMap<String, f64>,
) -> Vec<String> {
    let members: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    let mut out = Vec::new();
    for member in members {
        match (expected.get(member), actual.get(member)) {
            (Some(e), Some(a)) if close(*e, *a) => {}
            (Some(e), Some(a)) => out.push(format!("{board} {member}: postgres {e}, redis {a}")),
            (Some(e), None) => {
                out.push(format!("{board} {member}: postgres {e}, missing in redis"))
            }
            (None, Some(a)) => out.push(format!("{board} {member}: not in postgres, redis {a}")),
            (None, None) => {}
        }
    }
    out
}

/// Differences between daily totals; `what` names the counted rows and their sum
/// (`("trades", "volume")`), and prefixes each line unless it is trades.
fn compare_totals(pg: &[DayTotals], ch: &[DayTotals], what: (&str, &str)) -> Vec<String> {
    let (rows, sum) = what;
    let label = |day: &str, symbol: &str| {
        if rows == "trades" {
            format!("{day} {symbol}")
        } else {
            format!("{rows} {day} {symbol}")
        }
    };
    let key = |t: &DayTotals| (t.day.clone(), t.symbol.clone());
    let pg: BTreeMap<_, _> = pg.iter().map(|t| (key(t), t)).collect();
    let ch: BTreeMap<_, _> = ch.iter().map(|t| (key(t), t)).collect();
    let keys: BTreeSet<_> = pg.keys().chain(ch.keys()).collect();
    let mut out = Vec::new();
    for k in keys {
        match (pg.get(k), ch.get(k)) {
            (Some(p), Some(c)) if p.trades == c.trades && close(p.volume, c.volume) => {}
            (Some(p), Some(c)) => out.push(format!(
                "{}: postgres {} {rows} / {} {sum}, clickhouse {} / {}",
                label(&k.0, &k.1),
                p.trades,
                p.volume,
                c.trades,
                c.volume
            )),
            (Some(p), None) => out.push(format!(
                "{}: postgres {} {rows}, none in clickhouse",
                label(&k.0, &k.1),
                p.trades
            )),
            (None, Some(c)) => out.push(format!(
                "{}: none in postgres, clickhouse {} {rows}",
                label(&k.0, &k.1),
                c.trades
            )),
            (None, None) => {}
        }
    }
    out
}

/// Rebuilds what differs from PostgreSQL, then checks again. Refuses while the outbox
/// holds undelivered events for a store it would rebuild: the relay would apply them a
/// second time on top of the rebuilt data.
pub async fn repair(stores: &Stores) -> anyhow::Result<Report> {
    let before = check(stores).await?;
    let blocked: Vec<&OutboxBacklog> = before
        .pending
        .iter()
        .filter(|b| {
            (b.destination == "clickhouse" && !before.clickhouse.is_empty())
                || (b.destination == "redis" && !before.redis.is_empty())
        })
        .collect();
    if !blocked.is_empty() {
        anyhow::bail!(
            "the outbox still has events for {}; let the relay deliver them (meridian serve or meridian relay; dead letters need meridian redrive first) and run again",
            blocked.iter().map(|b| b.destination.as_str()).collect::<Vec<_>>().join(" and ")
        );
    }
    if !before.clickhouse.is_empty() {
        rebuild_clickhouse(stores)
            .await
            .context("rebuilding ClickHouse trade events")?;
        rebuild_domain_events(stores)
            .await
            .context("rebuilding ClickHouse domain events")?;
        for kind in [Folded::Ticks, Folded::PoolSamples] {
            for &(bucket_secs, view) in kind.views() {
                if before
                    .clickhouse
                    .iter()
                    .any(|d| d.starts_with(&format!("{view} ")))
                {
                    stores
                        .clickhouse()
                        .rebuild_view(kind, view, bucket_secs)
                        .await
                        .with_context(|| format!("rebuilding {view}"))?;
                }
            }
        }
    }
    if !before.redis.is_empty() {
        crate::boards::rebuild_all(stores, chrono::Utc::now())
            .await
            .context("rebuilding the boards")?;
        let proofs: Vec<LatestProof> = proof_differences(stores)
            .await?
            .into_iter()
            .map(|(proof, _)| proof)
            .collect();
        stores
            .redis()
            .set_latest_proofs(&proofs, true)
            .await
            .context("rewriting the proof cache")?;
    }
    check(stores).await
}

/// Replaces `trade_events` with every PostgreSQL trade, and re-adds their activity rows
/// (which collapse with any existing copy, being keyed by trade id).
async fn rebuild_clickhouse(stores: &Stores) -> anyhow::Result<()> {
    stores.clickhouse().truncate_trade_events().await?;
    let mut after = None;
    loop {
        let trades = stores.postgres().trades_after(after, REBUILD_CHUNK).await?;
        let Some(last) = trades.last() else {
            return Ok(());
        };
        after = Some((last.executed_at, last.id));
        let events: Vec<TradeEvent> = trades.iter().map(|t| TradeEvent::new(t.id, t)).collect();
        let rows: Vec<_> = events.iter().map(relay::trade_event_row).collect();
        let activity: Vec<_> = events.iter().map(relay::activity_row).collect();
        stores.clickhouse().insert_trade_events(&rows).await?;
        stores.clickhouse().insert_activity(&activity).await?;
    }
}

/// Replaces `domain_events` with every PostgreSQL event.
async fn rebuild_domain_events(stores: &Stores) -> anyhow::Result<()> {
    stores.clickhouse().truncate_domain_events().await?;
    let mut after = None;
    loop {
        let events = stores.postgres().events_after(after, REBUILD_CHUNK).await?;
        let Some(last) = events.last() else {
            return Ok(());
        };
        after = Some((last.occurred_at, last.uid));
        let rows: Vec<_> = events.iter().map(relay::domain_event_row).collect();
        stores.clickhouse().insert_domain_events(&rows).await?;
    }
}
