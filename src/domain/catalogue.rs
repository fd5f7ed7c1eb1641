//! The writable catalogue: assets, protocols, pools and markets as sent, checked into what
//! PostgreSQL keeps (and the free-form metadata MongoDB keeps beside each).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::{
    error::Error,
    values::{Address, Symbol},
};

/// The longest name or title, in characters.
const MAX_NAME: usize = 100;
/// The longest prediction-market question, in characters.
const MAX_QUESTION: usize = 500;
/// The most chains a protocol lists, the most assets a pool holds.
const MAX_CHAINS: usize = 32;
const MIN_POOL_ASSETS: usize = 1;
const MAX_POOL_ASSETS: usize = 8;
/// The largest metadata document, as JSON text, and its deepest nesting.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
const MAX_METADATA_DEPTH: usize = 8;
/// Tags per asset, and their length.
const MAX_TAGS: usize = 20;
const MAX_TAG: usize = 32;

/// An asset to add or update.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAsset {
    pub symbol: String,
    pub name: String,
    pub chain: String,
    pub decimals: i32,
    /// As stored: token, lp_token, staking_derivative, nft_collection.
    pub kind: &'static str,
    pub metadata: Option<AssetMetadata>,
}

/// The asset's MongoDB document.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetMetadata {
    pub description: String,
    pub website: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewProtocol {
    pub id: String,
    pub name: String,
    pub category: &'static str,
    pub risk: &'static str,
    pub chains: Vec<String>,
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewPool {
    pub id: String,
    pub protocol: String,
    /// Symbols, in order, unique.
    pub assets: Vec<String>,
    pub fee_bps: Option<i32>,
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewMarket {
    pub id: String,
    pub kind: &'static str,
    pub base: Option<String>,
    pub quote: Option<String>,
    pub question: Option<String>,
    pub creator: Option<Address>,
    pub target_price: Option<Decimal>,
    pub resolve_at: Option<DateTime<Utc>>,
    pub metadata: Option<Value>,
}

/// Whether `id` is a catalogue id: 1 to 64 of `a-z 0-9 _ -`, starting with a letter or
/// digit (challenges use the same rule).
pub fn check_id(field: &str, id: &str) -> Result<String, Error> {
    if super::challenges::is_id(id) {
        Ok(id.to_owned())
    } else {
        Err(Error::field(
            format!("{field}.id"),
            "must be 1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit",
        ))
    }
}

/// A name: trimmed, 1 to `max` printable characters.
fn text(field: String, value: &str, max: usize) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(Error::field(
            field,
            format!("must be 1 to {max} printable characters"),
        ));
    }
    Ok(value.to_owned())
}

/// An asset's or catalogue entry's name: 1 to 100 printable characters, trimmed.
pub fn check_name(field: &str, name: &str) -> Result<String, Error> {
    text(field.to_owned(), name, MAX_NAME)
}

fn symbol(field: String, value: &str) -> Result<String, Error> {
    Symbol::parse(value)
        .map(Symbol::into_string)
        .map_err(|rule| Error::field(field, rule))
}

/// A metadata document: a JSON object of at most [`MAX_METADATA_BYTES`] and
/// [`MAX_METADATA_DEPTH`] levels, with no key MongoDB would read as an operator or a path.
pub fn check_metadata(field: &str, value: Option<Value>) -> Result<Option<Value>, Error> {
    let Some(value) = value else { return Ok(None) };
    let at = format!("{field}.metadata");
    if !value.is_object() {
        return Err(Error::field(at, "must be a JSON object"));
    }
    if value.to_string().len() > MAX_METADATA_BYTES {
        return Err(Error::field(
            at,
            format!("must be at most {MAX_METADATA_BYTES} bytes of JSON"),
        ));
    }
    fn walk(value: &Value, depth: usize) -> Result<(), &'static str> {
        if depth > MAX_METADATA_DEPTH {
            return Err("nests too deeply");
        }
        match value {
            Value::Object(map) => map.iter().try_for_each(|(key, v)| {
                if key.is_empty() || key.starts_with('$') || key.contains('.') || key.contains('\0')
                {
                    return Err("has a key that is empty, starts with $ or holds a dot");
                }
                walk(v, depth + 1)
            }),
            Value::Array(items) => items.iter().try_for_each(|v| walk(v, depth + 1)),
            _ => Ok(()),
        }
    }
    walk(&value, 1).map_err(|rule| Error::field(at, rule))?;
    Ok(Some(value))
}

