//! The GraphQL schema: each domain module contributes its part of the roots, merged here.

mod artifact;
mod asset;
mod auth;
mod catalogue;
pub(crate) mod challenge;
mod event;
mod farming;
pub mod guard;
mod health;
mod leaderboard;
mod live;
mod market;
pub mod messages;
pub mod node;
pub mod nulls;
mod ohlcv;
pub mod pagination;
pub mod scope;
pub mod series;
pub mod shape;
mod staking;
mod tokens;
mod user;
mod yields;

pub use asset::normalise_symbol;
pub use user::normalise_address;

use async_graphql::{MergedObject, Schema};
use chrono::{DateTime, Utc};

/// The schema's description, as introspection reports it (`__schema { description }`).
pub const SCHEMA_DESCRIPTION: &str = "Meridian: one GraphQL API over a platform's PostgreSQL, \
    ClickHouse, Redis and MongoDB. Users, holdings and trades come from PostgreSQL; price \
    history and analytics from ClickHouse; live prices, leaderboards and sessions from Redis; \
    profiles and metadata from MongoDB. Subscriptions push prices, leaderboards and trades \
    over graphql-transport-ws on /graphql/ws.";

/// What `DateTime` means in Meridian's schema.
const DATE_TIME: &str = "A point in time, always in UTC, as an RFC 3339 string \
    (`2026-11-23T14:05:00Z`). Inputs may carry any offset; outputs are in UTC.";

use crate::app::AppState;

/// The query root: every domain's queries.
#[derive(MergedObject, Default)]
pub struct Query(
    user::UserQuery,
    auth::AuthQuery,
    asset::AssetQuery,
    leaderboard::LeaderboardQuery,
    event::EventQuery,
    artifact::ArtifactQuery,
    farming::FarmingQuery,
    challenge::ChallengeQuery,
    catalogue::CatalogueQuery,
    market::MarketQuery,
    yields::YieldsQuery,
    staking::StakingQuery,
    tokens::TokensQuery,
    health::HealthQuery,
    node::NodeQuery,
);

/// The mutation root: every domain's mutations.
#[derive(MergedObject, Default)]
pub struct Mutation(
    user::UserMutation,
    asset::AssetMutation,
    auth::AuthMutation,
    event::EventMutation,
    leaderboard::LeaderboardMutation,
    artifact::ArtifactMutation,
    challenge::ChallengeMutation,
    catalogue::CatalogueMutation,
    ohlcv::OhlcvMutation,
    yields::YieldsMutation,
    tokens::TokensMutation,
);

/// Meridian's schema type.
pub type AppSchema = Schema<Query, Mutation, live::LiveSubscription>;

/// Builds the schema, with the application state available to resolvers.
/// Query limits and introspection follow the configuration; the guard and scope
/// extensions run around every operation.
pub fn build(state: AppState) -> AppSchema {
    let security = &state.config().security;
    // Read by every operation's scope; filled from the finished schema's SDL.
    let types = std::sync::Arc::new(std::sync::OnceLock::new());
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        live::LiveSubscription,
    )
    .data(state.clone())
    .limit_complexity(security.max_complexity)
    .override_output_type_description::<DateTime<Utc>>(DATE_TIME)
    .override_input_type_description::<DateTime<Utc>>(DATE_TIME)
    .extension(scope::Scope {
        state: state.clone(),
        types: types.clone(),
    });
    if !security.introspection {
        builder = builder.disable_introspection();
    }
    let schema = builder.finish();
    let _ = types.set(nulls::TypeMap::from_sdl(&schema.sdl()));
    schema
}

/// The SDL of the schema, as committed in schema.graphql.
pub fn sdl() -> String {
    Schema::build(
        Query::default(),
        Mutation::default(),
        live::LiveSubscription,
    )
    .override_output_type_description::<DateTime<Utc>>(DATE_TIME)
    .override_input_type_description::<DateTime<Utc>>(DATE_TIME)
    .finish()
    .sdl()
}

/// The inputs of a batch write, checked: 1 to `max` of them (else BAD_USER_INPUT on
/// `field`), each checked by `check` with its own field name (`events[3]`), in order.
pub(crate) fn checked_batch<I, T>(
    field: &str,
    inputs: Vec<I>,
    max: usize,
    mut check: impl FnMut(String, I) -> Result<T, crate::error::Error>,
) -> async_graphql::Result<Vec<T>> {
    use async_graphql::ErrorExtensions;
    if inputs.is_empty() || inputs.len() > max {
        return Err(crate::error::Error::field(
            field,
            format!("send 1 to {max} {field} (got {})", inputs.len()),
        )
        .extend());
    }
    Ok(inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| check(format!("{field}[{i}]"), input))
        .collect::<Result<Vec<_>, _>>()?)
}
