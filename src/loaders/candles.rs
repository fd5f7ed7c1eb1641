//! Candles of an asset over a window (ClickHouse). Keys that share the interval and window
//! (the usual case: a list of assets in one query) are fetched in one statement.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use super::{series_by_window, Batcher, LoadError};
use crate::store::clickhouse::CandleRow;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CandlesOf {
    pub symbol: String,
    pub bucket_secs: u32,
    pub from: u32,
    pub to: u32,
}

impl Loader<CandlesOf> for Batcher {
    type Value = Vec<CandleRow>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CandlesOf],
    ) -> Result<HashMap<CandlesOf, Vec<CandleRow>>, LoadError> {
        let _flight = self.flight("candles");
        series_by_window(
            keys,
            |k| ((k.bucket_secs, k.from, k.to), k.symbol.clone()),
            |(bucket_secs, from, to), symbols| async move {
                self.stores
                    .clickhouse()
                    .candles(&symbols, bucket_secs, from, to)
                    .await
            },
            |row| &row.symbol,
        )
        .await
    }
}
