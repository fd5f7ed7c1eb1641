//! Astake's token assets: written by the chain indexer and other writers under the rule
//! "the chain is the source of truth" (see [`crate::domain::tokens`]), their conflicts
//! listed and resolved, and read through the cache, the primary (PostgreSQL) and the
//! fallback (an older cache entry, when the primary fails), each field saying where its
//! value came from.

use std::collections::BTreeMap;

use async_graphql::{
    Context, Enum, ErrorExtensions, InputObject, Json, Object, Result, SimpleObject, ID,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::{event::Account, scope, series, user::Chain};
use crate::{
    auth::Role,
    domain::tokens::Writer,
    error::Error,
    loaders::{TokenOf, TokenSource, TokenValue},
    store::postgres::{ConflictRow, ResolveRefusal, TokenWrite},
};

/// Most tokens one write or read names.
const MAX_TOKENS: usize = 1_000;
/// The cache age a read accepts by default, in seconds (the seed's 5 minutes).
const DEFAULT_MAX_AGE: i32 = 300;
/// Most conflicts one page lists.
const MAX_CONFLICTS: i32 = 100;

/// Where a token asset's record was read from.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenServedFrom {
    /// Redis, no older than the read's `maxAge`.
    Cache,
    /// PostgreSQL, where the writes land.
    Primary,
    /// An older cache entry: PostgreSQL failed.
    Fallback,
}

/// Who wrote one field's value, and how the read got it.
#[derive(SimpleObject)]
pub struct FieldProvenance {
    pub field: String,
    /// The writer's name.
    pub writer: String,
    /// Whether the writer is the chain indexer.
    pub chain_indexer: bool,
    /// The block the value holds at.
    pub block: i64,
    pub written_at: DateTime<Utc>,
    pub served_from: TokenServedFrom,
}

/// A token asset (Astake): its owner, value, verification and contract.
pub struct TokenAsset(TokenValue);

#[Object]
impl TokenAsset {
    async fn token_id(&self) -> &str {
        &self.0.row.token_id
    }

    async fn owner(&self) -> Option<Account> {
        match (&self.0.row.owner_chain, &self.0.row.owner) {
            (Some(chain), Some(owner)) => Some(Account::from_stored(chain, owner)),
            _ => None,
        }
    }

    /// In CSPR, as an exact decimal string.
    async fn value(&self) -> Option<String> {
        self.0.row.value.map(|v| v.normalize().to_string())
    }

    async fn verified(&self) -> Option<bool> {
        self.0.row.verified
    }

    async fn contract(&self) -> Option<&str> {
        self.0.row.contract.as_deref()
    }

    /// The highest block any of its fields holds at.
    async fn block(&self) -> Option<i64> {
        self.0.row.provenance.0.values().map(|p| p.block).max()
    }

    async fn served_from(&self) -> TokenServedFrom {
        served(self.0.source)
    }

    /// How old the record is, in seconds since PostgreSQL gave it.
    async fn age_seconds(&self) -> i64 {
        (Utc::now().timestamp() - self.0.read_at).max(0)
    }

    /// Where each field's value came from.
    async fn provenance(&self) -> Vec<FieldProvenance> {
        self.0
            .row
            .provenance
            .0
            .iter()
            .map(|(field, p)| FieldProvenance {
                field: field.clone(),
                writer: p.source.clone(),
                chain_indexer: p.indexer,
                block: p.block,
                written_at: series::at(p.at),
                served_from: served(self.0.source),
            })
            .collect()
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.row.updated_at
    }
}

