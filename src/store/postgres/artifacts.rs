//! Artifacts in PostgreSQL: recorded all or nothing, idempotent by CID, with the events
//! they back; and each subject's latest proof, as the Redis cache should hold it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{events::EVENT_COLUMNS, EventRow, Postgres};
use crate::domain::artifacts::{ArtifactKind, NewArtifact};

/// The outbox kind of a recorded proof artifact (its payload is an [`ArtifactRow`]); it
/// goes to Redis only, for the latest-proof cache.
pub const ARTIFACT_RECORDED: &str = "artifact_recorded";

/// A recorded artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRow {
    pub cid: String,
    pub uid: Uuid,
    pub sha256: String,
    pub size: i64,
    pub media_type: String,
    pub kind: String,
    pub owner_chain: String,
    pub owner: String,
    pub name: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// What a call to [`Postgres::record_artifacts`] did.
#[derive(Debug)]
pub enum ArtifactsOutcome {
    /// Every artifact, in the order given: recorded now, or (same CID, same body) before.
    Recorded(Vec<ArtifactRow>),
    /// The artifact at this index reuses a CID recorded with another body.
    Conflict { index: usize, cid: String },
    /// The artifact at `index` names an event (by its key) that was never recorded.
    UnknownEvent { index: usize, id: String },
}

impl crate::store::Rows for ArtifactsOutcome {
    fn rows(&self) -> Option<u64> {
        match self {
            ArtifactsOutcome::Recorded(rows) => Some(rows.len() as u64),
            _ => Some(0),
        }
    }
}

/// A subject's latest proof: the newest artifact CID carried by one of its events, or
/// recorded as a proof it owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct LatestProof {
    pub chain: String,
    pub subject: String,
    pub cid: String,
    pub at: DateTime<Utc>,
}

const ARTIFACT_COLUMNS: &str = "a.cid, a.uid, a.sha256, a.size, a.media_type, a.kind, \
     a.owner_chain, a.owner, a.name, a.recorded_at";

