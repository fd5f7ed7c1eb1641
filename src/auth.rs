//! Who is calling: bearer JWTs (HS256 with a shared secret, RS256/ES256 with keys from a
//! JWKS file) and opaque session tokens kept in Redis (created by a signed wallet
//! challenge, see [`session`]). Both give a [`Principal`] with [`Role`]s.

pub mod jwt;
pub mod session;
pub mod wallet;

use std::fmt;

use uuid::Uuid;

use crate::{config::SecurityConfig, error::Error, store::Stores};

/// What a principal may do beyond reading public data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A platform user: sees and changes only their own private data.
    User,
    /// An operator: sees every user's private data, records trades for anyone.
    Admin,
    /// A backend service: ingests prices, registers users, records trades.
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Jwt,
    /// A session; the key is the Redis key of the session (a hash of its token).
    Session {
        key: String,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's subject (a user id for users; any name for services).
    pub subject: String,
    /// The user this principal acts as: set only when it holds the user role. A service
    /// or admin token whose subject happens to be a user id is not that user; roles
    /// decide, not the subject's shape.
    pub user_id: Option<Uuid>,
    pub roles: Vec<Role>,
    pub credential: Credential,
    /// When the credential stops being valid (a websocket opened with it is closed then).
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }
}

/// Checks credentials. Built once per process from the configuration.
pub struct Authenticator {
    jwt: jwt::JwtVerifier,
}

/// Why credentials were refused (the message goes to the client).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] Error),
}

impl From<AuthError> for Error {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Invalid(message) => Error::Unauthenticated(message),
            AuthError::Store(err) => err,
        }
    }
}

/// Session tokens start with this, so that they are told apart from JWTs at a glance.
pub const SESSION_PREFIX: &str = "mrd_";

impl Authenticator {
    pub fn new(config: &SecurityConfig) -> anyhow::Result<Self> {
        Ok(Authenticator {
            jwt: jwt::JwtVerifier::new(config)?,
        })
    }

    /// The principal behind a bearer token: a session token (looked up in Redis) or a JWT.
    pub async fn authenticate(&self, stores: &Stores, token: &str) -> Result<Principal, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Invalid("the bearer token is empty".into()));
        }
        if token.starts_with(SESSION_PREFIX) {
            session::lookup(stores, token).await
        } else {
            self.jwt.verify(token)
        }
    }

    /// The principal named by an `Authorization` header value (`Bearer <token>`).
    pub async fn from_header(&self, stores: &Stores, header: &str) -> Result<Principal, AuthError> {
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                AuthError::Invalid("the Authorization header must be `Bearer <token>`".into())
            })?;
        self.authenticate(stores, token).await
    }
}
