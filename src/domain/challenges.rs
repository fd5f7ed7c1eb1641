//! Fathuss challenges: the catalogue entry as sent, checked into what PostgreSQL keeps.

use crate::error::Error;

/// The most tags a challenge carries, and the longest tag.
const MAX_TAGS: usize = 20;
const MAX_TAG: usize = 32;
/// The longest title, in characters.
const MAX_TITLE: usize = 200;
/// The most test cases a challenge names.
pub const MAX_TEST_CASES: usize = 100;

/// How hard a challenge is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difficulty {
    Easy,
    Medium,
    Hard,
    Expert,
}

impl Difficulty {
    pub const ALL: [Difficulty; 4] = [
        Difficulty::Easy,
        Difficulty::Medium,
        Difficulty::Hard,
        Difficulty::Expert,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Medium => "medium",
            Difficulty::Hard => "hard",
            Difficulty::Expert => "expert",
        }
    }

    pub fn from_stored(text: &str) -> Option<Difficulty> {
        Self::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

/// A challenge checked: id, title, difficulty, tags (lowercase, unique, sorted) and the
/// CIDs of its test cases (canonical, in the order given, unique).
#[derive(Debug, Clone, PartialEq)]
pub struct NewChallenge {
    pub id: String,
    pub title: String,
    pub difficulty: Difficulty,
    pub tags: Vec<String>,
    pub test_cases: Vec<String>,
}

/// Whether `id` is a challenge id: 1 to 64 of `a-z 0-9 _ -`, starting with a letter or
/// digit (as submissions' `challenge` attribute names it).
pub fn is_id(id: &str) -> bool {
    let mut chars = id.chars();
    id.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Checks a challenge; `field` names it in errors (`challenges[1]`).
pub fn check(
    field: &str,
    id: &str,
    title: &str,
    difficulty: Difficulty,
    tags: &[String],
    test_cases: &[String],
) -> Result<NewChallenge, Error> {
    let at = |name: &str| format!("{field}.{name}");
    if !is_id(id) {
        return Err(Error::field(
            at("id"),
            "must be 1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit",
        ));
    }
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE || title.chars().any(char::is_control)
    {
        return Err(Error::field(
            at("title"),
            format!("must be 1 to {MAX_TITLE} printable characters"),
        ));
    }
    if tags.len() > MAX_TAGS {
        return Err(Error::field(at("tags"), format!("at most {MAX_TAGS} tags")));
    }
    let mut clean: Vec<String> = Vec::with_capacity(tags.len());
    for (i, tag) in tags.iter().enumerate() {
        let tag = tag.trim().to_lowercase();
        if tag.is_empty() || tag.chars().count() > MAX_TAG || tag.chars().any(char::is_control) {
            return Err(Error::field(
                format!("{field}.tags[{i}]"),
                format!("must be 1 to {MAX_TAG} printable characters"),
            ));
        }
        clean.push(tag);
    }
    clean.sort();
    clean.dedup();
    if test_cases.len() > MAX_TEST_CASES {
        return Err(Error::field(
            at("testCases"),
            format!("at most {MAX_TEST_CASES} test cases"),
        ));
    }
    let mut cids: Vec<String> = Vec::with_capacity(test_cases.len());
    for (i, cid) in test_cases.iter().enumerate() {
        let cid = super::artifact_cid(cid)
            .map_err(|m| Error::field(format!("{field}.testCases[{i}]"), m))?;
        if !cids.contains(&cid) {
            cids.push(cid);
        }
    }
    Ok(NewChallenge {
        id: id.to_owned(),
        title: title.to_owned(),
        difficulty,
        tags: clean,
        test_cases: cids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o";

    fn field_of(result: Result<NewChallenge, Error>) -> String {
        match result {
            Err(Error::InvalidField { field, .. }) => field,
            other => panic!("not refused on a field: {other:?}"),
        }
    }

    #[test]
    fn a_good_challenge_is_kept_in_normal_form() {
        let tags = ["Arrays".to_owned(), "hash".to_owned(), "arrays".to_owned()];
        let checked = check(
            "c",
            "two-sum",
            " Two Sum ",
            Difficulty::Easy,
            &tags,
            &[CID.into(), CID.into()],
        )
        .expect("valid");
        assert_eq!(checked.title, "Two Sum");
        assert_eq!(checked.tags, ["arrays", "hash"]);
        assert_eq!(checked.test_cases, [CID]);
    }

    #[test]
    fn each_bad_field_is_named() {
        let ok = |id: &str, title: &str, tags: &[String], cases: &[String]| {
            check("c", id, title, Difficulty::Hard, tags, cases)
        };
        assert_eq!(field_of(ok("Two-Sum", "t", &[], &[])), "c.id");
        assert_eq!(field_of(ok("-x", "t", &[], &[])), "c.id");
        assert_eq!(field_of(ok(&"x".repeat(65), "t", &[], &[])), "c.id");
        assert_eq!(field_of(ok("x", " ", &[], &[])), "c.title");
        assert_eq!(field_of(ok("x", "t", &["".into()], &[])), "c.tags[0]");
        let many: Vec<String> = (0..21).map(|i| i.to_string()).collect();
        assert_eq!(field_of(ok("x", "t", &many, &[])), "c.tags");
        assert_eq!(
            field_of(ok("x", "t", &[], &["nope".into()])),
            "c.testCases[0]"
        );
    }
}
