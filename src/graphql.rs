//! The GraphQL schema: each domain module contributes its part of the roots, merged here.

mod asset;
mod auth;
pub mod guard;
mod health;
mod leaderboard;
mod live;
pub mod pagination;
pub mod scope;
pub mod series;
pub mod shape;
mod user;

pub use asset::normalise_symbol;
pub use user::normalise_address;

use async_graphql::{MergedObject, Schema};

use crate::app::AppState;

/// The query root: every domain's queries.
#[derive(MergedObject, Default)]
pub struct Query(
    user::UserQuery,
    auth::AuthQuery,
    asset::AssetQuery,
    leaderboard::LeaderboardQuery,
    health::HealthQuery,
);

/// The mutation root: every domain's mutations.
#[derive(MergedObject, Default)]
pub struct Mutation(user::UserMutation, asset::AssetMutation, auth::AuthMutation);

/// Meridian's schema type.
pub type AppSchema = Schema<Query, Mutation, live::LiveSubscription>;

/// Builds the schema, with the application state available to resolvers.
/// Query limits and introspection follow the configuration; the guard and scope
/// extensions run around every operation.
pub fn build(state: AppState) -> AppSchema {
    let security = &state.config().security;
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        live::LiveSubscription,
    )
    .data(state.clone())
    .limit_complexity(security.max_complexity)
    .extension(scope::Scope {
        state: state.clone(),
    });
    if !security.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The SDL of the schema, as committed in schema.graphql.
pub fn sdl() -> String {
    Schema::build(
        Query::default(),
        Mutation::default(),
        live::LiveSubscription,
    )
    .finish()
    .sdl()
}