/// Checks an asset; `kind` is already the stored form.
pub fn check_asset(
    field: &str,
    symbol_text: &str,
    name: &str,
    chain: &str,
    decimals: i32,
    kind: &'static str,
    metadata: Option<AssetMetadata>,
) -> Result<NewAsset, Error> {
    let at = |name: &str| format!("{field}.{name}");
    if !(0..=36).contains(&decimals) {
        return Err(Error::field(at("decimals"), "must be 0 to 36"));
    }
    let metadata = metadata
        .map(|m| -> Result<AssetMetadata, Error> {
            if m.description.chars().count() > 2_000 {
                return Err(Error::field(
                    at("metadata.description"),
                    "must be at most 2,000 characters",
                ));
            }
            if let Some(site) = &m.website {
                if !(site.starts_with("https://") || site.starts_with("http://"))
                    || site.len() > 300
                {
                    return Err(Error::field(
                        at("metadata.website"),
                        "must be an http(s) URL of at most 300 characters",
                    ));
                }
            }
            let mut tags = Vec::with_capacity(m.tags.len());
            for tag in &m.tags {
                let tag = tag.trim().to_lowercase();
                if tag.is_empty() || tag.chars().count() > MAX_TAG {
                    return Err(Error::field(
                        at("metadata.tags"),
                        format!("each tag must be 1 to {MAX_TAG} characters"),
                    ));
                }
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
            if tags.len() > MAX_TAGS {
                return Err(Error::field(
                    at("metadata.tags"),
                    format!("at most {MAX_TAGS} tags"),
                ));
            }
            Ok(AssetMetadata { tags, ..m })
        })
        .transpose()?;
    Ok(NewAsset {
        symbol: symbol(at("symbol"), symbol_text)?,
        name: text(at("name"), name, MAX_NAME)?,
        chain: chain_name(at("chain"), chain)?,
        decimals,
        kind,
        metadata,
    })
}

/// A chain's name as the catalogue writes it: lowercase `a-z 0-9 -`, 1 to 50.
fn chain_name(field: String, chain: &str) -> Result<String, Error> {
    let chain = chain.trim().to_ascii_lowercase();
    if chain.is_empty()
        || chain.len() > 50
        || !chain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(Error::field(field, "must be 1 to 50 of a-z, 0-9 and -"));
    }
    Ok(chain)
}

pub fn check_protocol(
    field: &str,
    id: &str,
    name: &str,
    category: &'static str,
    risk: &'static str,
    chains: &[String],
    metadata: Option<Value>,
) -> Result<NewProtocol, Error> {
    let at = |name: &str| format!("{field}.{name}");
    if chains.is_empty() || chains.len() > MAX_CHAINS {
        return Err(Error::field(
            at("chains"),
            format!("must name 1 to {MAX_CHAINS} chains"),
        ));
    }
    let mut seen = Vec::with_capacity(chains.len());
    for chain in chains {
        let chain = chain_name(at("chains"), chain)?;
        if !seen.contains(&chain) {
            seen.push(chain);
        }
    }
    Ok(NewProtocol {
        id: check_id(field, id)?,
        name: text(at("name"), name, MAX_NAME)?,
        category,
        risk,
        chains: seen,
        metadata: check_metadata(field, metadata)?,
    })
}

