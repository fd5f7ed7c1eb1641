//! The catalogue's writes (admin or service role): PostgreSQL first, in one transaction
//! per call, then each entry's MongoDB metadata document. A call that fails after its
//! PostgreSQL write can be sent again as it was: every write here is an upsert.

use async_graphql::{Context, ErrorExtensions, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::types::{
    AssetKind, Market, MarketKind, MarketStatus, Outcome, Pool, Protocol, ProtocolCategory,
    RiskLevel,
};
use crate::{
    auth::Role,
    domain::catalogue::{self, AssetMetadata, MarketDraft},
    error::Error,
    graphql::{
        asset::{normalise_symbol, Asset},
        checked_batch, scope,
        user::{account_arg, Chain},
    },
    store::{mongo::AssetMetadataDoc, postgres::CatalogueRefusal},
};

/// The most entries one call writes.
const MAX_PER_CALL: usize = 1_000;

#[derive(InputObject)]
pub struct AssetInput {
    /// 2 to 12 letters and digits (uppercased).
    pub symbol: String,
    pub name: String,
    /// The chain it lives on, e.g. ethereum (lowercased).
    pub chain: String,
    /// 0 to 36.
    pub decimals: i32,
    #[graphql(default_with = "AssetKind::Token")]
    pub kind: AssetKind,
    /// Its MongoDB document: description, website, tags (links stay as they are).
    pub metadata: Option<AssetMetadataInput>,
}

#[derive(InputObject)]
pub struct AssetMetadataInput {
    pub description: String,
    pub website: Option<String>,
    pub tags: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct ProtocolInput {
    /// 1 to 64 of a-z, 0-9, _ and -.
    pub id: String,
    pub name: String,
    pub category: ProtocolCategory,
    pub risk: RiskLevel,
    /// 1 to 32 chain names.
    pub chains: Vec<String>,
    /// A JSON object of up to 16 KiB, kept in MongoDB; null leaves the one kept.
    pub metadata: Option<Json<serde_json::Value>>,
}

#[derive(InputObject)]
pub struct PoolInput {
    pub id: String,
    /// A catalogued protocol's id.
    pub protocol: String,
    /// 1 to 8 distinct catalogued symbols, in order.
    pub assets: Vec<String>,
    /// The fee tier in basis points, 0 to 10,000.
    pub fee_bps: Option<i32>,
    pub metadata: Option<Json<serde_json::Value>>,
}

#[derive(InputObject)]
pub struct MarketInput {
    pub id: String,
    pub kind: MarketKind,
    /// Spot: the asset traded. Prediction: the asset the question is about, if any.
    pub base: Option<String>,
    /// Spot only: the asset prices are quoted in.
    pub quote: Option<String>,
    /// Prediction only (required there).
    pub question: Option<String>,
    /// Prediction only: the creator's account, of any chain family.
    pub creator: Option<String>,
    pub creator_chain: Option<Chain>,
    /// Prediction only: a positive decimal string.
    pub target_price: Option<String>,
    /// Prediction only (required there).
    pub resolve_at: Option<DateTime<Utc>>,
    pub metadata: Option<Json<serde_json::Value>>,
}

/// A rename: the asset as it is now (RENAMED) and its successor.
#[derive(SimpleObject)]
pub struct AssetRename {
    pub previous: Asset,
    pub successor: Asset,
}

#[derive(Default)]
pub struct CatalogueMutation;

fn writer(ctx: &Context<'_>) -> Result<()> {
    scope::viewer(ctx).require_any(&[Role::Admin, Role::Service])?;
    Ok(())
}

/// BAD_USER_INPUT naming the field the store refused (`list[i].field`, or `field` for a
/// call about one entry).
fn refused(list: Option<&str>, refusal: CatalogueRefusal) -> async_graphql::Error {
    let at = |index: usize, field: &str| match list {
        Some(list) => format!("{list}[{index}].{field}"),
        None => field.to_owned(),
    };
    match refusal {
        CatalogueRefusal::Unknown {
            index,
            field,
            value,
        } => Error::field(at(index, field), format!("{value} is not catalogued")),
        CatalogueRefusal::Refused {
            index,
            field,
            reason,
        } => Error::field(at(index, field), reason),
    }
    .extend()
}

/// Refuses a call that names the same entry twice.
fn unique<T>(list: &str, entries: &[T], key: impl Fn(&T) -> &str, field: &str) -> Result<()> {
    for (i, e) in entries.iter().enumerate() {
        if entries[..i].iter().any(|earlier| key(earlier) == key(e)) {
            return Err(Error::field(
                format!("{list}[{i}].{field}"),
                format!("{} appears twice in this call", key(e)),
            )
            .extend());
        }
    }
    Ok(())
}

/// Writes the metadata documents that were given.
async fn documents(
    ctx: &Context<'_>,
    kind: &str,
    given: Vec<(String, Option<serde_json::Value>)>,
) -> Result<()> {
    let docs: Vec<(String, serde_json::Value)> = given
        .into_iter()
        .filter_map(|(id, m)| m.map(|m| (id, m)))
        .collect();
    if !docs.is_empty() {
        scope::stores(ctx)?
            .mongo()
            .upsert_documents(kind, &docs)
            .await?;
    }
    Ok(())
}

#[Object]
impl CatalogueMutation {
    /// Adds or updates up to 1,000 assets, all or nothing. A changed name joins the
    /// asset's `names`; status changes go through `delistAsset` and `renameAsset`.
    async fn upsert_assets(
        &self,
        ctx: &Context<'_>,
        assets: Vec<AssetInput>,
    ) -> Result<Vec<Asset>> {
        writer(ctx)?;
        let new = checked_batch("assets", assets, MAX_PER_CALL, |field, a| {
            catalogue::check_asset(
                &field,
                &a.symbol,
                &a.name,
                &a.chain,
                a.decimals,
                a.kind.as_str(),
                a.metadata.map(|m| AssetMetadata {
                    description: m.description,
                    website: m.website,
                    tags: m.tags.unwrap_or_default(),
                }),
            )
        })?;
        unique("assets", &new, |a| &a.symbol, "symbol")?;
        let stores = scope::stores(ctx)?;
        let rows = stores.postgres().upsert_assets(&new).await?;
        let metadata: Vec<AssetMetadataDoc> = new
            .iter()
            .filter_map(|a| {
                a.metadata.as_ref().map(|m| AssetMetadataDoc {
                    symbol: a.symbol.clone(),
                    description: m.description.clone(),
                    website: m.website.clone(),
                    tags: m.tags.clone(),
                    links: Vec::new(),
                })
            })
            .collect();
        if !metadata.is_empty() {
            stores.mongo().upsert_asset_metadata(&metadata).await?;
        }
        scope::app(ctx)?.symbols().forget();
        Ok(rows.into_iter().map(Asset::from_row).collect())
    }

    /// Delists a listed asset: it stays readable with its history (trades, holdings,
    /// candles) but takes no new ticks or trades.
    async fn delist_asset(&self, ctx: &Context<'_>, symbol: String) -> Result<Asset> {
        writer(ctx)?;
        let symbol = normalise_symbol(&symbol)?.into_string();
        let rows = scope::stores(ctx)?
            .postgres()
            .delist_asset(&symbol)
            .await?
            .map_err(|r| refused(None, r))?;
        scope::app(ctx)?.symbols().forget();
        rows.into_iter()
            .next()
            .map(Asset::from_row)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("delisting returned no row")).extend())
    }

    /// Renames a listed asset to a new symbol: the successor is a new asset (same chain,
    /// decimals, kind and metadata; `name`, or the same name), and the old one becomes
    /// RENAMED with its history kept under its symbol.
    async fn rename_asset(
        &self,
        ctx: &Context<'_>,
        symbol: String,
        to: String,
        name: Option<String>,
    ) -> Result<AssetRename> {
        writer(ctx)?;
        let symbol = normalise_symbol(&symbol)?.into_string();
        let to = normalise_symbol(&to)
            .map_err(|_| Error::field("to", "must be 2 to 12 letters and digits").extend())?
            .into_string();
        if to == symbol {
            return Err(Error::field("to", "must differ from symbol").extend());
        }
        let name = name
            .map(|n| catalogue::check_name("name", &n))
            .transpose()?;
        let stores = scope::stores(ctx)?;
        let mut rows = stores
            .postgres()
            .rename_asset(&symbol, &to, name.as_deref())
            .await?
            .map_err(|r| refused(None, r))?
            .into_iter();
        stores.mongo().copy_asset_metadata(&symbol, &to).await?;
        scope::app(ctx)?.symbols().forget();
        match (rows.next(), rows.next()) {
            (Some(previous), Some(successor)) => Ok(AssetRename {
                previous: Asset::from_row(previous),
                successor: Asset::from_row(successor),
            }),
            _ => Err(Error::Internal(anyhow::anyhow!("a rename returned no rows")).extend()),
        }
    }

    /// Adds or updates up to 1,000 protocols, all or nothing.
    async fn upsert_protocols(
        &self,
        ctx: &Context<'_>,
        protocols: Vec<ProtocolInput>,
    ) -> Result<Vec<Protocol>> {
        writer(ctx)?;
        let new = checked_batch("protocols", protocols, MAX_PER_CALL, |field, p| {
            catalogue::check_protocol(
                &field,
                &p.id,
                &p.name,
                p.category.as_str(),
                p.risk.as_str(),
                &p.chains,
                p.metadata.map(|m| m.0),
            )
        })?;
        unique("protocols", &new, |p| &p.id, "id")?;
        let rows = scope::stores(ctx)?
            .postgres()
            .upsert_protocols(&new)
            .await?;
        documents(
            ctx,
            "protocol",
            new.into_iter().map(|p| (p.id, p.metadata)).collect(),
        )
        .await?;
        Ok(rows.into_iter().map(Protocol).collect())
    }

    /// Adds or replaces up to 1,000 pools, all or nothing: each names a catalogued
    /// protocol and catalogued assets.
    async fn upsert_pools(&self, ctx: &Context<'_>, pools: Vec<PoolInput>) -> Result<Vec<Pool>> {
        writer(ctx)?;
        let new = checked_batch("pools", pools, MAX_PER_CALL, |field, p| {
            catalogue::check_pool(
                &field,
                &p.id,
                &p.protocol,
                &p.assets,
                p.fee_bps,
                p.metadata.map(|m| m.0),
            )
        })?;
        unique("pools", &new, |p| &p.id, "id")?;
        let rows = scope::stores(ctx)?
            .postgres()
            .upsert_pools(&new)
            .await?
            .map_err(|r| refused(Some("pools"), r))?;
        documents(
            ctx,
            "pool",
            new.into_iter().map(|p| (p.id, p.metadata)).collect(),
        )
        .await?;
        Ok(rows.into_iter().map(Pool).collect())
    }

    /// Adds or updates up to 1,000 markets, all or nothing. A market keeps its kind and
    /// status (see `setMarketStatus`).
    async fn upsert_markets(
        &self,
        ctx: &Context<'_>,
        markets: Vec<MarketInput>,
    ) -> Result<Vec<Market>> {
        writer(ctx)?;
        let new = checked_batch("markets", markets, MAX_PER_CALL, |field, m| {
            let creator = account_arg(
                &format!("{field}.creator"),
                m.creator.as_deref(),
                m.creator_chain,
            )?;
            catalogue::check_market(
                &field,
                MarketDraft {
                    id: m.id,
                    kind: m.kind.as_str(),
                    base: m.base,
                    quote: m.quote,
                    question: m.question,
                    creator,
                    target_price: m.target_price,
                    resolve_at: m.resolve_at,
                    metadata: m.metadata.map(|j| j.0),
                },
            )
        })?;
        unique("markets", &new, |m| &m.id, "id")?;
        let rows = scope::stores(ctx)?
            .postgres()
            .upsert_markets(&new)
            .await?
            .map_err(|r| refused(Some("markets"), r))?;
        documents(
            ctx,
            "market",
            new.into_iter().map(|m| (m.id, m.metadata)).collect(),
        )
        .await?;
        Ok(rows.into_iter().map(Market).collect())
    }

    /// Moves a market on: OPEN to CLOSED (and back), to RESOLVED with an `outcome`
    /// (prediction markets) or to CANCELLED. RESOLVED and CANCELLED are final.
    async fn set_market_status(
        &self,
        ctx: &Context<'_>,
        id: String,
        status: MarketStatus,
        outcome: Option<Outcome>,
    ) -> Result<Market> {
        writer(ctx)?;
        let rows = scope::stores(ctx)?
            .postgres()
            .set_market_status(&id, status.as_str(), outcome.map(Outcome::as_str))
            .await?
            .map_err(|r| refused(None, r))?;
        rows.into_iter()
            .next()
            .map(Market)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("no market row")).extend())
    }
}
