//! Validation errors about variables, worded so that they name the variable: the engine
//! reports a variable's bad value against the argument it feeds ("Invalid value for
//! argument "first", expected type "Int"") and a missing one as not defined, which sends
//! a client looking in the wrong place.

use std::collections::HashMap;

use async_graphql::{
    parser::types::{Selection, SelectionSet},
    Pos, ServerError,
};

/// Rewrites the messages of `errors` about variables of the operation in `query`.
pub fn name_variables(query: &str, errors: &mut [ServerError]) {
    let Ok(doc) = async_graphql::parser::parse_query(query) else {
        return;
    };
    // Where each argument fed by a variable is written, and each field's lone variable.
    let mut arguments: HashMap<Pos, String> = HashMap::new();
    let mut fields: HashMap<Pos, String> = HashMap::new();
    let mut defined: Vec<String> = Vec::new();
    for (_, op) in doc.operations.iter() {
        defined.extend(
            op.node
                .variable_definitions
                .iter()
                .map(|v| v.node.name.node.to_string()),
        );
        collect(&op.node.selection_set.node, &mut arguments, &mut fields);
    }
    for fragment in doc.fragments.values() {
        collect(
            &fragment.node.selection_set.node,
            &mut arguments,
            &mut fields,
        );
    }
    for err in errors {
        let Some(at) = err.locations.first().copied() else {
            continue;
        };
        if let Some(rest) = err.message.strip_prefix("Invalid value for argument ") {
            if let Some(variable) = arguments.get(&at) {
                err.message =
                    format!("Variable \"${variable}\" got an invalid value for argument {rest}");
            }
        } else if err.message.starts_with("Expected input type ") {
            if let Some(variable) = fields.get(&at) {
                err.message = format!("Variable \"${variable}\": {}", err.message);
            }
        } else if let Some(name) = err
            .message
            .strip_prefix("Variable ")
            .and_then(|m| m.strip_suffix(" is not defined."))
        {
            if defined.iter().any(|d| d == name) {
                err.message = format!("Variable \"${name}\" is required and was not provided");
            }
        }
    }
}

fn collect(
    set: &SelectionSet,
    arguments: &mut HashMap<Pos, String>,
    fields: &mut HashMap<Pos, String>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let mut variables = Vec::new();
                for (name, value) in &field.node.arguments {
                    // A bare variable displays as `$name` (a list or object holding one
                    // starts with a bracket).
                    let text = value.node.to_string();
                    if let Some(variable) = text.strip_prefix('$') {
                        arguments.insert(name.pos, variable.to_owned());
                        variables.push(variable.to_owned());
                    }
                }
                if let [only] = variables.as_slice() {
                    fields.insert(field.pos, only.clone());
                }
                collect(&field.node.selection_set.node, arguments, fields);
            }
            Selection::InlineFragment(inline) => {
                collect(&inline.node.selection_set.node, arguments, fields)
            }
            Selection::FragmentSpread(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_variable() {
        let query = "query($n: Int!) { users(first: $n) { edges { cursor } } }";
        let mut errors = vec![
            ServerError::new(
                "Invalid value for argument \"first\", expected type \"Int\"",
                Some(Pos {
                    line: 1,
                    column: 25,
                }),
            ),
            ServerError::new(
                "Expected input type \"Int\", found \"x\".",
                Some(Pos {
                    line: 1,
                    column: 19,
                }),
            ),
            ServerError::new(
                "Variable n is not defined.",
                Some(Pos {
                    line: 1,
                    column: 19,
                }),
            ),
        ];
        name_variables(query, &mut errors);
        assert_eq!(
            errors[0].message,
            "Variable \"$n\" got an invalid value for argument \"first\", expected type \"Int\""
        );
        assert_eq!(
            errors[1].message,
            "Variable \"$n\": Expected input type \"Int\", found \"x\"."
        );
        assert_eq!(
            errors[2].message,
            "Variable \"$n\" is required and was not provided"
        );
    }
}
