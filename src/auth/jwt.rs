//! Bearer JWTs. HS256 tokens are checked with `MERIDIAN_JWT_SECRET`; RS256 and ES256
//! tokens with the key of their `kid` in `MERIDIAN_JWKS_FILE`. Every token must carry
//! `sub`, `exp`, and the configured `iss` and `aud`. `roles` (default `["user"]`) says
//! what the subject may do; the `user` role needs a user id as `sub`.

use jsonwebtoken::{
    jwk::{Jwk, JwkSet},
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AuthError, Credential, Principal, Role};
use crate::config::SecurityConfig;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 30;

/// The claims Meridian reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before: checked (with the same leeway as `exp`) when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<Role>>,
}

pub struct JwtVerifier {
    secret: Option<DecodingKey>,
    keys: Vec<(Option<String>, Algorithm, DecodingKey)>,
    issuer: String,
    audience: String,
    /// Tokens already verified, with their principals: a client sends the same token with
    /// every request until it expires. An entry is used only while its token is valid
    /// (see [`JwtVerifier::verify`]); the cache holds at most [`VERIFIED_TOKENS`] tokens.
    verified: moka::sync::Cache<String, Principal>,
}

/// Most verified tokens kept (about half a kilobyte each).
const VERIFIED_TOKENS: u64 = 10_000;
/// Longest time a verified token is kept: a token is reverified at least this often.
const VERIFIED_FOR: std::time::Duration = std::time::Duration::from_secs(300);

impl JwtVerifier {
    pub fn new(config: &SecurityConfig) -> anyhow::Result<Self> {
        let secret = match config.jwt_secret.as_deref() {
            Some(s) if s.len() < 32 => {
                anyhow::bail!("MERIDIAN_JWT_SECRET must be at least 32 bytes long")
            }
            Some(s) => Some(DecodingKey::from_secret(s.as_bytes())),
            None => None,
        };
        let mut keys = Vec::new();
        if let Some(path) = &config.jwks_file {
            let text = std::fs::read_to_string(path).map_err(|err| {
                anyhow::anyhow!("cannot read MERIDIAN_JWKS_FILE {}: {err}", path.display())
            })?;
            let set: JwkSet = serde_json::from_str(&text)
                .map_err(|err| anyhow::anyhow!("MERIDIAN_JWKS_FILE is not a JWKS: {err}"))?;
            for jwk in &set.keys {
                keys.push(key_of(jwk)?);
            }
        }
        Ok(JwtVerifier {
            secret,
            keys,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_TOKENS)
                .time_to_live(VERIFIED_FOR)
                .build(),
        })
    }

    /// Checks the token's signature, issuer, audience and expiry. A token verified before
    /// is not verified again while it has not expired: its signature, issuer and audience
    /// cannot have changed, and `nbf` had passed already.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(principal) = self.verified.get(token) {
            if still_valid(&principal, chrono::Utc::now()) {
                return Ok(principal);
            }
            self.verified.invalidate(token);
        }
        let principal = self.verify_uncached(token)?;
        // Only tokens whose text is a few kilobytes at most: the cache is bounded in
        // entries, so each entry must be bounded in size.
        if token.len() <= 4096 {
            self.verified.insert(token.to_owned(), principal.clone());
        }
        Ok(principal)
    }

    fn verify_uncached(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("the bearer token is not a JWT".into()))?;
        let key = match header.alg {
            Algorithm::HS256 => self.secret.as_ref().ok_or_else(|| {
                AuthError::Invalid("HS256 tokens are not accepted by this server".into())
            })?,
            Algorithm::RS256 | Algorithm::ES256 => {
                self.key_for(header.kid.as_deref(), header.alg)?
            }
            other => {
                return Err(AuthError::Invalid(format!(
                    "JWT algorithm {other:?} is not accepted"
                )))
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            let reason = match err.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::InvalidSignature => "the token's signature is not valid",
                ErrorKind::InvalidAudience => "the token is not for this audience",
                ErrorKind::InvalidIssuer => "the token is not from the expected issuer",
                ErrorKind::ImmatureSignature => "the token is not valid yet",
                ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
                _ => "the token is not valid",
            };
            AuthError::Invalid(reason.into())
        })?;
        principal_of(data.claims)
    }

    fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<&DecodingKey, AuthError> {
        let matching: Vec<&DecodingKey> = self
            .keys
            .iter()
            .filter(|(k, a, _)| *a == alg && (kid.is_none() || k.as_deref() == kid))
            .map(|(_, _, key)| key)
            .collect();
        match (matching.as_slice(), kid) {
            ([key], _) | ([key, ..], Some(_)) => Ok(key),
            ([], _) => Err(AuthError::Invalid(
                "no configured key matches the token's `kid` and algorithm".into(),
            )),
            (_, None) => Err(AuthError::Invalid(
                "the token has no `kid` and several keys could match".into(),
            )),
        }
    }
}

