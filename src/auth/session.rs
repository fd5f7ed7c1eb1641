//! Sessions: opaque tokens kept in Redis with a TTL.
//!
//! A wallet logs in by signing a challenge: `loginChallenge(address)` issues a one-time
//! message (kept in Redis for `MERIDIAN_LOGIN_CHALLENGE_TTL_SECS`), the wallet signs it
//! with `personal_sign`, and `login(address, signature)` checks that the signature
//! recovers to the address of a registered user. The session token is returned once;
//! Redis keeps only its SHA-256, so a leaked Redis dump holds no usable tokens.
//! `logout` deletes the session; an expired one is gone by itself.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{wallet, AuthError, Credential, Principal, Role, SESSION_PREFIX};
use crate::{error::Error, store::Stores, values::Address};

/// What Redis keeps for a session.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SessionRecord {
    user_id: Uuid,
    roles: Vec<Role>,
    created_at: DateTime<Utc>,
    /// Absent in records written before it existed; Redis's TTL ends those anyway.
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

/// A session just created.
pub struct NewSession {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user_id: Uuid,
}

fn token_hash(token: &str) -> String {
    crate::digest::sha256_hex(token)
}

/// Random hex from two v4 UUIDs (244 random bits, from the OS generator).
fn random_hex() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// The challenge message for `address`; issued with a fresh nonce and kept until used
/// or expired.
pub async fn challenge(
    stores: &Stores,
    address: &Address,
    ttl_secs: u64,
) -> Result<(String, DateTime<Utc>), Error> {
    let expires_at = Utc::now() + chrono::Duration::seconds(ttl_secs as i64);
    let message = format!(
        "Sign in to Meridian\nAddress: {address}\nNonce: {}\nExpires: {}",
        random_hex(),
        expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    stores
        .redis()
        .put_challenge(address.as_str(), &message, ttl_secs)
        .await?;
    Ok((message, expires_at))
}

/// Checks a signed challenge and opens a session for `user_id` (the user registered
/// with `address`). The challenge is consumed whether or not the signature is right.
pub async fn login(
    stores: &Stores,
    address: &Address,
    user_id: Uuid,
    signature: &str,
    ttl_secs: u64,
) -> Result<NewSession, AuthError> {
    let message = stores
        .redis()
        .take_challenge(address.as_str())
        .await?
        .ok_or_else(|| {
            AuthError::Invalid(
                "no open challenge for this address (ask loginChallenge first; it expires)".into(),
            )
        })?;
    wallet::verify(address, &message, signature).map_err(|err| match err {
        wallet::SignatureError::Invalid => {
            AuthError::Invalid("the signature is not from this address".into())
        }
        malformed => AuthError::Invalid(malformed.to_string()),
    })?;
    let token = format!("{SESSION_PREFIX}{}", random_hex());
    let created_at = Utc::now();
    let record = SessionRecord {
        user_id,
        roles: vec![Role::User],
        created_at,
        expires_at: Some(created_at + chrono::Duration::seconds(ttl_secs as i64)),
    };
    let value = serde_json::to_string(&record)
        .map_err(|err| Error::Internal(anyhow::anyhow!("session encoding: {err}")))?;
    let key = stores.redis().session_key(&token_hash(&token));
    stores.redis().put_session(&key, &value, ttl_secs).await?;
    Ok(NewSession {
        token,
        expires_at: record
            .expires_at
            .unwrap_or(created_at + chrono::Duration::seconds(ttl_secs as i64)),
        user_id,
    })
}

/// The principal of a session token.
pub async fn lookup(stores: &Stores, token: &str) -> Result<Principal, AuthError> {
    let key = stores.redis().session_key(&token_hash(token));
    let value = stores
        .redis()
        .get_session(&key)
        .await?
        .ok_or_else(|| AuthError::Invalid("the session has expired or was revoked".into()))?;
    let record: SessionRecord = serde_json::from_str(&value)
        .map_err(|_| AuthError::Invalid("the session record is unreadable".into()))?;
    Ok(Principal {
        subject: record.user_id.to_string(),
        user_id: Some(record.user_id),
        roles: record.roles,
        credential: Credential::Session { key },
        expires_at: record.expires_at,
    })
}

/// Revokes the session behind `principal`; false when it was not a session.
pub async fn logout(stores: &Stores, principal: &Principal) -> Result<bool, Error> {
    match &principal.credential {
        Credential::Session { key } => stores.redis().delete_session(key).await,
        Credential::Jwt => Ok(false),
    }
}
