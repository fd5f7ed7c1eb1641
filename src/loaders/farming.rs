//! A farmer's totals over a window (ClickHouse). Keys sharing a window are fetched in one
//! statement.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use super::{shared, Batcher, LoadError};
use crate::store::clickhouse::FarmerTotalsRow;

/// A farmer (the stored address) and a window [from, to) in unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FarmerTotalsOf {
    pub subject: String,
    pub from: u32,
    pub to: u32,
}

impl Loader<FarmerTotalsOf> for Batcher {
    type Value = FarmerTotalsRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[FarmerTotalsOf],
    ) -> Result<HashMap<FarmerTotalsOf, FarmerTotalsRow>, LoadError> {
        let _flight = self.flight("farmer_totals");
        let mut windows: HashMap<(u32, u32), Vec<String>> = HashMap::new();
        for key in keys {
            windows
                .entry((key.from, key.to))
                .or_default()
                .push(key.subject.clone());
        }
        let fetches = windows
            .into_iter()
            .map(|((from, to), subjects)| async move {
                let rows = self
                    .stores
                    .clickhouse()
                    .farmer_totals(&subjects, from, to)
                    .await?;
                Ok::<_, crate::Error>(((from, to), rows))
            });
        let mut out = HashMap::with_capacity(keys.len());
        for result in futures::future::join_all(fetches).await {
            let ((from, to), rows) = result.map_err(shared)?;
            for row in rows {
                let key = FarmerTotalsOf {
                    subject: row.subject.clone(),
                    from,
                    to,
                };
                out.insert(key, row);
            }
        }
        Ok(out)
    }
}
