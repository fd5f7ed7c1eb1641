//! The seeds' platforms on shared primitives: declared event kinds, domain events, boards.
//!
//! - [`kinds`]: the kinds file, its definitions and the check of an event's attributes;
//! - [`events`]: an event as sent, checked into what PostgreSQL records;
//! - [`boards`]: declared boards, their periods and scores;
//! - [`artifacts`]: content-addressed metadata of files kept elsewhere;
//! - [`challenges`]: the Fathuss challenge catalogue's entries.

pub mod artifacts;
pub mod boards;
pub mod catalogue;
pub mod challenges;
pub mod events;
pub mod kinds;
pub mod tokens;

/// A content id (CIDv0 `Qm…` or CIDv1 in any multibase), kept in its canonical string
/// form: CIDv0 as base58btc, CIDv1 as base32 lowercase.
pub fn artifact_cid(text: &str) -> Result<String, String> {
    let cid = cid::Cid::try_from(text.trim())
        .map_err(|e| format!("is not a CID (CIDv0 or CIDv1): {e}"))?;
    Ok(cid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cids_of_both_versions_are_accepted_and_others_refused() {
        // The IPFS "hello world" object, as CIDv0 and as CIDv1 in base32.
        let v0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o";
        assert_eq!(artifact_cid(v0).as_deref(), Ok(v0));
        let v1 = cid::Cid::try_from(v0)
            .expect("a CIDv0")
            .into_v1()
            .expect("converts")
            .to_string();
        assert!(v1.starts_with("bafy"), "{v1}");
        assert_eq!(artifact_cid(&v1), Ok(v1.clone()));
        assert_eq!(artifact_cid(&v1.to_uppercase()), Ok(v1));
        for bad in [
            "",
            "Qm",
            "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5O",
            "not-a-cid",
            "bafy",
        ] {
            assert!(artifact_cid(bad).is_err(), "{bad}");
        }
    }
}
