//! Users by id and by wallet address (PostgreSQL).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use crate::values::Address;

use super::{shared, Batcher, LoadError};
use crate::store::postgres::UserRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserById(pub Uuid);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserByAddress(pub Address);

impl Loader<UserById> for Batcher {
    type Value = UserRow;
    type Error = LoadError;

    async fn load(&self, keys: &[UserById]) -> Result<HashMap<UserById, UserRow>, LoadError> {
        let _flight = self.flight("user");
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = self
            .stores
            .postgres()
            .users_by_id(&ids)
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
        let _flight = self.flight("user_by_address");
        let addresses: Vec<Address> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self
            .stores
            .postgres()
            .users_by_address(&addresses)
            .await
            .map_err(shared)?;
        let mut by_address: HashMap<String, UserRow> =
            rows.into_iter().map(|u| (u.address.clone(), u)).collect();
        Ok(keys
            .iter()
            .filter_map(|k| Some((k.clone(), by_address.remove(k.0.as_str())?)))
            .collect())
    }
}
