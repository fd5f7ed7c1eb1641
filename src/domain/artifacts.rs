//! Artifacts: content-addressed metadata of files that live outside Meridian (on IPFS or a
//! blob store): proofs, logs, test cases, binaries, documents. Meridian keeps what a
//! dashboard needs to show and verify them (CID, sha256, size, media type, kind, owner,
//! the events they back), never the bytes.

use crate::{
    error::Error,
    values::{Address, ChainFamily},
};

/// The largest size accepted: 2^53 bytes, the largest integer a GraphQL `Float` (and a
/// JavaScript number) holds exactly.
pub const MAX_SIZE: f64 = 9_007_199_254_740_992.0;
/// The longest media type and file name, in characters.
const MAX_MEDIA_TYPE: usize = 255;
const MAX_NAME: usize = 255;
/// The most events one artifact may name.
pub const MAX_LINKED_EVENTS: usize = 100;

/// What an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArtifactKind {
    Proof,
    Log,
    TestCase,
    Binary,
    Document,
}

impl ArtifactKind {
    pub const ALL: [ArtifactKind; 5] = [
        ArtifactKind::Proof,
        ArtifactKind::Log,
        ArtifactKind::TestCase,
        ArtifactKind::Binary,
        ArtifactKind::Document,
    ];

    /// As PostgreSQL keeps it.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Proof => "proof",
            ArtifactKind::Log => "log",
            ArtifactKind::TestCase => "test_case",
            ArtifactKind::Binary => "binary",
            ArtifactKind::Document => "document",
        }
    }

    pub fn from_stored(text: &str) -> Option<ArtifactKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// An artifact as sent, before any check.
#[derive(Debug, Clone)]
pub struct ArtifactDraft {
    pub cid: String,
    pub sha256: String,
    pub size: f64,
    pub media_type: String,
    pub kind: ArtifactKind,
    pub owner: String,
    pub chain: Option<ChainFamily>,
    pub name: Option<String>,
    /// Idempotency keys of recorded events it backs.
    pub events: Vec<String>,
}

/// An artifact checked, as PostgreSQL records it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewArtifact {
    pub cid: String,
    pub sha256: String,
    pub size: i64,
    pub media_type: String,
    pub kind: ArtifactKind,
    pub owner_chain: &'static str,
    pub owner: String,
    pub name: Option<String>,
    pub events: Vec<String>,
    /// The digest of the body: a CID recorded again must come with the same one.
    pub digest: String,
}

/// Checks a draft; `field` names it in errors (`artifacts[2]`).
pub fn check(field: &str, draft: ArtifactDraft) -> Result<NewArtifact, Error> {
    let at = |name: &str| format!("{field}.{name}");
    let cid = super::artifact_cid(&draft.cid).map_err(|m| Error::field(at("cid"), m))?;
    let sha256 = draft
        .sha256
        .trim()
        .strip_prefix("0x")
        .unwrap_or(draft.sha256.trim())
        .to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::field(at("sha256"), "must be 64 hex digits"));
    }
    if let Some(digest) = raw_sha256(&cid) {
        if digest != sha256 {
            return Err(Error::field(
                at("sha256"),
                "differs from the digest the CID carries (a raw CIDv1 names its bytes' sha256)",
            ));
        }
    }
    if !(draft.size.is_finite()
        && draft.size >= 0.0
        && draft.size.fract() == 0.0
        && draft.size <= MAX_SIZE)
    {
        return Err(Error::field(
            at("size"),
            "must be a whole number of bytes from 0 to 2^53",
        ));
    }
    let media_type = draft.media_type.trim().to_ascii_lowercase();
    if !is_media_type(&media_type) {
        return Err(Error::field(
            at("mediaType"),
            "must be a media type such as application/json (type/subtype, at most 255 characters)",
        ));
    }
    let owner = match draft.chain {
        Some(family) => Address::parse_as(family, &draft.owner),
        None => Address::parse(&draft.owner),
    }
    .map_err(|rule| Error::field(at("owner"), rule))?;
    let name = draft.name.map(|n| n.trim().to_owned());
    if name.as_deref().is_some_and(|n| {
        n.is_empty() || n.chars().count() > MAX_NAME || n.chars().any(char::is_control)
    }) {
        return Err(Error::field(
            at("name"),
            format!("must be 1 to {MAX_NAME} printable characters"),
        ));
    }
    if draft.events.len() > MAX_LINKED_EVENTS {
        return Err(Error::field(
            at("events"),
            format!("names at most {MAX_LINKED_EVENTS} events"),
        ));
    }
    let mut events: Vec<String> = draft.events.iter().map(|e| e.trim().to_owned()).collect();
    events.sort();
    events.dedup();
    let body = serde_json::json!({
        "sha256": sha256,
        "size": draft.size as i64,
        "mediaType": media_type,
        "kind": draft.kind.as_str(),
        "owner": [owner.family().as_str(), owner.as_str()],
        "name": name,
        "events": events,
    });
    Ok(NewArtifact {
        cid,
        sha256,
        size: draft.size as i64,
        media_type,
        kind: draft.kind,
        owner_chain: owner.family().as_str(),
        owner: owner.as_str().to_owned(),
        name,
        events,
        digest: crate::digest::sha256_hex(&body.to_string()),
    })
}

