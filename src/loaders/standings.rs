//! A user's rank and score on a leaderboard (Redis, one pipeline per batch).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use super::{shared, Batcher, LoadError};
use crate::store::redis::Standing;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StandingOf {
    pub board: String,
    /// Empty for an all-time board.
    pub period: String,
    /// A user id or `chain:address`, as the board ranks.
    pub member: String,
}

impl Loader<StandingOf> for Batcher {
    type Value = Standing;
    type Error = LoadError;

    async fn load(&self, keys: &[StandingOf]) -> Result<HashMap<StandingOf, Standing>, LoadError> {
        let _flight = self.flight("standing");
        let wanted: Vec<(String, String, String)> = keys
            .iter()
            .map(|k| (k.board.clone(), k.period.clone(), k.member.clone()))
            .collect();
        let standings = self
            .stores
            .redis()
            .standings(&wanted)
            .await
            .map_err(shared)?;
        Ok(keys
            .iter()
            .cloned()
            .zip(standings)
            .filter_map(|(key, standing)| Some((key, standing?)))
            .collect())
    }
}
