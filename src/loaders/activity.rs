//! A user's activity buckets (ClickHouse). Keys sharing interval and window are fetched in
//! one statement.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use super::{series_by_window, Batcher, LoadError};
use crate::store::clickhouse::ActivityBucketRow;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActivityOf {
    pub user: Uuid,
    pub bucket_secs: u32,
    pub from: u32,
    pub to: u32,
}

impl Loader<ActivityOf> for Batcher {
    type Value = Vec<ActivityBucketRow>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ActivityOf],
    ) -> Result<HashMap<ActivityOf, Vec<ActivityBucketRow>>, LoadError> {
        let _flight = self.flight("activity");
        series_by_window(
            keys,
            |k| ((k.bucket_secs, k.from, k.to), k.user.to_string()),
            |(bucket_secs, from, to), users| async move {
                self.stores
                    .clickhouse()
                    .activity(&users, bucket_secs, from, to)
                    .await
            },
            |row| &row.user_id,
        )
        .await
    }
}
