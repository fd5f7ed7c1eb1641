//! The graph's reads from MongoDB: one `$in` find per batch.

use futures::TryStreamExt;
use mongodb::{bson::doc, options::FindOptions};

use super::{AssetMetadataDoc, Mongo, ProfileDoc, ASSET_METADATA, PROFILES};

impl Mongo {
    pub async fn profiles_by_user(
        &self,
        user_ids: &[String],
    ) -> Result<Vec<ProfileDoc>, crate::Error> {
        self.calls
            .run::<Vec<ProfileDoc>, mongodb::error::Error, _>("profiles_by_user", async {
                self.db
                    .collection::<ProfileDoc>(PROFILES)
                    .find(doc! { "userId": { "$in": user_ids } })
                    .projection(doc! { "_id": 0 })
                    .await?
                    .try_collect()
                    .await
            })
            .await
    }

    pub async fn asset_metadata_by_symbol(
        &self,
        symbols: &[String],
    ) -> Result<Vec<AssetMetadataDoc>, crate::Error> {
        self.calls
            .run::<Vec<AssetMetadataDoc>, mongodb::error::Error, _>(
                "asset_metadata_by_symbol",
                async {
                    self.db
                        .collection::<AssetMetadataDoc>(ASSET_METADATA)
                        .find(doc! { "symbol": { "$in": symbols } })
                        .projection(doc! { "_id": 0 })
                        .await?
                        .try_collect()
                        .await
                },
            )
            .await
    }

    /// Symbols of the assets tagged `tag`.
    pub async fn symbols_with_tag(&self, tag: &str) -> Result<Vec<String>, crate::Error> {
        self.calls
            .run::<Vec<String>, mongodb::error::Error, _>("symbols_with_tag", async {
                #[derive(serde::Deserialize)]
                struct Symbol {
                    symbol: String,
                }
                let options = FindOptions::builder()
                    .projection(doc! { "_id": 0, "symbol": 1 })
                    .build();
                let found: Vec<Symbol> = self
                    .db
                    .collection::<Symbol>(ASSET_METADATA)
                    .find(doc! { "tags": tag })
                    .with_options(options)
                    .await?
                    .try_collect()
                    .await?;
                Ok(found.into_iter().map(|s| s.symbol).collect())
            })
            .await
    }
}
