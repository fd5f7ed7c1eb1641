//! KALE-ndar's face: farming events as typed objects (not the generic `Event` and its
//! JSON attributes), a farmer's statistics and the overall ones from ClickHouse, and
//! `farmingEventRecorded` (in [`super::live`]). They read the shared domain tables.

use async_graphql::{connection::Connection, Context, Enum, ErrorExtensions, Object, Result};
use chrono::{DateTime, Utc};

use super::{
    artifact::Artifact,
    event::{Account, Event},
    pagination, scope,
    series::{self, Interval},
    user::Chain,
};
use crate::{
    error::Error,
    loaders::FarmerTotalsOf,
    store::{
        clickhouse::{FarmerTotalsRow, FarmingBucketRow, FARMING_KINDS},
        postgres::EventRow,
    },
    values::Address,
};

const FARMING_CURSOR: &str = "farming";
const DEFAULT_PAGE: u32 = 20;
/// The days `farmingOverview` covers when no `from` is given.
const OVERVIEW_DAYS: i64 = 7;

/// The step of the farming cycle an event records.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum FarmingPhase {
    /// Stakes for the current block.
    Plant,
    /// Submits proof of work for a planted block.
    Work,
    /// Collects the reward.
    Harvest,
}

impl FarmingPhase {
    fn of(kind: &str) -> Option<FarmingPhase> {
        match kind {
            "farming_plant" => Some(FarmingPhase::Plant),
            "farming_work" => Some(FarmingPhase::Work),
            "farming_harvest" => Some(FarmingPhase::Harvest),
            _ => None,
        }
    }
}

/// A KALE-ndar farming event: a plant, a work or a harvest.
pub struct FarmingEvent(pub EventRow);

impl FarmingEvent {
    fn text(&self, attribute: &str) -> Option<String> {
        match self.0.attributes.get(attribute)? {
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

#[Object]
impl FarmingEvent {
    /// The idempotency key it was recorded with.
    async fn id(&self) -> &str {
        &self.0.id
    }

    async fn phase(&self) -> Result<FarmingPhase> {
        FarmingPhase::of(&self.0.kind).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("{} is not a farming kind", self.0.kind)).extend()
        })
    }

    async fn farmer(&self) -> Account {
        Account::from_stored(&self.0.subject_chain, &self.0.subject)
    }

    async fn at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// The stake, as an exact decimal string (plants; harvests that name it).
    async fn stake(&self) -> Option<String> {
        self.text("stake")
    }

    /// The proof-of-work hash (works).
    async fn work_hash(&self) -> Option<String> {
        self.text("work_hash")
    }

    /// Leading zeros of the work hash (works that name it).
    async fn zeros(&self) -> Option<i64> {
        self.0.attributes.get("zeros").and_then(|z| z.as_i64())
    }

    /// The reward, as an exact decimal string (harvests).
    async fn reward(&self) -> Option<String> {
        self.text("reward")
    }

    async fn block_number(&self) -> Option<i32> {
        self.0.block_number.and_then(|b| i32::try_from(b).ok())
    }

    async fn tx_hash(&self) -> Option<&str> {
        self.0.tx_hash.as_deref()
    }

    /// The CID of its proof.
    async fn proof(&self) -> Option<&str> {
        self.0.artifact.as_deref()
    }

    /// The proof's metadata, if it was recorded with `recordArtifacts`.
    async fn proof_record(&self, ctx: &Context<'_>) -> Result<Option<Artifact>> {
        match &self.0.artifact {
            Some(cid) => super::artifact::by_cid(ctx, cid).await,
            None => Ok(None),
        }
    }

    /// The same event in its generic form.
    async fn event(&self) -> Event {
        Event(self.0.clone())
    }
}

/// A farmer's totals over a window (ClickHouse).
pub struct FarmingStats {
    farmer: Account,
    row: Option<FarmerTotalsRow>,
}

#[Object]
impl FarmingStats {
    async fn farmer(&self) -> &Account {
        &self.farmer
    }

    async fn plants(&self) -> i64 {
        self.row.as_ref().map_or(0, |r| clamp(r.plants))
    }

    async fn works(&self) -> i64 {
        self.row.as_ref().map_or(0, |r| clamp(r.works))
    }

    async fn harvests(&self) -> i64 {
        self.row.as_ref().map_or(0, |r| clamp(r.harvests))
    }

    /// The sum of the stakes planted.
    async fn staked(&self) -> Result<f64> {
        Ok(Error::finite(
            self.row.as_ref().map_or(0.0, |r| r.staked),
            "staked",
        )?)
    }

    /// The sum of the rewards harvested.
    async fn rewards(&self) -> Result<f64> {
        Ok(Error::finite(
            self.row.as_ref().map_or(0.0, |r| r.rewards),
            "rewards",
        )?)
    }

    /// The first and the last farming event in the window; null without any.
    async fn first_at(&self) -> Option<DateTime<Utc>> {
        self.row.as_ref().map(|r| series::at(i64::from(r.first_at)))
    }

    async fn last_at(&self) -> Option<DateTime<Utc>> {
        self.row.as_ref().map(|r| series::at(i64::from(r.last_at)))
    }
}

/// Every farmer's activity in one bucket, or over the whole window.
pub struct FarmingTotals(FarmingBucketRow);

#[Object]
impl FarmingTotals {
    /// The bucket's start; null for the whole window.
    async fn start(&self) -> Option<DateTime<Utc>> {
        (self.0.bucket > 0).then(|| series::at(i64::from(self.0.bucket)))
    }

