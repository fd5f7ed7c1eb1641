//! Candles of an asset over a window (ClickHouse). Keys that share the interval and window
//! (the usual case: a list of assets in one query) are fetched in one statement.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use super::{shared, Batcher, LoadError};
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
        let mut groups: HashMap<(u32, u32, u32), Vec<String>> = HashMap::new();
        for key in keys {
            groups
                .entry((key.bucket_secs, key.from, key.to))
                .or_default()
                .push(key.symbol.clone());
        }
        let fetches = groups
            .into_iter()
            .map(|((bucket_secs, from, to), symbols)| async move {
                let rows = self
                    .stores
                    .clickhouse()
                    .candles(&symbols, bucket_secs, from, to)
                    .await?;
                Ok::<_, crate::Error>(((bucket_secs, from, to), symbols, rows))
            });
        let mut out = HashMap::with_capacity(keys.len());
        for result in futures::future::join_all(fetches).await {
            let ((bucket_secs, from, to), symbols, rows) = result.map_err(shared)?;
            for symbol in symbols {
                out.insert(
                    CandlesOf {
                        symbol,
                        bucket_secs,
                        from,
                        to,
                    },
                    Vec::new(),
                );
            }
            for row in rows {
                let key = CandlesOf {
                    symbol: row.symbol.clone(),
                    bucket_secs,
                    from,
                    to,
                };
                out.entry(key).or_default().push(row);
            }
        }
        Ok(out)
    }
}