pub fn check_pool(
    field: &str,
    id: &str,
    protocol: &str,
    assets: &[String],
    fee_bps: Option<i32>,
    metadata: Option<Value>,
) -> Result<NewPool, Error> {
    let at = |name: &str| format!("{field}.{name}");
    if assets.len() < MIN_POOL_ASSETS || assets.len() > MAX_POOL_ASSETS {
        return Err(Error::field(
            at("assets"),
            format!("must name {MIN_POOL_ASSETS} to {MAX_POOL_ASSETS} assets"),
        ));
    }
    let mut symbols: Vec<String> = Vec::with_capacity(assets.len());
    for a in assets {
        let s = symbol(at("assets"), a)?;
        if symbols.contains(&s) {
            return Err(Error::field(at("assets"), format!("names {s} twice")));
        }
        symbols.push(s);
    }
    if fee_bps.is_some_and(|f| !(0..=10_000).contains(&f)) {
        return Err(Error::field(
            at("feeBps"),
            "must be 0 to 10,000 basis points",
        ));
    }
    Ok(NewPool {
        id: check_id(field, id)?,
        protocol: check_id(&at("protocol"), protocol)
            .map_err(|_| Error::field(at("protocol"), "is not a protocol id"))?,
        assets: symbols,
        fee_bps,
        metadata: check_metadata(field, metadata)?,
    })
}

/// What a market is made of, before its check.
pub struct MarketDraft {
    pub id: String,
    pub kind: &'static str,
    pub base: Option<String>,
    pub quote: Option<String>,
    pub question: Option<String>,
    pub creator: Option<Address>,
    pub target_price: Option<String>,
    pub resolve_at: Option<DateTime<Utc>>,
    pub metadata: Option<Value>,
}

/// A spot market names its base and quote assets (and nothing of a prediction); a
/// prediction market its question and resolve time, and may name a creator, a target
/// price and the asset it is about (`base`).
pub fn check_market(field: &str, draft: MarketDraft) -> Result<NewMarket, Error> {
    let at = |name: &str| format!("{field}.{name}");
    let id = check_id(field, &draft.id)?;
    let base = draft.base.map(|b| symbol(at("base"), &b)).transpose()?;
    let quote = draft.quote.map(|q| symbol(at("quote"), &q)).transpose()?;
    let target_price = draft
        .target_price
        .map(|t| {
            t.trim()
                .parse::<Decimal>()
                .ok()
                .filter(|d| d.is_sign_positive() && !d.is_zero() && d.scale() <= 18)
                .ok_or_else(|| {
                    Error::field(
                        at("targetPrice"),
                        "must be a positive decimal of at most 18 places",
                    )
                })
        })
        .transpose()?;
    let metadata = check_metadata(field, draft.metadata)?;
    match draft.kind {
        "spot" => {
            let (Some(b), Some(q)) = (&base, &quote) else {
                return Err(Error::field(
                    at(if base.is_none() { "base" } else { "quote" }),
                    "a spot market names its base and quote assets",
                ));
            };
            if b == q {
                return Err(Error::field(at("quote"), "must differ from base"));
            }
            for (name, present) in [
                ("question", draft.question.is_some()),
                ("creator", draft.creator.is_some()),
                ("targetPrice", target_price.is_some()),
                ("resolveAt", draft.resolve_at.is_some()),
            ] {
                if present {
                    return Err(Error::field(at(name), "belongs to prediction markets"));
                }
            }
            Ok(NewMarket {
                id,
                kind: "spot",
                base,
                quote,
                question: None,
                creator: None,
                target_price: None,
                resolve_at: None,
                metadata,
            })
        }
        _ => {
            let question = draft
                .question
                .as_deref()
                .ok_or_else(|| Error::field(at("question"), "a prediction market asks one"))
                .and_then(|q| text(at("question"), q, MAX_QUESTION))?;
            let resolve_at = draft.resolve_at.ok_or_else(|| {
                Error::field(at("resolveAt"), "a prediction market says when it resolves")
            })?;
            if quote.is_some() {
                return Err(Error::field(at("quote"), "belongs to spot markets"));
            }
            Ok(NewMarket {
                id,
                kind: "prediction",
                base,
                quote: None,
                question: Some(question),
                creator: draft.creator,
                target_price,
                resolve_at: Some(resolve_at),
                metadata,
            })
        }
    }
}