    async fn plants(&self) -> i64 {
        clamp(self.0.plants)
    }

    async fn works(&self) -> i64 {
        clamp(self.0.works)
    }

    async fn harvests(&self) -> i64 {
        clamp(self.0.harvests)
    }

    async fn staked(&self) -> Result<f64> {
        Ok(Error::finite(self.0.staked, "staked")?)
    }

    async fn rewards(&self) -> Result<f64> {
        Ok(Error::finite(self.0.rewards, "rewards")?)
    }

    /// Farmers with any farming event in it.
    async fn active_farmers(&self) -> i64 {
        clamp(self.0.farmers)
    }
}

/// All farming over a window: its totals, and the same per bucket (ClickHouse).
pub struct FarmingOverview {
    totals: FarmingTotals,
    buckets: Vec<FarmingTotals>,
}

#[Object]
impl FarmingOverview {
    async fn totals(&self) -> &FarmingTotals {
        &self.totals
    }

    /// Buckets with any farming, oldest first.
    async fn buckets(&self) -> &[FarmingTotals] {
        &self.buckets
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// [from, to) in unix seconds; all of ClickHouse's time by default.
fn stats_window(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<(u32, u32)> {
    let secs = |t: DateTime<Utc>, name: &str| {
        u32::try_from(t.timestamp())
            .map_err(|_| Error::field(name, "must be between 1970 and 2106").extend())
    };
    let from = from.map(|t| secs(t, "from")).transpose()?.unwrap_or(0);
    let to = to.map(|t| secs(t, "to")).transpose()?.unwrap_or(u32::MAX);
    if from >= to {
        return Err(Error::field("to", "must be after `from`").extend());
    }
    Ok((from, to))
}

/// A farmer's statistics over a window, through the loader.
pub async fn stats_of(
    ctx: &Context<'_>,
    farmer: Account,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<FarmingStats> {
    let (from, to) = stats_window(from, to)?;
    let row = scope::loaders(ctx)?
        .load_one(FarmerTotalsOf {
            subject: farmer.stored_address().to_owned(),
            from,
            to,
        })
        .await?;
    Ok(FarmingStats { farmer, row })
}

fn farmer_address(farmer: &str, chain: Option<Chain>) -> Result<Address> {
    super::user::account_arg("farmer", Some(farmer), chain)
        .map_err(|e| e.extend())?
        .ok_or_else(|| Error::field("farmer", "is required").extend())
}

#[derive(Default)]
pub struct FarmingQuery;

#[Object]
impl FarmingQuery {
    /// Farming events, newest first: of one farmer, or all (PostgreSQL).
    #[graphql(complexity = "pagination::cost(first, DEFAULT_PAGE, child_complexity)")]
    async fn farming_events(
        &self,
        ctx: &Context<'_>,
        farmer: Option<String>,
        chain: Option<Chain>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, FarmingEvent>> {
        let app = scope::app(ctx)?;
        let limit = pagination::page_size(first, DEFAULT_PAGE, app.config().max_page_size)?;
        let codec = app.cursors();
        let before = after
            .map(|cursor| codec.decode_keyset(FARMING_CURSOR, &cursor))
            .transpose()?;
        let farmer = farmer.map(|f| farmer_address(&f, chain)).transpose()?;
        let kinds = FARMING_KINDS.map(str::to_owned).to_vec();
        let rows = scope::stores(ctx)?
            .postgres()
            .events_page(
                farmer.as_ref().map(Address::as_str),
                &kinds,
                before,
                limit as i64 + 1,
            )
            .await?;
        Ok(pagination::keyset_connection(
            codec,
            FARMING_CURSOR,
            rows,
            limit,
            before.is_some(),
            |row| (row.occurred_at, row.uid),
            FarmingEvent,
        ))
    }

    /// A farmer's totals over [from, to) (ClickHouse); all time by default.
    async fn farming_stats(
        &self,
        ctx: &Context<'_>,
        farmer: String,
        chain: Option<Chain>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<FarmingStats> {
        let address = farmer_address(&farmer, chain)?;
        let account = Account::from_stored(address.family().as_str(), address.as_str());
        stats_of(ctx, account, from, to).await
    }

    /// Every farmer's activity over [from, to) (ClickHouse): the totals (with the number
    /// of active farmers) and the same per `interval` bucket. `to` defaults to now, `from`
    /// to seven days before `to`.
    async fn farming_overview(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        interval: Interval,
    ) -> Result<FarmingOverview> {
        let to = to.unwrap_or_else(Utc::now);
        let from = from.unwrap_or(to - chrono::Duration::days(OVERVIEW_DAYS));
        let max = scope::app(ctx)?.config().max_series_points;
        let window = series::window(from, to, interval, max)?;
        let mut rows = scope::stores(ctx)?
            .clickhouse()
            .farming_buckets(window.bucket_secs, window.from, window.to)
            .await?;
        let whole = match rows.first() {
            Some(first) if first.bucket == 0 => rows.remove(0),
            _ => {
                return Err(
                    Error::Internal(anyhow::anyhow!("ClickHouse gave no whole-window row"))
                        .extend(),
                )
            }
        };
        Ok(FarmingOverview {
            totals: FarmingTotals(whole),
            buckets: rows.into_iter().map(FarmingTotals).collect(),
        })
    }
}
