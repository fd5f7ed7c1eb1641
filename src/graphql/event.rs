//! Domain events: `recordEvents` (service role), the `events` connection, and the `Event`
//! type. Kinds are declared (see [`crate::domain::kinds`]); every event is checked against
//! its kind before anything is written.

use async_graphql::{
    connection::Connection, Context, ErrorExtensions, InputObject, Json, Object, Result,
    SimpleObject,
};
use chrono::{DateTime, Utc};

use super::{
    artifact::{Artifact, Proof},
    leaderboard::{self, LeaderboardEntry},
    pagination, scope,
    user::Chain,
    user::User,
};
use crate::{
    auth::Role,
    domain::boards::{account_member, Member},
    domain::{self, kinds::Kinds},
    error::Error,
    loaders::{LatestProofOf, UserByAddress},
    store::postgres::{EventRow, EventsOutcome},
    values::{Address, ChainFamily},
};

/// The most events one `recordEvents` call may carry.
pub const MAX_EVENTS_PER_CALL: usize = 10_000;
const EVENTS_CURSOR: &str = "events";
const DEFAULT_PAGE: u32 = 20;

/// One domain event to record.
#[derive(InputObject)]
pub struct EventInput {
    /// The caller's idempotency key (1 to 128 characters). Recording it again with the
    /// same body returns the first event; with another body it is a CONFLICT.
    pub id: String,
    /// A declared kind (`eventKinds` lists them).
    pub kind: String,
    /// The account the event is about.
    pub subject: String,
    /// The subject's chain family, when the address alone is ambiguous.
    pub chain: Option<Chain>,
    /// When it happened; defaults to the time it is recorded.
    pub occurred_at: Option<DateTime<Utc>>,
    /// A decimal amount as a string (at most 20 integer digits and 18 decimals), if the
    /// kind has one: a stake, a reward, a score.
    pub amount: Option<String>,
    /// The kind's attributes, as a JSON object checked against its declaration.
    pub attributes: Option<Json<serde_json::Value>>,
    /// The transaction that carried it: 64 hex digits (`0x`-prefixed for EVM subjects).
    pub tx_hash: Option<String>,
    pub block_number: Option<i32>,
    /// The content id (CIDv0 or CIDv1) of an artifact behind it, such as a proof.
    pub artifact: Option<String>,
}

/// A recorded domain event.
pub struct Event(pub EventRow);

/// A recorded domain event: a farming step, a graded submission, a staking deposit...
/// Its kind declares its attributes.
#[Object]
impl Event {
    /// The idempotency key it was recorded with.
    async fn id(&self) -> &str {
        &self.0.id
    }

    async fn kind(&self) -> &str {
        &self.0.kind
    }

    async fn subject(&self) -> Account {
        Account {
            chain: ChainFamily::from_stored(&self.0.subject_chain),
            address: self.0.subject.clone(),
        }
    }

    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// The exact decimal amount, as a string.
    async fn amount(&self) -> Option<String> {
        self.0.amount.map(|a| a.normalize().to_string())
    }

    /// The kind's attributes, in their normal forms (decimals as strings, hashes as
    /// lowercase `0x` hex, times in UTC).
    async fn attributes(&self) -> Json<serde_json::Value> {
        Json(self.0.attributes.clone())
    }

    async fn tx_hash(&self) -> Option<&str> {
        self.0.tx_hash.as_deref()
    }

    async fn block_number(&self) -> Option<i32> {
        self.0.block_number.and_then(|b| i32::try_from(b).ok())
    }

    /// The CID of the artifact behind it, such as a proof.
    async fn artifact(&self) -> Option<&str> {
        self.0.artifact.as_deref()
    }

    /// The metadata of that artifact, if it was recorded with `recordArtifacts`.
    async fn artifact_record(&self, ctx: &Context<'_>) -> Result<Option<Artifact>> {
        match &self.0.artifact {
            Some(cid) => super::artifact::by_cid(ctx, cid).await,
            None => Ok(None),
        }
    }

    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
}

/// An account on some chain, and the user who registered it, if any.
#[derive(Clone)]
pub struct Account {
    chain: Option<ChainFamily>,
    address: String,
}

impl Account {
    /// An account as Meridian stores it: the family's stored name and the normal address.
    pub fn from_stored(chain: &str, address: &str) -> Self {
        Account {
            chain: ChainFamily::from_stored(chain),
            address: address.to_owned(),
        }
    }

    /// The address, as stored.
    pub fn stored_address(&self) -> &str {
        &self.address
    }

    /// The Meridian user of this account, if it registered.
    pub async fn registered_user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(family) = self.chain else {
            return Ok(None);
        };
        let Ok(address) = Address::parse_as(family, &self.address) else {
            return Ok(None);
        };
        let row = scope::loaders(ctx)?
            .load_one(UserByAddress(address))
            .await?;
        Ok(row.map(User))
    }
}

/// An account on some chain, and the Meridian user who registered it, if any.
#[Object]
impl Account {
    async fn chain(&self) -> Option<Chain> {
        self.chain.map(Chain::from)
    }

    async fn address(&self) -> &str {
        &self.address
    }

