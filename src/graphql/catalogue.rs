//! The writable catalogue: assets (kind, status, renames, delistings), protocols, pools
//! and markets, written by the admin and service roles, each with a MongoDB document of
//! free-form metadata. Reads go through loaders.

mod mutation;
mod query;
mod types;

pub use mutation::CatalogueMutation;
pub use query::CatalogueQuery;
pub use types::{AssetKind, AssetStatus, Pool, ProtocolCategory, RiskLevel};
