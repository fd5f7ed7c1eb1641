//! `registerUser`, `updateProfile` and `recordTrade`.

use std::str::FromStr;

use async_graphql::{Context, ErrorExtensions, InputObject, Json, Object, Result, ID};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{
    query::parse_account,
    types::{Chain, Profile, Trade, TradeSide},
    User,
};
use crate::{
    auth::Role,
    error::Error,
    events::TradeEvent,
    graphql::{asset::normalise_symbol, scope},
    loaders::UserById,
    store::{
        mongo::{Link, Preferences, ProfilePatch},
        postgres::{NewTrade, RegisterOutcome, TradeOutcome, TradeRow},
    },
    values::TxHash,
};

/// Earliest trade time accepted: 2009-01-03, the first Bitcoin block.
const MIN_EXECUTED_AT: i64 = 1_230_940_800;
/// How far in the future a trade may be stamped (clock skew), in seconds.
const MAX_FUTURE_SECS: i64 = 300;
const MAX_DISPLAY_NAME: usize = 64;
const MAX_BIO: usize = 500;
const MAX_URL: usize = 2048;
const MAX_LINKS: usize = 10;
const MAX_LINK_LABEL: usize = 40;
const MAX_PREFERENCES_BYTES: usize = 4096;
const MAX_PREFERENCES_DEPTH: usize = 5;
const MAX_PREFERENCE_KEY: usize = 64;

#[derive(Default)]
pub struct UserMutation;

#[derive(InputObject)]
pub struct RegisterUserInput {
    /// Wallet address of any supported chain (see `Chain`), stored in its family's normal
    /// form.
    pub address: String,
    /// The address's chain family; told from the address's shape when absent, and a
    /// BAD_USER_INPUT on `input.address` when the address is not of this family.
    pub chain: Option<Chain>,
    /// 3 to 32 letters, digits or underscores.
    pub username: String,
}

#[derive(InputObject)]
pub struct LinkInput {
    pub label: String,
    /// An http(s) URL.
    pub url: String,
}

/// Fields to change; those left out keep their value. An empty `bio` or `avatarUrl` clears it.
#[derive(InputObject)]
pub struct UpdateProfileInput {
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    /// Replaces all links (at most 10).
    pub links: Option<Vec<LinkInput>>,
    /// Replaces the preferences: a JSON object of at most 4 KiB, nested at most 5 deep.
    pub preferences: Option<Json<serde_json::Value>>,
}

#[derive(InputObject)]
pub struct RecordTradeInput {
    pub user_id: ID,
    /// On-chain transaction hash: 0x and 64 hex digits. Recording the same hash again
    /// with the same values returns the first trade; with other values it is a CONFLICT.
    pub tx_hash: String,
    pub symbol: String,
    pub side: TradeSide,
    pub quantity: f64,
    /// Price per unit, in USD.
    pub price: f64,
    /// Defaults to now.
    pub executed_at: Option<DateTime<Utc>>,
}