fn served(source: TokenSource) -> TokenServedFrom {
    match source {
        TokenSource::Cache => TokenServedFrom::Cache,
        TokenSource::Primary => TokenServedFrom::Primary,
        TokenSource::Fallback => TokenServedFrom::Fallback,
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictStatus {
    /// Awaiting an admin: two writers, neither the chain indexer, disagree.
    Open,
    Resolved,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictResolution {
    /// The chain indexer was one side, and the rule kept its value.
    Chain,
    /// An admin kept the values in force.
    Kept,
    /// An admin put the other side's values in force.
    Replaced,
}

/// Which side of an open conflict an admin puts in force.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictSide {
    /// The values in force stay.
    Kept,
    /// The other writer's values replace them.
    Other,
}

/// A disagreement between two writers over some fields of a token asset.
pub struct Conflict(ConflictRow);

#[Object]
impl Conflict {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// `token_asset`.
    async fn entity(&self) -> &str {
        &self.0.entity
    }

    async fn entity_id(&self) -> &str {
        &self.0.entity_id
    }

    async fn fields(&self) -> &[String] {
        &self.0.fields
    }

    /// The values in force (the winner's, or the stored ones while open), by field.
    async fn kept_values(&self) -> Json<Value> {
        Json(self.0.kept_values.0.clone())
    }

    async fn kept_writer(&self) -> &str {
        &self.0.kept_source
    }

    async fn kept_block(&self) -> i64 {
        self.0.kept_block
    }

    /// The values that lost, or await review, by field.
    async fn other_values(&self) -> Json<Value> {
        Json(self.0.other_values.0.clone())
    }

    async fn other_writer(&self) -> &str {
        &self.0.other_source
    }

    async fn other_block(&self) -> i64 {
        self.0.other_block
    }

    async fn status(&self) -> ConflictStatus {
        if self.0.status == "open" {
            ConflictStatus::Open
        } else {
            ConflictStatus::Resolved
        }
    }

    async fn resolution(&self) -> Option<ConflictResolution> {
        match self.0.resolution.as_deref() {
            Some("chain") => Some(ConflictResolution::Chain),
            Some("kept") => Some(ConflictResolution::Kept),
            Some("replaced") => Some(ConflictResolution::Replaced),
            _ => None,
        }
    }

    async fn detected_at(&self) -> DateTime<Utc> {
        self.0.detected_at
    }

    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }

    async fn resolved_by(&self) -> Option<&str> {
        self.0.resolved_by.as_deref()
    }
}

/// Who writes.
#[derive(InputObject)]
pub struct TokenWriterInput {
    /// 1 to 64 of a-z, 0-9, `.`, `_` and `-`.
    pub name: String,
    /// Whether this writer is the chain indexer, whose values win.
    #[graphql(default)]
    pub chain_indexer: bool,
}

/// One token's values; fields left out are not written.
#[derive(InputObject)]
pub struct TokenAssetInput {
    /// 1 to 128 of letters, digits, `_`, `.`, `:` and `-`.
    pub token_id: String,
    /// An account of any chain (a Casper public key, say).
    pub owner: Option<String>,
    pub owner_chain: Option<Chain>,
    /// In CSPR, a decimal of at least 0 (a string).
    pub value: Option<String>,
    pub verified: Option<bool>,
    pub contract: Option<String>,
    /// The block the values hold at.
    pub block: i32,
}

/// What a write did to one token.
#[derive(SimpleObject)]
pub struct TokenWriteOutcome {
    pub token_asset: TokenAsset,
    /// Fields this write set.
    pub applied: Vec<String>,
    /// Fields this write carried at an older block than the stored value's (ignored).
    pub stale: Vec<String>,
    /// Disagreements it caused.
    pub conflicts: Vec<Conflict>,
}

fn check_writer(w: &TokenWriterInput) -> Result<Writer, Error> {
    let name = w.name.trim().to_ascii_lowercase();
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if !ok {
        return Err(Error::field(
            "writer.name",
            "must be 1 to 64 of a-z, 0-9, '.', '_' and '-'",
        ));
    }
    Ok(Writer {
        name,
        indexer: w.chain_indexer,
    })
}

fn check_token_id(field: &str, id: &str) -> Result<String, Error> {
    let id = id.trim();
    let mut bytes = id.bytes();
    let ok = (1..=128).contains(&id.len())
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(id.to_owned())
    } else {
        Err(Error::field(
            field,
            "must be 1 to 128 of letters, digits, '_', '.', ':' and '-', starting with a letter or digit",
        ))
    }
}

