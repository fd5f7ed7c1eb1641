//! Domain events as a caller sends them, checked into what PostgreSQL records.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use super::kinds::Kinds;
use crate::{
    error::Error,
    store::postgres::NewEvent,
    values::{Address, ChainFamily},
};

/// The longest idempotency key, in characters.
const MAX_ID: usize = 128;
/// Earliest event time accepted: 2009-01-03, the first Bitcoin block.
const MIN_OCCURRED_AT: i64 = 1_230_940_800;
/// How far in the future an event may be stamped (clock skew), in seconds.
const MAX_FUTURE_SECS: i64 = 300;
/// `numeric(38, 18)`: 20 integer digits.
const MAX_INTEGER_DIGITS: u32 = 20;

/// An event as sent, before any check.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub id: String,
    pub kind: String,
    pub subject: String,
    pub chain: Option<ChainFamily>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub amount: Option<String>,
    pub attributes: Value,
    pub tx_hash: Option<String>,
    pub block_number: Option<i32>,
    pub artifact: Option<String>,
}

/// Checks a draft against the kinds and the rules of each field; `field` names it in
/// errors (`events[3]`). The digest covers the body as sent (a draft without a time gets
/// `now`, and a retry of it without a time is still the same body).
pub fn check(
    kinds: &Kinds,
    field: &str,
    draft: EventDraft,
    now: DateTime<Utc>,
) -> Result<NewEvent, Error> {
    let id = draft.id.trim();
    if id.is_empty() || id.chars().count() > MAX_ID || id.chars().any(char::is_control) {
        return Err(Error::field(
            format!("{field}.id"),
            format!("must be 1 to {MAX_ID} printable characters"),
        ));
    }
    let attributes = kinds.check(field, &draft.kind, &draft.attributes)?;
    let subject = match draft.chain {
        Some(family) => Address::parse_as(family, &draft.subject),
        None => Address::parse(&draft.subject),
    }
    .map_err(|rule| Error::field(format!("{field}.subject"), rule))?;
    if let Some(at) = draft.occurred_at {
        if at.timestamp() < MIN_OCCURRED_AT || at.timestamp() > now.timestamp() + MAX_FUTURE_SECS {
            return Err(Error::field(
                format!("{field}.occurredAt"),
                "must be between 2009-01-03 and 5 minutes from now",
            ));
        }
    }
    let amount = draft
        .amount
        .as_deref()
        .map(|text| parse_amount(text).map_err(|m| Error::field(format!("{field}.amount"), m)))
        .transpose()?;
    if let Some(rule) = kinds.get(&draft.kind).and_then(|k| k.amount) {
        match amount {
            None if rule.required => {
                return Err(Error::field(
                    format!("{field}.amount"),
                    format!("is required for {} events", draft.kind),
                ))
            }
            Some(a) if rule.positive && a <= Decimal::ZERO => {
                return Err(Error::field(
                    format!("{field}.amount"),
                    format!("must be more than 0 for {} events", draft.kind),
                ))
            }
            _ => {}
        }
    }
    let tx_hash = draft
        .tx_hash
        .as_deref()
        .map(|text| {
            tx_hash(text, subject.family()).map_err(|m| Error::field(format!("{field}.txHash"), m))
        })
        .transpose()?;
    if draft.block_number.is_some_and(|b| b < 0) {
        return Err(Error::field(
            format!("{field}.blockNumber"),
            "must not be negative",
        ));
    }
    let artifact = draft
        .artifact
        .as_deref()
        .map(|text| {
            super::artifact_cid(text).map_err(|m| Error::field(format!("{field}.artifact"), m))
        })
        .transpose()?;
    let attributes = Value::Object(attributes);
    let body = serde_json::json!({
        "kind": draft.kind,
        "subject": [subject.family().as_str(), subject.as_str()],
        "occurredAt": draft.occurred_at.map(|t| t.timestamp_micros()),
        "amount": amount.map(|a| a.to_string()),
        "attributes": attributes,
        "txHash": tx_hash,
        "blockNumber": draft.block_number,
        "artifact": artifact,
    });
    Ok(NewEvent {
        uid: Uuid::new_v4(),
        id: id.to_owned(),
        kind: draft.kind,
        subject_chain: subject.family().as_str(),
        subject: subject.as_str().to_owned(),
        occurred_at: draft.occurred_at.unwrap_or(now),
        amount,
        attributes,
        tx_hash,
        block_number: draft.block_number.map(i64::from),
        artifact,
        // serde_json's maps are ordered by key, so equal bodies have equal text.
        digest: crate::digest::sha256_hex(&body.to_string()),
    })
}

