//! Astake's token assets and the rule "the chain is the source of truth".
//!
//! Every write names its writer (the chain indexer, or any other writer by name) and the
//! block its values hold at. For each field a write carries, against the stored value:
//! - equal: nothing changes (an indexer confirming another writer's value takes it over);
//! - no stored value: the write sets it;
//! - an indexer write over an indexer value: the higher block wins (a lower one is stale);
//! - an indexer write over another writer's value: the indexer wins, and the disagreement
//!   is a conflict resolved by the rule (`chain`);
//! - another writer over an indexer value: the indexer's value stays, and the conflict is
//!   resolved by the rule;
//! - a writer over its own value: the higher block wins;
//! - two other writers disagreeing: the stored value stays and the conflict is open, for
//!   an admin to keep it or replace it with the other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The fields a token asset has, besides its id.
pub const FIELDS: [&str; 4] = ["owner", "value", "verified", "contract"];

/// Who wrote a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    pub name: String,
    pub indexer: bool,
}

/// Who wrote a field's value, at which block, and when (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub source: String,
    pub indexer: bool,
    pub block: i64,
    pub at: i64,
}

/// A disagreement between two writers over some fields of one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictDraft {
    pub fields: Vec<String>,
    /// The values in force after the write, and who wrote them.
    pub kept: BTreeMap<String, Value>,
    pub kept_source: String,
    pub kept_block: i64,
    /// The values that lost, or await review.
    pub other: BTreeMap<String, Value>,
    pub other_source: String,
    pub other_block: i64,
    /// Open for an admin (two writers neither of which is the indexer), else resolved by
    /// the rule.
    pub open: bool,
}

/// What a write does to one entity.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Fields to set, with their new provenance.
    pub apply: Vec<(String, Value, Provenance)>,
    /// Fields a write carried that were older than the stored value's block (ignored).
    pub stale: Vec<String>,
    pub conflicts: Vec<ConflictDraft>,
}

/// What `writer`'s values at `block` do to the stored values and their provenance.
pub fn decide(
    stored: &BTreeMap<String, Value>,
    provenance: &BTreeMap<String, Provenance>,
    incoming: &BTreeMap<String, Value>,
    writer: &Writer,
    block: i64,
    now: i64,
) -> Plan {
    let mine = Provenance {
        source: writer.name.clone(),
        indexer: writer.indexer,
        block,
        at: now,
    };
    let mut plan = Plan::default();
    // Conflicts grouped by the other side's writer and block, and by outcome.
    let mut groups: BTreeMap<(String, i64, bool, bool), ConflictDraft> = BTreeMap::new();
    for (field, value) in incoming {
        let (Some(old), Some(by)) = (stored.get(field), provenance.get(field)) else {
            plan.apply
                .push((field.clone(), value.clone(), mine.clone()));
            continue;
        };
        if old == value {
            if writer.indexer && !by.indexer {
                plan.apply
                    .push((field.clone(), value.clone(), mine.clone()));
            }
            continue;
        }
        let same_side =
            by.indexer == writer.indexer && (writer.indexer || by.source == writer.name);
        if same_side {
            if block >= by.block {
                plan.apply
                    .push((field.clone(), value.clone(), mine.clone()));
            } else {
                plan.stale.push(field.clone());
            }
            continue;
        }
        // (incoming wins, open)
        let (wins, open) = match (writer.indexer, by.indexer) {
            (true, _) => (true, false),
            (false, true) => (false, false),
            (false, false) => (false, true),
        };
        if wins {
            plan.apply
                .push((field.clone(), value.clone(), mine.clone()));
        }
        let entry = groups
            .entry((by.source.clone(), by.block, wins, open))
            .or_insert_with(|| {
                let (kept_source, kept_block, other_source, other_block) = if wins {
                    (writer.name.clone(), block, by.source.clone(), by.block)
                } else {
                    (by.source.clone(), by.block, writer.name.clone(), block)
                };
                ConflictDraft {
                    fields: Vec::new(),
                    kept: BTreeMap::new(),
                    kept_source,
                    kept_block,
                    other: BTreeMap::new(),
                    other_source,
                    other_block,
                    open,
                }
            });
        entry.fields.push(field.clone());
        let (kept, other) = if wins { (value, old) } else { (old, value) };
        entry.kept.insert(field.clone(), kept.clone());
        entry.other.insert(field.clone(), other.clone());
    }
    plan.conflicts = groups.into_values().collect();
    plan
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn by(source: &str, indexer: bool, block: i64) -> Provenance {
        Provenance {
            source: source.into(),
            indexer,
            block,
            at: 0,
        }
    }

    fn writer(name: &str, indexer: bool) -> Writer {
        Writer {
            name: name.into(),
            indexer,
        }
    }

    #[test]
    fn the_indexer_wins_and_the_rule_resolves() {
        let stored = map(&[("owner", json!("a")), ("value", json!("10"))]);
        let prov = [
            ("owner", by("api", false, 5)),
            ("value", by("api", false, 5)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let incoming = map(&[("owner", json!("b")), ("value", json!("10"))]);
        let plan = decide(&stored, &prov, &incoming, &writer("indexer", true), 7, 1);
        // owner replaced (conflict resolved by the chain), value confirmed by the chain.
        assert_eq!(plan.apply.len(), 2);
        assert_eq!(plan.conflicts.len(), 1);
        let c = &plan.conflicts[0];
        assert!(!c.open);
        assert_eq!(c.fields, ["owner"]);
        assert_eq!(c.kept["owner"], json!("b"));
        assert_eq!((c.kept_source.as_str(), c.kept_block), ("indexer", 7));
        assert_eq!((c.other_source.as_str(), c.other_block), ("api", 5));
    }

    #[test]
    fn another_writer_loses_to_the_indexer_and_two_writers_are_flagged() {
        let stored = map(&[("owner", json!("a")), ("value", json!("10"))]);
        let prov: BTreeMap<String, Provenance> = [
            ("owner", by("indexer", true, 9)),
            ("value", by("oracle", false, 9)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let incoming = map(&[("owner", json!("z")), ("value", json!("12"))]);
        let plan = decide(&stored, &prov, &incoming, &writer("api", false), 10, 1);
        assert!(plan.apply.is_empty(), "{plan:?}");
        assert_eq!(plan.conflicts.len(), 2);
        let chain = plan.conflicts.iter().find(|c| !c.open).expect("rule");
        assert_eq!(chain.kept["owner"], json!("a"));
        let open = plan.conflicts.iter().find(|c| c.open).expect("open");
        assert_eq!(open.fields, ["value"]);
        assert_eq!(open.kept_source, "oracle");
        assert_eq!(open.other["value"], json!("12"));
    }

    #[test]
    fn blocks_order_one_sides_writes() {
        let stored = map(&[("owner", json!("a"))]);
        let prov: BTreeMap<String, Provenance> = [("owner".to_owned(), by("indexer", true, 9))]
            .into_iter()
            .collect();
        let older = decide(
            &stored,
            &prov,
            &map(&[("owner", json!("b"))]),
            &writer("indexer", true),
            8,
            1,
        );
        assert_eq!(older.stale, ["owner"]);
        assert!(older.apply.is_empty() && older.conflicts.is_empty());
        let newer = decide(
            &stored,
            &prov,
            &map(&[("owner", json!("b"))]),
            &writer("indexer", true),
            10,
            1,
        );
        assert_eq!(newer.apply.len(), 1);
        assert!(newer.conflicts.is_empty());
    }
}
