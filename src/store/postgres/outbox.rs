//! The outbox, as the relay sees it: claim pending rows of one destination (locked, so
//! that several relays never deliver the same row at once), then mark them delivered or
//! failed in the same transaction.

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

/// Rows claimed for delivery; their locks last until [`OutboxClaim::delivered`] or
/// [`OutboxClaim::failed`] (or until the claim is dropped, which releases them as they
/// were).
pub struct OutboxClaim {
    tx: Transaction<'static, Pg>,
    pub rows: Vec<OutboxRow>,
}

/// Pending rows of one destination.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxBacklog {
    pub destination: String,
    pub pending: i64,
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
    ) -> Result<Option<OutboxClaim>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT id, event_id, kind, payload, attempts FROM outbox \
             WHERE destination = $1 AND delivered_at IS NULL AND next_attempt_at <= now() \
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
        Ok(Some(OutboxClaim { tx, rows }))
    }

    /// Pending rows and the age of the oldest, per destination.
    pub async fn outbox_backlog(&self) -> Result<Vec<OutboxBacklog>, sqlx::Error> {
        sqlx::query_as(
            "SELECT destination, count(*) AS pending, \
                    COALESCE(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_secs \
             FROM outbox WHERE delivered_at IS NULL GROUP BY destination ORDER BY destination",
        )
        .fetch_all(&self.pool)
        .await
    }
}

impl OutboxClaim {
    pub async fn delivered(mut self) -> Result<(), sqlx::Error> {
        let ids: Vec<i64> = self.rows.iter().map(|r| r.id).collect();
        sqlx::query("UPDATE outbox SET delivered_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = ANY($1)")
            .bind(ids)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await
    }

    /// Records a failed attempt; each row is retried after `base x 2^attempts`, at most `max`.
    pub async fn failed(
        mut self,
        error: &str,
        base: Duration,
        max: Duration,
    ) -> Result<(), sqlx::Error> {
        let ids: Vec<i64> = self.rows.iter().map(|r| r.id).collect();
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $2, \
               next_attempt_at = now() + make_interval(secs => least($3 * power(2, least(attempts, 20)), $4)) \
             WHERE id = ANY($1)",
        )
        .bind(ids)
        .bind(error.chars().take(500).collect::<String>())
        .bind(base.as_secs_f64())
        .bind(max.as_secs_f64())
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await
    }
}