/// The sha256 a raw-codec CIDv1 names (the file's own digest), in hex; None for other
/// CIDs (a dag-pb CID hashes the DAG node, not the file).
fn raw_sha256(cid: &str) -> Option<String> {
    const RAW: u64 = 0x55;
    const SHA2_256: u64 = 0x12;
    let cid = cid::Cid::try_from(cid).ok()?;
    (cid.codec() == RAW && cid.hash().code() == SHA2_256).then(|| hex::encode(cid.hash().digest()))
}

/// `type/subtype` with RFC 6838 name characters (parameters are not kept).
fn is_media_type(text: &str) -> bool {
    let name = |part: &str| {
        !part.is_empty()
            && part.len() <= 127
            && part
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    text.len() <= MAX_MEDIA_TYPE
        && text
            .split_once('/')
            .is_some_and(|(kind, sub)| name(kind) && name(sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FARMER: &str = "GAOQJGUAB7NI7K7I62ORBXMN3J4SSWQUQ7FOEPSDJ322W2HMCNWPHXFB";
    const V0: &str = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o";

    fn draft() -> ArtifactDraft {
        ArtifactDraft {
            cid: V0.into(),
            sha256: "AB".repeat(32),
            size: 1024.0,
            media_type: "Application/JSON".into(),
            kind: ArtifactKind::Proof,
            owner: FARMER.into(),
            chain: None,
            name: Some("proof.json".into()),
            events: vec!["b".into(), "a".into(), "a".into()],
        }
    }

    /// A raw CIDv1 of `bytes` (sha2-256), as IPFS gives for a small file added raw.
    fn raw_cid(bytes: &[u8]) -> (String, String) {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(bytes);
        let hash = cid::multihash::Multihash::<64>::wrap(0x12, &digest).expect("wraps");
        (
            cid::Cid::new_v1(0x55, hash).to_string(),
            hex::encode(digest),
        )
    }

    fn field_of(result: Result<NewArtifact, Error>) -> String {
        match result {
            Err(Error::InvalidField { field, .. }) => field,
            other => panic!("not refused on a field: {other:?}"),
        }
    }

    #[test]
    fn a_good_artifact_is_kept_in_normal_form() {
        let checked = check("a", draft()).expect("valid");
        assert_eq!(checked.sha256, "ab".repeat(32));
        assert_eq!(checked.media_type, "application/json");
        assert_eq!(checked.owner_chain, "stellar");
        assert_eq!(checked.events, ["a", "b"]);
        let again = check("a", draft()).expect("valid");
        assert_eq!(checked.digest, again.digest);
        let mut other = draft();
        other.size = 1025.0;
        assert_ne!(check("a", other).expect("valid").digest, checked.digest);
    }

    #[test]
    fn a_raw_cid_must_match_its_sha256() {
        let (cid, sha) = raw_cid(b"proof bytes");
        let mut good = draft();
        good.cid = cid.clone();
        good.sha256 = sha;
        assert!(check("a", good).is_ok());
        let mut bad = draft();
        bad.cid = cid;
        assert_eq!(field_of(check("a", bad)), "a.sha256");
    }

    #[test]
    fn each_bad_field_is_named() {
        type Edit = Box<dyn Fn(&mut ArtifactDraft)>;
        let cases: Vec<(&str, Edit)> = vec![
            ("a.cid", Box::new(|d| d.cid = "Qmnotacid".into())),
            ("a.sha256", Box::new(|d| d.sha256 = "abc".into())),
            ("a.sha256", Box::new(|d| d.sha256 = "zz".repeat(32))),
            ("a.size", Box::new(|d| d.size = -1.0)),
            ("a.size", Box::new(|d| d.size = 1.5)),
            ("a.size", Box::new(|d| d.size = 1e17)),
            ("a.mediaType", Box::new(|d| d.media_type = "json".into())),
            ("a.mediaType", Box::new(|d| d.media_type = "a/b c".into())),
            ("a.owner", Box::new(|d| d.owner = "GNOPE".into())),
            ("a.owner", Box::new(|d| d.chain = Some(ChainFamily::Evm))),
            ("a.name", Box::new(|d| d.name = Some("\u{0}".into()))),
            (
                "a.events",
                Box::new(|d| d.events = (0..101).map(|i| i.to_string()).collect()),
            ),
        ];
        for (field, edit) in cases {
            let mut d = draft();
            edit(&mut d);
            assert_eq!(field_of(check("a", d)), field);
        }
    }
}
