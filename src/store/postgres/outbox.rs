//! The outbox, as the relay sees it: claim pending rows of one destination (locked, so
//! that several relays never deliver the same row at once), then settle each one
//! (delivered, to retry, or dead) in the same transaction. Dead letters stay in the table
//! with `dead_at` set until [`Postgres::redrive_outbox`] puts them back.

use std::time::Duration;

use sqlx::{Postgres as Pg, Transaction};
use uuid::Uuid;

use super::Postgres;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
}

/// Rows claimed for delivery; their locks last until [`OutboxClaim::settle`] (or until the
/// claim is dropped, which releases them as they were).
pub struct OutboxClaim {
    tx: Transaction<'static, Pg>,
    pub rows: Vec<OutboxRow>,
    calls: crate::store::call::Calls,
}

/// Pending rows and dead letters of one destination.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxBacklog {
    pub destination: String,
    pub pending: i64,
    /// Rows set aside as dead letters.
    pub dead: i64,
    /// Age of the oldest pending row, in seconds.
    pub oldest_secs: f64,
}

impl Postgres {
    /// Claims up to `limit` due rows of `destination`, oldest first, skipping rows another
    /// relay holds. None when nothing is due.
    pub async fn claim_outbox(
        &self,
        destination: &str,
        limit: i64,
    ) -> Result<Option<OutboxClaim>, crate::Error> {
        self.calls
            .run::<Option<OutboxClaim>, sqlx::Error, _>("outbox_claim", async {
                let mut tx = self.pool.begin().await?;
                let rows: Vec<OutboxRow> = sqlx::query_as(
                    "SELECT id, event_id, kind, payload, attempts FROM outbox \
             WHERE destination = $1 AND delivered_at IS NULL AND dead_at IS NULL \
               AND next_attempt_at <= now() \
             ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
                )
                .bind(destination)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                if rows.is_empty() {
                    tx.rollback().await?;
                    return Ok(None);
                }
                Ok(Some(OutboxClaim {
                    tx,
                    rows,
                    calls: self.calls.clone(),
                }))
            })
            .await
    }

    /// Pending rows, dead letters and the age of the oldest pending row, per destination.
    pub async fn outbox_backlog(&self) -> Result<Vec<OutboxBacklog>, crate::Error> {
        self.calls
            .run::<Vec<OutboxBacklog>, sqlx::Error, _>("outbox_backlog", async {
        sqlx::query_as(
            "SELECT destination, count(*) FILTER (WHERE dead_at IS NULL) AS pending, \
                    count(*) FILTER (WHERE dead_at IS NOT NULL) AS dead, \
                    COALESCE(extract(epoch FROM now() - min(created_at) FILTER (WHERE dead_at IS NULL)), 0)::float8 AS oldest_secs \
             FROM outbox WHERE delivered_at IS NULL GROUP BY destination ORDER BY destination",
        )
        .fetch_all(&self.pool)
        .await
            })
            .await
    }

    /// The dead letters, oldest first (at most `limit`).
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>, crate::Error> {
        self.calls
            .run::<Vec<DeadLetter>, sqlx::Error, _>("dead_letters", async {
        sqlx::query_as(
            "SELECT id, event_id, destination, kind, attempts, COALESCE(last_error, '') AS last_error, dead_at \
             FROM outbox WHERE delivered_at IS NULL AND dead_at IS NOT NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
            })
            .await
    }

    /// Puts dead letters back in the queue with their attempts reset: those of
    /// `destination` (all when None), or only `ids` when given. Returns how many.
    pub async fn redrive_outbox(
        &self,
        destination: Option<&str>,
        ids: &[i64],
    ) -> Result<u64, crate::Error> {
        self.calls
            .run::<u64, sqlx::Error, _>("redrive_outbox", async {
                let mut tx = self.pool.begin().await?;
                let moved = sqlx::query(
                    "UPDATE outbox SET dead_at = NULL, attempts = 0, next_attempt_at = now() \
             WHERE delivered_at IS NULL AND dead_at IS NOT NULL \
               AND ($1::text IS NULL OR destination = $1) \
               AND (cardinality($2::bigint[]) = 0 OR id = ANY($2))",
                )
                .bind(destination)
                .bind(ids)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(super::OUTBOX_CHANNEL)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(moved)
            })
            .await
    }
}

/// A dead letter, as `meridian reconcile` lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: i64,
    pub event_id: Uuid,
    pub destination: String,
    pub kind: String,
    pub attempts: i32,
    pub last_error: String,
    pub dead_at: chrono::DateTime<chrono::Utc>,
}

/// What became of one claimed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    Delivered,
    /// Its store was unavailable: retried after the backoff, and never dead-lettered
    /// for it (an outage is not the row's fault).
    Retry(String),
    /// Its store refused it: retried after the backoff, and dead once it has been
    /// refused `max_attempts` times.
    Rejected(String),
    /// Dead at once (a payload no retry can make readable).
    Dead(String),
}