/// A decimal that fits `numeric(38, 18)`, in its normal form.
fn parse_amount(text: &str) -> Result<Decimal, String> {
    let value: Decimal = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a decimal number"))?;
    if value.scale() > 18 && value.round_dp(18) != value {
        return Err("has more than 18 decimal places".into());
    }
    if value
        .abs()
        .trunc()
        .to_string()
        .trim_start_matches('-')
        .len()
        > MAX_INTEGER_DIGITS as usize
    {
        return Err(format!("has more than {MAX_INTEGER_DIGITS} integer digits"));
    }
    Ok(value.normalize())
}

/// A transaction hash: 64 hex digits, kept lowercase, with `0x` for EVM subjects and
/// without for Stellar and Casper (the way each chain's explorers show them).
fn tx_hash(text: &str, family: ChainFamily) -> Result<String, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("must be 64 hex digits".into());
    }
    let digits = digits.to_ascii_lowercase();
    Ok(match family {
        ChainFamily::Evm => format!("0x{digits}"),
        ChainFamily::Stellar | ChainFamily::Casper => digits,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::kinds::KindsFile;

    const FARMER: &str = "GAOQJGUAB7NI7K7I62ORBXMN3J4SSWQUQ7FOEPSDJ322W2HMCNWPHXFB";

    fn kinds() -> Kinds {
        Kinds::new(
            KindsFile::parse(crate::domain::kinds::BUILTIN)
                .expect("parses")
                .kinds,
        )
    }

    fn draft() -> EventDraft {
        EventDraft {
            id: "plant-1".into(),
            kind: "farming_plant".into(),
            subject: FARMER.into(),
            chain: None,
            occurred_at: None,
            amount: Some("1000.500".into()),
            attributes: json!({"stake": "1000.5"}),
            tx_hash: Some("AB".repeat(32)),
            block_number: Some(12_345),
            artifact: None,
        }
    }

    #[test]
    fn a_retry_without_a_time_has_the_same_digest() {
        let now = Utc::now();
        let first = check(&kinds(), "e", draft(), now).expect("valid");
        let again =
            check(&kinds(), "e", draft(), now + chrono::Duration::seconds(30)).expect("valid");
        assert_eq!(first.digest, again.digest);
        assert_eq!(first.amount, Some(Decimal::new(10005, 1)));
        assert_eq!(first.tx_hash.as_deref(), Some("ab".repeat(32).as_str()));
        let mut other = draft();
        other.amount = Some("1000.6".into());
        assert_ne!(
            check(&kinds(), "e", other, now).expect("valid").digest,
            first.digest
        );
    }

    type Change = Box<dyn Fn(&mut EventDraft)>;

    #[test]
    fn each_bad_field_is_named() {
        let now = Utc::now();
        let cases: Vec<(&str, Change)> = vec![
            ("e.id", Box::new(|d| d.id = String::new())),
            ("e.id", Box::new(|d| d.id = "x".repeat(129))),
            (
                "e.subject",
                Box::new(|d| d.subject = FARMER.replace('B', "C")),
            ),
            ("e.subject", Box::new(|d| d.chain = Some(ChainFamily::Evm))),
            ("e.amount", Box::new(|d| d.amount = Some("1e400".into()))),
            (
                "e.amount",
                Box::new(|d| d.amount = Some("123456789012345678901".into())),
            ),
            (
                "e.amount",
                Box::new(|d| d.amount = Some("0.0000000000000000001".into())),
            ),
            ("e.txHash", Box::new(|d| d.tx_hash = Some("0x1234".into()))),
            ("e.blockNumber", Box::new(|d| d.block_number = Some(-1))),
            (
                "e.artifact",
                Box::new(|d| d.artifact = Some("not-a-cid".into())),
            ),
            (
                "e.occurredAt",
                Box::new(|d| d.occurred_at = Some(Utc::now() + chrono::Duration::hours(1))),
            ),
            (
                "e.attributes.stake",
                Box::new(|d| d.attributes = json!({"stake": [1]})),
            ),
        ];
        for (field, change) in cases {
            let mut d = draft();
            change(&mut d);
            match check(&kinds(), "e", d, now) {
                Err(Error::InvalidField { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
