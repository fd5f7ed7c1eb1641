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
//!
//! The parts, one submodule each: `scan` (before parsing), `limits` (after parsing),
//! `persisted` (persisted queries and the allow-list). This module holds the [`Guard`]
//! that runs them and the codes its refusals carry.

mod limits;
mod persisted;
mod scan;

pub use limits::{
    check_shape, count_aliases, MAX_DIRECTIVES, MAX_INTROSPECTION_DEPTH, MAX_NESTING,
};
pub use persisted::{load_allow_list, AllowList};
pub use scan::{scan, Scan};

use std::sync::Arc;

use async_graphql::{
    extensions::{ExtensionContext, NextValidation},
    parser::types::ExecutableDocument,
    ServerError, ServerResult, ValidationResult,
};

use crate::{app::AppState, error::Error};

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

/// Documents parsed and checked before, by their text: clients send the same few
/// documents again and again, and a hit skips the scan, the parser and the shape check
/// (their outcome depends only on the text and on limits fixed at start). Only documents
/// that passed are kept; the cache is bounded by the total length of the texts it holds,
/// and admits by frequency, so a stream of one-off documents cannot push out the ones in
/// use.
pub struct DocumentCache(moka::sync::Cache<String, Arc<Parsed>>);

/// A document that passed the guard, and (once known) its validation when sent without
/// variables: validation depends only on the document, the schema and the variables. (The
/// operation name matters to it only through variables: async-graphql 7 checks variable
/// values in the selected operation alone, and every other rule in every operation.)
pub struct Parsed {
    pub doc: ExecutableDocument,
    validated: std::sync::OnceLock<ValidationResult>,
}

impl Parsed {
    /// The validation of the document without variables, if it passed before.
    pub fn validated(&self) -> Option<ValidationResult> {
        self.validated.get().copied()
    }

    /// Records that the document without variables passed validation.
    pub fn remember_validation(&self, result: ValidationResult) {
        let _ = self.validated.set(result);
    }
}

impl DocumentCache {
    /// Bytes of document text kept (the parsed trees take a few times more).
    const TEXT_BYTES: u64 = 4 << 20;

    pub fn new() -> Self {
        DocumentCache(
            moka::sync::Cache::builder()
                .weigher(|text: &String, _| u32::try_from(text.len()).unwrap_or(u32::MAX))
                .max_capacity(Self::TEXT_BYTES)
                .build(),
        )
    }
}

impl Default for DocumentCache {
    fn default() -> Self {
        Self::new()
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
}

fn server_error(err: Error) -> ServerError {
    use async_graphql::ErrorExtensions;
    err.extend().into_server_error(Default::default())
}

impl Guard {
    /// Checks a document before and after the parser, and parses it; or takes it from
    /// the cache of documents that passed.
    pub fn parse(&self, query: &str) -> ServerResult<Arc<Parsed>> {
        let cache = &self.state.documents().0;
        if let Some(parsed) = cache.get(query) {
            return Ok(parsed);
        }
        let parsed = Arc::new(Parsed {
            doc: self.parse_uncached(query)?,
            validated: Default::default(),
        });
        cache.insert(query.to_owned(), parsed.clone());
        Ok(parsed)
    }

    fn parse_uncached(&self, query: &str) -> ServerResult<ExecutableDocument> {
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
}
