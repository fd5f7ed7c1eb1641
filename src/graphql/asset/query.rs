//! `asset` and `assets`.

use async_graphql::{connection::Connection, Context, ErrorExtensions, Object, Result};

use super::Asset;
use crate::{
    error::Error,
    graphql::{pagination, scope},
    loaders::AssetBySymbol,
    values::Symbol,
};

const CURSOR_KIND: &str = "assets";
const DEFAULT_PAGE: u32 = 20;

#[derive(Default)]
pub struct AssetQuery;

#[Object]
impl AssetQuery {
    /// One asset by symbol (case-insensitive). Null, with NOT_FOUND, when there is none.
    async fn asset(&self, ctx: &Context<'_>, symbol: String) -> Result<Option<Asset>> {
        let symbol = normalise_symbol(&symbol)?.into_string();
        let row = scope::loaders(ctx)?
            .load_one(AssetBySymbol(symbol.clone()))
            .await?;
        match row {
            Some(row) => Ok(Some(Asset::from_row(row))),
            None => Err(Error::NotFound(format!("no asset {symbol}")).extend()),
        }
    }

    /// Assets in symbol order, optionally only those with a metadata tag (MongoDB).
    #[graphql(complexity = "pagination::cost(first, DEFAULT_PAGE, child_complexity)")]
    async fn assets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        tag: Option<String>,
    ) -> Result<Connection<String, Asset>> {
        let app = scope::app(ctx)?;
        let limit = pagination::page_size(first, DEFAULT_PAGE, app.config().max_page_size)?;
        let codec = app.cursors();
        let after = after.map(|c| codec.decode(CURSOR_KIND, &c)).transpose()?;
        let stores = scope::stores(ctx)?;
        let tagged = match &tag {
            Some(tag) => Some(stores.mongo().symbols_with_tag(tag).await?),
            None => None,
        };
        let rows = stores
            .postgres()
            .assets_page(after.as_deref(), tagged.as_deref(), limit as i64 + 1)
            .await?;
        Ok(pagination::key_connection(
            codec,
            CURSOR_KIND,
            rows,
            limit,
            after.is_some(),
            |row| &row.symbol,
            Asset::from_row,
        ))
    }
}

/// Parses a symbol argument (see [`Symbol`]).
pub fn normalise_symbol(symbol: &str) -> Result<Symbol, Error> {
    Symbol::parse(symbol).map_err(|rule| Error::BadUserInput(format!("`symbol` {rule}")))
}
