//! A user's holdings (PostgreSQL, one `= ANY($1)` query per batch).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use super::{shared, Batcher, LoadError};
use crate::store::postgres::HoldingRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HoldingsOf(pub Uuid);

impl Loader<HoldingsOf> for Batcher {
    type Value = Vec<HoldingRow>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[HoldingsOf],
    ) -> Result<HashMap<HoldingsOf, Vec<HoldingRow>>, LoadError> {
        let _flight = self.flight("holdings");
        let users: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = self
            .stores
            .postgres()
            .holdings_by_user(&users)
            .await
            .map_err(shared)?;
        // Every key gets an entry: a user without holdings has an empty list.
        let mut out: HashMap<HoldingsOf, Vec<HoldingRow>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(HoldingsOf(row.user_id)).or_default().push(row);
        }
        Ok(out)
    }
}
