//! Event kinds: what each kind of domain event carries.
//!
//! Kinds are declared in a versioned file, `catalogue/kinds.json` (compiled into the
//! binary; `meridian migrate --kinds FILE` applies another), which `migrate` writes to
//! PostgreSQL's `event_kinds` table. Every instance reads that table when it records
//! events, so all instances check events against the same definitions, and a new kind
//! needs no release of Meridian: edit the file, run `migrate`.
//!
//! A definition names the kind and its attributes with their types. An event of an
//! undeclared kind, with an undeclared attribute, without a required one, or with one of
//! the wrong type is refused, naming the field.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The catalogue compiled into the binary.
pub const BUILTIN: &str = include_str!("../../catalogue/kinds.json");

/// The longest string attribute accepted, in characters.
const MAX_STRING: usize = 512;
/// The longest hash accepted, in hex digits (without `0x`).
const MAX_HASH_DIGITS: usize = 128;

/// A kinds file: its version and its definitions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindsFile {
    pub version: i32,
    pub kinds: Vec<KindDef>,
    /// The boards (see [`super::boards`]); a file without this key leaves the boards in
    /// force as they are.
    #[serde(default)]
    pub boards: Option<Vec<super::boards::BoardDef>>,
}

impl KindsFile {
    /// Parses and checks a kinds file: names well formed and unique.
    pub fn parse(text: &str) -> anyhow::Result<KindsFile> {
        let file: KindsFile = serde_json::from_str(text)?;
        let mut seen = std::collections::HashSet::new();
        for kind in &file.kinds {
            anyhow::ensure!(
                is_name(&kind.name),
                "kind name {:?}: use 1 to 63 lowercase letters, digits and underscores, starting with a letter",
                kind.name
            );
            anyhow::ensure!(
                seen.insert(&kind.name),
                "kind {} is declared twice",
                kind.name
            );
            for attribute in kind.attributes.keys() {
                anyhow::ensure!(
                    is_name(attribute),
                    "kind {}: attribute name {attribute:?} is not a lowercase identifier",
                    kind.name
                );
            }
        }
        if let Some(boards) = &file.boards {
            super::boards::check_all(boards, &file.kinds)?;
        }
        Ok(file)
    }
}

pub(crate) fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// One kind's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeDef>,
    /// What the kind asks of an event's amount; none: optional, any decimal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<AmountRule>,
}

/// What a kind asks of an event's amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountRule {
    /// An event of the kind must carry an amount.
    #[serde(default)]
    pub required: bool,
    /// The amount must be more than 0.
    #[serde(default)]
    pub positive: bool,
}

/// One attribute of a kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeDef {
    #[serde(rename = "type")]
    pub kind: AttributeType,
    #[serde(default)]
    pub required: bool,
}

/// The types an attribute may have, and the JSON each accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributeType {
    /// A JSON string of at most 512 characters.
    String,
    /// A JSON number without a fraction (64-bit).
    Integer,
    /// A decimal number, as a JSON string or number; kept as a string.
    Decimal,
    Boolean,
    /// Hex digits (even count, at most 128), with or without `0x`; kept as lowercase `0x…`.
    Hash,
    /// An RFC 3339 date and time; kept in UTC.
    Timestamp,
}

impl AttributeType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::String => "string",
            AttributeType::Integer => "integer",
            AttributeType::Decimal => "decimal",
            AttributeType::Boolean => "boolean",
            AttributeType::Hash => "hash",
            AttributeType::Timestamp => "timestamp",
        }
    }

    /// The attribute's value in its one normal form, or why it is not one.
    fn normalize(self, value: &Value) -> Result<Value, String> {
        let wrong = || format!("expected a {} value", self.as_str());
        match self {
            AttributeType::String => match value {
                Value::String(s) if s.chars().count() <= MAX_STRING => Ok(value.clone()),
                Value::String(_) => Err(format!("longer than {MAX_STRING} characters")),
                _ => Err(wrong()),
            },
            AttributeType::Integer => match value {
                Value::Number(n) if n.is_i64() => Ok(value.clone()),
                Value::Number(n) if n.is_u64() => Err("out of the 64-bit range".into()),
                _ => Err(wrong()),
            },
            AttributeType::Decimal => {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(wrong()),
                };
                let parsed = text
                    .parse::<Decimal>()
                    .or_else(|_| Decimal::from_scientific(&text))
                    .map_err(|_| format!("{text:?} is not a decimal number"))?;
                Ok(Value::String(parsed.normalize().to_string()))
            }
            AttributeType::Boolean => match value {
                Value::Bool(_) => Ok(value.clone()),
                _ => Err(wrong()),
            },
            AttributeType::Hash => {
                let Value::String(s) = value else {
                    return Err(wrong());
                };
                let digits = s.strip_prefix("0x").unwrap_or(s);
                if digits.is_empty()
                    || digits.len() % 2 != 0
                    || digits.len() > MAX_HASH_DIGITS
                    || !digits.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Err(format!(
                        "expected an even number (2 to {MAX_HASH_DIGITS}) of hex digits"
                    ));
                }
                Ok(Value::String(format!("0x{}", digits.to_ascii_lowercase())))
            }
            AttributeType::Timestamp => {
                let Value::String(s) = value else {
                    return Err(wrong());
                };
                let at = chrono::DateTime::parse_from_rfc3339(s)
                    .map_err(|_| format!("{s:?} is not an RFC 3339 date and time"))?;
                Ok(Value::String(
                    at.with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                ))
            }
        }
    }
}

