//! Asset metadata by symbol (MongoDB, one `$in` find per batch).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use super::{shared, Batcher, LoadError};
use crate::store::{mongo::AssetMetadataDoc, StoreKind};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetadataOf(pub String);

impl Loader<MetadataOf> for Batcher {
    type Value = AssetMetadataDoc;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[MetadataOf],
    ) -> Result<HashMap<MetadataOf, AssetMetadataDoc>, LoadError> {
        let symbols: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let docs = self
            .stores
            .call(
                StoreKind::Mongo,
                "asset_metadata_by_symbol",
                self.stores.mongo.asset_metadata_by_symbol(&symbols),
            )
            .await
            .map_err(shared)?;
        Ok(docs
            .into_iter()
            .map(|d| (MetadataOf(d.symbol.clone()), d))
            .collect())
    }
}
