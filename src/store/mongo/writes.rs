//! Writes to MongoDB: profile updates.

use mongodb::{
    bson::{doc, Document},
    options::ReturnDocument,
};

use super::{Mongo, ProfileDoc, PROFILES};

impl Mongo {
    /// Sets the given fields of a user's profile, creating the profile (named
    /// `default_name`) if the user has none; returns the profile as stored.
    pub async fn upsert_profile(
        &self,
        user_id: &str,
        set: Document,
        default_name: &str,
    ) -> Result<Option<ProfileDoc>, mongodb::error::Error> {
        let mut on_insert = doc! { "links": [], "preferences": {}, "bio": null, "avatarUrl": null, "displayName": default_name };
        for key in set.keys() {
            on_insert.remove(key);
        }
        let mut update = doc! { "$set": set };
        if !on_insert.is_empty() {
            update.insert("$setOnInsert", on_insert);
        }
        self.db
            .collection::<ProfileDoc>(PROFILES)
            .find_one_and_update(doc! { "userId": user_id }, update)
            .upsert(true)
            .return_document(ReturnDocument::After)
            .projection(doc! { "_id": 0 })
            .await
    }
}
