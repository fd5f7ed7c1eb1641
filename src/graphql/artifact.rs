//! Artifacts: `recordArtifacts` (service role), `artifact`, `artifacts`, and each
//! subject's latest proof (see [`crate::domain::artifacts`]).

use async_graphql::{
    connection::Connection, Context, Enum, ErrorExtensions, InputObject, Object, Result,
};
use chrono::{DateTime, Utc};

use super::{event::Account, event::Event, pagination, scope, user::Chain};
use crate::{
    auth::Role,
    domain::artifacts::{self, ArtifactDraft},
    error::Error,
    loaders::{ArtifactByCid, EventsOfArtifact},
    store::postgres::{ArtifactRow, ArtifactsOutcome},
    values::{Address, ChainFamily},
};

/// The most artifacts one `recordArtifacts` call may carry.
pub const MAX_ARTIFACTS_PER_CALL: usize = 1_000;
const ARTIFACTS_CURSOR: &str = "artifacts";
const DEFAULT_PAGE: u32 = 20;

/// What an artifact is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ArtifactKind")]
pub enum Kind {
    /// A proof of work or of a result (KALE-ndar's farming proofs).
    Proof,
    Log,
    /// A challenge's test case (Fathuss).
    TestCase,
    Binary,
    Document,
}

impl From<Kind> for artifacts::ArtifactKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Proof => artifacts::ArtifactKind::Proof,
            Kind::Log => artifacts::ArtifactKind::Log,
            Kind::TestCase => artifacts::ArtifactKind::TestCase,
            Kind::Binary => artifacts::ArtifactKind::Binary,
            Kind::Document => artifacts::ArtifactKind::Document,
        }
    }
}

impl From<artifacts::ArtifactKind> for Kind {
    fn from(kind: artifacts::ArtifactKind) -> Self {
        match kind {
            artifacts::ArtifactKind::Proof => Kind::Proof,
            artifacts::ArtifactKind::Log => Kind::Log,
            artifacts::ArtifactKind::TestCase => Kind::TestCase,
            artifacts::ArtifactKind::Binary => Kind::Binary,
            artifacts::ArtifactKind::Document => Kind::Document,
        }
    }
}

/// One artifact to record: the metadata of a file kept on IPFS or a blob store.
#[derive(InputObject)]
pub struct ArtifactInput {
    /// Its content id: CIDv0 (`Qm…`) or CIDv1. Recording it again with the same body
    /// returns the first record; with another body it is a CONFLICT.
    pub cid: String,
    /// The sha256 of its bytes: 64 hex digits. A raw-codec CIDv1 must name the same.
    pub sha256: String,
    /// Its size in bytes (a whole number up to 2^53).
    pub size: f64,
    /// Its media type, `type/subtype`.
    pub media_type: String,
    pub kind: Kind,
    /// The account it belongs to.
    pub owner: String,
    /// The owner's chain family, when the address alone is ambiguous.
    pub chain: Option<Chain>,
    /// A file name to show.
    pub name: Option<String>,
    /// The ids of recorded events it backs (at most 100).
    pub events: Option<Vec<String>>,
}

/// A recorded artifact: content-addressed metadata; the bytes live elsewhere.
pub struct Artifact(pub ArtifactRow);

#[Object]
impl Artifact {
    async fn cid(&self) -> &str {
        &self.0.cid
    }

    /// The sha256 of its bytes, lowercase hex.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }

    /// Its size in bytes.
    async fn size(&self) -> f64 {
        self.0.size as f64
    }

    async fn media_type(&self) -> &str {
        &self.0.media_type
    }

    async fn kind(&self) -> Result<Kind> {
        artifacts::ArtifactKind::from_stored(&self.0.kind)
            .map(Kind::from)
            .ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("stored artifact kind {:?}", self.0.kind)).extend()
            })
    }

    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    async fn owner(&self) -> Account {
        Account::from_stored(&self.0.owner_chain, &self.0.owner)
    }

    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }

    /// The events it backs, newest first (at most 100): those naming it as their
    /// `artifact`, and those it was recorded with.
    async fn events(&self, ctx: &Context<'_>) -> Result<Vec<Event>> {
        let events = scope::loaders(ctx)?
            .load_one(EventsOfArtifact(self.0.cid.clone()))
            .await?;
        Ok(events.unwrap_or_default().into_iter().map(Event).collect())
    }
}

