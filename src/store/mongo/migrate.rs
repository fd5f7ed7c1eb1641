//! MongoDB indexes.

use mongodb::{bson::doc, options::IndexOptions, IndexModel};

use super::{Mongo, ASSET_METADATA, PROFILES};

impl Mongo {
    /// Creates the indexes the graph's lookups need; returns the names of those that did
    /// not exist before.
    pub async fn migrate(&self) -> Result<Vec<String>, crate::Error> {
        self.calls
            .run::<Vec<String>, mongodb::error::Error, _>("migrate", async {
                let wanted = [
                    (PROFILES, "profiles_user_id", doc! { "userId": 1 }, true),
                    (
                        ASSET_METADATA,
                        "asset_metadata_symbol",
                        doc! { "symbol": 1 },
                        true,
                    ),
                    (
                        ASSET_METADATA,
                        "asset_metadata_tags",
                        doc! { "tags": 1 },
                        false,
                    ),
                ];
                let mut created = Vec::new();
                for (collection, name, keys, unique) in wanted {
                    let coll = self.db.collection::<mongodb::bson::Document>(collection);
                    // A collection that does not exist yet has no indexes (and errors on listing).
                    let existing = coll.list_index_names().await.unwrap_or_default();
                    if existing.iter().any(|n| n == name) {
                        continue;
                    }
                    let options = IndexOptions::builder()
                        .name(name.to_owned())
                        .unique(unique)
                        .build();
                    coll.create_index(IndexModel::builder().keys(keys).options(options).build())
                        .await?;
                    created.push(name.to_owned());
                }
                Ok(created)
            })
            .await
    }
}
