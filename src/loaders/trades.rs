//! Trades by id, and a page of a user's trades (PostgreSQL). Keys sharing the same
//! window are fetched in one statement (a lateral join over the users).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use super::{shared, Batcher, LoadError};
use crate::store::postgres::{TradeRow, TradeWindow};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TradesOf {
    pub user: Uuid,
    pub window: TradeWindow,
}

impl Loader<TradesOf> for Batcher {
    type Value = Vec<TradeRow>;
    type Error = LoadError;

    async fn load(&self, keys: &[TradesOf]) -> Result<HashMap<TradesOf, Vec<TradeRow>>, LoadError> {
        let _flight = self.flight("trades_of");
        let mut groups: HashMap<&TradeWindow, Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups.entry(&key.window).or_default().push(key.user);
        }
        let fetches = groups.into_iter().map(|(window, users)| async move {
            let rows = self.stores.postgres().trades_page(&users, window).await?;
            Ok::<_, crate::Error>((window, users, rows))
        });
        let mut out = HashMap::with_capacity(keys.len());
        for result in futures::future::join_all(fetches).await {
            let (window, users, rows) = result.map_err(shared)?;
            for user in users {
                out.insert(
                    TradesOf {
                        user,
                        window: window.clone(),
                    },
                    Vec::new(),
                );
            }
            for row in rows {
                out.entry(TradesOf {
                    user: row.user_id,
                    window: window.clone(),
                })
                .or_default()
                .push(row);
            }
        }
        Ok(out)
    }
}

/// A trade by its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TradeById(pub Uuid);

impl Loader<TradeById> for Batcher {
    type Value = TradeRow;
    type Error = LoadError;

    async fn load(&self, keys: &[TradeById]) -> Result<HashMap<TradeById, TradeRow>, LoadError> {
        let _flight = self.flight("trade");
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = self
            .stores
            .postgres()
            .trades_by_id(&ids)
            .await
            .map_err(shared)?;
        Ok(rows.into_iter().map(|t| (TradeById(t.id), t)).collect())
    }
}