/// A subject's latest proof (Redis): the newest artifact CID its events carried, or that
/// was recorded as a proof it owns.
pub struct Proof {
    pub cid: String,
    pub at: DateTime<Utc>,
}

#[Object]
impl Proof {
    async fn cid(&self) -> &str {
        &self.cid
    }

    /// When its event happened, or when the proof was recorded.
    async fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// Its metadata, if it was recorded with `recordArtifacts`.
    async fn artifact(&self, ctx: &Context<'_>) -> Result<Option<Artifact>> {
        by_cid(ctx, &self.cid).await
    }
}

/// The recorded artifact with this CID, through the loader.
pub async fn by_cid(ctx: &Context<'_>, cid: &str) -> Result<Option<Artifact>> {
    let row = scope::loaders(ctx)?
        .load_one(ArtifactByCid(cid.to_owned()))
        .await?;
    Ok(row.map(Artifact))
}

#[derive(Default)]
pub struct ArtifactQuery;

#[Object]
impl ArtifactQuery {
    /// A recorded artifact by its CID (a CIDv1 in any multibase); null if none.
    async fn artifact(&self, ctx: &Context<'_>, cid: String) -> Result<Option<Artifact>> {
        let cid = crate::domain::artifact_cid(&cid).map_err(|m| Error::field("cid", m).extend())?;
        by_cid(ctx, &cid).await
    }

    /// Recorded artifacts, newest first: of an owner, of a kind, backing an event (by its
    /// id), or all (PostgreSQL).
    #[graphql(complexity = "pagination::cost(first, DEFAULT_PAGE, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn artifacts(
        &self,
        ctx: &Context<'_>,
        owner: Option<String>,
        chain: Option<Chain>,
        kind: Option<Kind>,
        event: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Artifact>> {
        let app = scope::app(ctx)?;
        let limit = pagination::page_size(first, DEFAULT_PAGE, app.config().max_page_size)?;
        let codec = app.cursors();
        let before = after
            .map(|cursor| codec.decode_keyset(ARTIFACTS_CURSOR, &cursor))
            .transpose()?;
        let owner = super::user::account_arg("owner", owner.as_deref(), chain)?;
        let rows = scope::stores(ctx)?
            .postgres()
            .artifacts_page(
                owner.as_ref().map(Address::as_str),
                kind.map(artifacts::ArtifactKind::from),
                event.as_deref(),
                before,
                limit as i64 + 1,
            )
            .await?;
        Ok(pagination::keyset_connection(
            codec,
            ARTIFACTS_CURSOR,
            rows,
            limit,
            before.is_some(),
            |row| (row.recorded_at, row.uid),
            Artifact,
        ))
    }
}

#[derive(Default)]
pub struct ArtifactMutation;

#[Object]
impl ArtifactMutation {
    /// Records up to 1,000 artifacts, all or nothing (service or admin role). Each is
    /// checked (CID, sha256, size, media type, owner, the events it names) before
    /// anything is written. A proof becomes its owner's latest proof in the Redis cache,
    /// unless a later one is there.
    async fn record_artifacts(
        &self,
        ctx: &Context<'_>,
        artifacts: Vec<ArtifactInput>,
    ) -> Result<Vec<Artifact>> {
        scope::viewer(ctx).require_any(&[Role::Admin, Role::Service])?;
        let new = super::checked_batch(
            "artifacts",
            artifacts,
            MAX_ARTIFACTS_PER_CALL,
            |field, input| {
                artifacts::check(
                    &field,
                    ArtifactDraft {
                        cid: input.cid,
                        sha256: input.sha256,
                        size: input.size,
                        media_type: input.media_type,
                        kind: input.kind.into(),
                        owner: input.owner,
                        chain: input.chain.map(ChainFamily::from),
                        name: input.name,
                        events: input.events.unwrap_or_default(),
                    },
                )
            },
        )?;
        match scope::stores(ctx)?
            .postgres()
            .record_artifacts(&new)
            .await?
        {
            ArtifactsOutcome::Recorded(rows) => Ok(rows.into_iter().map(Artifact).collect()),
            ArtifactsOutcome::Conflict { index, cid } => Err(Error::Conflict {
                field: format!("artifacts[{index}].cid"),
                message: format!("artifact {cid} was recorded with another body"),
            }
            .extend()),
            ArtifactsOutcome::UnknownEvent { index, id } => Err(Error::field(
                format!("artifacts[{index}].events"),
                format!("no event was recorded with id {id:?}"),
            )
            .extend()),
        }
    }
}
