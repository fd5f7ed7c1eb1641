//! Assets: Postgres rows with metadata (MongoDB), price (Redis, ClickHouse fallback),
//! candles and 24h statistics (ClickHouse, the latter cached in Redis).

mod query;
mod types;

pub use query::AssetQuery;
pub use types::{Asset, Link};
