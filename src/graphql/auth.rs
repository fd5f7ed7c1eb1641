//! Sign-in and the caller's own limits: `loginChallenge`, `login`, `logout` and
//! `rateLimitStatus`. See [`crate::auth`] for what each credential is.

use async_graphql::{Context, ErrorExtensions, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::user::Chain;
use super::{scope, user::User};
use crate::{
    auth::{session, AuthError},
    error::Error,
    loaders::UserByAddress,
    ratelimit::{self, Verdict},
};

#[derive(Default)]
pub struct AuthQuery;

/// One allowance of the caller.
#[derive(SimpleObject)]
pub struct RateLimitAllowance {
    /// Requests per window.
    pub limit: i32,
    /// Requests left now.
    pub remaining: i32,
    /// Seconds until the allowance is full again.
    pub reset_in_seconds: f64,
}

/// The caller's rate limits (this request already counted).
#[derive(SimpleObject)]
pub struct RateLimitStatus {
    pub window_seconds: i32,
    /// Whether limits are being enforced (false while Redis is unavailable).
    pub enforced: bool,
    /// The signed-in principal's allowance; null when anonymous or unlimited.
    pub principal: Option<RateLimitAllowance>,
    /// The client IP's allowance; null when unlimited.
    pub ip: Option<RateLimitAllowance>,
}

#[Object]
impl AuthQuery {
    /// The caller's rate limits.
    async fn rate_limit_status(&self, ctx: &Context<'_>) -> Result<RateLimitStatus> {
        let app = scope::app(ctx)?;
        let viewer = scope::viewer(ctx);
        let security = &app.config().security;
        let verdict = ratelimit::check(
            app.stores(),
            security,
            viewer.principal.as_ref(),
            viewer.ip,
            ratelimit::Count::Peek,
        )
        .await;
        let (enforced, allowances) = match verdict {
            Verdict::Allowed(a) | Verdict::Limited { allowances: a, .. } => (true, a),
            Verdict::Unchecked => (false, Vec::new()),
        };
        let pick = |scope: &str| {
            allowances
                .iter()
                .find(|a| a.scope == scope)
                .map(|a| RateLimitAllowance {
                    limit: i32::try_from(a.limit).unwrap_or(i32::MAX),
                    remaining: i32::try_from(a.state.remaining).unwrap_or(i32::MAX),
                    reset_in_seconds: a.state.reset_ms as f64 / 1000.0,
                })
        };
        Ok(RateLimitStatus {
            window_seconds: i32::try_from(security.rate_limit_window_secs).unwrap_or(i32::MAX),
            enforced,
            principal: pick("principal"),
            ip: pick("ip"),
        })
    }
}

#[derive(Default)]
pub struct AuthMutation;

/// A message for the wallet to sign with `personal_sign`.
#[derive(SimpleObject)]
pub struct LoginChallenge {
    pub message: String,
    pub expires_at: DateTime<Utc>,
}

/// A session: send `Authorization: Bearer <token>` (or `{"Authorization": "Bearer
/// <token>"}` in the websocket's connection_init payload).
#[derive(SimpleObject)]
pub struct Session {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: User,
}

#[Object]
impl AuthMutation {
    /// Issues a one-time sign-in message for a wallet address of any supported chain
    /// (`chain` is told from the address when absent). Sign it with the wallet's message
    /// signing: EIP-191 `personal_sign` (EVM), SEP-53 (Stellar, e.g. Freighter's
    /// `signMessage`), or the Casper Wallet's `signMessage`.
    async fn login_challenge(
        &self,
        ctx: &Context<'_>,
        address: String,
        chain: Option<Chain>,
    ) -> Result<LoginChallenge> {
        let address = super::user::parse_account(&address, chain)
            .map_err(|e| Error::field("address", e.to_string()).extend())?;
        let app = scope::app(ctx)?;
        let ttl = app.config().security.login_challenge_ttl_secs;
        let (message, expires_at) = session::challenge(app.stores(), &address, ttl).await?;
        Ok(LoginChallenge {
            message,
            expires_at,
        })
    }

    /// Opens a session for the registered user whose wallet signed the challenge.
    async fn login(
        &self,
        ctx: &Context<'_>,
        address: String,
        signature: String,
        chain: Option<Chain>,
    ) -> Result<Session> {
        let address = super::user::parse_account(&address, chain)
            .map_err(|e| Error::field("address", e.to_string()).extend())?;
        let user = scope::loaders(ctx)?
            .load_one(UserByAddress(address.clone()))
            .await?
            .ok_or_else(|| {
                Error::Unauthenticated("no user is registered with this address".into()).extend()
            })?;
        let app = scope::app(ctx)?;
        let ttl = app.config().security.session_ttl_secs;
        let opened = session::login(app.stores(), &address, user.id, &signature, ttl)
            .await
            .map_err(|e: AuthError| Error::from(e).extend())?;
        Ok(Session {
            token: opened.token,
            expires_at: opened.expires_at,
            user: User(user),
        })
    }

    /// Revokes the session this request was made with. False when the request was not
    /// made with a session (a JWT cannot be revoked; it expires).
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        let principal = scope::viewer(ctx).principal()?;
        session::logout(scope::app(ctx)?.stores(), principal)
            .await
            .map_err(Into::into)
    }
}
