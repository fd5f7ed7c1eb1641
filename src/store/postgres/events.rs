//! Domain events in PostgreSQL: the declared kinds, and events recorded all or nothing in
//! one transaction with their outbox rows.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Postgres, TRADE_DESTINATIONS};
use crate::domain::kinds::{KindDef, KindsFile};

/// The outbox kind of a recorded domain event (its payload is an [`EventRow`]).
pub const EVENT_RECORDED: &str = "event_recorded";
/// The outbox destinations of a domain event: the same as a trade's.
pub const EVENT_DESTINATIONS: [&str; 3] = TRADE_DESTINATIONS;

/// An event to record, already checked against its kind.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub uid: Uuid,
    /// The caller's idempotency key.
    pub id: String,
    pub kind: String,
    pub subject_chain: &'static str,
    pub subject: String,
    pub occurred_at: DateTime<Utc>,
    pub amount: Option<Decimal>,
    pub attributes: serde_json::Value,
    pub tx_hash: Option<String>,
    pub block_number: Option<i64>,
    pub artifact: Option<String>,
    /// The digest of the body: a key sent again must come with the same one.
    pub digest: String,
}

/// A recorded event, as PostgreSQL keeps it and the outbox carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct EventRow {
    pub uid: Uuid,
    pub id: String,
    pub kind: String,
    pub subject_chain: String,
    pub subject: String,
    pub occurred_at: DateTime<Utc>,
    pub amount: Option<Decimal>,
    pub attributes: serde_json::Value,
    pub tx_hash: Option<String>,
    pub block_number: Option<i64>,
    pub artifact: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// What a call to [`Postgres::record_events`] did.
#[derive(Debug)]
pub enum EventsOutcome {
    /// Every event, in the order given: recorded now, or (same key, same body) before.
    Recorded(Vec<EventRow>),
    /// The event at this index reuses a key recorded with another body; nothing was written.
    Conflict { index: usize, id: String },
}

impl crate::store::Rows for EventsOutcome {
    fn rows(&self) -> Option<u64> {
        match self {
            EventsOutcome::Recorded(rows) => Some(rows.len() as u64),
            EventsOutcome::Conflict { .. } => Some(0),
        }
    }
}

pub(super) const EVENT_COLUMNS: &str =
    "e.uid, e.id, e.kind, e.subject_chain, e.subject, e.occurred_at, \
     e.amount, e.attributes, e.tx_hash, e.block_number, e.artifact, e.recorded_at";

impl Postgres {
    /// Writes a kinds file's definitions to `event_kinds` (new kinds added, existing ones
    /// updated; a kind the file no longer names stays, so its events stay readable).
    /// Returns how many definitions changed.
    pub async fn apply_kinds(&self, file: &KindsFile) -> Result<u64, crate::Error> {
        self.calls
            .run::<u64, sqlx::Error, _>("apply_kinds", async {
                let mut tx = self.pool.begin().await?;
                let mut changed = 0;
                for kind in &file.kinds {
                    let attributes = serde_json::to_value(&kind.attributes)
                        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                    let amount = kind
                        .amount
                        .map(serde_json::to_value)
                        .transpose()
                        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                    let done = sqlx::query(
                        "INSERT INTO event_kinds (name, description, attributes, version, amount) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET \
                         description = EXCLUDED.description, attributes = EXCLUDED.attributes, \
                         amount = EXCLUDED.amount, version = EXCLUDED.version, updated_at = now() \
                         WHERE (event_kinds.description, event_kinds.attributes, event_kinds.amount) \
                           IS DISTINCT FROM (EXCLUDED.description, EXCLUDED.attributes, EXCLUDED.amount)",
                    )
                    .bind(&kind.name)
                    .bind(&kind.description)
                    .bind(attributes)
                    .bind(file.version)
                    .bind(amount)
                    .execute(&mut *tx)
                    .await?;
                    changed += done.rows_affected();
                }
                tx.commit().await?;
                Ok(changed)
            })
            .await
    }

    /// The kinds in force.
    pub async fn event_kinds(&self) -> Result<Vec<KindDef>, crate::Error> {
        self.calls
            .run::<Vec<KindDef>, sqlx::Error, _>("event_kinds", async {
                type KindRow = (String, String, serde_json::Value, Option<serde_json::Value>);
                let rows: Vec<KindRow> = sqlx::query_as(
                    "SELECT name, description, attributes, amount FROM event_kinds ORDER BY name",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(name, description, attributes, amount)| {
                        Ok(KindDef {
                            name,
                            description,
                            attributes: serde_json::from_value(attributes)
                                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                            amount: amount
                                .map(serde_json::from_value)
                                .transpose()
                                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                        })
                    })
                    .collect()
            })
            .await
    }

