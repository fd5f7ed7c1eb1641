//! Field errors as the GraphQL spec handles them ("Handling Field Errors"): a field that
//! raised an error is present in `data` as null, and an error in a non-null field nulls
//! its nearest nullable ancestor (all of `data` when there is none).
//!
//! The engine instead leaves an errored field's key out of its object (and makes an object
//! whose every field errored null), which clients such as Apollo read as a malformed
//! result. This pass repairs the response after execution: for each error with a path it
//! finds the types along the path (from the schema's SDL and the operation's selections,
//! aliases and fragments included) and writes the null where the spec puts it. It runs
//! only for responses that carry such errors.

use std::collections::HashMap;

use async_graphql::{
    parser::types::{
        BaseType, ExecutableDocument, OperationType, Selection, SelectionSet, Type, TypeKind,
    },
    Name, PathSegment, Response, Value,
};

/// Field types by type name and field name, read from the schema's SDL, and the names of
/// the root types.
#[derive(Debug, Default)]
pub struct TypeMap {
    types: HashMap<String, HashMap<String, Type>>,
    query: String,
    mutation: String,
    subscription: String,
}

impl TypeMap {
    /// From the schema's SDL (types the SDL lacks, such as introspection's, are skipped).
    pub fn from_sdl(sdl: &str) -> TypeMap {
        use async_graphql::parser::types::TypeSystemDefinition;
        let Ok(doc) = async_graphql::parser::parse_schema(sdl) else {
            return TypeMap::default();
        };
        let mut map = TypeMap {
            query: "Query".into(),
            mutation: "Mutation".into(),
            subscription: "Subscription".into(),
            ..TypeMap::default()
        };
        for definition in doc.definitions {
            let ty = match definition {
                TypeSystemDefinition::Type(ty) => ty,
                TypeSystemDefinition::Schema(schema) => {
                    let schema = schema.node;
                    let name =
                        |n: Option<async_graphql::Positioned<Name>>| n.map(|n| n.node.to_string());
                    map.query = name(schema.query).unwrap_or(map.query);
                    map.mutation = name(schema.mutation).unwrap_or(map.mutation);
                    map.subscription = name(schema.subscription).unwrap_or(map.subscription);
                    continue;
                }
                _ => continue,
            };
            let fields = match &ty.node.kind {
                TypeKind::Object(o) => &o.fields,
                TypeKind::Interface(i) => &i.fields,
                _ => continue,
            };
            let fields = fields
                .iter()
                .map(|f| (f.node.name.node.to_string(), f.node.ty.node.clone()))
                .collect();
            map.types.insert(ty.node.name.node.to_string(), fields);
        }
        map
    }

    /// The name of the root type of `operation`.
    pub fn root(&self, operation: OperationType) -> &str {
        match operation {
            OperationType::Query => &self.query,
            OperationType::Mutation => &self.mutation,
            OperationType::Subscription => &self.subscription,
        }
    }

    /// The field names of type `name`.
    pub fn fields_of(&self, name: &str) -> impl Iterator<Item = &str> {
        self.types
            .get(name)
            .into_iter()
            .flat_map(|f| f.keys().map(String::as_str))
    }

    fn field(&self, parent: &str, field: &str) -> Option<&Type> {
        self.types.get(parent)?.get(field)
    }
}

/// Puts the nulls of `response`'s field errors where the spec says, for the operation
/// `operation_name` of `query`.
pub fn place_nulls(
    response: &mut Response,
    types: &TypeMap,
    query: &str,
    operation_name: Option<&str>,
) {
    if response.errors.iter().all(|e| e.path.is_empty()) {
        return;
    }
    let Ok(doc) = async_graphql::parser::parse_query(query) else {
        return;
    };
    let Some((root, selections)) = operation(&doc, operation_name) else {
        return;
    };
    let root = types.root(root);
    // Where each error's null goes: the path prefix of its nearest nullable position
    // (empty: all of `data`).
    let mut targets: Vec<Vec<PathSegment>> = response
        .errors
        .iter()
        .filter(|e| !e.path.is_empty())
        .filter_map(|e| null_target(types, &doc, root, selections, &e.path))
        .collect();
    targets.sort_by_key(Vec::len);
    targets.dedup();
    if targets.iter().any(Vec::is_empty) {
        response.data = Value::Null;
        return;
    }
    if response.data == Value::Null {
        response.data = Value::Object(Default::default());
    }
    let mut placed: Vec<&[PathSegment]> = Vec::new();
    for target in &targets {
        // A null already placed above this one covers it.
        if placed.iter().any(|p| target.starts_with(p)) {
            continue;
        }
        set_null(&mut response.data, target);
        placed.push(target);
    }
}

/// The operation's kind and selections.
fn operation<'d>(
    doc: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<(OperationType, &'d SelectionSet)> {
    let op = doc.operations.iter().find_map(|(n, op)| match (name, n) {
        (Some(wanted), Some(n)) if wanted == n.as_str() => Some(op),
        (None, _) => Some(op),
        _ => None,
    })?;
    Some((op.node.ty, &op.node.selection_set.node))
}

/// The fields of `set` (through fragments) whose response key is `key`: their names and
/// selection sets.
fn fields_named<'d>(
    doc: &'d ExecutableDocument,
    set: &'d SelectionSet,
    key: &str,
    out: &mut Vec<(&'d str, &'d SelectionSet)>,
    depth: usize,
) {
    if depth > 64 {
        return;
    }
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                let f = &f.node;
                let response_key = f.alias.as_ref().unwrap_or(&f.name).node.as_str();
                if response_key == key {
                    out.push((f.name.node.as_str(), &f.selection_set.node));
                }
            }
            Selection::InlineFragment(i) => {
                fields_named(doc, &i.node.selection_set.node, key, out, depth + 1)
            }
            Selection::FragmentSpread(s) => {
                if let Some(fragment) = doc.fragments.get(&s.node.fragment_name.node) {
                    fields_named(doc, &fragment.node.selection_set.node, key, out, depth + 1);
                }
            }
        }
    }
}

