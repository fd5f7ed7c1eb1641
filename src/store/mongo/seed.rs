//! Documents of the MongoDB collections, and the writer of the demo dataset's documents.

use mongodb::bson::{doc, Document};
use serde::{Deserialize, Serialize};

use super::{Mongo, ASSET_METADATA, PROFILES};

/// A labelled link (a profile's or an asset's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub label: String,
    pub url: String,
}

/// A user's profile, in `profiles`, keyed by `userId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileDoc {
    pub user_id: String,
    pub display_name: String,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    pub links: Vec<Link>,
    /// Free-form preferences the client owns.
    pub preferences: Document,
}

impl ProfileDoc {
    /// The preferences as JSON (relaxed extended JSON: plain numbers and strings).
    pub fn preferences_json(&self) -> serde_json::Value {
        mongodb::bson::Bson::Document(self.preferences.clone()).into_relaxed_extjson()
    }
}

/// An asset's metadata, in `asset_metadata`, keyed by `symbol`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetMetadataDoc {
    pub symbol: String,
    pub description: String,
    pub website: Option<String>,
    pub tags: Vec<String>,
    pub links: Vec<Link>,
}

impl Mongo {
    /// Empties the collections the demo dataset fills.
    pub async fn reset_demo_data(&self) -> Result<(), crate::Error> {
        self.calls
            .run::<(), mongodb::error::Error, _>("reset_demo_data", async {
                for name in [PROFILES, ASSET_METADATA, super::CATALOGUE_DOCUMENTS] {
                    self.db
                        .collection::<Document>(name)
                        .delete_many(doc! {})
                        .await?;
                }
                Ok(())
            })
            .await
    }

    pub async fn insert_profiles(&self, profiles: &[ProfileDoc]) -> Result<(), crate::Error> {
        self.calls
            .run::<(), mongodb::error::Error, _>("insert_profiles", async {
                for chunk in profiles.chunks(1000) {
                    self.db
                        .collection::<ProfileDoc>(PROFILES)
                        .insert_many(chunk)
                        .await?;
                }
                Ok(())
            })
            .await
    }

    pub async fn insert_asset_metadata(
        &self,
        docs: &[AssetMetadataDoc],
    ) -> Result<(), crate::Error> {
        self.calls
            .run::<(), mongodb::error::Error, _>("insert_asset_metadata", async {
                if docs.is_empty() {
                    return Ok(());
                }
                self.db
                    .collection::<AssetMetadataDoc>(ASSET_METADATA)
                    .insert_many(docs)
                    .await
                    .map(drop)
            })
            .await
    }
}
