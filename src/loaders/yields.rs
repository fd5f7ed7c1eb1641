//! Pools' newest samples and series, and users' portfolio snapshots (ClickHouse). Keys
//! that share a window (the usual case: a list in one query) are fetched in one statement.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use super::{shared, Batcher, LoadError};
use crate::store::clickhouse::{PoolMetricRow, PoolPointRow, PortfolioPointRow, SnapshotGroup};

/// A pool's newest sample.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolLatestOf(pub String);

/// A pool's series in buckets of `bucket_secs` over [from, to).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolSeriesOf {
    pub pool: String,
    pub bucket_secs: u32,
    pub from: u32,
    pub to: u32,
}

/// A user's portfolio snapshots per group of days over [from, to] (days since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortfolioOf {
    pub user_id: String,
    pub group: SnapshotGroup,
    pub from: u16,
    pub to: u16,
}

impl Loader<PoolLatestOf> for Batcher {
    type Value = PoolMetricRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PoolLatestOf],
    ) -> Result<HashMap<PoolLatestOf, PoolMetricRow>, LoadError> {
        let _flight = self.flight("pool_latest");
        let pools: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self
            .stores
            .clickhouse()
            .pool_latest(&pools, 0)
            .await
            .map_err(shared)?;
        Ok(rows
            .into_iter()
            .map(|r| (PoolLatestOf(r.pool.clone()), r))
            .collect())
    }
}

impl Loader<PoolSeriesOf> for Batcher {
    type Value = Vec<PoolPointRow>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PoolSeriesOf],
    ) -> Result<HashMap<PoolSeriesOf, Vec<PoolPointRow>>, LoadError> {
        let _flight = self.flight("pool_series");
        let mut groups: HashMap<(u32, u32, u32), Vec<String>> = HashMap::new();
        for key in keys {
            groups
                .entry((key.bucket_secs, key.from, key.to))
                .or_default()
                .push(key.pool.clone());
        }
        let fetches = groups.into_iter().map(|(window, pools)| async move {
            let (bucket_secs, from, to) = window;
            let rows = self
                .stores
                .clickhouse()
                .pool_series(&pools, bucket_secs, from, to)
                .await?;
            Ok::<_, crate::Error>((window, pools, rows))
        });
        let mut out = HashMap::with_capacity(keys.len());
        for result in futures::future::join_all(fetches).await {
            let ((bucket_secs, from, to), pools, rows) = result.map_err(shared)?;
            let key = |pool: String| PoolSeriesOf {
                pool,
                bucket_secs,
                from,
                to,
            };
            for pool in pools {
                out.insert(key(pool), Vec::new());
            }
            for row in rows {
                out.entry(key(row.pool.clone())).or_default().push(row);
            }
        }
        Ok(out)
    }
}

impl Loader<PortfolioOf> for Batcher {
    type Value = Vec<PortfolioPointRow>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PortfolioOf],
    ) -> Result<HashMap<PortfolioOf, Vec<PortfolioPointRow>>, LoadError> {
        let _flight = self.flight("portfolio");
        let mut groups: HashMap<(SnapshotGroup, u16, u16), Vec<String>> = HashMap::new();
        for key in keys {
            groups
                .entry((key.group, key.from, key.to))
                .or_default()
                .push(key.user_id.clone());
        }
        let fetches = groups.into_iter().map(|(window, users)| async move {
            let (group, from, to) = window;
            let rows = self
                .stores
                .clickhouse()
                .portfolio_points(&users, group, from, to)
                .await?;
            Ok::<_, crate::Error>((window, users, rows))
        });
        let mut out = HashMap::with_capacity(keys.len());
        for result in futures::future::join_all(fetches).await {
            let ((group, from, to), users, rows) = result.map_err(shared)?;
            let key = |user_id: String| PortfolioOf {
                user_id,
                group,
                from,
                to,
            };
            for user in users {
                out.insert(key(user), Vec::new());
            }
            for row in rows {
                out.entry(key(row.user_id.clone())).or_default().push(row);
            }
        }
        Ok(out)
    }
}
