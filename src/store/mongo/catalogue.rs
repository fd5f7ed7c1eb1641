//! The catalogue's MongoDB side: the free-form metadata document of each protocol, pool
//! and market (`catalogue_documents`, keyed `kind:id`), and asset metadata written by the
//! catalogue mutations.

use futures::TryStreamExt;
use mongodb::bson::{self, doc, Document};

use super::{AssetMetadataDoc, Mongo, ASSET_METADATA};

pub const CATALOGUE_DOCUMENTS: &str = "catalogue_documents";

/// The key of an entry's document.
pub fn document_key(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

impl Mongo {
    /// Replaces the metadata documents of these entries of `kind` (a JSON object each).
    pub async fn upsert_documents(
        &self,
        kind: &str,
        documents: &[(String, serde_json::Value)],
    ) -> Result<(), crate::Error> {
        self.calls
            .run::<(), mongodb::error::Error, _>("upsert_documents", async {
                let coll = self.db.collection::<Document>(CATALOGUE_DOCUMENTS);
                for (id, metadata) in documents {
                    let metadata = bson::to_document(metadata)
                        .map_err(|e| mongodb::error::Error::custom(e.to_string()))?;
                    coll.replace_one(
                        doc! { "_id": document_key(kind, id) },
                        doc! { "kind": kind, "id": id, "metadata": metadata },
                    )
                    .upsert(true)
                    .await?;
                }
                Ok(())
            })
            .await
    }

    /// The metadata documents with these keys (see [`document_key`]), as JSON.
    pub async fn documents_by_key(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, serde_json::Value)>, crate::Error> {
        self.calls
            .run::<Vec<(String, serde_json::Value)>, mongodb::error::Error, _>(
                "documents_by_key",
                async {
                    let found: Vec<Document> = self
                        .db
                        .collection::<Document>(CATALOGUE_DOCUMENTS)
                        .find(doc! { "_id": { "$in": keys } })
                        .await?
                        .try_collect()
                        .await?;
                    Ok(found
                        .into_iter()
                        .filter_map(|d| {
                            let key = d.get_str("_id").ok()?.to_owned();
                            let metadata = d.get_document("metadata").ok()?.clone();
                            Some((key, bson::Bson::Document(metadata).into_relaxed_extjson()))
                        })
                        .collect())
                },
            )
            .await
    }

    /// Writes the description, website and tags of assets' metadata (links stay as they
    /// are; a new document starts with none).
    pub async fn upsert_asset_metadata(
        &self,
        docs: &[AssetMetadataDoc],
    ) -> Result<(), crate::Error> {
        self.calls
            .run::<(), mongodb::error::Error, _>("upsert_asset_metadata", async {
                let coll = self.db.collection::<Document>(ASSET_METADATA);
                for d in docs {
                    coll.update_one(
                        doc! { "symbol": &d.symbol },
                        doc! {
                            "$set": { "description": &d.description, "website": &d.website, "tags": &d.tags },
                            "$setOnInsert": { "links": [] },
                        },
                    )
                    .upsert(true)
                    .await?;
                }
                Ok(())
            })
            .await
    }

    /// Gives `to` a copy of `from`'s asset metadata (a renamed asset's successor), unless
    /// `to` has its own.
    pub async fn copy_asset_metadata(&self, from: &str, to: &str) -> Result<(), crate::Error> {
        self.calls
            .run::<(), mongodb::error::Error, _>("copy_asset_metadata", async {
                let coll = self.db.collection::<Document>(ASSET_METADATA);
                let Some(mut found) = coll.find_one(doc! { "symbol": from }).await? else {
                    return Ok(());
                };
                found.remove("_id");
                found.insert("symbol", to);
                coll.update_one(doc! { "symbol": to }, doc! { "$setOnInsert": found })
                    .upsert(true)
                    .await
                    .map(drop)
            })
            .await
    }
}
