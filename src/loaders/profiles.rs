//! Profiles by user (MongoDB, one `$in` find per batch).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use super::{shared, Batcher, LoadError};
use crate::store::mongo::ProfileDoc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProfileOf(pub Uuid);

impl Loader<ProfileOf> for Batcher {
    type Value = ProfileDoc;
    type Error = LoadError;

    async fn load(&self, keys: &[ProfileOf]) -> Result<HashMap<ProfileOf, ProfileDoc>, LoadError> {
        let _flight = self.flight("profile");
        let ids: Vec<String> = keys.iter().map(|k| k.0.to_string()).collect();
        let docs = self
            .stores
            .mongo()
            .profiles_by_user(&ids)
            .await
            .map_err(shared)?;
        Ok(docs
            .into_iter()
            .filter_map(|doc| Some((ProfileOf(doc.user_id.parse().ok()?), doc)))
            .collect())
    }
}
