//! A user's activity buckets (ClickHouse). Keys sharing interval and window are fetched in
//! one statement.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use super::{shared, Batcher, LoadError};
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
        let mut groups: HashMap<(u32, u32, u32), Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups
                .entry((key.bucket_secs, key.from, key.to))
                .or_default()
                .push(key.user);
        }
        let fetches = groups
            .into_iter()
            .map(|((bucket_secs, from, to), users)| async move {
                let ids: Vec<String> = users.iter().map(Uuid::to_string).collect();
                let rows = self
                    .stores
                    .clickhouse()
                    .activity(&ids, bucket_secs, from, to)
                    .await?;
                Ok::<_, crate::Error>(((bucket_secs, from, to), users, rows))
            });
        let mut out = HashMap::with_capacity(keys.len());
        for result in futures::future::join_all(fetches).await {
            let ((bucket_secs, from, to), users, rows) = result.map_err(shared)?;
            for user in users {
                out.insert(
                    ActivityOf {
                        user,
                        bucket_secs,
                        from,
                        to,
                    },
                    Vec::new(),
                );
            }
            for row in rows {
                let Ok(user) = row.user_id.parse() else {
                    continue;
                };
                out.entry(ActivityOf {
                    user,
                    bucket_secs,
                    from,
                    to,
                })
                .or_default()
                .push(row);
            }
        }
        Ok(out)
    }
}
