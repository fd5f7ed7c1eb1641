//! Writes to MongoDB: profile updates.

use std::future::IntoFuture;

use mongodb::{
    bson::{self, doc, Bson, Document},
    options::ReturnDocument,
};

use super::{Link, Mongo, ProfileDoc, PROFILES};

/// The changes of one profile update, already checked by the caller: `None` leaves a
/// field as it is, and `Some(None)` clears an optional one.
#[derive(Debug, Default)]
pub struct ProfilePatch {
    pub display_name: Option<String>,
    pub bio: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    /// Replaces every link.
    pub links: Option<Vec<Link>>,
    /// Replaces the preferences.
    pub preferences: Option<Preferences>,
}

impl ProfilePatch {
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none()
            && self.bio.is_none()
            && self.avatar_url.is_none()
            && self.links.is_none()
            && self.preferences.is_none()
    }

    /// The `$set` document.
    fn to_set(&self) -> Document {
        let optional = |value: &Option<String>| value.clone().map_or(Bson::Null, Bson::String);
        let mut set = Document::new();
        if let Some(name) = &self.display_name {
            set.insert("displayName", name.as_str());
        }
        if let Some(bio) = &self.bio {
            set.insert("bio", optional(bio));
        }
        if let Some(url) = &self.avatar_url {
            set.insert("avatarUrl", optional(url));
        }
        if let Some(links) = &self.links {
            let docs: Vec<Document> = links
                .iter()
                .map(|link| doc! { "label": link.label.as_str(), "url": link.url.as_str() })
                .collect();
            set.insert("links", docs);
        }
        if let Some(preferences) = &self.preferences {
            set.insert("preferences", preferences.0.clone());
        }
        set
    }
}

/// A JSON object as MongoDB stores it.
#[derive(Debug, Clone)]
pub struct Preferences(Document);

impl Preferences {
    /// None unless `value` is an object that BSON can hold.
    pub fn from_json(value: &serde_json::Value) -> Option<Preferences> {
        if !value.is_object() {
            return None;
        }
        bson::to_document(value).ok().map(Preferences)
    }
}

impl Mongo {
    /// Applies `patch` to a user's profile, creating the profile (named `default_name`)
    /// if the user has none; returns the profile as stored.
    pub async fn upsert_profile(
        &self,
        user_id: &str,
        patch: &ProfilePatch,
        default_name: &str,
    ) -> Result<Option<ProfileDoc>, crate::Error> {
        let set = patch.to_set();
        let mut on_insert = doc! { "links": [], "preferences": {}, "bio": null, "avatarUrl": null, "displayName": default_name };
        for key in set.keys() {
            on_insert.remove(key);
        }
        let mut update = doc! { "$set": set };
        if !on_insert.is_empty() {
            update.insert("$setOnInsert", on_insert);
        }
        self.calls
            .run(
                "upsert_profile",
                self.db
                    .collection::<ProfileDoc>(PROFILES)
                    .find_one_and_update(doc! { "userId": user_id }, update)
                    .upsert(true)
                    .return_document(ReturnDocument::After)
                    .projection(doc! { "_id": 0 })
                    .into_future(),
            )
            .await
    }
}