/// How failed rows are retried.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    pub max_attempts: i32,
}

/// How many claimed rows ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    pub delivered: u64,
    pub retried: u64,
    pub dead: u64,
}

impl OutboxClaim {
    /// Records each row's outcome and releases the claim. A failed row is retried after
    /// `base x 2^attempts` (at most `max`).
    pub async fn settle(
        self,
        outcomes: &[(i64, Settle)],
        backoff: Backoff,
    ) -> Result<Settled, crate::Error> {
        let calls = self.calls.clone();
        calls
            .run("outbox_settle", async move {
                self.settle_in_tx(outcomes, backoff).await
            })
            .await
    }

    async fn settle_in_tx(
        mut self,
        outcomes: &[(i64, Settle)],
        backoff: Backoff,
    ) -> Result<Settled, sqlx::Error> {
        let mut settled = Settled::default();
        let delivered: Vec<i64> = outcomes
            .iter()
            .filter(|(_, o)| *o == Settle::Delivered)
            .map(|(id, _)| *id)
            .collect();
        settled.delivered = delivered.len() as u64;
        if !delivered.is_empty() {
            sqlx::query("UPDATE outbox SET delivered_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = ANY($1)")
                .bind(&delivered)
                .execute(&mut *self.tx)
                .await?;
        }
        let (mut ids, mut errors, mut counts, mut dead) = (vec![], vec![], vec![], vec![]);
        for (id, outcome) in outcomes {
            let (error, counted, now) = match outcome {
                Settle::Delivered => continue,
                Settle::Retry(e) => (e, false, false),
                Settle::Rejected(e) => (e, true, false),
                Settle::Dead(e) => (e, true, true),
            };
            ids.push(*id);
            errors.push(error.chars().take(500).collect::<String>());
            counts.push(counted);
            dead.push(now);
        }
        if !ids.is_empty() {
            let dead_now: Vec<bool> = sqlx::query_scalar(
                "UPDATE outbox o SET attempts = o.attempts + 1, last_error = f.error, \
                   next_attempt_at = now() + make_interval(secs => least($3 * power(2, least(o.attempts, 20)), $4)), \
                   dead_at = CASE WHEN f.dead OR (f.counts AND o.attempts + 1 >= $5) THEN now() END \
                 FROM unnest($1::bigint[], $2::text[], $6::bool[], $7::bool[]) AS f(id, error, counts, dead) \
                 WHERE o.id = f.id RETURNING o.dead_at IS NOT NULL",
            )
            .bind(&ids)
            .bind(&errors)
            .bind(backoff.base.as_secs_f64())
            .bind(backoff.max.as_secs_f64())
            .bind(backoff.max_attempts)
            .bind(&counts)
            .bind(&dead)
            .fetch_all(&mut *self.tx)
            .await?;
            settled.dead = dead_now.iter().filter(|d| **d).count() as u64;
            settled.retried = dead_now.len() as u64 - settled.dead;
        }
        self.tx.commit().await?;
        Ok(settled)
    }
}

/// Queues events in the outbox inside the writer's transaction: one row per (event,
/// destination), then a notification that wakes the relays when the transaction commits.
pub(super) async fn enqueue(
    tx: &mut sqlx::PgConnection,
    kind: &str,
    events: &[(Uuid, serde_json::Value)],
    destinations: &[&str],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO outbox (event_id, destination, kind, payload) \
         SELECT p.uid, d.destination, $1, p.payload \
         FROM UNNEST($2::uuid[], $3::jsonb[]) AS p(uid, payload) \
         CROSS JOIN UNNEST($4::text[]) AS d(destination)",
    )
    .bind(kind)
    .bind(events.iter().map(|e| e.0).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.1.clone()).collect::<Vec<_>>())
    .bind(destinations)
    .execute(&mut *tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(super::OUTBOX_CHANNEL)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The items of one call with their first occurrence by key: each key once (in the order
/// first given), or the index of a later item whose key came before with another digest.
pub(super) fn first_by_key<'a, T>(
    items: &'a [T],
    key: impl Fn(&T) -> &str,
    digest: impl Fn(&T) -> &str,
) -> Result<(std::collections::HashMap<&'a str, usize>, Vec<&'a T>), usize> {
    let mut first: std::collections::HashMap<&'a str, usize> = std::collections::HashMap::new();
    let mut fresh = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match first.get(key(item)) {
            Some(&earlier) if digest(&items[earlier]) != digest(item) => return Err(index),
            Some(_) => {}
            None => {
                first.insert(key(item), index);
                fresh.push(item);
            }
        }
    }
    Ok((first, fresh))
}
