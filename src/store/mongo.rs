//! MongoDB: user profiles and asset metadata.

mod migrate;
mod reads;
mod seed;
mod writes;

pub use seed::{AssetMetadataDoc, Link, ProfileDoc};

use anyhow::Context;
use mongodb::{bson::doc, options::ClientOptions, Client, Database};

use crate::config::Config;

pub const PROFILES: &str = "profiles";
pub const ASSET_METADATA: &str = "asset_metadata";

/// The MongoDB adapter: a client and the database named in the URL.
#[derive(Clone)]
pub struct Mongo {
    db: Database,
}

impl Mongo {
    /// Parses the URL (resolving `mongodb+srv` records) and builds the client; the driver
    /// connects on first use.
    pub async fn new(config: &Config) -> anyhow::Result<Self> {
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
        Ok(Mongo {
            db: client.database(&database),
        })
    }

    /// The database, for tests and tools that check the store directly.
    pub fn database(&self) -> &Database {
        &self.db
    }

    #[tracing::instrument(skip(self))]
    pub async fn ping(&self) -> Result<(), mongodb::error::Error> {
        self.db.run_command(doc! { "ping": 1 }).await.map(drop)
    }
}