/// Whether a market may go from `from` to `to` (stored forms): open markets close,
/// resolve (predictions) or are cancelled; closed ones resolve or are cancelled; resolved
/// and cancelled markets are final.
pub fn market_transition(kind: &str, from: &str, to: &str) -> Result<(), String> {
    let allowed = match (from, to) {
        ("open", "closed") | ("open", "cancelled") | ("closed", "cancelled") => true,
        ("open", "resolved") | ("closed", "resolved") => kind == "prediction",
        ("closed", "open") => true,
        _ => false,
    };
    if allowed {
        Ok(())
    } else if to == "resolved" && kind != "prediction" {
        Err("only a prediction market resolves".into())
    } else {
        Err(format!("a {from} market cannot become {to}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prediction() -> MarketDraft {
        MarketDraft {
            id: "btc-100k".into(),
            kind: "prediction",
            base: Some("btc".into()),
            quote: None,
            question: Some("Will BTC close above 100,000 USD?".into()),
            creator: None,
            target_price: Some("100000".into()),
            resolve_at: Some("2026-12-31T00:00:00Z".parse().expect("time")),
            metadata: None,
        }
    }

    #[test]
    fn markets_are_checked_by_kind() {
        let market = check_market("markets[0]", prediction()).expect("valid");
        assert_eq!(market.base.as_deref(), Some("BTC"));
        let mut no_question = prediction();
        no_question.question = None;
        let err = check_market("markets[0]", no_question).expect_err("refused");
        assert!(format!("{err:?}").contains("markets[0].question"));
        let spot = MarketDraft {
            kind: "spot",
            quote: Some("BTC".into()),
            ..prediction()
        };
        let err = check_market("markets[0]", spot).expect_err("refused");
        assert!(format!("{err:?}").contains("markets[0].quote"), "{err:?}");
        let mut bad_price = prediction();
        bad_price.target_price = Some("-1".into());
        assert!(check_market("m", bad_price).is_err());
    }

    #[test]
    fn transitions_end_at_resolved_or_cancelled() {
        assert!(market_transition("prediction", "open", "resolved").is_ok());
        assert!(market_transition("spot", "open", "resolved").is_err());
        assert!(market_transition("prediction", "resolved", "open").is_err());
        assert!(market_transition("spot", "cancelled", "closed").is_err());
        assert!(market_transition("spot", "closed", "open").is_ok());
    }

    #[test]
    fn metadata_must_be_a_small_plain_object() {
        assert!(check_metadata("p", Some(json!({ "a": { "b": [1, 2] } }))).is_ok());
        for bad in [
            json!([1]),
            json!({ "$where": 1 }),
            json!({ "a.b": 1 }),
            json!({ "a": "x".repeat(MAX_METADATA_BYTES) }),
            json!({ "a": { "b": { "c": { "d": { "e": { "f": { "g": { "h": { "i": 1 } } } } } } } } }),
        ] {
            assert!(check_metadata("p", Some(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn pools_name_distinct_catalogue_symbols() {
        let ok = check_pool(
            "pools[0]",
            "uni-eth-usdc",
            "uniswap",
            &["eth".into(), "USDC".into()],
            Some(5),
            None,
        )
        .expect("valid");
        assert_eq!(ok.assets, ["ETH", "USDC"]);
        assert!(check_pool(
            "p",
            "x",
            "uniswap",
            &["ETH".into(), "eth".into()],
            None,
            None
        )
        .is_err());
        assert!(check_pool("p", "x", "uniswap", &[], None, None).is_err());
        assert!(check_pool("p", "x", "uniswap", &["ETH".into()], Some(10_001), None).is_err());
        assert!(check_pool("p", "X Y", "uniswap", &["ETH".into()], None, None).is_err());
    }
}
