//! Persisted queries: automatic persisted queries (Apollo's protocol, documents kept in
//! Redis by SHA-256), or an allow-list that runs only registered documents.

use std::collections::HashMap;

use async_graphql::{Request, ServerResult};

use crate::{config::PersistedQueries, digest::sha256_hex};

use super::{refuse, server_error, Guard};

/// Registered documents by hash, from `MERIDIAN_PERSISTED_QUERIES_FILE`.
pub type AllowList = HashMap<String, String>;

/// Reads the allow-list: a JSON object of SHA-256 hex to document. Every hash is checked.
pub fn load_allow_list(path: &std::path::Path) -> anyhow::Result<AllowList> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        anyhow::anyhow!(
            "cannot read MERIDIAN_PERSISTED_QUERIES_FILE {}: {err}",
            path.display()
        )
    })?;
    let list: AllowList = serde_json::from_str(&text).map_err(|err| {
        anyhow::anyhow!("MERIDIAN_PERSISTED_QUERIES_FILE must map hashes to documents: {err}")
    })?;
    for (hash, document) in &list {
        if sha256_hex(document) != hash.to_ascii_lowercase() {
            anyhow::bail!(
                "MERIDIAN_PERSISTED_QUERIES_FILE: {hash} is not the SHA-256 of its document"
            );
        }
    }
    Ok(list
        .into_iter()
        .map(|(h, d)| (h.to_ascii_lowercase(), d))
        .collect())
}

impl Guard {
    /// Resolves and checks the request's persisted-query extension, if any.
    pub async fn persisted(&self, mut request: Request) -> ServerResult<Request> {
        let security = &self.state.config().security;
        let hash = match request.extensions.get("persistedQuery") {
            None => None,
            Some(value) => {
                let value = value.clone().into_json().unwrap_or_default();
                let version = value.get("version").and_then(|v| v.as_i64());
                let hash = value.get("sha256Hash").and_then(|v| v.as_str());
                match (version, hash) {
                    (Some(1), Some(hash))
                        if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
                    {
                        Some(hash.to_ascii_lowercase())
                    }
                    _ => return Err(refuse(
                        "BAD_REQUEST",
                        "persistedQuery must be {\"version\": 1, \"sha256Hash\": <64 hex digits>}",
                    )),
                }
            }
        };
        let has_text = !request.query.trim().is_empty();
        match security.persisted_queries {
            PersistedQueries::Off => {
                if hash.is_some() {
                    return Err(refuse(
                        "PERSISTED_QUERY_NOT_SUPPORTED",
                        "PersistedQueryNotSupported",
                    ));
                }
            }
            PersistedQueries::Apq => {
                let Some(hash) = hash else {
                    return Ok(request);
                };
                let redis = self.state.stores().redis();
                if has_text {
                    if sha256_hex(&request.query) != hash {
                        return Err(refuse("BAD_REQUEST", "provided sha does not match query"));
                    }
                    self.check_size(&request.query)?;
                    redis
                        .put_persisted_query(&hash, &request.query, security.apq_ttl_secs)
                        .await
                        .map_err(server_error)?;
                } else {
                    let found = redis.persisted_query(&hash).await.map_err(server_error)?;
                    match found {
                        Some(document) => request.query = document,
                        None => {
                            return Err(refuse(
                                "PERSISTED_QUERY_NOT_FOUND",
                                "PersistedQueryNotFound",
                            ))
                        }
                    }
                }
            }
            PersistedQueries::Allowlist => {
                let hash = match (hash, has_text) {
                    (Some(hash), false) => hash,
                    (_, true) => sha256_hex(&request.query),
                    (None, false) => return Ok(request),
                };
                match self.allow_list.as_deref().and_then(|list| list.get(&hash)) {
                    Some(document) => request.query = document.clone(),
                    None if has_text => {
                        return Err(refuse(
                            "OPERATION_NOT_ALLOWED",
                            "this server runs only registered documents, and this is not one",
                        ))
                    }
                    None => {
                        return Err(refuse(
                            "PERSISTED_QUERY_NOT_FOUND",
                            "PersistedQueryNotFound",
                        ))
                    }
                }
            }
        }
        Ok(request)
    }
}
