//! The GraphQL schema: each domain module contributes its part of the roots, merged here.

mod asset;
mod health;
mod leaderboard;
mod live;
pub mod pagination;
pub mod scope;
mod series;
mod user;

use async_graphql::{MergedObject, Schema};

use crate::app::AppState;

/// The query root: every domain's queries.
#[derive(MergedObject, Default)]
pub struct Query(
    user::UserQuery,
    asset::AssetQuery,
    leaderboard::LeaderboardQuery,
    health::HealthQuery,
);

/// The mutation root: every domain's mutations.
#[derive(MergedObject, Default)]
pub struct Mutation(user::UserMutation, asset::AssetMutation);

/// Meridian's schema type.
pub type AppSchema = Schema<Query, Mutation, live::LiveSubscription>;

/// Builds the schema, with the application state available to resolvers.
pub fn build(state: AppState) -> AppSchema {
    Schema::build(
        Query::default(),
        Mutation::default(),
        live::LiveSubscription,
    )
    .data(state.clone())
    .extension(scope::Scope { state })
    .finish()
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
