//! The shape of a document, measured before anything expands it: how many fields it
//! selects once every fragment spread is expanded, how deep it nests, how many root
//! fields an operation has, and whether (and how deeply) it introspects.
//!
//! Each fragment is measured once and remembered, so the work is linear in the
//! document's length whatever its spreads multiply to: a 1 KB document whose fragments
//! each spread the previous one twice expands to 2^30 fields, and is measured in a few
//! hundred steps. The counts saturate instead of overflowing. The guard refuses a
//! document over its bounds before validation or execution expand it, so everything
//! after this runs on a document of bounded expanded size.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Fields whose subtree is introspection (bounded by its own depth limit, because the
/// standard introspection query nests `ofType` deeper than ordinary queries go).
const INTROSPECTION_FIELDS: [&str; 2] = ["__schema", "__type"];

/// What the measure found, for the whole document.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Fields selected once every spread is expanded, over all operations.
    pub fields: u64,
    /// The most root fields of one operation, spreads expanded.
    pub root_fields: u64,
    /// The deepest field nesting outside introspection (a root field is depth 1;
    /// `__schema`/`__type` count as one level).
    pub depth: u64,
    /// The deepest nesting inside an introspection field, counted from the root.
    pub introspection_depth: u64,
    /// Whether any selected field is `__schema` or `__type`.
    pub introspects: bool,
    /// The deepest nesting of selection sets and spreads together: how deep a walker
    /// that follows spreads recurses.
    pub nesting: u64,
    /// The most directives on one selection.
    pub directives: u64,
    /// Selection items visited: the work done, linear in the document's length.
    pub steps: u64,
}

/// A document the measure cannot finish: a fragment that spreads itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentCycle(pub String);

/// One selection set's (or fragment's) figures.
#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    fields: u64,
    /// Fields at this set's own level (spreads and inline fragments looked through).
    top: u64,
    depth: u64,
    /// Nesting counting every field, introspection included.
    full_depth: u64,
    introspection_depth: u64,
    introspects: bool,
    nesting: u64,
    directives: u64,
}

enum Memo {
    Measuring,
    Done(Figures),
}

struct Measure<'a> {
    doc: &'a ExecutableDocument,
    memo: HashMap<&'a str, Memo>,
    steps: u64,
}

/// Measures `doc`; linear in its length.
pub fn measure(doc: &ExecutableDocument) -> Result<Shape, FragmentCycle> {
    let mut m = Measure {
        doc,
        memo: HashMap::with_capacity(doc.fragments.len()),
        steps: 0,
    };
    let mut shape = Shape::default();
    for (_, op) in doc.operations.iter() {
        let f = m.set(&op.node.selection_set.node)?;
        shape.fields = shape.fields.saturating_add(f.fields);
        shape.root_fields = shape.root_fields.max(f.top);
        shape.depth = shape.depth.max(f.depth);
        shape.introspection_depth = shape.introspection_depth.max(f.introspection_depth);
        shape.introspects |= f.introspects;
        shape.nesting = shape.nesting.max(f.nesting);
        shape.directives = shape.directives.max(f.directives);
    }
    shape.steps = m.steps;
    Ok(shape)
}

