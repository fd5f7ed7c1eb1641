//! Accounts' staking figures (ClickHouse): one batch reads the accounts' totals, their
//! unbonds and the protocol's pool, three statements whatever the number of accounts.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;

use super::{shared, Batcher, LoadError};
use crate::store::clickhouse::{StakerTotalsRow, UnbondRow};

/// An account (its stored address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StakingOf(pub String);

/// An account's staking figures, with the protocol's pool they are priced against.
#[derive(Debug, Clone)]
pub struct StakingValue {
    pub totals: Option<StakerTotalsRow>,
    pub unbonds: Vec<UnbondRow>,
    pub pool: Arc<Option<StakerTotalsRow>>,
}

impl Loader<StakingOf> for Batcher {
    type Value = StakingValue;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[StakingOf],
    ) -> Result<HashMap<StakingOf, StakingValue>, LoadError> {
        let _flight = self.flight("staking");
        let subjects: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let ch = self.stores.clickhouse();
        let (totals, unbonds, pool) = futures::try_join!(
            ch.staker_totals(&subjects),
            ch.unbonds(&subjects),
            ch.staking_pool()
        )
        .map_err(shared)?;
        let pool = Arc::new(pool);
        let mut out: HashMap<StakingOf, StakingValue> = keys
            .iter()
            .map(|k| {
                let value = StakingValue {
                    totals: None,
                    unbonds: Vec::new(),
                    pool: pool.clone(),
                };
                (k.clone(), value)
            })
            .collect();
        for row in totals {
            if let Some(v) = out.get_mut(&StakingOf(row.subject.clone())) {
                v.totals = Some(row);
            }
        }
        for row in unbonds {
            if let Some(v) = out.get_mut(&StakingOf(row.subject.clone())) {
                v.unbonds.push(row);
            }
        }
        Ok(out)
    }
}
