//! Fathuss's face: the challenge catalogue (`upsertChallenges`, `challenge`,
//! `challenges`), graded submissions as typed objects, each challenge's statistics
//! (ClickHouse) and board, and `submissionGraded` (in [`super::live`]).

use async_graphql::{connection::Connection, Context, Enum, InputObject, Object, Result};
use chrono::{DateTime, Utc};

use super::{
    artifact::Artifact,
    event::{Account, Event},
    leaderboard::{self, Leaderboard},
    pagination, scope,
    user::Chain,
};
use crate::{
    auth::Role,
    domain::challenges::{self, Difficulty as Level},
    error::Error,
    loaders::{ArtifactByCid, ChallengeById, ChallengeStatsOf},
    store::{
        clickhouse::ChallengeStatsRow,
        postgres::{ChallengeRow, ChallengesOutcome, EventRow},
    },
    values::Address,
};

/// The kind of a graded submission.
pub const SUBMISSION: &str = "challenge_submission";
/// The board of one challenge: each solver's best score, one ranking per challenge.
const CHALLENGE_BOARD: &str = "challenge_best";
const MAX_CHALLENGES_PER_CALL: usize = 1_000;
const CHALLENGES_CURSOR: &str = "challenges";
const SUBMISSIONS_CURSOR: &str = "submissions";
const DEFAULT_PAGE: u32 = 20;

/// How hard a challenge is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum Difficulty {
    Easy,
    Medium,
    Hard,
    Expert,
}

impl From<Difficulty> for Level {
    fn from(d: Difficulty) -> Self {
        match d {
            Difficulty::Easy => Level::Easy,
            Difficulty::Medium => Level::Medium,
            Difficulty::Hard => Level::Hard,
            Difficulty::Expert => Level::Expert,
        }
    }
}

impl From<Level> for Difficulty {
    fn from(d: Level) -> Self {
        match d {
            Level::Easy => Difficulty::Easy,
            Level::Medium => Difficulty::Medium,
            Level::Hard => Difficulty::Hard,
            Level::Expert => Difficulty::Expert,
        }
    }
}

/// A challenge to add or replace.
#[derive(InputObject)]
pub struct ChallengeInput {
    /// 1 to 64 of a-z, 0-9, _ and -: what submissions name in their `challenge`.
    pub id: String,
    pub title: String,
    pub difficulty: Difficulty,
    pub tags: Option<Vec<String>>,
    /// CIDs of recorded TEST_CASE artifacts.
    pub test_cases: Option<Vec<String>>,
}

/// A Fathuss challenge.
pub struct Challenge(pub ChallengeRow);

