//! Declarative boards: rankings kept in Redis sorted sets, each described by a definition
//! rather than code.
//!
//! A definition names the board, the kinds it reads (`trade` for recorded trades, or
//! declared event kinds), its score (the sum of the amount, a count, the maximum amount, or
//! `manual`: set by `setScore` only), what it ranks (users for trade boards, accounts for
//! domain boards) and its window: all time, or one board per day, ISO week or month, of
//! which the latest `retention` periods are kept (each period's key carries a TTL).
//!
//! Definitions live beside the kinds in `catalogue/kinds.json`; `meridian migrate` writes
//! them to PostgreSQL's `boards` table, which every instance and relay reads.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Utc, Weekday};
use serde::{Deserialize, Serialize};

/// The pseudo-kind of recorded trades (their amount is the notional).
pub const TRADE: &str = "trade";
/// The most periods a windowed board may keep.
pub const MAX_RETENTION: u32 = 1_000;

/// One board's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The kinds whose events move it; empty for a manual board.
    #[serde(default)]
    pub reads: Vec<String>,
    pub score: Score,
    pub window: Window,
    /// How many periods a windowed board keeps (the current one included).
    #[serde(default)]
    pub retention: Option<u32>,
    /// An attribute of the kinds it reads (string or integer) that splits it into one
    /// ranking per value: one board per challenge, say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// How an event moves a member's score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Score {
    /// Adds the event's amount (events without one are skipped).
    Sum,
    /// Adds one per event.
    Count,
    /// Keeps the largest amount seen.
    Max,
    /// Moved by `setScore` only.
    Manual,
}

/// The span a board's ranking covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    All,
    Day,
    Week,
    Month,
}

/// What a board ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// Meridian users, by id (trade boards).
    User,
    /// Accounts on any chain, as `chain:address` (boards of domain events, manual boards).
    Account,
}

impl Score {
    pub fn as_str(self) -> &'static str {
        match self {
            Score::Sum => "sum",
            Score::Count => "count",
            Score::Max => "max",
            Score::Manual => "manual",
        }
    }
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Window::All => "all",
            Window::Day => "day",
            Window::Week => "week",
            Window::Month => "month",
        }
    }

    /// The first day of the period holding `day`.
    fn start_of(self, day: NaiveDate) -> NaiveDate {
        match self {
            Window::All => NaiveDate::MIN,
            Window::Day => day,
            Window::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
            Window::Month => day.with_day(1).unwrap_or(day),
        }
    }

    /// The first day of the period `n` periods after the one starting on `start`.
    fn advance(self, start: NaiveDate, n: u32) -> NaiveDate {
        let moved = match self {
            Window::All => None,
            Window::Day => start.checked_add_signed(Duration::days(i64::from(n))),
            Window::Week => start.checked_add_signed(Duration::weeks(i64::from(n))),
            Window::Month => start.checked_add_months(Months::new(n)),
        };
        moved.unwrap_or(NaiveDate::MAX)
    }

    /// The first day of the period `n` periods before the one starting on `start`.
    fn retreat(self, start: NaiveDate, n: u32) -> NaiveDate {
        let moved = match self {
            Window::All => None,
            Window::Day => start.checked_sub_signed(Duration::days(i64::from(n))),
            Window::Week => start.checked_sub_signed(Duration::weeks(i64::from(n))),
            Window::Month => start.checked_sub_months(Months::new(n)),
        };
        moved.unwrap_or(NaiveDate::MIN)
    }

    /// The name of the period starting on `start`: `2026-11-24`, `2026-W48`, `2026-11`.
    fn name(self, start: NaiveDate) -> String {
        match self {
            Window::All => String::new(),
            Window::Day => start.format("%Y-%m-%d").to_string(),
            Window::Week => start.format("%G-W%V").to_string(),
            Window::Month => start.format("%Y-%m").to_string(),
        }
    }

    /// The start of a named period, if `name` is one in its canonical spelling.
    fn parse(self, name: &str) -> Option<NaiveDate> {
        let start = match self {
            Window::All => return None,
            Window::Day => NaiveDate::parse_from_str(name, "%Y-%m-%d").ok()?,
            Window::Week => {
                let (year, week) = name.split_once("-W")?;
                NaiveDate::from_isoywd_opt(year.parse().ok()?, week.parse().ok()?, Weekday::Mon)?
            }
            Window::Month => NaiveDate::parse_from_str(&format!("{name}-01"), "%Y-%m-%d").ok()?,
        };
        (self.name(start) == name).then_some(start)
    }

    /// How a period is written, for error messages.
    pub fn format_hint(self) -> &'static str {
        match self {
            Window::All => "no period (the board is all time)",
            Window::Day => "a day, YYYY-MM-DD",
            Window::Week => "an ISO week, YYYY-Www",
            Window::Month => "a month, YYYY-MM",
        }
    }
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// One period of a board: all time, or a day, week or month with the instant its key
/// expires.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    /// Empty for all time.
    pub name: String,
    /// Unix seconds at which the period's scores are dropped; None for all time.
    pub expires_at: Option<i64>,
}

