//! Assets by symbol (PostgreSQL).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use super::{shared, Batcher, LoadError};
use crate::store::postgres::AssetRow;

/// An uppercase symbol.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AssetBySymbol(pub String);

impl Loader<AssetBySymbol> for Batcher {
    type Value = AssetRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[AssetBySymbol],
    ) -> Result<HashMap<AssetBySymbol, AssetRow>, LoadError> {
        let _flight = self.flight("asset");
        let symbols: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self
            .stores
            .postgres()
            .assets_by_symbol(&symbols)
            .await
            .map_err(shared)?;
        Ok(rows
            .into_iter()
            .map(|a| (AssetBySymbol(a.symbol.clone()), a))
            .collect())
    }
}
