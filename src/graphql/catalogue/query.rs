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

/// One id-ordered page of a connection: its size, the id it starts after, its kind.
struct Page {
    kind: &'static str,
    limit: usize,
    after: Option<String>,
}

impl Page {
    fn new(
        ctx: &Context<'_>,
        kind: &'static str,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Page> {
        let app = scope::app(ctx)?;
        let limit = pagination::page_size(first, DEFAULT_PAGE, app.config().max_page_size)?;
        let after = after.map(|c| app.cursors().decode(kind, &c)).transpose()?;
        Ok(Page { kind, limit, after })
    }

    /// Rows to fetch: one more than the page, to tell whether another follows.
    fn fetch(&self) -> i64 {
        self.limit as i64 + 1
    }

    fn connection<R, N: async_graphql::OutputType>(
        &self,
        ctx: &Context<'_>,
        rows: Vec<R>,
        id: impl Fn(&R) -> &str,
        node: impl Fn(R) -> N,
    ) -> Result<Connection<String, N>> {
        let codec = scope::app(ctx)?.cursors();
        let previous = self.after.is_some();
        Ok(key_connection(
            codec, self.kind, rows, self.limit, previous, id, node,
        ))
    }
}

/// The one row asked for by id, or NOT_FOUND naming it.
fn found<R, N>(rows: Vec<R>, what: &str, id: &str, node: impl Fn(R) -> N) -> Result<Option<N>> {
    match rows.into_iter().next() {
        Some(row) => Ok(Some(node(row))),
        None => Err(Error::NotFound(format!("no {what} {id}")).extend()),
    }
}

#[Object]
impl CatalogueQuery {
    /// One protocol by id. Null, with NOT_FOUND, when there is none.
    async fn protocol(&self, ctx: &Context<'_>, id: String) -> Result<Option<Protocol>> {
        let row = scope::loaders(ctx)?
            .load_one(ProtocolById(id.clone()))
            .await?;
        found(row.into_iter().collect(), "protocol", &id, Protocol)
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
        let page = Page::new(ctx, "protocols", first, after)?;
        let chain = chain.map(|c| c.trim().to_ascii_lowercase());
        let rows = scope::stores(ctx)?
            .postgres()
            .protocols_page(
                category.map(ProtocolCategory::as_str),
                chain.as_deref(),
                page.after.as_deref(),
                page.fetch(),
            )
            .await?;
        page.connection(ctx, rows, |r| &r.id, Protocol)
    }

    /// One pool by id. Null, with NOT_FOUND, when there is none.
    async fn pool(&self, ctx: &Context<'_>, id: String) -> Result<Option<Pool>> {
        let rows = scope::stores(ctx)?
            .postgres()
            .pools_by_id(std::slice::from_ref(&id))
            .await?;
        found(rows, "pool", &id, Pool)
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
        let page = Page::new(ctx, "pools", first, after)?;
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
                page.after.as_deref(),
                page.fetch(),
            )
            .await?;
        page.connection(ctx, rows, |r| &r.id, Pool)
    }

    /// One market by id. Null, with NOT_FOUND, when there is none.
    async fn market(&self, ctx: &Context<'_>, id: String) -> Result<Option<Market>> {
        let rows = scope::stores(ctx)?
            .postgres()
            .markets_by_id(std::slice::from_ref(&id))
            .await?;
        found(rows, "market", &id, Market)
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
        let page = Page::new(ctx, "markets", first, after)?;
        let rows = scope::stores(ctx)?
            .postgres()
            .markets_page(
                kind.map(MarketKind::as_str),
                status.map(MarketStatus::as_str),
                page.after.as_deref(),
                page.fetch(),
            )
            .await?;
        page.connection(ctx, rows, |r| &r.id, Market)
    }
}
