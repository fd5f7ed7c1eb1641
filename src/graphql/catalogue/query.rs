//! `protocol(s)`, `pool(s)` and `market(s)`.

use async_graphql::{connection::Connection, Context, ErrorExtensions, Object, Result};

use super::types::{Market, MarketKind, MarketStatus, Pool, Protocol, ProtocolCategory};
use crate::{
    error::Error,
    graphql::{
        asset::normalise_symbol,
        pagination::{self, key_connection},
        scope,
    },
    loaders::ProtocolById,
};

const DEFAULT_PAGE: u32 = 20;

#[derive(Default)]
pub struct CatalogueQuery;

/// A page's limit and the position after which it starts.
fn page(
    ctx: &Context<'_>,
    kind: &str,
    first: Option<i32>,
    after: Option<String>,
) -> Result<(usize, Option<String>)> {
    let app = scope::app(ctx)?;
    let limit = pagination::page_size(first, DEFAULT_PAGE, app.config().max_page_size)?;
    let after = after.map(|c| app.cursors().decode(kind, &c)).transpose()?;
    Ok((limit, after))
}

#[Object]
impl CatalogueQuery {
    /// One protocol by id. Null, with NOT_FOUND, when there is none.
    async fn protocol(&self, ctx: &Context<'_>, id: String) -> Result<Option<Protocol>> {
        let row = scope::loaders(ctx)?
            .load_one(ProtocolById(id.clone()))
            .await?;
        match row {
            Some(row) => Ok(Some(Protocol(row))),
            None => Err(Error::NotFound(format!("no protocol {id}")).extend()),
        }
    }

    /// Protocols in id order: of a category, on a chain, or all.
    #[graphql(complexity = "pagination::cost(first, DEFAULT_PAGE, child_complexity)")]
    async fn protocols(
        &self,
        ctx: &Context<'_>,
        category: Option<ProtocolCategory>,
        chain: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Protocol>> {
        let (limit, after) = page(ctx, "protocols", first, after)?;
        let chain = chain.map(|c| c.trim().to_ascii_lowercase());
        let rows = scope::stores(ctx)?
            .postgres()
            .protocols_page(
                category.map(ProtocolCategory::as_str),
                chain.as_deref(),
                after.as_deref(),
                limit as i64 + 1,
            )
            .await?;
        let codec = scope::app(ctx)?.cursors();
        Ok(key_connection(
            codec,
            "protocols",
            rows,
            limit,
            after.is_some(),
            |r| &r.id,
            Protocol,
        ))
    }

    /// One pool by id. Null, with NOT_FOUND, when there is none.
    async fn pool(&self, ctx: &Context<'_>, id: String) -> Result<Option<Pool>> {
        let rows = scope::stores(ctx)?
            .postgres()
            .pools_by_id(std::slice::from_ref(&id))
            .await?;
        match rows.into_iter().next() {
            Some(row) => Ok(Some(Pool(row))),
            None => Err(Error::NotFound(format!("no pool {id}")).extend()),
        }
    }

    /// Pools in id order: of a protocol, holding an asset, or all.
    #[graphql(complexity = "pagination::cost(first, DEFAULT_PAGE, child_complexity)")]
    async fn pools(
        &self,
        ctx: &Context<'_>,
        protocol: Option<String>,
        asset: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Pool>> {
        let (limit, after) = page(ctx, "pools", first, after)?;
        let asset = asset
            .map(|a| {
                normalise_symbol(&a)
                    .map(|s| s.into_string())
                    .map_err(|_| Error::field("asset", "is not a symbol"))
            })
            .transpose()?;
        let rows = scope::stores(ctx)?
            .postgres()
            .pools_page(
                protocol.as_deref(),
                asset.as_deref(),
                after.as_deref(),
                limit as i64 + 1,
            )
            .await?;
        let codec = scope::app(ctx)?.cursors();
        Ok(key_connection(
            codec,
            "pools",
            rows,
            limit,
            after.is_some(),
            |r| &r.id,
            Pool,
        ))
    }

    /// One market by id. Null, with NOT_FOUND, when there is none.
    async fn market(&self, ctx: &Context<'_>, id: String) -> Result<Option<Market>> {
        let rows = scope::stores(ctx)?
            .postgres()
            .markets_by_id(std::slice::from_ref(&id))
            .await?;
        match rows.into_iter().next() {
            Some(row) => Ok(Some(Market(row))),
            None => Err(Error::NotFound(format!("no market {id}")).extend()),
        }
    }

    /// Markets in id order: of a kind, of a status, or all.
    #[graphql(complexity = "pagination::cost(first, DEFAULT_PAGE, child_complexity)")]
    async fn markets(
        &self,
        ctx: &Context<'_>,
        kind: Option<MarketKind>,
        status: Option<MarketStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Market>> {
        let (limit, after) = page(ctx, "markets", first, after)?;
        let rows = scope::stores(ctx)?
            .postgres()
            .markets_page(
                kind.map(MarketKind::as_str),
                status.map(MarketStatus::as_str),
                after.as_deref(),
                limit as i64 + 1,
            )
            .await?;
        let codec = scope::app(ctx)?.cursors();
        Ok(key_connection(
            codec,
            "markets",
            rows,
            limit,
            after.is_some(),
            |r| &r.id,
            Market,
        ))
    }
}