impl BoardDef {
    /// What the board ranks.
    pub fn member(&self) -> Member {
        if self.reads.iter().any(|k| k == TRADE) {
            Member::User
        } else {
            Member::Account
        }
    }

    pub fn is_manual(&self) -> bool {
        self.score == Score::Manual
    }

    fn retention(&self) -> u32 {
        self.retention.unwrap_or(1).max(1)
    }

    /// The period an event at `at` falls in, or None when that period is no longer kept
    /// at `now` (or has not begun).
    pub fn period_at(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> Option<Period> {
        if self.window == Window::All {
            return Some(Period {
                name: String::new(),
                expires_at: None,
            });
        }
        let start = self.window.start_of(at.date_naive());
        let period = self.period_from(start);
        (start <= now.date_naive() && period.expires_at.is_some_and(|t| t > now.timestamp()))
            .then_some(period)
    }

    fn period_from(&self, start: NaiveDate) -> Period {
        let end = self.window.advance(start, self.retention());
        Period {
            name: self.window.name(start),
            expires_at: Some(midnight(end).timestamp()),
        }
    }

    /// The name of the period holding `at`, kept or not (empty for an all-time board).
    pub fn period_name(&self, at: DateTime<Utc>) -> String {
        self.window.name(self.window.start_of(at.date_naive()))
    }

    /// The current period at `now`.
    pub fn current(&self, now: DateTime<Utc>) -> Period {
        self.period_at(now, now).unwrap_or(Period {
            name: String::new(),
            expires_at: None,
        })
    }

    /// The named period, checked: written as the window writes it and still kept at
    /// `now`; None on an all-time board asks for all time.
    pub fn period(&self, name: Option<&str>, now: DateTime<Utc>) -> Result<Period, String> {
        let Some(name) = name else {
            return Ok(self.current(now));
        };
        if self.window == Window::All {
            return Err(format!(
                "board {} is all time and has no periods; leave `period` out",
                self.name
            ));
        }
        let start = self.window.parse(name).ok_or_else(|| {
            format!(
                "{name:?} is not a period of board {} (expected {})",
                self.name,
                self.window.format_hint()
            )
        })?;
        self.period_at(midnight(start), now).ok_or_else(|| {
            format!(
                "period {name} of board {} is not kept: it keeps the current {} and the {} before it",
                self.name,
                self.window.as_str(),
                self.retention() - 1
            )
        })
    }

    /// The kept periods at `now`, newest first (one, empty-named, for an all-time board).
    pub fn kept(&self, now: DateTime<Utc>) -> Vec<Period> {
        if self.window == Window::All {
            return vec![self.current(now)];
        }
        let current = self.window.start_of(now.date_naive());
        (0..self.retention())
            .map(|n| self.period_from(self.window.retreat(current, n)))
            .collect()
    }

    /// The first instant whose events the board still keeps (None: all of them).
    pub fn kept_since(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.window == Window::All {
            return None;
        }
        let current = self.window.start_of(now.date_naive());
        Some(midnight(self.window.retreat(current, self.retention() - 1)))
    }

    /// The next instant after `now` at which the current period changes.
    pub fn next_rollover(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.window == Window::All {
            return None;
        }
        let current = self.window.start_of(now.date_naive());
        Some(midnight(self.window.advance(current, 1)))
    }

    /// How much an event with this amount adds, or None when it does not move the board.
    pub fn contribution(&self, amount: Option<f64>) -> Option<f64> {
        match self.score {
            Score::Count => Some(1.0),
            Score::Sum | Score::Max => amount.filter(|a| a.is_finite()),
            Score::Manual => None,
        }
    }

    /// The name of one ranking of the board: the board's own name, or for a board split
    /// `by` an attribute, `{name}~{value}` with the value in unpadded base64url (so any
    /// value makes a key, a channel and an id without separators in it).
    pub fn instance(&self, of: Option<&str>) -> String {
        match of {
            Some(value) => format!("{}~{}", self.name, URL_SAFE_NO_PAD.encode(value)),
            None => self.name.clone(),
        }
    }

    /// The value an event's attributes give the board's `by` attribute: None for a board
    /// not split, Some(None) when the event has none (it moves no ranking).
    pub fn part_of(&self, attributes: &serde_json::Value) -> Option<Option<String>> {
        let by = self.by.as_deref()?;
        Some(match attributes.get(by) {
            Some(serde_json::Value::String(text)) => Some(text.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
    }

    /// Checks the definition against the kinds it may read.
    pub fn check(&self, kinds: &[super::kinds::KindDef]) -> anyhow::Result<()> {
        use super::kinds::AttributeType;
        let declared: Vec<&str> = kinds.iter().map(|k| k.name.as_str()).collect();
        let kinds_read: Vec<&super::kinds::KindDef> = kinds
            .iter()
            .filter(|k| self.reads.contains(&k.name))
            .collect();
        if let Some(by) = &self.by {
            anyhow::ensure!(
                !self.is_manual() && self.member() == Member::Account,
                "board {}: only boards of event kinds are split `by` an attribute",
                self.name
            );
            for kind in &kinds_read {
                let ok = kind.attributes.get(by).is_some_and(|a| {
                    matches!(a.kind, AttributeType::String | AttributeType::Integer)
                });
                anyhow::ensure!(
                    ok,
                    "board {}: kind {} has no string or integer attribute {by:?} to split by",
                    self.name,
                    kind.name
                );
            }
        }
        let kinds = &declared;
        anyhow::ensure!(
            super::kinds::is_name(&self.name),
            "board name {:?}: use 1 to 63 lowercase letters, digits and underscores, starting with a letter",
            self.name
        );
        match (self.score, self.reads.is_empty()) {
            (Score::Manual, false) => {
                anyhow::bail!("board {}: a manual board reads no kinds", self.name)
            }
            (Score::Manual, true) => {}
            (_, true) => anyhow::bail!("board {}: name the kinds it reads", self.name),
            (_, false) => {
                for kind in &self.reads {
                    anyhow::ensure!(
                        kind == TRADE || kinds.contains(&kind.as_str()),
                        "board {}: reads {kind:?}, which is neither `trade` nor a declared kind",
                        self.name
                    );
                }
                anyhow::ensure!(
                    !self.reads.iter().any(|k| k == TRADE) || self.reads.len() == 1,
                    "board {}: a board reads trades or event kinds, not both",
                    self.name
                );
            }
        }
        match (self.window, self.retention) {
            (Window::All, None) => {}
            (Window::All, Some(_)) => {
                anyhow::bail!("board {}: an all-time board has no retention", self.name)
            }
            (_, Some(n)) if (1..=MAX_RETENTION).contains(&n) => {}
            (window, _) => anyhow::bail!(
                "board {}: a {} board needs a retention of 1 to {MAX_RETENTION} periods",
                self.name,
                window.as_str()
            ),
        }
        Ok(())
    }
}

/// Checks a catalogue's boards: each well formed, names unique.
pub fn check_all(boards: &[BoardDef], kinds: &[super::kinds::KindDef]) -> anyhow::Result<()> {
    let mut seen = std::collections::HashSet::new();
    for board in boards {
        board.check(kinds)?;
        anyhow::ensure!(
            seen.insert(&board.name),
            "board {} is declared twice",
            board.name
        );
    }
    Ok(())
}

/// The member string of an account: `chain:address`.
pub fn account_member(chain: &str, address: &str) -> String {
    format!("{chain}:{address}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(window: Window, retention: Option<u32>) -> BoardDef {
        BoardDef {
            name: "b".into(),
            description: String::new(),
            reads: vec!["farming_harvest".into()],
            score: Score::Sum,
            window,
            retention,
            by: None,
        }
    }

    fn kinds() -> Vec<super::super::kinds::KindDef> {
        super::super::kinds::KindsFile::parse(super::super::kinds::BUILTIN)
            .expect("built-in")
            .kinds
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn periods_are_named_as_postgres_names_them() {
        let now = at("2026-11-24T06:00:00Z");
        assert_eq!(board(Window::Day, Some(7)).current(now).name, "2026-11-24");
        assert_eq!(board(Window::Week, Some(4)).current(now).name, "2026-W48");
        assert_eq!(board(Window::Month, Some(3)).current(now).name, "2026-11");
        assert_eq!(board(Window::All, None).current(now).name, "");
        // ISO weeks belong to the year of their Thursday.
        let new_year = at("2027-01-01T12:00:00Z");
        assert_eq!(
            board(Window::Week, Some(60)).current(new_year).name,
            "2026-W53"
        );
    }

    #[test]
    fn a_period_expires_after_its_retention() {
        let now = at("2026-11-24T06:00:00Z");
        let daily = board(Window::Day, Some(7));
        let today = daily.current(now);
        assert_eq!(
            today.expires_at,
            Some(at("2026-12-01T00:00:00Z").timestamp())
        );
        let kept = daily.kept(now);
        assert_eq!(kept.len(), 7);
        assert_eq!(kept[6].name, "2026-11-18");
        assert_eq!(daily.kept_since(now), Some(at("2026-11-18T00:00:00Z")));
        assert!(daily.period(Some("2026-11-18"), now).is_ok());
        assert!(daily
            .period(Some("2026-11-17"), now)
            .unwrap_err()
            .contains("not kept"));
        assert!(daily
            .period(Some("2026-11-25"), now)
            .unwrap_err()
            .contains("not kept"));
        assert!(daily.period_at(at("2026-11-17T23:59:59Z"), now).is_none());
        let monthly = board(Window::Month, Some(2));
        assert!(monthly.period(Some("2026-10"), now).is_ok());
        assert!(monthly.period(Some("2026-09"), now).is_err());
        assert_eq!(monthly.next_rollover(now), Some(at("2026-12-01T00:00:00Z")));
        let weekly = board(Window::Week, Some(2));
        assert_eq!(weekly.next_rollover(now), Some(at("2026-11-30T00:00:00Z")));
    }

    #[test]
    fn period_names_must_be_canonical() {
        let now = at("2026-11-24T06:00:00Z");
        let weekly = board(Window::Week, Some(10));
        assert!(weekly.period(Some("2026-W47"), now).is_ok());
        for bad in [
            "2026-W7",
            "2026-w47",
            "2026-47",
            "2026-W54",
            "",
            "2026-11-24",
        ] {
            let err = weekly.period(Some(bad), now).unwrap_err();
            assert!(err.contains("ISO week"), "{bad}: {err}");
        }
        let daily = board(Window::Day, Some(10));
        assert!(daily.period(Some("2026-11-4"), now).is_err());
        assert!(board(Window::All, None)
            .period(Some("2026-11"), now)
            .unwrap_err()
            .contains("all time"));
    }

    #[test]
    fn definitions_are_checked() {
        let kinds = &kinds();
        assert!(board(Window::All, None).check(kinds).is_ok());
        assert!(board(Window::All, Some(3)).check(kinds).is_err());
        assert!(board(Window::Day, None).check(kinds).is_err());
        assert!(board(Window::Day, Some(MAX_RETENTION + 1))
            .check(kinds)
            .is_err());
        let mut b = board(Window::All, None);
        b.reads = vec!["nope".into()];
        assert!(b.check(kinds).unwrap_err().to_string().contains("nope"));
        b.reads = vec![TRADE.into(), "farming_harvest".into()];
        assert!(b.check(kinds).is_err());
        b.reads = vec![];
        assert!(b.check(kinds).is_err());
        b.score = Score::Manual;
        assert!(b.check(kinds).is_ok());
        b.reads = vec!["farming_harvest".into()];
        assert!(b.check(kinds).is_err());
        b.name = "Bad-Name".into();
        assert!(b.check(kinds).is_err());
        // Split by an attribute every kind it reads declares as a string or integer.
        let mut split = board(Window::All, None);
        split.reads = vec!["challenge_submission".into()];
        split.by = Some("challenge".into());
        assert!(split.check(kinds).is_ok());
        split.by = Some("score".into());
        assert!(split
            .check(kinds)
            .unwrap_err()
            .to_string()
            .contains("score"));
        split.by = Some("nope".into());
        assert!(split.check(kinds).is_err());
        split.reads = vec![TRADE.into()];
        split.by = Some("challenge".into());
        assert!(split.check(kinds).is_err());
    }

    #[test]
    fn a_split_board_has_one_ranking_per_value() {
        let mut split = board(Window::All, None);
        split.by = Some("challenge".into());
        assert_eq!(
            split.part_of(&serde_json::json!({"challenge": "two-sum"})),
            Some(Some("two-sum".into()))
        );
        assert_eq!(
            split.part_of(&serde_json::json!({"challenge": 7})),
            Some(Some("7".into()))
        );
        assert_eq!(split.part_of(&serde_json::json!({})), Some(None));
        assert_eq!(
            board(Window::All, None).part_of(&serde_json::json!({})),
            None
        );
        assert_eq!(split.instance(Some("a:b c")), "b~YTpiIGM");
        assert_eq!(split.instance(None), "b");
    }

    #[test]
    fn scores_take_what_their_kind_says() {
        let mut b = board(Window::All, None);
        assert_eq!(b.contribution(Some(2.5)), Some(2.5));
        assert_eq!(b.contribution(None), None);
        b.score = Score::Count;
        assert_eq!(b.contribution(None), Some(1.0));
        b.score = Score::Manual;
        assert_eq!(b.contribution(Some(1.0)), None);
    }
}