fn check_asset(field: &str, a: TokenAssetInput) -> Result<TokenWrite, Error> {
    let at = |name: &str| format!("{field}.{name}");
    let token_id = check_token_id(&at("tokenId"), &a.token_id)?;
    if a.block < 0 {
        return Err(Error::field(at("block"), "must be 0 or more"));
    }
    let mut values = BTreeMap::new();
    if let Some(owner) = &a.owner {
        let address = super::user::account_arg(&at("owner"), Some(owner), a.owner_chain)?
            .ok_or_else(|| Error::field(at("owner"), "is required"))?;
        values.insert(
            "owner".to_owned(),
            json!({ "chain": address.family().as_str(), "address": address.as_str() }),
        );
    }
    if let Some(value) = &a.value {
        let parsed: Decimal = value
            .trim()
            .parse()
            .map_err(|_| Error::field(at("value"), "must be a decimal number"))?;
        if parsed.is_sign_negative() || parsed.scale() > 18 || parsed > Decimal::from(10u64.pow(18))
        {
            return Err(Error::field(
                at("value"),
                "must be from 0 to 1e18 with at most 18 decimals",
            ));
        }
        values.insert(
            "value".to_owned(),
            Value::String(parsed.normalize().to_string()),
        );
    }
    if let Some(v) = a.verified {
        values.insert("verified".to_owned(), Value::Bool(v));
    }
    if let Some(contract) = &a.contract {
        let c = contract.trim();
        if c.is_empty() || c.chars().count() > 128 || c.chars().any(char::is_control) {
            return Err(Error::field(
                at("contract"),
                "must be 1 to 128 printable characters",
            ));
        }
        values.insert("contract".to_owned(), Value::String(c.to_owned()));
    }
    if values.is_empty() {
        return Err(Error::field(
            field,
            "must carry at least one of owner, value, verified, contract",
        ));
    }
    Ok(TokenWrite {
        token_id,
        values,
        block: i64::from(a.block),
    })
}

#[derive(Default)]
pub struct TokensMutation;

#[Object]
impl TokensMutation {
    /// Writes up to 1,000 token assets as `writer` (service role), under the rule "the
    /// chain is the source of truth": per field, the chain indexer's value wins over any
    /// other writer's, a writer's newer block replaces its own older value, and two other
    /// writers that disagree leave the stored value in force and open a conflict for an
    /// admin. Every disagreement is recorded as a conflict.
    async fn write_token_assets(
        &self,
        ctx: &Context<'_>,
        writer: TokenWriterInput,
        assets: Vec<TokenAssetInput>,
    ) -> Result<Vec<TokenWriteOutcome>> {
        scope::viewer(ctx).require_any(&[Role::Service])?;
        let writer = check_writer(&writer).map_err(|e| e.extend())?;
        let writes = super::checked_batch("assets", assets, MAX_TOKENS, |field, a| {
            check_asset(&field, a)
        })?;
        let mut ids: Vec<String> = writes.iter().map(|w| w.token_id.clone()).collect();
        ids.sort();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::field("assets", "names a token twice").extend());
        }
        let stores = scope::stores(ctx)?;
        let results = stores
            .postgres()
            .write_token_assets(&writer, &writes)
            .await?;
        if let Err(err) = stores.redis().forget_tokens(&ids).await {
            tracing::warn!(error = %err, "token cache entries not dropped; reads may serve them up to their maxAge");
        }
        let now = Utc::now().timestamp();
        Ok(results
            .into_iter()
            .map(|r| TokenWriteOutcome {
                token_asset: TokenAsset(TokenValue {
                    row: r.row,
                    source: TokenSource::Primary,
                    read_at: now,
                }),
                applied: r.applied,
                stale: r.stale,
                conflicts: r.conflicts.into_iter().map(Conflict).collect(),
            })
            .collect())
    }

    /// Settles an open conflict (admin): keep the values in force, or put the other
    /// writer's in force. A conflict the rule resolved, or one whose fields the chain
    /// indexer has written since, cannot be changed here.
    async fn resolve_conflict(
        &self,
        ctx: &Context<'_>,
        id: ID,
        keep: ConflictSide,
    ) -> Result<Conflict> {
        let admin = scope::viewer(ctx).require_any(&[Role::Admin])?;
        let id: i64 = id
            .parse()
            .map_err(|_| Error::field("id", "is not a conflict id").extend())?;
        let by = admin.subject.clone();
        let stores = scope::stores(ctx)?;
        let replace = keep == ConflictSide::Other;
        match stores.postgres().resolve_conflict(id, replace, &by).await? {
            Ok(row) => {
                if replace {
                    let _ = stores
                        .redis()
                        .forget_tokens(std::slice::from_ref(&row.entity_id))
                        .await;
                }
                Ok(Conflict(row))
            }
            Err(ResolveRefusal::NotFound) => {
                Err(Error::NotFound(format!("no conflict {id}")).extend())
            }
            Err(ResolveRefusal::AlreadyResolved(how)) => Err(Error::field(
                "id",
                format!("conflict {id} is already resolved ({how})"),
            )
            .extend()),
            Err(ResolveRefusal::ChainHasSpoken(field)) => Err(Error::field(
                "keep",
                format!("the chain indexer has written {field} since; its value stands"),
            )
            .extend()),
        }
    }
}

