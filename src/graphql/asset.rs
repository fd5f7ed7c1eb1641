//! Assets: Postgres rows with metadata (MongoDB), price (Redis, ClickHouse fallback),
//! candles and 24h statistics (ClickHouse, the latter cached in Redis).

mod mutation;
mod query;
mod types;

pub use mutation::AssetMutation;
pub use query::{normalise_symbol, AssetQuery};
pub use types::{Asset, Link, Price};