impl Postgres {
    /// Records artifacts all or nothing, with their links to events and, for proofs, an
    /// outbox row for the Redis proof cache. A CID recorded before with the same body
    /// answers with that artifact; with another body, nothing is written.
    pub async fn record_artifacts(
        &self,
        artifacts: &[NewArtifact],
    ) -> Result<ArtifactsOutcome, crate::Error> {
        self.calls
            .run::<ArtifactsOutcome, sqlx::Error, _>("record_artifacts", async {
                let (first_by_cid, fresh) =
                    match super::outbox::first_by_key(artifacts, |a| &a.cid, |a| &a.digest) {
                        Ok(found) => found,
                        Err(index) => {
                            return Ok(ArtifactsOutcome::Conflict {
                                index,
                                cid: artifacts[index].cid.clone(),
                            })
                        }
                    };
                let keys: Vec<String> = fresh
                    .iter()
                    .flat_map(|a| a.events.iter().cloned())
                    .collect();
                let known: HashMap<String, Uuid> = sqlx::query_as::<_, (String, Uuid)>(
                    "SELECT id, uid FROM event_ids WHERE id = ANY($1)",
                )
                .bind(&keys)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect();
                for artifact in &fresh {
                    if let Some(id) = artifact.events.iter().find(|id| !known.contains_key(*id)) {
                        return Ok(ArtifactsOutcome::UnknownEvent {
                            index: first_by_cid[artifact.cid.as_str()],
                            id: id.clone(),
                        });
                    }
                }
                let uids: Vec<Uuid> = fresh.iter().map(|_| Uuid::new_v4()).collect();
                let mut tx = self.pool.begin().await?;
                let inserted: Vec<ArtifactRow> = sqlx::query_as(&format!(
                    "INSERT INTO artifacts AS a (cid, uid, sha256, size, media_type, kind, \
                       owner_chain, owner, name, digest) \
                     SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::int8[], \
                       $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) \
                     ON CONFLICT (cid) DO NOTHING RETURNING {ARTIFACT_COLUMNS}"
                ))
                .bind(fresh.iter().map(|a| a.cid.clone()).collect::<Vec<_>>())
                .bind(&uids)
                .bind(fresh.iter().map(|a| a.sha256.clone()).collect::<Vec<_>>())
                .bind(fresh.iter().map(|a| a.size).collect::<Vec<_>>())
                .bind(
                    fresh
                        .iter()
                        .map(|a| a.media_type.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    fresh
                        .iter()
                        .map(|a| a.kind.as_str().to_owned())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    fresh
                        .iter()
                        .map(|a| a.owner_chain.to_owned())
                        .collect::<Vec<_>>(),
                )
                .bind(fresh.iter().map(|a| a.owner.clone()).collect::<Vec<_>>())
                .bind(fresh.iter().map(|a| a.name.clone()).collect::<Vec<_>>())
                .bind(fresh.iter().map(|a| a.digest.clone()).collect::<Vec<_>>())
                .fetch_all(&mut *tx)
                .await?;
                let new: std::collections::HashSet<&str> =
                    inserted.iter().map(|a| a.cid.as_str()).collect();
                let earlier: Vec<&NewArtifact> = fresh
                    .iter()
                    .copied()
                    .filter(|a| !new.contains(a.cid.as_str()))
                    .collect();
                if !earlier.is_empty() {
                    let digests: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
                        "SELECT cid, digest FROM artifacts WHERE cid = ANY($1)",
                    )
                    .bind(earlier.iter().map(|a| a.cid.clone()).collect::<Vec<_>>())
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .collect();
                    if let Some(changed) = earlier
                        .iter()
                        .find(|a| digests.get(&a.cid) != Some(&a.digest))
                    {
                        return Ok(ArtifactsOutcome::Conflict {
                            index: first_by_cid[changed.cid.as_str()],
                            cid: changed.cid.clone(),
                        });
                    }
                }
                let links: Vec<(String, Uuid)> = fresh
                    .iter()
                    .filter(|a| new.contains(a.cid.as_str()))
                    .flat_map(|a| a.events.iter().map(|id| (a.cid.clone(), known[id])))
                    .collect();
                if !links.is_empty() {
                    sqlx::query(
                        "INSERT INTO artifact_events (cid, event_uid) \
                         SELECT * FROM UNNEST($1::text[], $2::uuid[])",
                    )
                    .bind(links.iter().map(|l| l.0.clone()).collect::<Vec<_>>())
                    .bind(links.iter().map(|l| l.1).collect::<Vec<_>>())
                    .execute(&mut *tx)
                    .await?;
                }
                let proofs = inserted
                    .iter()
                    .filter(|a| a.kind == ArtifactKind::Proof.as_str())
                    .map(|a| Ok((a.uid, serde_json::to_value(a)?)))
                    .collect::<Result<Vec<_>, serde_json::Error>>()
                    .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                super::outbox::enqueue(&mut tx, ARTIFACT_RECORDED, &proofs, &["redis"]).await?;
                tx.commit().await?;
                let cids: Vec<String> = artifacts.iter().map(|a| a.cid.clone()).collect();
                let rows = self.artifacts_by_cid_now(&cids).await?;
                let by_cid: HashMap<String, ArtifactRow> =
                    rows.into_iter().map(|a| (a.cid.clone(), a)).collect();
                artifacts
                    .iter()
                    .map(|a| {
                        by_cid.get(&a.cid).cloned().ok_or_else(|| {
                            sqlx::Error::Protocol(format!("artifact {} vanished", a.cid))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(ArtifactsOutcome::Recorded)
            })
            .await
    }

    async fn artifacts_by_cid_now(&self, cids: &[String]) -> Result<Vec<ArtifactRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {ARTIFACT_COLUMNS} FROM artifacts a WHERE a.cid = ANY($1)"
        ))
        .bind(cids)
        .fetch_all(&self.pool)
        .await
    }

    /// The artifacts with these CIDs (those recorded).
    pub async fn artifacts_by_cid(
        &self,
        cids: &[String],
    ) -> Result<Vec<ArtifactRow>, crate::Error> {
        self.calls
            .run::<Vec<ArtifactRow>, sqlx::Error, _>("artifacts_by_cid", async {
                self.artifacts_by_cid_now(cids).await
            })
            .await
    }

    /// Artifacts, newest first: of an owner, of a kind, backing an event (by its key),
    /// before a (time, uid) position.
    pub async fn artifacts_page(
        &self,
        owner: Option<&str>,
        kind: Option<ArtifactKind>,
        event: Option<&str>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<ArtifactRow>, crate::Error> {
        self.read("artifacts_page", |pool| async move {
                sqlx::query_as(&format!(
                    "SELECT {ARTIFACT_COLUMNS} FROM artifacts a \
                     WHERE ($1::text IS NULL OR a.owner = $1) \
                       AND ($2::text IS NULL OR a.kind = $2) \
                       AND ($3::text IS NULL OR a.cid IN ( \
                         SELECT l.cid FROM event_ids i JOIN artifact_events l ON l.event_uid = i.uid \
                         WHERE i.id = $3 \
                         UNION \
                         SELECT e.artifact FROM event_ids i \
                         JOIN events e ON e.uid = i.uid AND e.occurred_at = i.occurred_at \
                         WHERE i.id = $3 AND e.artifact IS NOT NULL)) \
                       AND ($4::timestamptz IS NULL OR (a.recorded_at, a.uid) < ($4, $5)) \
                     ORDER BY a.recorded_at DESC, a.uid DESC LIMIT $6"
                ))
                .bind(owner)
                .bind(kind.map(ArtifactKind::as_str))
                .bind(event)
                .bind(before.map(|b| b.0))
                .bind(before.map(|b| b.1))
                .bind(limit)
                .fetch_all(&pool)
                .await
            })
            .await
    }

    /// The events each artifact backs (naming it, or linked when it was recorded),
    /// newest first, at most `per_artifact` each.
    pub async fn events_of_artifacts(
        &self,
        cids: &[String],
        per_artifact: i64,
    ) -> Result<Vec<(String, EventRow)>, crate::Error> {
        #[derive(sqlx::FromRow)]
        struct Linked {
            link: String,
            #[sqlx(flatten)]
            event: EventRow,
        }
        self.read("events_of_artifacts", |pool| async move {
            let rows: Vec<Linked> = sqlx::query_as(&format!(
                "SELECT link, {columns} FROM ( \
                       SELECT l.cid AS link, e.*, row_number() OVER \
                         (PARTITION BY l.cid ORDER BY e.occurred_at DESC, e.uid DESC) AS n \
                       FROM ( \
                         SELECT artifact AS cid, uid FROM events WHERE artifact = ANY($1) \
                         UNION \
                         SELECT cid, event_uid FROM artifact_events WHERE cid = ANY($1)) l \
                       JOIN events e ON e.uid = l.uid) e \
                     WHERE n <= $2 ORDER BY link, e.occurred_at DESC, e.uid DESC",
                columns = EVENT_COLUMNS
            ))
            .bind(cids)
            .bind(per_artifact)
            .fetch_all(&pool)
            .await?;
            Ok::<Vec<(String, EventRow)>, sqlx::Error>(
                rows.into_iter().map(|r| (r.link, r.event)).collect(),
            )
        })
        .await
    }

    /// Every subject's latest proof, as the Redis cache should hold it.
    pub async fn latest_proofs(&self) -> Result<Vec<LatestProof>, crate::Error> {
        self.calls
            .run::<Vec<LatestProof>, sqlx::Error, _>("latest_proofs", async {
                sqlx::query_as(
                    "SELECT DISTINCT ON (chain, subject) chain, subject, cid, at FROM ( \
                       SELECT subject_chain AS chain, subject, artifact AS cid, occurred_at AS at \
                       FROM events WHERE artifact IS NOT NULL \
                       UNION ALL \
                       SELECT owner_chain, owner, cid, recorded_at FROM artifacts \
                       WHERE kind = 'proof') p \
                     ORDER BY chain, subject, at DESC, cid DESC",
                )
                .fetch_all(&self.pool)
                .await
            })
            .await
    }
}