#[Object]
impl UserMutation {
    /// Creates a user (admin or service role). A taken address or username is a
    /// CONFLICT naming the field.
    async fn register_user(&self, ctx: &Context<'_>, input: RegisterUserInput) -> Result<User> {
        scope::viewer(ctx).require_any(&[Role::Admin, Role::Service])?;
        let address = parse_account(&input.address, input.chain)
            .map_err(|e| Error::field("input.address", e.to_string()).extend())?;
        let username = input.username.trim();
        let valid_name = (3..=32).contains(&username.len())
            && username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(Error::field(
                "input.username",
                "must be 3 to 32 letters, digits or underscores",
            )
            .extend());
        }
        let stores = scope::stores(ctx)?;
        let outcome = stores
            .postgres()
            .register_user(Uuid::new_v4(), &address, username)
            .await?;
        match outcome {
            RegisterOutcome::Created(row) => Ok(User(row)),
            RegisterOutcome::AddressTaken => {
                Err(conflict("input.address", "a user with this address exists"))
            }
            RegisterOutcome::UsernameTaken => {
                Err(conflict("input.username", "this username is taken"))
            }
        }
    }

    /// Updates the signed-in user's profile (MongoDB), creating it if needed. An admin
    /// may name another user with `userId`.
    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        input: UpdateProfileInput,
        user_id: Option<ID>,
    ) -> Result<Profile> {
        let viewer = scope::viewer(ctx);
        let user_id = match user_id {
            Some(id) => {
                let id = parse_user_id("userId", &id)?;
                viewer.may_act_for(id, false)?;
                id
            }
            None => viewer.user_id()?,
        };
        let patch = profile_changes(input)?;
        let user = scope::loaders(ctx)?
            .load_one(UserById(user_id))
            .await?
            .ok_or_else(|| Error::NotFound(format!("no user {user_id}")).extend())?;
        let stores = scope::stores(ctx)?;
        let doc = stores
            .mongo()
            .upsert_profile(&user_id.to_string(), &patch, &user.username)
            .await?;
        doc.map(Profile::from).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("profile upsert returned nothing")).extend()
        })
    }

    /// Records a trade: the trade, the holding update and the outbox rows in one
    /// PostgreSQL transaction; the relay then carries it to ClickHouse, the Redis
    /// leaderboards and subscribers. A sell can never make a holding negative.
    ///
    /// A user records trades only for themselves; an admin or a service for anyone.
    async fn record_trade(&self, ctx: &Context<'_>, input: RecordTradeInput) -> Result<Trade> {
        let trade = new_trade(input)?;
        scope::viewer(ctx).may_act_for(trade.user_id, true)?;
        let event_id = Uuid::new_v4();
        let row = TradeRow {
            id: trade.id,
            tx_hash: trade.tx_hash.to_string(),
            user_id: trade.user_id,
            symbol: trade.symbol.to_string(),
            side: trade.side.to_owned(),
            quantity: to_f64(trade.quantity),
            price: to_f64(trade.price),
            executed_at: trade.executed_at,
        };
        let payload = serde_json::to_value(TradeEvent::new(event_id, &row))?;
        let stores = scope::stores(ctx)?;
        let outcome = stores
            .postgres()
            .record_trade(&trade, event_id, &payload)
            .await?;
        match outcome {
            TradeOutcome::Recorded(row) | TradeOutcome::AlreadyRecorded(row) => Ok(Trade(row)),
            TradeOutcome::HashTaken(_) => Err(conflict(
                "input.txHash",
                "this transaction was recorded with other values",
            )),
            TradeOutcome::UnknownUser => Err(Error::field("input.userId", "no such user")
                .extend_with(|_, e| e.set("code", "NOT_FOUND"))),
            TradeOutcome::UnknownAsset => Err(Error::field("input.symbol", "no such asset")
                .extend_with(|_, e| e.set("code", "NOT_FOUND"))),
            TradeOutcome::AssetNotListed { status } => Err(Error::field(
                "input.symbol",
                format!("the asset is {status} and takes no new trades"),
            )
            .extend()),
            TradeOutcome::InsufficientHoldings { held } => Err(Error::field(
                "input.quantity",
                format!(
                    "cannot sell {} {}: the user holds {held}",
                    trade.quantity, trade.symbol
                ),
            )
            .extend()),
        }
    }
}

fn parse_user_id(field: &str, id: &str) -> Result<Uuid> {
    id.parse()
        .map_err(|_| Error::field(field, "is not a user id (UUID)").extend())
}

fn conflict(field: &str, message: &str) -> async_graphql::Error {
    Error::Conflict {
        field: field.into(),
        message: message.into(),
    }
    .extend()
}

fn to_f64(d: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or_default()
}

/// A positive amount as an exact decimal (its shortest decimal form, at most 18 places).
fn amount(value: f64, field: &str, max: f64) -> Result<Decimal, Error> {
    if !(value.is_finite() && value > 0.0 && value <= max) {
        return Err(Error::field(
            field,
            format!("must be a number above 0 and at most {max}"),
        ));
    }
    let decimal = Decimal::from_str(&value.to_string())
        .map_err(|_| Error::field(field, "is not a decimal number"))?;
    let rounded = decimal.round_dp(18);
    if rounded.is_zero() {
        return Err(Error::field(
            field,
            "is too small (18 decimal places at most)",
        ));
    }
    Ok(rounded)
}

fn new_trade(input: RecordTradeInput) -> Result<NewTrade, Error> {
    let user_id: Uuid = input
        .user_id
        .parse()
        .map_err(|_| Error::field("input.userId", "is not a user id (UUID)"))?;
    let tx_hash =
        TxHash::parse(&input.tx_hash).map_err(|rule| Error::field("input.txHash", rule))?;
    let symbol =
        normalise_symbol(&input.symbol).map_err(|e| Error::field("input.symbol", e.to_string()))?;
    let quantity = amount(input.quantity, "input.quantity", 1e15)?;
    let price = amount(input.price, "input.price", 1e12)?;
    let now = Utc::now();
    let executed_at = input.executed_at.unwrap_or(now);
    if executed_at.timestamp() < MIN_EXECUTED_AT
        || executed_at.timestamp() > now.timestamp() + MAX_FUTURE_SECS
    {
        return Err(Error::field(
            "input.executedAt",
            "must be after 2009-01-03 and not in the future",
        ));
    }
    let side = match input.side {
        TradeSide::Buy => "buy",
        TradeSide::Sell => "sell",
    };
    Ok(NewTrade {
        id: Uuid::new_v4(),
        tx_hash,
        user_id,
        symbol,
        side,
        quantity,
        price,
        executed_at,
    })
}

