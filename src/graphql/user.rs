//! Users: Postgres rows with profiles (MongoDB), holdings and trades (Postgres), activity
//! (ClickHouse) and leaderboard standing (Redis).

mod mutation;
mod query;
mod types;

pub use mutation::UserMutation;
pub use query::{account_arg, normalise_address, parse_account, UserQuery};
pub use types::{Chain, Holding, Trade, User};
