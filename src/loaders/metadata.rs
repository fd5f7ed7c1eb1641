//! Asset metadata by symbol (MongoDB, one `$in` find per batch). While MongoDB is down,
//! metadata read in the last `MERIDIAN_STALE_CACHE_SECS` is served from memory, and the
//! response says so in `extensions.meridian.stale`.

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
        let _flight = self.flight("metadata");
        let symbols: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let docs = match self.stores.mongo().asset_metadata_by_symbol(&symbols).await {
            Ok(docs) => {
                let cache = &self.stores.stale_metadata;
                cache.remember(docs.iter().map(|d| (d.symbol.clone(), d.clone())));
                docs
            }
            // Only an outage falls back: a refusal of this request is not the store down.
            Err(err) if err.code() == "STORE_UNAVAILABLE" => {
                let Some(remembered) = self.stores.stale_metadata.recall(&symbols) else {
                    return Err(shared(err));
                };
                let oldest = remembered.iter().map(|(_, age)| age.as_secs()).max();
                self.stores.degraded.note(serde_json::json!({
                    "type": "AssetMetadata",
                    "store": StoreKind::Mongo.as_str(),
                    "keys": symbols,
                    "maxAgeSeconds": oldest,
                }));
                remembered.into_iter().map(|(doc, _)| doc).collect()
            }
            Err(err) => return Err(shared(err)),
        };
        Ok(docs
            .into_iter()
            .map(|d| (MetadataOf(d.symbol.clone()), d))
            .collect())
    }
}