impl<'a> Measure<'a> {
    fn set(&mut self, set: &'a SelectionSet) -> Result<Figures, FragmentCycle> {
        let mut out = Figures::default();
        for item in &set.items {
            self.steps += 1;
            let inner = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let child = self.set(&field.selection_set.node)?;
                    let directives = (field.directives.len() as u64).max(child.directives);
                    let introspection = INTROSPECTION_FIELDS.contains(&field.name.node.as_str());
                    let full_depth = child.full_depth + 1;
                    Figures {
                        fields: child.fields.saturating_add(1),
                        top: 1,
                        depth: if introspection { 1 } else { child.depth + 1 },
                        full_depth,
                        introspection_depth: if introspection {
                            full_depth
                        } else if child.introspection_depth > 0 {
                            child.introspection_depth + 1
                        } else {
                            0
                        },
                        introspects: introspection || child.introspects,
                        nesting: child.nesting + 1,
                        directives,
                    }
                }
                Selection::InlineFragment(inline) => {
                    let mut f = self.set(&inline.node.selection_set.node)?;
                    f.nesting += 1;
                    f.directives = f.directives.max(inline.node.directives.len() as u64);
                    f
                }
                Selection::FragmentSpread(spread) => {
                    let mut f = self.fragment(spread.node.fragment_name.node.as_str())?;
                    f.nesting += 1;
                    f.directives = f.directives.max(spread.node.directives.len() as u64);
                    f
                }
            };
            out.fields = out.fields.saturating_add(inner.fields);
            out.top = out.top.saturating_add(inner.top);
            out.depth = out.depth.max(inner.depth);
            out.full_depth = out.full_depth.max(inner.full_depth);
            out.introspection_depth = out.introspection_depth.max(inner.introspection_depth);
            out.introspects |= inner.introspects;
            out.nesting = out.nesting.max(inner.nesting);
            out.directives = out.directives.max(inner.directives);
        }
        Ok(out)
    }

    /// A fragment's figures, measured on its first spread and remembered. An unknown
    /// fragment measures as empty (validation reports it).
    fn fragment(&mut self, name: &'a str) -> Result<Figures, FragmentCycle> {
        match self.memo.get(name) {
            Some(Memo::Done(figures)) => return Ok(*figures),
            Some(Memo::Measuring) => return Err(FragmentCycle(name.to_owned())),
            None => {}
        }
        let Some((key, fragment)) = self.doc.fragments.get_key_value(name) else {
            return Ok(Figures::default());
        };
        self.memo.insert(key.as_str(), Memo::Measuring);
        let figures = self.set(&fragment.node.selection_set.node)?;
        self.memo.insert(key.as_str(), Memo::Done(figures));
        Ok(figures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    /// Fragment `F{levels}`, each level spreading the one below twice.
    pub(crate) fn bomb(levels: usize, leaf: &str) -> String {
        let mut doc = format!("query {{ ...F{levels} }}\nfragment F0 on Query {{ {leaf} }}\n");
        for i in 1..=levels {
            doc += &format!("fragment F{i} on Query {{ ...F{} ...F{} }}\n", i - 1, i - 1);
        }
        doc
    }

    #[test]
    fn counts_each_fragment_once() {
        let doc = parse_query(bomb(30, "__typename")).unwrap();
        let shape = measure(&doc).unwrap();
        assert_eq!(shape.fields, 1 << 30);
        assert_eq!(shape.root_fields, 1 << 30);
        assert_eq!(shape.depth, 1);
        assert_eq!(shape.nesting, 32);
        // One step per selection item in the text: 1 + 1 + 2 * 30.
        assert_eq!(shape.steps, 62);
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        let doc = parse_query(bomb(80, "__typename")).unwrap();
        assert_eq!(measure(&doc).unwrap().fields, u64::MAX);
    }

    #[test]
    fn depth_and_introspection_are_apart() {
        let doc = parse_query(
            "{ a { b { c } } __schema { types { ...T } } }
             fragment T on __Type { ofType { ofType { ofType { name } } } }",
        )
        .unwrap();
        let shape = measure(&doc).unwrap();
        assert_eq!(shape.depth, 3);
        assert!(shape.introspects);
        // __schema > types > ofType > ofType > ofType > name
        assert_eq!(shape.introspection_depth, 6);
        assert_eq!(shape.root_fields, 2);
        assert_eq!(shape.fields, 9);
    }

    #[test]
    fn graphql_js_introspection_fits_the_introspection_bound() {
        // graphql-js 16.11's getIntrospectionQuery() with every option on.
        let text = include_str!("../../tests/fixtures/introspection.graphql");
        let shape = measure(&parse_query(text).unwrap()).unwrap();
        assert!(shape.introspects);
        assert_eq!(
            shape.depth, 1,
            "only __schema counts toward the ordinary depth"
        );
        assert_eq!(shape.introspection_depth, 15);
        assert!(shape.nesting <= crate::graphql::guard::MAX_NESTING);
        assert!(shape.fields < 2_000, "{} fields", shape.fields);
    }

    #[test]
    fn a_cycle_is_found_not_followed() {
        let doc = parse_query("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
            .unwrap();
        assert!(measure(&doc).is_err());
    }
}
