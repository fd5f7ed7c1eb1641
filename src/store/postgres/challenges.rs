//! The Fathuss challenge catalogue in PostgreSQL.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Postgres;
use crate::domain::{artifacts::ArtifactKind, challenges::NewChallenge};

/// A catalogued challenge.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ChallengeRow {
    pub id: String,
    pub uid: Uuid,
    pub title: String,
    pub difficulty: String,
    pub tags: Vec<String>,
    pub test_cases: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a call to [`Postgres::upsert_challenges`] did.
#[derive(Debug)]
pub enum ChallengesOutcome {
    /// Every challenge, in the order given, as now stored.
    Saved(Vec<ChallengeRow>),
    /// The challenge at `index` names a CID that is not a recorded TEST_CASE artifact.
    UnknownTestCase { index: usize, cid: String },
}

impl crate::store::Rows for ChallengesOutcome {
    fn rows(&self) -> Option<u64> {
        match self {
            ChallengesOutcome::Saved(rows) => Some(rows.len() as u64),
            ChallengesOutcome::UnknownTestCase { .. } => Some(0),
        }
    }
}

const CHALLENGE_COLUMNS: &str =
    "c.id, c.uid, c.title, c.difficulty, c.tags, c.test_cases, c.created_at, c.updated_at";

impl Postgres {
    /// Adds or replaces challenges, all or nothing; every test case must be a recorded
    /// TEST_CASE artifact. A challenge given twice keeps its last version.
    pub async fn upsert_challenges(
        &self,
        challenges: &[NewChallenge],
    ) -> Result<ChallengesOutcome, crate::Error> {
        self.calls
            .run::<ChallengesOutcome, sqlx::Error, _>("upsert_challenges", async {
                let cids: Vec<String> = challenges
                    .iter()
                    .flat_map(|c| c.test_cases.iter().cloned())
                    .collect();
                let known: std::collections::HashSet<String> = sqlx::query_scalar(
                    "SELECT cid FROM artifacts WHERE cid = ANY($1) AND kind = $2",
                )
                .bind(&cids)
                .bind(ArtifactKind::TestCase.as_str())
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect();
                for (index, challenge) in challenges.iter().enumerate() {
                    if let Some(cid) = challenge.test_cases.iter().find(|c| !known.contains(*c)) {
                        return Ok(ChallengesOutcome::UnknownTestCase {
                            index,
                            cid: cid.clone(),
                        });
                    }
                }
                let mut tx = self.pool.begin().await?;
                for challenge in challenges {
                    sqlx::query(
                        "INSERT INTO challenges (id, uid, title, difficulty, tags, test_cases) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET \
                         title = EXCLUDED.title, difficulty = EXCLUDED.difficulty, \
                         tags = EXCLUDED.tags, test_cases = EXCLUDED.test_cases, updated_at = now() \
                         WHERE (challenges.title, challenges.difficulty, challenges.tags, \
                                challenges.test_cases) IS DISTINCT FROM \
                               (EXCLUDED.title, EXCLUDED.difficulty, EXCLUDED.tags, EXCLUDED.test_cases)",
                    )
                    .bind(&challenge.id)
                    .bind(Uuid::new_v4())
                    .bind(&challenge.title)
                    .bind(challenge.difficulty.as_str())
                    .bind(&challenge.tags)
                    .bind(&challenge.test_cases)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                let ids: Vec<String> = challenges.iter().map(|c| c.id.clone()).collect();
                let rows = self.challenges_by_id_now(&ids).await?;
                Ok(ChallengesOutcome::Saved(
                    ids.iter()
                        .filter_map(|id| rows.iter().find(|r| &r.id == id).cloned())
                        .collect(),
                ))
            })
            .await
    }

    async fn challenges_by_id_now(&self, ids: &[String]) -> Result<Vec<ChallengeRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {CHALLENGE_COLUMNS} FROM challenges c WHERE c.id = ANY($1)"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await
    }

    /// The challenges with these ids (those catalogued).
    pub async fn challenges_by_id(
        &self,
        ids: &[String],
    ) -> Result<Vec<ChallengeRow>, crate::Error> {
        self.calls
            .run::<Vec<ChallengeRow>, sqlx::Error, _>("challenges_by_id", async {
                self.challenges_by_id_now(ids).await
            })
            .await
    }

    /// Challenges, newest first: of a difficulty, with a tag, or all.
    pub async fn challenges_page(
        &self,
        difficulty: Option<&str>,
        tag: Option<&str>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<ChallengeRow>, crate::Error> {
        self.read("challenges_page", |pool| async move {
            sqlx::query_as(&format!(
                "SELECT {CHALLENGE_COLUMNS} FROM challenges c \
                     WHERE ($1::text IS NULL OR c.difficulty = $1) \
                       AND ($2::text IS NULL OR c.tags @> ARRAY[$2]) \
                       AND ($3::timestamptz IS NULL OR (c.created_at, c.uid) < ($3, $4)) \
                     ORDER BY c.created_at DESC, c.uid DESC LIMIT $5"
            ))
            .bind(difficulty)
            .bind(tag)
            .bind(before.map(|b| b.0))
            .bind(before.map(|b| b.1))
            .bind(limit)
            .fetch_all(&pool)
            .await
        })
        .await
    }
}