fn key_of(jwk: &Jwk) -> anyhow::Result<(Option<String>, Algorithm, DecodingKey)> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm};
    let alg = match (&jwk.algorithm, &jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => anyhow::bail!(
            "MERIDIAN_JWKS_FILE: key {:?} is neither RS256 nor ES256 (P-256)",
            jwk.common.key_id
        ),
    };
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|err| anyhow::anyhow!("MERIDIAN_JWKS_FILE: unusable key: {err}"))?;
    Ok((jwk.common.key_id.clone(), alg, key))
}

/// Whether a principal verified earlier is still within its token's `exp` (with the same
/// leeway as verification allows).
fn still_valid(principal: &Principal, now: chrono::DateTime<chrono::Utc>) -> bool {
    principal
        .expires_at
        .is_some_and(|exp| exp + chrono::Duration::seconds(LEEWAY_SECS as i64) >= now)
}

fn principal_of(claims: Claims) -> Result<Principal, AuthError> {
    let roles = claims.roles.unwrap_or_else(|| vec![Role::User]);
    if roles.is_empty() {
        return Err(AuthError::Invalid("the token grants no role".into()));
    }
    // Only the user role makes the subject a user: a service or admin token named after
    // a user's id does not act as that user.
    let user_id = if roles.contains(&Role::User) {
        Some(claims.sub.parse::<Uuid>().map_err(|_| {
            AuthError::Invalid("a token with the user role needs a user id as `sub`".into())
        })?)
    } else {
        None
    };
    let expires_at = i64::try_from(claims.exp)
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0));
    Ok(Principal {
        subject: claims.sub,
        user_id,
        roles,
        credential: Credential::Jwt,
        expires_at,
    })
}

/// Issues an HS256 token (for `meridian token`, demos and tests).
pub fn mint_hs256(
    config: &SecurityConfig,
    subject: &str,
    roles: &[Role],
    ttl_secs: u64,
) -> anyhow::Result<String> {
    let secret = config
        .jwt_secret
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("set MERIDIAN_JWT_SECRET to issue tokens"))?;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: subject.to_owned(),
        exp: now + ttl_secs,
        iss: config.jwt_issuer.clone(),
        aud: config.jwt_audience.clone(),
        iat: Some(now),
        nbf: None,
        roles: Some(roles.to_vec()),
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SecurityConfig {
        SecurityConfig {
            jwt_secret: Some("a-test-secret-of-at-least-32-bytes-long".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_verified_token_is_taken_from_the_cache_until_it_expires() {
        let config = config();
        let verifier = JwtVerifier::new(&config).expect("verifier");
        let token = mint_hs256(&config, "svc", &[Role::Service], 600).expect("token");
        let first = verifier.verify(&token).expect("valid");
        assert_eq!(
            verifier.verified.get(&token).map(|p| p.subject),
            Some("svc".into())
        );
        assert_eq!(
            verifier.verify(&token).expect("cached").subject,
            first.subject
        );

        // A cached principal whose token has expired is not used: the token is verified
        // again, and refused.
        let mut expired = first.clone();
        expired.expires_at = Some(chrono::Utc::now() - chrono::Duration::seconds(120));
        verifier.verified.insert(token.clone(), expired.clone());
        let past = jsonwebtoken::get_current_timestamp() - 120;
        let claims = Claims {
            sub: "svc".into(),
            exp: past,
            iss: config.jwt_issuer.clone(),
            aud: config.jwt_audience.clone(),
            iat: Some(past - 600),
            nbf: None,
            roles: Some(vec![Role::Service]),
        };
        let key =
            EncodingKey::from_secret(config.jwt_secret.as_deref().unwrap_or_default().as_bytes());
        let token_expired =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("token");
        verifier.verified.insert(token_expired.clone(), expired);
        assert!(verifier.verify(&token_expired).is_err());
        assert!(verifier.verified.get(&token_expired).is_none());
        // The valid token, found expired in the cache, is verified afresh and accepted.
        assert!(verifier.verify(&token).is_ok());
    }

    #[test]
    fn validity_allows_the_leeway_and_no_more() {
        let now = chrono::Utc::now();
        let principal = |exp: chrono::DateTime<chrono::Utc>| Principal {
            subject: "s".into(),
            user_id: None,
            roles: vec![Role::Service],
            credential: Credential::Jwt,
            expires_at: Some(exp),
        };
        let leeway = chrono::Duration::seconds(LEEWAY_SECS as i64);
        assert!(still_valid(
            &principal(now + chrono::Duration::seconds(1)),
            now
        ));
        assert!(still_valid(&principal(now - leeway), now));
        assert!(!still_valid(
            &principal(now - leeway - chrono::Duration::seconds(1)),
            now
        ));
    }
}
