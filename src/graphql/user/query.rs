//! `me`, `user` and `users`.

use async_graphql::{connection::Connection, Context, ErrorExtensions, Object, Result, ID};

use super::User;
use crate::{
    error::Error,
    graphql::{pagination, scope},
    loaders::{UserByAddress, UserById},
    values::Address,
};

const CURSOR_KIND: &str = "users";
const DEFAULT_PAGE: u32 = 20;

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The signed-in user (UNAUTHENTICATED without credentials).
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let id = scope::viewer(ctx).user_id()?;
        let row = scope::loaders(ctx)?.load_one(UserById(id)).await?;
        match row {
            Some(row) => Ok(Some(User(row))),
            None => Err(Error::NotFound(format!("no user {id}")).extend()),
        }
    }

    /// One user by id or by wallet address (exactly one of them). Null, with NOT_FOUND,
    /// when there is none.
    async fn user(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        address: Option<String>,
    ) -> Result<Option<User>> {
        let loaders = scope::loaders(ctx)?;
        let row = match (id, address) {
            (Some(id), None) => {
                let uuid = id.parse().map_err(|_| {
                    Error::BadUserInput("`id` is not a user id (UUID)".into()).extend()
                })?;
                loaders.load_one(UserById(uuid)).await
            }
            (None, Some(address)) => {
                let address = normalise_address(&address)?;
                loaders.load_one(UserByAddress(address)).await
            }
            _ => {
                return Err(
                    Error::BadUserInput("give exactly one of `id` and `address`".into()).extend(),
                )
            }
        }?;
        match row {
            Some(row) => Ok(Some(User(row))),
            None => Err(Error::NotFound("no such user".into()).extend()),
        }
    }

    /// Users in sign-up order.
    #[graphql(complexity = "pagination::cost(first, DEFAULT_PAGE, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, User>> {
        let app = scope::app(ctx)?;
        let limit = pagination::page_size(first, DEFAULT_PAGE, app.config().max_page_size)?;
        let codec = app.cursors();
        let after = after
            .map(|cursor| codec.decode_keyset(CURSOR_KIND, &cursor))
            .transpose()?;
        let stores = scope::stores(ctx)?;
        let rows = stores
            .postgres()
            .users_page(after, limit as i64 + 1)
            .await?;
        Ok(pagination::keyset_connection(
            codec,
            CURSOR_KIND,
            rows,
            limit,
            after.is_some(),
            |row| (row.created_at, row.id),
            User,
        ))
    }
}

/// Parses a wallet address argument of the family its shape names (see [`Address`]).
pub fn normalise_address(address: &str) -> Result<Address, Error> {
    parse_account(address, None)
}

/// Parses a wallet address argument, of `chain` when given.
pub fn parse_account(address: &str, chain: Option<super::Chain>) -> Result<Address, Error> {
    match chain {
        Some(chain) => Address::parse_as(chain.into(), address),
        None => Address::parse(address),
    }
    .map_err(|rule| Error::BadUserInput(format!("`address` {rule}")))
}

/// An optional account argument, checked: BAD_USER_INPUT on `field` when it is not one.
pub fn account_arg(
    field: &str,
    value: Option<&str>,
    chain: Option<super::Chain>,
) -> Result<Option<Address>, Error> {
    value
        .map(|v| {
            parse_account(v, chain).map_err(|e| match e {
                Error::BadUserInput(m) => Error::field(field, m),
                other => other,
            })
        })
        .transpose()
}