    /// The Meridian user of this account; null when it has not registered.
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        self.registered_user(ctx).await
    }

    /// The account's KALE-ndar farming totals over [from, to) (ClickHouse); all time by
    /// default.
    async fn farming_stats(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<super::farming::FarmingStats> {
        let account = Account {
            chain: self.chain,
            address: self.address.clone(),
        };
        super::farming::stats_of(ctx, account, from, to).await
    }

    /// The account's Astake staking figures (ClickHouse).
    async fn staking_metrics(&self, ctx: &Context<'_>) -> Result<super::staking::StakingMetrics> {
        super::staking::metrics_of(ctx, self.clone()).await
    }

    /// The account's latest proof (Redis cache): the newest artifact its events carried,
    /// or recorded as a proof it owns; null if none.
    async fn latest_proof(&self, ctx: &Context<'_>) -> Result<Option<Proof>> {
        let Some(chain) = self.chain else {
            return Ok(None);
        };
        let found = scope::loaders(ctx)?
            .load_one(LatestProofOf {
                chain: chain.as_str().to_owned(),
                subject: self.address.clone(),
            })
            .await?;
        Ok(found.map(|(cid, at)| Proof { cid, at }))
    }

    /// The account's place on a board of accounts (Redis), in `period` or the current
    /// one (and, on a board split `by` an attribute, in the ranking `of` names); null
    /// when it is not on it.
    async fn rank(
        &self,
        ctx: &Context<'_>,
        board: String,
        of: Option<String>,
        period: Option<String>,
    ) -> Result<Option<LeaderboardEntry>> {
        let member = self
            .chain
            .map(|chain| account_member(chain.as_str(), &self.address));
        leaderboard::place(ctx, &board, of, period, Member::Account, member).await
    }
}

/// A declared event kind.
#[derive(SimpleObject)]
pub struct EventKind {
    name: String,
    description: String,
    attributes: Vec<EventAttribute>,
    /// Whether an event of the kind must carry an amount.
    amount_required: bool,
    /// Whether the amount must be more than 0.
    amount_positive: bool,
}

/// One attribute of a kind.
#[derive(SimpleObject)]
pub struct EventAttribute {
    name: String,
    /// string, integer, decimal, boolean, hash or timestamp.
    r#type: String,
    required: bool,
}

#[derive(Default)]
pub struct EventQuery;

#[Object]
impl EventQuery {
    /// The event kinds in force (PostgreSQL, written by `meridian migrate`).
    async fn event_kinds(&self, ctx: &Context<'_>) -> Result<Vec<EventKind>> {
        let defs = scope::stores(ctx)?.postgres().event_kinds().await?;
        Ok(defs
            .into_iter()
            .map(|d| EventKind {
                name: d.name,
                description: d.description,
                amount_required: d.amount.is_some_and(|a| a.required),
                amount_positive: d.amount.is_some_and(|a| a.positive),
                attributes: d
                    .attributes
                    .into_iter()
                    .map(|(name, a)| EventAttribute {
                        name,
                        r#type: a.kind.as_str().to_owned(),
                        required: a.required,
                    })
                    .collect(),
            })
            .collect())
    }

    /// Recorded events, newest first: of one subject, of some kinds, or all (PostgreSQL).
    /// Events are public, like the boards they feed.
    #[graphql(complexity = "pagination::cost(first, DEFAULT_PAGE, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        subject: Option<String>,
        chain: Option<Chain>,
        kinds: Option<Vec<String>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Event>> {
        let app = scope::app(ctx)?;
        let limit = pagination::page_size(first, DEFAULT_PAGE, app.config().max_page_size)?;
        let codec = app.cursors();
        let before = after
            .map(|cursor| codec.decode_keyset(EVENTS_CURSOR, &cursor))
            .transpose()?;
        let subject = super::user::account_arg("subject", subject.as_deref(), chain)?;
        let kinds = kinds.unwrap_or_default();
        let rows = scope::stores(ctx)?
            .postgres()
            .events_page(
                subject.as_ref().map(Address::as_str),
                &kinds,
                before,
                limit as i64 + 1,
            )
            .await?;
        Ok(pagination::keyset_connection(
            codec,
            EVENTS_CURSOR,
            rows,
            limit,
            before.is_some(),
            |row| (row.occurred_at, row.uid),
            Event,
        ))
    }
}

#[derive(Default)]
pub struct EventMutation;

#[Object]
impl EventMutation {
    /// Records up to 10,000 domain events, all or nothing (service or admin role): each is
    /// checked against its declared kind, then all are written to PostgreSQL with their
    /// outbox rows in one transaction; the relay carries them to ClickHouse and
    /// subscribers. Returns the events in the order given.
    async fn record_events(
        &self,
        ctx: &Context<'_>,
        events: Vec<EventInput>,
    ) -> Result<Vec<Event>> {
        scope::viewer(ctx).require_any(&[Role::Admin, Role::Service])?;
        let stores = scope::stores(ctx)?;
        let kinds = Kinds::new(stores.postgres().event_kinds().await?);
        let now = Utc::now();
        let new = super::checked_batch("events", events, MAX_EVENTS_PER_CALL, |field, input| {
            domain::events::check(&kinds, &field, input.into(), now)
        })?;
        match stores.postgres().record_events(&new).await? {
            EventsOutcome::Recorded(rows) => Ok(rows.into_iter().map(Event).collect()),
            EventsOutcome::Conflict { index, id } => Err(Error::Conflict {
                field: format!("events[{index}].id"),
                message: format!("event {id:?} was recorded with another body"),
            }
            .extend()),
        }
    }
}

impl From<EventInput> for domain::events::EventDraft {
    fn from(input: EventInput) -> Self {
        domain::events::EventDraft {
            id: input.id,
            kind: input.kind,
            subject: input.subject,
            chain: input.chain.map(ChainFamily::from),
            occurred_at: input.occurred_at,
            amount: input.amount,
            attributes: input
                .attributes
                .map(|j| j.0)
                .unwrap_or(serde_json::Value::Null),
            tx_hash: input.tx_hash,
            block_number: input.block_number,
            artifact: input.artifact,
        }
    }
}