/// Checks an http(s) URL: bounded, no whitespace or control characters, a host.
fn check_url(url: &str, field: &str) -> Result<(), Error> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest
        .map(|r| r.split(['/', '?', '#']).next().unwrap_or_default())
        .unwrap_or_default();
    let ok = url.len() <= MAX_URL
        && rest.is_some()
        && !host.is_empty()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Error::field(
            field,
            format!("must be an http(s) URL of at most {MAX_URL} characters"),
        ))
    }
}

/// The checked changes of a profile update.
fn profile_changes(input: UpdateProfileInput) -> Result<ProfilePatch, Error> {
    let mut patch = ProfilePatch::default();
    if let Some(name) = input.display_name {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_DISPLAY_NAME
            || name.chars().any(char::is_control)
        {
            return Err(Error::field(
                "input.displayName",
                format!("must be 1 to {MAX_DISPLAY_NAME} characters"),
            ));
        }
        patch.display_name = Some(name.to_owned());
    }
    if let Some(bio) = input.bio {
        if bio.chars().count() > MAX_BIO {
            return Err(Error::field(
                "input.bio",
                format!("must be at most {MAX_BIO} characters"),
            ));
        }
        patch.bio = Some((!bio.trim().is_empty()).then_some(bio));
    }
    if let Some(url) = input.avatar_url {
        let url = url.trim();
        if !url.is_empty() {
            check_url(url, "input.avatarUrl")?;
        }
        patch.avatar_url = Some((!url.is_empty()).then(|| url.to_owned()));
    }
    if let Some(links) = input.links {
        if links.len() > MAX_LINKS {
            return Err(Error::field(
                "input.links",
                format!("at most {MAX_LINKS} links"),
            ));
        }
        let mut checked = Vec::with_capacity(links.len());
        for (i, link) in links.iter().enumerate() {
            let label = link.label.trim();
            if label.is_empty() || label.chars().count() > MAX_LINK_LABEL {
                return Err(Error::field(
                    format!("input.links[{i}].label"),
                    format!("must be 1 to {MAX_LINK_LABEL} characters"),
                ));
            }
            check_url(link.url.trim(), &format!("input.links[{i}].url"))?;
            checked.push(Link {
                label: label.to_owned(),
                url: link.url.trim().to_owned(),
            });
        }
        patch.links = Some(checked);
    }
    if let Some(Json(preferences)) = input.preferences {
        check_preferences(&preferences)?;
        patch.preferences = Some(
            Preferences::from_json(&preferences)
                .ok_or_else(|| Error::field("input.preferences", "must be a JSON object"))?,
        );
    }
    if patch.is_empty() {
        return Err(Error::BadUserInput(
            "give at least one field to change".into(),
        ));
    }
    Ok(patch)
}

fn check_preferences(value: &serde_json::Value) -> Result<(), Error> {
    let field = "input.preferences";
    if !value.is_object() {
        return Err(Error::field(field, "must be a JSON object"));
    }
    if value.to_string().len() > MAX_PREFERENCES_BYTES {
        return Err(Error::field(
            field,
            format!("must be at most {MAX_PREFERENCES_BYTES} bytes as JSON"),
        ));
    }
    fn walk(value: &serde_json::Value, depth: usize) -> Result<(), String> {
        if depth > MAX_PREFERENCES_DEPTH {
            return Err(format!(
                "must be nested at most {MAX_PREFERENCES_DEPTH} levels deep"
            ));
        }
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    // Keys starting with `$` or holding `.` are MongoDB operators and paths;
                    // BSON keys are NUL-terminated, so a NUL cannot be stored at all.
                    if key.is_empty()
                        || key.len() > MAX_PREFERENCE_KEY
                        || key.starts_with('$')
                        || key.contains('.')
                        || key.contains('\0')
                    {
                        return Err(format!(
                            "keys must be 1 to {MAX_PREFERENCE_KEY} characters, not start with $ nor contain . or NUL"
                        ));
                    }
                    walk(child, depth + 1)?;
                }
                Ok(())
            }
            serde_json::Value::Array(items) => {
                items.iter().try_for_each(|item| walk(item, depth + 1))
            }
            _ => Ok(()),
        }
    }
    walk(value, 1).map_err(|message| Error::field(field, message))
}
