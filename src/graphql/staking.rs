//! Staking as the Astake seed describes it: deposits, rewards, unbonds and withdrawals
//! are domain events (kinds `staking_deposit`, `staking_reward`, `staking_unbond`,
//! `staking_withdraw`, recorded with `recordEvents`), and `stakingMetrics` sums them per
//! account: what it has staked, earned and withdrawn, its liquid shares and their worth
//! at the protocol's exchange rate, and the unbonds still waiting.

use async_graphql::{Context, ErrorExtensions, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::{event::Account, scope, series, user::Chain};
use crate::{
    error::Error,
    loaders::{StakingOf, StakingValue},
    store::clickhouse::StakerTotalsRow,
};

/// An unbond not yet withdrawn (withdrawals pay the oldest unbonds first).
#[derive(SimpleObject)]
pub struct PendingUnbond {
    /// CSPR still to withdraw from it.
    pub amount: f64,
    pub requested_at: DateTime<Utc>,
    pub release_at: Option<DateTime<Utc>>,
    /// Whether its release time has passed.
    pub claimable: bool,
}

/// An account's staking figures (ClickHouse), in CSPR.
pub struct StakingMetrics {
    account: Account,
    value: StakingValue,
}

fn finite(value: f64, what: &str) -> Result<f64> {
    Ok(Error::finite(value, what)?)
}

/// Pooled CSPR per share: (deposits + rewards - unbonds) / (shares minted - burned).
fn exchange_rate(pool: &StakerTotalsRow) -> Option<f64> {
    let shares = pool.shares_minted - pool.shares_burned;
    let pooled = pool.deposited + pool.rewards - pool.unbonded;
    (shares > 0.0)
        .then(|| pooled / shares)
        .filter(|r| r.is_finite())
}

#[Object]
impl StakingMetrics {
    async fn account(&self) -> &Account {
        &self.account
    }

    /// Deposited less unbonded.
    async fn total_staked(&self) -> Result<f64> {
        let t = self.value.totals.as_ref();
        finite(
            t.map_or(0.0, |t| (t.deposited - t.unbonded).max(0.0)),
            "totalStaked",
        )
    }

    async fn rewards(&self) -> Result<f64> {
        finite(
            self.value.totals.as_ref().map_or(0.0, |t| t.rewards),
            "rewards",
        )
    }

    async fn withdrawn(&self) -> Result<f64> {
        finite(
            self.value.totals.as_ref().map_or(0.0, |t| t.withdrawn),
            "withdrawn",
        )
    }

    /// Liquid staking shares held: minted by deposits less burned by unbonds.
    async fn shares(&self) -> Result<f64> {
        let t = self.value.totals.as_ref();
        finite(
            t.map_or(0.0, |t| (t.shares_minted - t.shares_burned).max(0.0)),
            "shares",
        )
    }

    /// CSPR per share across the protocol: (every deposit and reward less every unbond)
    /// over the shares outstanding; null before any share exists.
    async fn exchange_rate(&self) -> Option<f64> {
        self.value.pool.as_ref().as_ref().and_then(exchange_rate)
    }

    /// The shares' worth at the exchange rate; null without a rate.
    async fn staked_value(&self) -> Result<Option<f64>> {
        let Some(rate) = self.value.pool.as_ref().as_ref().and_then(exchange_rate) else {
            return Ok(None);
        };
        let t = self.value.totals.as_ref();
        let shares = t.map_or(0.0, |t| (t.shares_minted - t.shares_burned).max(0.0));
        Ok(Some(finite(shares * rate, "stakedValue")?))
    }

    /// Unbonds not yet withdrawn, oldest first.
    async fn pending_unbonds(&self) -> Vec<PendingUnbond> {
        pending(&self.value, Utc::now())
    }

    /// Their sum.
    async fn pending_total(&self) -> Result<f64> {
        let total: f64 = pending(&self.value, Utc::now())
            .iter()
            .map(|p| p.amount)
            .sum();
        finite(total, "pendingTotal")
    }

    /// Staking events counted.
    async fn events(&self) -> i64 {
        self.value
            .totals
            .as_ref()
            .map_or(0, |t| i64::try_from(t.events).unwrap_or(i64::MAX))
    }
}

/// The unbonds withdrawals have not yet paid, oldest paid first.
fn pending(value: &StakingValue, now: DateTime<Utc>) -> Vec<PendingUnbond> {
    let mut paid = value.totals.as_ref().map_or(0.0, |t| t.withdrawn);
    let mut out = Vec::new();
    for u in &value.unbonds {
        let left = if paid >= u.amount {
            paid -= u.amount;
            0.0
        } else {
            let left = u.amount - paid;
            paid = 0.0;
            left
        };
        if left <= 1e-12 {
            continue;
        }
        let release_at = DateTime::parse_from_rfc3339(&u.release_at)
            .ok()
            .map(|t| t.with_timezone(&Utc));
        out.push(PendingUnbond {
            amount: left,
            requested_at: series::at(i64::from(u.occurred_at)),
            release_at,
            claimable: release_at.is_some_and(|t| t <= now),
        });
    }
    out
}

/// `stakingMetrics` and `Account.stakingMetrics`.
pub async fn metrics_of(ctx: &Context<'_>, account: Account) -> Result<StakingMetrics> {
    let value = scope::loaders(ctx)?
        .load_one(StakingOf(account.stored_address().to_owned()))
        .await?
        .ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("the staking loader left a key out")).extend()
        })?;
    Ok(StakingMetrics { account, value })
}

#[derive(Default)]
pub struct StakingQuery;

#[Object]
impl StakingQuery {
    /// An account's staking figures (ClickHouse): staked, rewards, shares and their worth
    /// at the protocol's exchange rate, withdrawals and pending unbonds. `chain` is
    /// needed only where the address alone is ambiguous.
    async fn staking_metrics(
        &self,
        ctx: &Context<'_>,
        account: String,
        chain: Option<Chain>,
    ) -> Result<StakingMetrics> {
        let address = super::user::account_arg("account", Some(&account), chain)
            .map_err(|e| e.extend())?
            .ok_or_else(|| Error::field("account", "is required").extend())?;
        let account = Account::from_stored(address.family().as_str(), address.as_str());
        metrics_of(ctx, account).await
    }
}
