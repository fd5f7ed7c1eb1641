//! Users: Postgres rows with profiles (MongoDB), holdings and trades (Postgres), activity
//! (ClickHouse) and leaderboard standing (Redis).

mod query;
mod types;

pub use query::UserQuery;
pub use types::User;
