//! Challenges by id (PostgreSQL), their statistics (ClickHouse), and the tops of many
//! board rankings in one pipeline (Redis), for lists of challenges with their boards.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use super::{shared, Batcher, LoadError};
use crate::store::{clickhouse::ChallengeStatsRow, postgres::ChallengeRow};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChallengeById(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChallengeStatsOf(pub String);

/// The top `top` of one period of a board ranking.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BoardTopOf {
    pub instance: String,
    pub period: String,
    pub top: usize,
}

impl Loader<ChallengeById> for Batcher {
    type Value = ChallengeRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ChallengeById],
    ) -> Result<HashMap<ChallengeById, ChallengeRow>, LoadError> {
        let _flight = self.flight("challenge");
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self
            .stores
            .postgres()
            .challenges_by_id(&ids)
            .await
            .map_err(shared)?;
        Ok(rows
            .into_iter()
            .map(|c| (ChallengeById(c.id.clone()), c))
            .collect())
    }
}

impl Loader<ChallengeStatsOf> for Batcher {
    type Value = ChallengeStatsRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ChallengeStatsOf],
    ) -> Result<HashMap<ChallengeStatsOf, ChallengeStatsRow>, LoadError> {
        let _flight = self.flight("challenge_stats");
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self
            .stores
            .clickhouse()
            .challenge_stats(&ids)
            .await
            .map_err(shared)?;
        Ok(rows
            .into_iter()
            .map(|r| (ChallengeStatsOf(r.challenge.clone()), r))
            .collect())
    }
}

impl Loader<BoardTopOf> for Batcher {
    type Value = (Vec<(String, f64)>, u64);
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[BoardTopOf],
    ) -> Result<HashMap<BoardTopOf, (Vec<(String, f64)>, u64)>, LoadError> {
        let _flight = self.flight("board_top");
        let wanted: Vec<(String, String, usize)> = keys
            .iter()
            .map(|k| (k.instance.clone(), k.period.clone(), k.top))
            .collect();
        let tops = self
            .stores
            .redis()
            .leaderboard_tops(&wanted)
            .await
            .map_err(shared)?;
        Ok(keys.iter().cloned().zip(tops).collect())
    }
}
