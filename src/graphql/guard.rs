//! What a document may be before Meridian runs it, checked as cheaply as possible:
//!
//! - persisted queries: automatic persisted queries (Apollo's protocol, documents kept in
//!   Redis by SHA-256), or an allow-list that runs only registered documents;
//! - before parsing: a lexical scan bounds the token count and the bracket nesting, so
//!   that no document can make the (recursive) parser work hard;
//! - after parsing: the document's [shape](super::shape), measured with each fragment
//!   counted once, bounds the expanded field count, the depth (introspection apart), the
//!   root fields and the aliases, before validation or execution expand any spread;
//!   complexity (page sizes multiplied) is then the schema's own limit, on a document
//!   whose expansion is already bounded.
//!
//! Every refusal carries an `extensions.code`.

use std::{collections::HashMap, sync::Arc};

use crate::digest::sha256_hex;
use async_graphql::{
    extensions::{ExtensionContext, NextValidation},
    parser::types::{ExecutableDocument, Selection, SelectionSet},
    Request, ServerError, ServerResult, ValidationResult,
};

use crate::{app::AppState, config::PersistedQueries, error::Error, store::StoreKind};

/// A request error with a code.
fn refuse(code: &str, message: impl Into<String>) -> ServerError {
    with_code(ServerError::new(message, None), code)
}

/// `err` with `extensions.code` set to `code`.
fn with_code(mut err: ServerError, code: &str) -> ServerError {
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    err
}

/// A parser message on one line: the parser draws the offending line with a caret under
/// it, which reads well in a terminal and badly in a JSON error or a client's log.
fn one_line(message: &str, at: Option<&async_graphql::Pos>) -> String {
    let said = message
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("= "))
        .unwrap_or_else(|| message.lines().next().unwrap_or_default().trim());
    match at {
        Some(pos) => format!(
            "syntax error at line {}, column {}: {said}",
            pos.line, pos.column
        ),
        None => format!("syntax error: {said}"),
    }
}

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

/// What one lexical scan found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    pub tokens: usize,
    pub max_nesting: usize,
}

/// Counts GraphQL tokens and the deepest `{`/`(`/`[` nesting, stopping early once
/// `max_tokens` or `max_nesting` is passed. Not a validator: the parser still decides
/// what is well-formed.
pub fn scan(document: &str, max_tokens: usize, max_nesting: usize) -> Scan {
    let bytes = document.as_bytes();
    let mut out = Scan::default();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() && out.tokens <= max_tokens && out.max_nesting <= max_nesting {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' => {
                out.tokens += 1;
                if bytes[i..].starts_with(b"\"\"\"") {
                    i += 3;
                    while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                        i += if bytes[i..].starts_with(b"\\\"\"\"") {
                            4
                        } else {
                            1
                        };
                    }
                    i += 3;
                } else {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
            }
            b'{' | b'(' | b'[' => {
                out.tokens += 1;
                depth += 1;
                out.max_nesting = out.max_nesting.max(depth);
                i += 1;
            }
            b'}' | b')' | b']' => {
                out.tokens += 1;
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => {
                out.tokens += 1;
                i += 3;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' => {
                out.tokens += 1;
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b'.' | b'+' | b'-'))
                {
                    i += 1;
                }
            }
            _ => {
                out.tokens += 1;
                i += 1;
            }
        }
    }
    out
}