/// The path prefix whose value becomes null for an error at `path`; None when the path
/// cannot be followed (then the response is left as it is).
fn null_target(
    types: &TypeMap,
    doc: &ExecutableDocument,
    root: &str,
    selections: &SelectionSet,
    path: &[PathSegment],
) -> Option<Vec<PathSegment>> {
    let mut parent = root.to_owned();
    let mut sets: Vec<&SelectionSet> = vec![selections];
    let mut current: Option<&Type> = None;
    // Whether the value at each prefix of the path may be null.
    let mut nullable = Vec::with_capacity(path.len());
    for segment in path {
        match segment {
            PathSegment::Field(key) => {
                let mut found = Vec::new();
                for set in &sets {
                    fields_named(doc, set, key, &mut found, 0);
                }
                let (name, _) = *found.first()?;
                let ty = if name == "__typename" {
                    return None;
                } else {
                    types.field(&parent, name)?
                };
                nullable.push(ty.nullable);
                sets = found.into_iter().map(|(_, s)| s).collect();
                current = Some(ty);
            }
            PathSegment::Index(_) => {
                let BaseType::List(inner) = &current?.base else {
                    return None;
                };
                nullable.push(inner.nullable);
                current = Some(inner);
            }
        }
        if let BaseType::Named(name) = &current?.base {
            parent = name.to_string();
        }
    }
    let at = nullable.iter().rposition(|n| *n).map_or(0, |i| i + 1);
    Some(path[..at].to_vec())
}

/// Sets the value at `path` to null, creating the objects on the way that the engine
/// left out (an object whose every field errored).
fn set_null(data: &mut Value, path: &[PathSegment]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = data;
    for segment in parents {
        at = match (segment, at) {
            (PathSegment::Field(key), Value::Object(map)) => {
                let slot = map
                    .entry(Name::new(key))
                    .or_insert_with(|| Value::Object(Default::default()));
                if *slot == Value::Null {
                    *slot = Value::Object(Default::default());
                }
                slot
            }
            (PathSegment::Index(i), Value::List(items)) => match items.get_mut(*i) {
                Some(item) => {
                    if *item == Value::Null {
                        *item = Value::Object(Default::default());
                    }
                    item
                }
                None => return,
            },
            _ => return,
        };
    }
    match (last, at) {
        (PathSegment::Field(key), Value::Object(map)) => {
            map.insert(Name::new(key), Value::Null);
        }
        (PathSegment::Index(i), Value::List(items)) => {
            if let Some(item) = items.get_mut(*i) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{ServerError, Value};

    const SDL: &str = "
        type Query { me: User  user(id: ID): User  users: [User!]!  health: Health! }
        type User { id: ID!  name: String!  holdings: [Holding!]  profile: Profile }
        type Profile { bio: String  score: Float! }
        type Holding { quantity: Float! }
        type Health { status: String! }";

    fn error(path: &[PathSegment]) -> ServerError {
        let mut e = ServerError::new("boom", None);
        e.path = path.to_vec();
        e
    }

    fn field(s: &str) -> PathSegment {
        PathSegment::Field(s.into())
    }

    fn run(query: &str, data: serde_json::Value, paths: &[&[PathSegment]]) -> serde_json::Value {
        let mut response = Response::new(Value::from_json(data).unwrap());
        response.errors = paths.iter().map(|p| error(p)).collect();
        place_nulls(&mut response, &TypeMap::from_sdl(SDL), query, None);
        response.data.into_json().unwrap()
    }

    #[test]
    fn an_errored_nullable_field_is_null() {
        let out = run(
            "{ me { name } health { status } }",
            serde_json::json!({ "health": { "status": "ok" } }),
            &[&[field("me")]],
        );
        assert_eq!(
            out,
            serde_json::json!({ "health": { "status": "ok" }, "me": null })
        );
    }

    #[test]
    fn the_only_root_field_erroring_leaves_data_with_its_null() {
        let out = run(
            "{ me { name } }",
            serde_json::Value::Null,
            &[&[field("me")]],
        );
        assert_eq!(out, serde_json::json!({ "me": null }));
    }

    #[test]
    fn aliases_and_list_items_are_followed() {
        let out = run(
            "{ people: users { ...F } } fragment F on User { name holdings { quantity } }",
            serde_json::json!({ "people": [{ "name": "a" }, { "name": "b" }] }),
            &[
                &[field("people"), PathSegment::Index(0), field("holdings")],
                &[field("people"), PathSegment::Index(1), field("holdings")],
            ],
        );
        assert_eq!(
            out,
            serde_json::json!({ "people": [
                { "name": "a", "holdings": null },
                { "name": "b", "holdings": null }
            ] })
        );
    }

    #[test]
    fn a_non_null_error_nulls_the_nearest_nullable_parent() {
        // Profile.score is non-null: its profile becomes null.
        let out = run(
            "{ me { name profile { bio score } } }",
            serde_json::json!({ "me": { "name": "a", "profile": { "bio": "x" } } }),
            &[&[field("me"), field("profile"), field("score")]],
        );
        assert_eq!(
            out,
            serde_json::json!({ "me": { "name": "a", "profile": null } })
        );
        // Health.status and Query.health are both non-null: all of data is null.
        let out = run(
            "{ health { status } }",
            serde_json::json!({ "health": {} }),
            &[&[field("health"), field("status")]],
        );
        assert_eq!(out, serde_json::Value::Null);
    }
}
