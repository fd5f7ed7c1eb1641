//! Astake staking analytics over `domain_events` (FINAL: a redelivered event counts once):
//! each account's deposits, rewards, unbonds and withdrawals, its unbonds one by one, and
//! the protocol's pooled CSPR against its shares (the exchange rate).

use clickhouse::Row;
use serde::Deserialize;

use super::{reads::InList, ClickHouse};

/// The staking kinds, as declared in the catalogue.
pub const STAKING_KINDS: [&str; 4] = [
    "staking_deposit",
    "staking_reward",
    "staking_unbond",
    "staking_withdraw",
];

/// One account's staking totals (or, with an empty subject, every account's).
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct StakerTotalsRow {
    pub subject: String,
    pub deposited: f64,
    pub shares_minted: f64,
    pub rewards: f64,
    pub unbonded: f64,
    pub shares_burned: f64,
    pub withdrawn: f64,
    pub events: u64,
}

/// One unbond of an account.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct UnbondRow {
    pub subject: String,
    /// Unix seconds.
    pub occurred_at: u32,
    pub amount: f64,
    /// As the event carried it (RFC 3339, UTC).
    pub release_at: String,
}

const TOTALS: &str = "toFloat64(sumIf(amount, kind = 'staking_deposit')) AS deposited, \
     toFloat64(sumIf(toFloat64OrZero(visitParamExtractString(attributes, 'shares')), kind = 'staking_deposit')) AS minted, \
     toFloat64(sumIf(amount, kind = 'staking_reward')) AS earned, \
     toFloat64(sumIf(amount, kind = 'staking_unbond')) AS released, \
     toFloat64(sumIf(toFloat64OrZero(visitParamExtractString(attributes, 'shares')), kind = 'staking_unbond')) AS burned, \
     toFloat64(sumIf(amount, kind = 'staking_withdraw')) AS taken, \
     toUInt64(count()) AS n";

impl ClickHouse {
    /// Each account's totals; accounts without staking events have no row.
    pub async fn staker_totals(
        &self,
        subjects: &[String],
    ) -> Result<Vec<StakerTotalsRow>, crate::Error> {
        self.calls
            .run::<Vec<StakerTotalsRow>, clickhouse::error::Error, _>("staker_totals", async {
                self.client
                    .query(&format!(
                        "SELECT subject, {TOTALS} FROM domain_events FINAL \
                         WHERE kind IN ? AND subject IN ? GROUP BY subject"
                    ))
                    .bind(InList(&kinds()))
                    .bind(InList(subjects))
                    .fetch_all()
                    .await
            })
            .await
    }

    /// Every account's totals together (the protocol's pool), None before any event.
    pub async fn staking_pool(&self) -> Result<Option<StakerTotalsRow>, crate::Error> {
        self.calls
            .run::<Option<StakerTotalsRow>, clickhouse::error::Error, _>("staking_pool", async {
                self.client
                    .query(&format!(
                        "SELECT '' AS everyone, {TOTALS} FROM domain_events FINAL WHERE kind IN ?"
                    ))
                    .bind(InList(&kinds()))
                    .fetch_one::<StakerTotalsRow>()
                    .await
                    .map(|row| (row.events > 0).then_some(row))
            })
            .await
    }

    /// Each account's unbonds, oldest first (then by release time).
    pub async fn unbonds(&self, subjects: &[String]) -> Result<Vec<UnbondRow>, crate::Error> {
        self.calls
            .run::<Vec<UnbondRow>, clickhouse::error::Error, _>("unbonds", async {
                self.client
                    .query(
                        "SELECT subject, toUInt32(occurred_at) AS at, amount, \
                         visitParamExtractString(attributes, 'release_at') AS release \
                         FROM domain_events FINAL WHERE kind = 'staking_unbond' AND subject IN ? \
                         ORDER BY subject, occurred_at, release, uid",
                    )
                    .bind(InList(subjects))
                    .fetch_all()
                    .await
            })
            .await
    }
}

fn kinds() -> Vec<String> {
    STAKING_KINDS.map(str::to_owned).to_vec()
}