/// The kinds in force, by name.
#[derive(Debug, Clone, Default)]
pub struct Kinds(HashMap<String, KindDef>);

impl Kinds {
    pub fn new(defs: impl IntoIterator<Item = KindDef>) -> Kinds {
        Kinds(defs.into_iter().map(|d| (d.name.clone(), d)).collect())
    }

    pub fn get(&self, name: &str) -> Option<&KindDef> {
        self.0.get(name)
    }

    /// Checks an event's attributes against its kind; returns them in normal form.
    /// `field` names the event's input in errors (e.g. `events[3]`).
    pub fn check(
        &self,
        field: &str,
        kind: &str,
        attributes: &Value,
    ) -> Result<Map<String, Value>, crate::Error> {
        let invalid = |path: String, message: String| crate::Error::InvalidField {
            field: path,
            message,
        };
        let Some(def) = self.get(kind) else {
            return Err(invalid(
                format!("{field}.kind"),
                format!("no event kind {kind:?} is declared"),
            ));
        };
        let empty = Map::new();
        let given = match attributes {
            Value::Object(map) => map,
            Value::Null => &empty,
            _ => {
                return Err(invalid(
                    format!("{field}.attributes"),
                    "expected an object".into(),
                ))
            }
        };
        let mut out = Map::new();
        for (name, value) in given {
            let path = format!("{field}.attributes.{name}");
            let Some(attribute) = def.attributes.get(name) else {
                return Err(invalid(
                    path,
                    format!("kind {kind} declares no such attribute"),
                ));
            };
            if value.is_null() {
                if attribute.required {
                    return Err(invalid(path, "is required".into()));
                }
                continue;
            }
            let normal = attribute
                .kind
                .normalize(value)
                .map_err(|message| invalid(path, message))?;
            out.insert(name.clone(), normal);
        }
        if let Some(missing) = def
            .attributes
            .iter()
            .find(|(name, a)| a.required && !out.contains_key(*name))
        {
            return Err(invalid(
                format!("{field}.attributes.{}", missing.0),
                format!("is required by kind {kind}"),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn kinds() -> Kinds {
        Kinds::new(
            KindsFile::parse(BUILTIN)
                .expect("the built-in file parses")
                .kinds,
        )
    }

    #[test]
    fn attributes_are_kept_in_one_normal_form() {
        let out = kinds()
            .check(
                "events[0]",
                "farming_work",
                &json!({"work_hash": "ABCDEF01", "zeros": 7}),
            )
            .expect("valid");
        assert_eq!(out["work_hash"], json!("0xabcdef01"));
        assert_eq!(out["zeros"], json!(7));
        let out = kinds()
            .check("e", "farming_plant", &json!({"stake": 1000.50}))
            .expect("valid");
        assert_eq!(out["stake"], json!("1000.5"));
    }

    #[test]
    fn each_wrong_attribute_is_named() {
        let cases = [
            ("nope", json!({}), "events[2].kind"),
            ("farming_plant", json!({}), "events[2].attributes.stake"),
            (
                "farming_plant",
                json!({"stake": "ten"}),
                "events[2].attributes.stake",
            ),
            (
                "farming_plant",
                json!({"stake": true}),
                "events[2].attributes.stake",
            ),
            (
                "farming_plant",
                json!({"stake": "1", "extra": 1}),
                "events[2].attributes.extra",
            ),
            (
                "farming_work",
                json!({"work_hash": "0xabc"}),
                "events[2].attributes.work_hash",
            ),
            (
                "farming_work",
                json!({"work_hash": "zz"}),
                "events[2].attributes.work_hash",
            ),
            (
                "farming_work",
                json!({"work_hash": "ab", "zeros": 1.5}),
                "events[2].attributes.zeros",
            ),
            ("farming_plant", json!([1]), "events[2].attributes"),
        ];
        for (kind, attributes, field) in cases {
            match kinds().check("events[2]", kind, &attributes) {
                Err(crate::Error::InvalidField { field: got, .. }) => {
                    assert_eq!(got, field, "{kind} {attributes}")
                }
                other => panic!("{kind} {attributes}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_kinds_file_with_a_bad_or_repeated_name_is_refused() {
        let twice = r#"{"version":1,"kinds":[{"name":"a"},{"name":"a"}]}"#;
        assert!(KindsFile::parse(twice).is_err());
        let upper = r#"{"version":1,"kinds":[{"name":"Plant"}]}"#;
        assert!(KindsFile::parse(upper).is_err());
        let unknown_type =
            r#"{"version":1,"kinds":[{"name":"a","attributes":{"x":{"type":"blob"}}}]}"#;
        assert!(KindsFile::parse(unknown_type).is_err());
    }
}