    /// Records events all or nothing: in one transaction their keys, their rows and one
    /// outbox row per destination for each new one (then a notification to the relay).
    /// A key recorded before with the same body answers with that event; with another
    /// body, nothing is written and the outcome names it.
    ///
    /// The call's deadline is the store deadline for each started thousand events.
    pub async fn record_events(&self, events: &[NewEvent]) -> Result<EventsOutcome, crate::Error> {
        let thousands = u32::try_from(events.len().div_ceil(1000).max(1)).unwrap_or(u32::MAX);
        self.calls
            .with_deadline(self.calls.deadline().saturating_mul(thousands))
            .run::<EventsOutcome, sqlx::Error, _>("record_events", async {
                // A key repeated within the call: one event if the bodies agree.
                let (first_by_key, fresh) =
                    match super::outbox::first_by_key(events, |e| &e.id, |e| &e.digest) {
                        Ok(found) => found,
                        Err(index) => {
                            return Ok(EventsOutcome::Conflict {
                                index,
                                id: events[index].id.clone(),
                            })
                        }
                    };
                self.ensure_month_partitions(
                    &self.event_partitions,
                    "ensure_events_partition",
                    fresh.iter().map(|e| e.occurred_at),
                )
                .await?;
                let mut tx = self.pool.begin().await?;
                let claimed: Vec<String> = sqlx::query_scalar(
                    "INSERT INTO event_ids (id, uid, occurred_at, digest) \
                     SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::timestamptz[], $4::text[]) \
                     ON CONFLICT (id) DO NOTHING RETURNING id",
                )
                .bind(fresh.iter().map(|e| e.id.clone()).collect::<Vec<_>>())
                .bind(fresh.iter().map(|e| e.uid).collect::<Vec<_>>())
                .bind(fresh.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
                .bind(fresh.iter().map(|e| e.digest.clone()).collect::<Vec<_>>())
                .fetch_all(&mut *tx)
                .await?;
                let claimed: std::collections::HashSet<String> = claimed.into_iter().collect();
                let (new, known): (Vec<&NewEvent>, Vec<&NewEvent>) =
                    fresh.into_iter().partition(|e| claimed.contains(&e.id));
                // Keys recorded before: the same body, or a conflict.
                let mut uid_by_key: HashMap<String, Uuid> =
                    new.iter().map(|e| (e.id.clone(), e.uid)).collect();
                if !known.is_empty() {
                    let before: Vec<(String, Uuid, String)> = sqlx::query_as(
                        "SELECT id, uid, digest FROM event_ids WHERE id = ANY($1)",
                    )
                    .bind(known.iter().map(|e| e.id.clone()).collect::<Vec<_>>())
                    .fetch_all(&mut *tx)
                    .await?;
                    let before: HashMap<String, (Uuid, String)> = before
                        .into_iter()
                        .map(|(id, uid, digest)| (id, (uid, digest)))
                        .collect();
                    for event in &known {
                        match before.get(&event.id) {
                            Some((uid, digest)) if *digest == event.digest => {
                                uid_by_key.insert(event.id.clone(), *uid);
                            }
                            _ => {
                                let index = first_by_key[event.id.as_str()];
                                return Ok(EventsOutcome::Conflict {
                                    index,
                                    id: event.id.clone(),
                                });
                            }
                        }
                    }
                }
                let inserted: Vec<EventRow> = sqlx::query_as(&format!(
                    "INSERT INTO events AS e (uid, id, kind, subject_chain, subject, occurred_at, \
                       amount, attributes, tx_hash, block_number, artifact) \
                     SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
                       $6::timestamptz[], $7::numeric[], $8::jsonb[], $9::text[], $10::int8[], $11::text[]) \
                     RETURNING {EVENT_COLUMNS}"
                ))
                .bind(new.iter().map(|e| e.uid).collect::<Vec<_>>())
                .bind(new.iter().map(|e| e.id.clone()).collect::<Vec<_>>())
                .bind(new.iter().map(|e| e.kind.clone()).collect::<Vec<_>>())
                .bind(new.iter().map(|e| e.subject_chain.to_owned()).collect::<Vec<_>>())
                .bind(new.iter().map(|e| e.subject.clone()).collect::<Vec<_>>())
                .bind(new.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
                .bind(new.iter().map(|e| e.amount).collect::<Vec<_>>())
                .bind(new.iter().map(|e| e.attributes.clone()).collect::<Vec<_>>())
                .bind(new.iter().map(|e| e.tx_hash.clone()).collect::<Vec<_>>())
                .bind(new.iter().map(|e| e.block_number).collect::<Vec<_>>())
                .bind(new.iter().map(|e| e.artifact.clone()).collect::<Vec<_>>())
                .fetch_all(&mut *tx)
                .await?;
                // In the order given, so that the relay carries them in that order.
                let mut inserted = inserted;
                let order: HashMap<Uuid, usize> =
                    new.iter().enumerate().map(|(i, e)| (e.uid, i)).collect();
                inserted.sort_by_key(|e| order.get(&e.uid).copied().unwrap_or(usize::MAX));
                let queued = inserted
                    .iter()
                    .map(|e| Ok((e.uid, serde_json::to_value(e)?)))
                    .collect::<Result<Vec<_>, serde_json::Error>>()
                    .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                super::outbox::enqueue(&mut tx, EVENT_RECORDED, &queued, &EVENT_DESTINATIONS)
                    .await?;
                tx.commit().await?;
                // Every event of the call, in its order (a repeated key answers once per
                // mention, with the one event).
                let mut by_uid: HashMap<Uuid, EventRow> =
                    inserted.into_iter().map(|e| (e.uid, e)).collect();
                let missing: Vec<Uuid> = uid_by_key
                    .values()
                    .filter(|uid| !by_uid.contains_key(uid))
                    .copied()
                    .collect();
                if !missing.is_empty() {
                    let earlier: Vec<EventRow> = sqlx::query_as(&format!(
                        "SELECT {EVENT_COLUMNS} FROM event_ids i \
                         JOIN events e ON e.uid = i.uid AND e.occurred_at = i.occurred_at \
                         WHERE i.uid = ANY($1)"
                    ))
                    .bind(missing)
                    .fetch_all(&self.pool)
                    .await?;
                    by_uid.extend(earlier.into_iter().map(|e| (e.uid, e)));
                }
                let rows = events
                    .iter()
                    .map(|e| {
                        uid_by_key
                            .get(&e.id)
                            .and_then(|uid| by_uid.get(uid))
                            .cloned()
                            .ok_or_else(|| {
                                sqlx::Error::Protocol(format!("event {} vanished", e.id))
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(EventsOutcome::Recorded(rows))
            })
            .await
    }

    /// Events, newest first, of a subject and/or kinds, before a (time, uid) position.
    pub async fn events_page(
        &self,
        subject: Option<&str>,
        kinds: &[String],
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<EventRow>, crate::Error> {
        self.read("events_page", |pool| async move {
            sqlx::query_as(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e \
                     WHERE ($1::text IS NULL OR e.subject = $1) \
                       AND (cardinality($2::text[]) = 0 OR e.kind = ANY($2)) \
                       AND ($3::timestamptz IS NULL OR (e.occurred_at, e.uid) < ($3, $4)) \
                     ORDER BY e.occurred_at DESC, e.uid DESC LIMIT $5"
            ))
            .bind(subject)
            .bind(kinds)
            .bind(before.map(|b| b.0))
            .bind(before.map(|b| b.1))
            .bind(limit)
            .fetch_all(&pool)
            .await
        })
        .await
    }

    /// Domain event totals per UTC day and kind, in the shape of trade totals (`symbol`:
    /// the kind; `trades`: the count; `volume`: the sum of amounts).
    pub async fn event_totals(
        &self,
    ) -> Result<Vec<crate::store::clickhouse::DayTotals>, crate::Error> {
        self.calls
            .run::<Vec<crate::store::clickhouse::DayTotals>, sqlx::Error, _>(
                "event_totals",
                async {
                    let rows: Vec<(String, String, i64, f64)> = sqlx::query_as(
                        "SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, kind, \
                                count(*)::int8, coalesce(sum(amount), 0)::float8 \
                         FROM events GROUP BY 1, 2 ORDER BY 1, 2",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().map(Into::into).collect())
                },
            )
            .await
    }

    /// Events in (time, uid) order after a position, for rebuilding ClickHouse.
    pub async fn events_after(
        &self,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<EventRow>, crate::Error> {
        self.calls
            .run::<Vec<EventRow>, sqlx::Error, _>("events_after", async {
                sqlx::query_as(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events e \
                     WHERE $1::timestamptz IS NULL OR (e.occurred_at, e.uid) > ($1, $2) \
                     ORDER BY e.occurred_at, e.uid LIMIT $3"
                ))
                .bind(after.map(|a| a.0))
                .bind(after.map(|a| a.1))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            })
            .await
    }
}