/// Aliased fields in the document's text (each fragment counted once, as written).
pub fn count_aliases(doc: &ExecutableDocument) -> usize {
    fn aliases(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(f) => {
                    usize::from(f.node.alias.is_some()) + aliases(&f.node.selection_set.node)
                }
                Selection::InlineFragment(f) => aliases(&f.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    doc.fragments
        .values()
        .map(|f| aliases(&f.node.selection_set.node))
        .chain(
            doc.operations
                .iter()
                .map(|(_, op)| aliases(&op.node.selection_set.node)),
        )
        .sum()
}

/// Deepest nesting of selection sets and fragment spreads together (what a walker that
/// follows spreads recurses through): async-graphql's own default recursion bound.
pub const MAX_NESTING: u64 = 32;

/// Most directives on one selection (a guard against directive overloading).
pub const MAX_DIRECTIVES: u64 = 8;

/// Deepest nesting inside `__schema`/`__type`: graphql-js's `getIntrospectionQuery()`
/// (with every option on) reaches 15 through its `TypeRef` fragment's `ofType` chain.
pub const MAX_INTROSPECTION_DEPTH: u64 = 20;

/// The post-parse checks, on the document's [`Shape`](super::shape::Shape): linear in its
/// length, and run before validation or execution expand any fragment.
pub fn check_shape(
    doc: &ExecutableDocument,
    limits: &crate::config::SecurityConfig,
) -> ServerResult<super::shape::Shape> {
    let shape = super::shape::measure(doc).map_err(|cycle| {
        refuse(
            "GRAPHQL_VALIDATION_FAILED",
            format!("fragment {:?} spreads itself", cycle.0),
        )
    })?;
    if !limits.introspection && shape.introspects {
        return Err(refuse(
            "INTROSPECTION_DISABLED",
            "introspection is turned off on this server",
        ));
    }
    if shape.fields > limits.max_fields as u64 {
        return Err(refuse(
            "QUERY_TOO_COMPLEX",
            format!(
                "the document selects more than {} fields once its fragments are expanded",
                limits.max_fields
            ),
        ));
    }
    if shape.depth > limits.max_depth as u64 {
        return Err(refuse(
            "QUERY_TOO_DEEP",
            format!(
                "the query nests {} fields deep; at most {} are allowed",
                shape.depth, limits.max_depth
            ),
        ));
    }
    if shape.nesting > MAX_NESTING {
        return Err(refuse(
            "QUERY_TOO_DEEP",
            format!("selections and fragment spreads nest more than {MAX_NESTING} deep"),
        ));
    }
    if shape.directives > MAX_DIRECTIVES {
        return Err(refuse(
            "TOO_MANY_DIRECTIVES",
            format!("a selection may carry at most {MAX_DIRECTIVES} directives"),
        ));
    }
    if shape.introspection_depth > MAX_INTROSPECTION_DEPTH {
        return Err(refuse(
            "QUERY_TOO_DEEP",
            format!("introspection may nest at most {MAX_INTROSPECTION_DEPTH} fields deep"),
        ));
    }
    let aliases = count_aliases(doc);
    if aliases > limits.max_aliases {
        return Err(refuse(
            "TOO_MANY_ALIASES",
            format!(
                "the document has {aliases} aliases; at most {} are allowed",
                limits.max_aliases
            ),
        ));
    }
    if shape.root_fields > limits.max_root_fields as u64 {
        return Err(refuse(
            "TOO_MANY_ROOT_FIELDS",
            format!(
                "an operation selects {} root fields; at most {} are allowed",
                shape.root_fields, limits.max_root_fields
            ),
        ));
    }
    Ok(shape)
}

/// Gives every error of `response` an `extensions.code`: the few that the GraphQL
/// engine raises without one are request errors (before execution) or internal.
pub fn ensure_codes(response: &mut async_graphql::Response) {
    let before_execution = response.data == async_graphql::Value::Null;
    for err in &mut response.errors {
        let has_code = err
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if !has_code {
            let code = if before_execution && err.path.is_empty() {
                "GRAPHQL_VALIDATION_FAILED"
            } else {
                "INTERNAL"
            };
            err.extensions
                .get_or_insert_with(Default::default)
                .set("code", code);
        }
    }
}

/// The checks, run by the operation's one extension ([`super::scope::Scope`]): a single
/// extension, because async-graphql wraps every field's resolution in each extension's
/// chain.
#[derive(Clone)]
pub struct Guard {
    state: AppState,
    allow_list: Option<Arc<AllowList>>,
}

impl Guard {
    pub fn new(state: AppState) -> Self {
        Guard {
            allow_list: state.allow_list(),
            state,
        }
    }

    pub fn check_size(&self, document: &str) -> ServerResult<()> {
        let limits = &self.state.config().security;
        let max_nesting = limits.max_depth.saturating_mul(4).max(32);
        let found = scan(document, limits.max_tokens, max_nesting);
        if found.tokens > limits.max_tokens {
            return Err(refuse(
                "QUERY_TOO_LARGE",
                format!("the document has more than {} tokens", limits.max_tokens),
            ));
        }
        if found.max_nesting > max_nesting {
            return Err(refuse(
                "QUERY_TOO_DEEP",
                format!("the document nests deeper than {max_nesting} brackets"),
            ));
        }
        Ok(())
    }

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
                let redis = &self.state.stores().redis;
                if has_text {
                    if sha256_hex(&request.query) != hash {
                        return Err(refuse("BAD_REQUEST", "provided sha does not match query"));
                    }
                    self.check_size(&request.query)?;
                    self.state
                        .stores()
                        .call(
                            StoreKind::Redis,
                            "put_persisted_query",
                            redis.put_persisted_query(&hash, &request.query, security.apq_ttl_secs),
                        )
                        .await
                        .map_err(server_error)?;
                } else {
                    let found = self
                        .state
                        .stores()
                        .call(
                            StoreKind::Redis,
                            "persisted_query",
                            redis.persisted_query(&hash),
                        )
                        .await
                        .map_err(server_error)?;
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

fn server_error(err: Error) -> ServerError {
    use async_graphql::ErrorExtensions;
    err.extend().into_server_error(Default::default())
}

impl Guard {
    /// Checks a document before and after the parser, and parses it.
    pub fn parse(&self, query: &str) -> ServerResult<ExecutableDocument> {
        self.check_size(query)?;
        // Parsed here rather than by `next`: the engine's own post-parse checks (recursion
        // depth, directives) follow every spread and take time exponential in a fragment
        // bomb's size. The shape check below covers both, counting each fragment once.
        let doc = async_graphql::parser::parse_query(query).map_err(|err| {
            let mut err = ServerError::from(err);
            err.message = one_line(&err.message, err.locations.first());
            let code = if err.message.contains("recursion") {
                "QUERY_TOO_DEEP"
            } else {
                "GRAPHQL_PARSE_FAILED"
            };
            with_code(err, code)
        })?;
        check_shape(&doc, &self.state.config().security)?;
        Ok(doc)
    }

    /// Runs validation, giving its errors codes.
    pub async fn validate(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|err| {
                    if err.extensions.is_some() {
                        return err;
                    }
                    let code = if err.message.contains("too complex") {
                        "QUERY_TOO_COMPLEX"
                    } else if err.message.contains("too deep") {
                        "QUERY_TOO_DEEP"
                    } else {
                        "GRAPHQL_VALIDATION_FAILED"
                    };
                    with_code(err, code)
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_are_one_line() {
        let err = async_graphql::parser::parse_query("{ users( }").expect_err("bad");
        let err = ServerError::from(err);
        let line = one_line(&err.message, err.locations.first());
        assert_eq!(line, "syntax error at line 1, column 10: expected name");
    }

    #[test]
    fn scan_counts_tokens_and_nesting() {
        let s = scan(
            "query Q($a: Int = 1) { a(x: \"s { \\\" }\") { ...F } } # { { {",
            1000,
            1000,
        );
        // query Q ( $ a : Int = 1 ) { a ( x : "..." ) { ... F } }
        assert_eq!(s.tokens, 22);
        assert_eq!(s.max_nesting, 2);
        let deep = "{a".repeat(1000) + &"}".repeat(1000);
        let s = scan(&deep, 10_000, 48);
        assert!(s.max_nesting > 48, "stops once past the nesting bound");
        assert!(s.tokens < 200, "and stops early: {}", s.tokens);
        let block = scan("\"\"\"a \\\"\"\" { b\"\"\" c", 100, 100);
        assert_eq!(
            block,
            Scan {
                tokens: 2,
                max_nesting: 0
            }
        );
    }
}
