//! Users by id and by wallet address (PostgreSQL).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use super::{shared, Batcher, LoadError};
use crate::store::{postgres::UserRow, StoreKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserById(pub Uuid);

/// A lowercase 0x-prefixed address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserByAddress(pub String);

impl Loader<UserById> for Batcher {
    type Value = UserRow;
    type Error = LoadError;

    async fn load(&self, keys: &[UserById]) -> Result<HashMap<UserById, UserRow>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = self
            .stores
            .call(
                StoreKind::Postgres,
                "users_by_id",
                self.stores.postgres.users_by_id(&ids),
            )
            .await
            .map_err(shared)?;
        Ok(rows.into_iter().map(|u| (UserById(u.id), u)).collect())
    }
}

impl Loader<UserByAddress> for Batcher {
    type Value = UserRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[UserByAddress],
    ) -> Result<HashMap<UserByAddress, UserRow>, LoadError> {
        let addresses: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self
            .stores
            .call(
                StoreKind::Postgres,
                "users_by_address",
                self.stores.postgres.users_by_address(&addresses),
            )
            .await
            .map_err(shared)?;
        Ok(rows
            .into_iter()
            .map(|u| (UserByAddress(u.address.clone()), u))
            .collect())
    }
}