#[Object]
impl Challenge {
    async fn id(&self) -> &str {
        &self.0.id
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn difficulty(&self) -> Option<Difficulty> {
        Level::from_stored(&self.0.difficulty).map(Difficulty::from)
    }

    async fn tags(&self) -> &[String] {
        &self.0.tags
    }

    /// Its test cases' artifacts, in order.
    async fn test_cases(&self, ctx: &Context<'_>) -> Result<Vec<Artifact>> {
        let found = scope::loaders(ctx)?
            .load_many(self.0.test_cases.iter().cloned().map(ArtifactByCid))
            .await?;
        Ok(self
            .0
            .test_cases
            .iter()
            .filter_map(|cid| found.get(&ArtifactByCid(cid.clone())).cloned())
            .map(Artifact)
            .collect())
    }

    /// Its submissions, summed up (ClickHouse).
    async fn stats(&self, ctx: &Context<'_>) -> Result<ChallengeStats> {
        stats_of(ctx, &self.0.id).await
    }

    /// Its board: each solver's best score (`challenge_best` of this challenge).
    #[graphql(complexity = "crate::graphql::pagination::cost(top, 10, child_complexity)")]
    async fn leaderboard(&self, ctx: &Context<'_>, top: Option<i32>) -> Result<Leaderboard> {
        let board = leaderboard::board(ctx, CHALLENGE_BOARD).await?;
        let top = leaderboard::check_top(ctx, top)?;
        let period = leaderboard::period_of(&board, None)?;
        leaderboard::read(ctx, &board, Some(self.0.id.clone()), period, top).await
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A challenge's submissions, summed up (ClickHouse).
pub struct ChallengeStats(Option<ChallengeStatsRow>);

#[Object]
impl ChallengeStats {
    async fn attempts(&self) -> i64 {
        self.0.as_ref().map_or(0, |r| clamp(r.attempts))
    }

    /// Distinct solvers who submitted.
    async fn solvers(&self) -> i64 {
        self.0.as_ref().map_or(0, |r| clamp(r.solvers))
    }

    /// Submissions graded as passed.
    async fn passed(&self) -> i64 {
        self.0.as_ref().map_or(0, |r| clamp(r.passed))
    }

    /// Passed over attempts; null without attempts.
    async fn completion_rate(&self) -> Option<f64> {
        self.0
            .as_ref()
            .filter(|r| r.attempts > 0)
            .map(|r| r.passed as f64 / r.attempts as f64)
    }

    /// The median score (ClickHouse's approximate median); null without attempts.
    async fn median_score(&self) -> Option<f64> {
        self.0
            .as_ref()
            .map(|r| r.median_score)
            .filter(|s| s.is_finite())
    }

    async fn best_score(&self) -> Option<f64> {
        self.0
            .as_ref()
            .map(|r| r.best_score)
            .filter(|s| s.is_finite())
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn stats_of(ctx: &Context<'_>, id: &str) -> Result<ChallengeStats> {
    let row = scope::loaders(ctx)?
        .load_one(ChallengeStatsOf(id.to_owned()))
        .await?;
    Ok(ChallengeStats(row))
}

/// A graded Fathuss submission (a `challenge_submission` event).
pub struct Submission(pub EventRow);

impl Submission {
    fn text(&self, attribute: &str) -> Option<String> {
        match self.0.attributes.get(attribute)? {
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    fn integer(&self, attribute: &str) -> Option<i64> {
        self.0.attributes.get(attribute).and_then(|v| v.as_i64())
    }
}

#[Object]
impl Submission {
    /// The idempotency key it was recorded with.
    async fn id(&self) -> &str {
        &self.0.id
    }

    async fn solver(&self) -> Account {
        Account::from_stored(&self.0.subject_chain, &self.0.subject)
    }

    /// The id of the challenge it answers.
    async fn challenge_id(&self) -> Option<String> {
        self.text("challenge")
    }

    /// The challenge, if it is catalogued.
    async fn challenge(&self, ctx: &Context<'_>) -> Result<Option<Challenge>> {
        let Some(id) = self.text("challenge") else {
            return Ok(None);
        };
        let row = scope::loaders(ctx)?.load_one(ChallengeById(id)).await?;
        Ok(row.map(Challenge))
    }

    /// The grade, as an exact decimal string.
    async fn score(&self) -> Option<String> {
        self.text("score")
    }

    async fn passed_tests(&self) -> Option<i64> {
        self.integer("passed_tests")
    }

    async fn total_tests(&self) -> Option<i64> {
        self.integer("total_tests")
    }

    async fn runtime_ms(&self) -> Option<i64> {
        self.integer("runtime_ms")
    }

    async fn language(&self) -> Option<String> {
        self.text("language")
    }

    async fn passed(&self) -> Option<bool> {
        self.0.attributes.get("passed").and_then(|v| v.as_bool())
    }

    async fn at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// The CID of its artifact (the submitted code, a log).
    async fn artifact(&self) -> Option<&str> {
        self.0.artifact.as_deref()
    }

    /// That artifact's metadata, if recorded.
    async fn artifact_record(&self, ctx: &Context<'_>) -> Result<Option<Artifact>> {
        match &self.0.artifact {
            Some(cid) => super::artifact::by_cid(ctx, cid).await,
            None => Ok(None),
        }
    }

    /// The same event in its generic form.
    async fn event(&self) -> Event {
        Event(self.0.clone())
    }
}

#[derive(Default)]
pub struct ChallengeQuery;

#[Object]
impl ChallengeQuery {
    /// A catalogued challenge; null if none has this id.
    async fn challenge(&self, ctx: &Context<'_>, id: String) -> Result<Option<Challenge>> {
        let row = scope::loaders(ctx)?.load_one(ChallengeById(id)).await?;
        Ok(row.map(Challenge))
    }

    /// Catalogued challenges, newest first: of a difficulty, with a tag, or all.
    #[graphql(complexity = "pagination::cost(first, DEFAULT_PAGE, child_complexity)")]
    async fn challenges(
        &self,
        ctx: &Context<'_>,
        difficulty: Option<Difficulty>,
        tag: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Challenge>> {
        let app = scope::app(ctx)?;
        let limit = pagination::page_size(first, DEFAULT_PAGE, app.config().max_page_size)?;
        let codec = app.cursors();
        let before = after
            .map(|cursor| codec.decode_keyset(CHALLENGES_CURSOR, &cursor))
            .transpose()?;
        let tag = tag.map(|t| t.trim().to_lowercase());
        let rows = scope::stores(ctx)?
            .postgres()
            .challenges_page(
                difficulty.map(|d| Level::from(d).as_str()),
                tag.as_deref(),
                before,
                limit as i64 + 1,
            )
            .await?;
        Ok(pagination::keyset_connection(
            codec,
            CHALLENGES_CURSOR,
            rows,
            limit,
            before.is_some(),
            |row| (row.created_at, row.uid),
            Challenge,
        ))
    }

    /// A challenge's statistics (ClickHouse), catalogued or not.
    async fn challenge_stats(&self, ctx: &Context<'_>, id: String) -> Result<ChallengeStats> {
        stats_of(ctx, &id).await
    }

    /// Graded submissions, newest first: of one solver, or all (PostgreSQL).
    #[graphql(complexity = "pagination::cost(first, DEFAULT_PAGE, child_complexity)")]
    async fn submissions(
        &self,
        ctx: &Context<'_>,
        solver: Option<String>,
        chain: Option<Chain>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Submission>> {
        let app = scope::app(ctx)?;
        let limit = pagination::page_size(first, DEFAULT_PAGE, app.config().max_page_size)?;
        let codec = app.cursors();
        let before = after
            .map(|cursor| codec.decode_keyset(SUBMISSIONS_CURSOR, &cursor))
            .transpose()?;
        let solver = super::user::account_arg("solver", solver.as_deref(), chain)?;
        let rows = scope::stores(ctx)?
            .postgres()
            .events_page(
                solver.as_ref().map(Address::as_str),
                &[SUBMISSION.to_owned()],
                before,
                limit as i64 + 1,
            )
            .await?;
        Ok(pagination::keyset_connection(
            codec,
            SUBMISSIONS_CURSOR,
            rows,
            limit,
            before.is_some(),
            |row| (row.occurred_at, row.uid),
            Submission,
        ))
    }
}

#[derive(Default)]
pub struct ChallengeMutation;

#[Object]
impl ChallengeMutation {
    /// Adds or replaces up to 1,000 challenges, all or nothing (service or admin role).
    /// Each test case must be a recorded TEST_CASE artifact.
    async fn upsert_challenges(
        &self,
        ctx: &Context<'_>,
        challenges: Vec<ChallengeInput>,
    ) -> Result<Vec<Challenge>> {
        scope::viewer(ctx).require_any(&[Role::Admin, Role::Service])?;
        let new = super::checked_batch(
            "challenges",
            challenges,
            MAX_CHALLENGES_PER_CALL,
            |field, input| {
                challenges::check(
                    &field,
                    &input.id,
                    &input.title,
                    input.difficulty.into(),
                    &input.tags.unwrap_or_default(),
                    &input.test_cases.unwrap_or_default(),
                )
            },
        )?;
        match scope::stores(ctx)?
            .postgres()
            .upsert_challenges(&new)
            .await?
        {
            ChallengesOutcome::Saved(rows) => Ok(rows.into_iter().map(Challenge).collect()),
            ChallengesOutcome::UnknownTestCase { index, cid } => {
                use async_graphql::ErrorExtensions;
                Err(Error::field(
                    format!("challenges[{index}].testCases"),
                    format!("{cid} is not a recorded TEST_CASE artifact"),
                )
                .extend())
            }
        }
    }
}