#[derive(Default)]
pub struct TokensQuery;

#[Object]
impl TokensQuery {
    /// A token asset through the read path: the cache if its entry is at most `maxAge`
    /// seconds old (300 by default; 0 always asks the primary), else PostgreSQL, else (PostgreSQL failing)
    /// the cache's older entry. Null if no writer has written it.
    async fn token_asset(
        &self,
        ctx: &Context<'_>,
        token_id: String,
        max_age: Option<i32>,
    ) -> Result<Option<TokenAsset>> {
        let found = self
            .token_assets(ctx, vec![token_id], max_age)
            .await?
            .into_iter()
            .next()
            .flatten();
        Ok(found)
    }

    /// Up to 1,000 token assets through the read path (see `tokenAsset`), in the order
    /// asked; null where none is written. One cache and one primary round trip in all.
    async fn token_assets(
        &self,
        ctx: &Context<'_>,
        token_ids: Vec<String>,
        max_age: Option<i32>,
    ) -> Result<Vec<Option<TokenAsset>>> {
        if token_ids.len() > MAX_TOKENS {
            return Err(Error::field("tokenIds", format!("at most {MAX_TOKENS}")).extend());
        }
        let max_age = u32::try_from(max_age.unwrap_or(DEFAULT_MAX_AGE))
            .map_err(|_| Error::field("maxAge", "must be 0 or more seconds").extend())?;
        let keys = token_ids
            .iter()
            .map(|id| check_token_id("tokenIds", id).map(|token_id| TokenOf { token_id, max_age }))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.extend())?;
        let found = scope::loaders(ctx)?.load_many(keys.iter().cloned()).await?;
        Ok(keys
            .iter()
            .map(|k| found.get(k).cloned().map(TokenAsset))
            .collect())
    }

    /// Conflicts between writers, oldest first (admin or service): open ones await
    /// review; `after` is a conflict id.
    async fn conflicts(
        &self,
        ctx: &Context<'_>,
        status: Option<ConflictStatus>,
        #[graphql(default = 20)] first: i32,
        after: Option<ID>,
    ) -> Result<Vec<Conflict>> {
        scope::viewer(ctx).require_any(&[Role::Admin, Role::Service])?;
        if !(1..=MAX_CONFLICTS).contains(&first) {
            return Err(Error::field("first", format!("must be 1 to {MAX_CONFLICTS}")).extend());
        }
        let after = after
            .map(|a| a.parse::<i64>())
            .transpose()
            .map_err(|_| Error::field("after", "is not a conflict id").extend())?;
        let status = status.map(|s| match s {
            ConflictStatus::Open => "open",
            ConflictStatus::Resolved => "resolved",
        });
        let rows = scope::stores(ctx)?
            .postgres()
            .conflicts_page(status, after, i64::from(first))
            .await?;
        Ok(rows.into_iter().map(Conflict).collect())
    }
}
