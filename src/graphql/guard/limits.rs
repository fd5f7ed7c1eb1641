//! After parsing: the document's shape, measured with each fragment counted once, against
//! the configured limits.

use async_graphql::{
    parser::types::{ExecutableDocument, Selection, SelectionSet},
    ServerResult,
};

use crate::graphql::shape;

use super::refuse;

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

/// The post-parse checks, on the document's [`Shape`](shape::Shape): linear in its
/// length, and run before validation or execution expand any fragment.
pub fn check_shape(
    doc: &ExecutableDocument,
    limits: &crate::config::SecurityConfig,
) -> ServerResult<shape::Shape> {
    let shape = shape::measure(doc).map_err(|cycle| {
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
