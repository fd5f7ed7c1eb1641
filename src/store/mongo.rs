//! MongoDB: user profiles, asset metadata and the catalogue's metadata documents.

mod catalogue;
mod migrate;
mod reads;
mod seed;
mod writes;

pub use catalogue::{document_key, CATALOGUE_DOCUMENTS};
pub use seed::{AssetMetadataDoc, Link, ProfileDoc};
pub use writes::{Preferences, ProfilePatch};

use anyhow::Context;
use mongodb::{bson::doc, options::ClientOptions, Client, Database};

use super::call::{Calls, Shared};
use crate::{config::Config, error::StoreError, store::StoreKind};

pub const PROFILES: &str = "profiles";
pub const ASSET_METADATA: &str = "asset_metadata";

/// The MongoDB adapter: a client and the database named in the URL.
#[derive(Clone)]
pub struct Mongo {
    db: Database,
    calls: Calls,
}

impl Mongo {
    /// Parses the URL (resolving `mongodb+srv` records) and builds the client; the driver
    /// connects on first use.
    pub(crate) async fn new(
        config: &Config,
        shared: &std::sync::Arc<Shared>,
    ) -> anyhow::Result<Self> {
        let mut options = ClientOptions::parse(&config.mongo_url)
            .await
            .context("MERIDIAN_MONGO_URL is not a valid MongoDB URL")?;
        options.app_name = Some("meridian".into());
        options.server_selection_timeout = Some(config.store_timeout());
        options.connect_timeout = Some(config.store_timeout());
        let database = options
            .default_database
            .clone()
            .unwrap_or_else(|| "meridian".into());
        let client = Client::with_options(options).context("cannot build the MongoDB client")?;
        let db = client.database(&database);
        let probe = db.clone();
        let calls = Calls::new(
            StoreKind::Mongo,
            shared.clone(),
            config.store_timeout(),
            move || {
                let db = probe.clone();
                Box::pin(async move { ping(&db).await.map_err(StoreError::from) })
            },
        );
        Ok(Mongo { db, calls })
    }

    pub(crate) fn calls(&self) -> &Calls {
        &self.calls
    }

    /// The same adapter with another call wrapper (see [`crate::store::Stores`]).
    pub(crate) fn rebind(&self, calls: Calls) -> Self {
        Mongo {
            calls,
            ..self.clone()
        }
    }

    /// The database, for tests that check the store directly. Meridian's own code goes
    /// through the typed methods, which own the call wrapper.
    pub fn database(&self) -> &Database {
        &self.db
    }

    pub async fn ping(&self) -> Result<(), crate::Error> {
        self.calls.run("ping", ping(&self.db)).await
    }
}

async fn ping(db: &Database) -> Result<(), mongodb::error::Error> {
    db.run_command(doc! { "ping": 1 }).await.map(drop)
}
