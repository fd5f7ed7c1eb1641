//! The catalogue's lookups: protocols by id and the pools of each protocol (PostgreSQL),
//! each asset's names over time (PostgreSQL), and the metadata documents of protocols,
//! pools and markets (MongoDB).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use super::{shared, Batcher, LoadError};
use crate::store::{
    mongo::document_key,
    postgres::{AssetNameRow, PoolRow, ProtocolRow},
};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProtocolById(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolsOfProtocol(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AssetNamesOf(pub String);

/// The metadata document of a catalogue entry: its kind (protocol, pool, market) and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentOf {
    pub kind: &'static str,
    pub id: String,
}

impl Loader<ProtocolById> for Batcher {
    type Value = ProtocolRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ProtocolById],
    ) -> Result<HashMap<ProtocolById, ProtocolRow>, LoadError> {
        let _flight = self.flight("protocol");
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self
            .stores
            .postgres()
            .protocols_by_id(&ids)
            .await
            .map_err(shared)?;
        Ok(rows
            .into_iter()
            .map(|p| (ProtocolById(p.id.clone()), p))
            .collect())
    }
}

impl Loader<PoolsOfProtocol> for Batcher {
    type Value = Vec<PoolRow>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PoolsOfProtocol],
    ) -> Result<HashMap<PoolsOfProtocol, Vec<PoolRow>>, LoadError> {
        let _flight = self.flight("pools_of");
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self
            .stores
            .postgres()
            .pools_of_protocols(&ids)
            .await
            .map_err(shared)?;
        let mut found: HashMap<PoolsOfProtocol, Vec<PoolRow>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for row in rows {
            found
                .entry(PoolsOfProtocol(row.protocol.clone()))
                .or_default()
                .push(row);
        }
        Ok(found)
    }
}

impl Loader<AssetNamesOf> for Batcher {
    type Value = Vec<AssetNameRow>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[AssetNamesOf],
    ) -> Result<HashMap<AssetNamesOf, Vec<AssetNameRow>>, LoadError> {
        let _flight = self.flight("asset_names");
        let symbols: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self
            .stores
            .postgres()
            .asset_names(&symbols)
            .await
            .map_err(shared)?;
        let mut found: HashMap<AssetNamesOf, Vec<AssetNameRow>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for row in rows {
            found
                .entry(AssetNamesOf(row.symbol.clone()))
                .or_default()
                .push(row);
        }
        Ok(found)
    }
}

impl Loader<DocumentOf> for Batcher {
    type Value = serde_json::Value;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[DocumentOf],
    ) -> Result<HashMap<DocumentOf, serde_json::Value>, LoadError> {
        let _flight = self.flight("document");
        let wanted: HashMap<String, &DocumentOf> = keys
            .iter()
            .map(|k| (document_key(k.kind, &k.id), k))
            .collect();
        let keys: Vec<String> = wanted.keys().cloned().collect();
        let found = self
            .stores
            .mongo()
            .documents_by_key(&keys)
            .await
            .map_err(shared)?;
        Ok(found
            .into_iter()
            .filter_map(|(key, doc)| wanted.get(&key).map(|k| ((*k).clone(), doc)))
            .collect())
    }
}
