//! Pools' newest samples and series, and users' portfolio snapshots (ClickHouse). Keys
//! that share a window (the usual case: a list in one query) are fetched in one statement.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use super::{series_by_window, shared, Batcher, LoadError};
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
        series_by_window(
            keys,
            |k| ((k.bucket_secs, k.from, k.to), k.pool.clone()),
            |(bucket_secs, from, to), pools| async move {
                self.stores
                    .clickhouse()
                    .pool_series(&pools, bucket_secs, from, to)
                    .await
            },
            |row| &row.pool,
        )
        .await
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
        series_by_window(
            keys,
            |k| ((k.group, k.from, k.to), k.user_id.clone()),
            |(group, from, to), users| async move {
                self.stores
                    .clickhouse()
                    .portfolio_points(&users, group, from, to)
                    .await
            },
            |row| &row.user_id,
        )
        .await
    }
}
