//! Boards: declared rankings kept in Redis sorted sets (see [`crate::domain::boards`]).
//! Trade boards rank users, resolved through the user loader; boards of domain events and
//! manual boards rank accounts, resolved to users through the address loader.

use async_graphql::{Context, ErrorExtensions, Object, Result, SimpleObject, ID};
use chrono::Utc;
use uuid::Uuid;

use crate::{
    auth::Role,
    boards::announcements,
    domain::boards::{account_member, BoardDef, Member, Period},
    error::Error,
    graphql::{event::Account, scope, user::Chain, user::User},
    loaders::{BoardTopOf, HoldingsOf, ProfileOf, StandingOf, UserById},
    values::{Address, ChainFamily},
};

const DEFAULT_TOP: u32 = 10;

#[derive(Default)]
pub struct LeaderboardQuery;

#[Object]
impl LeaderboardQuery {
    /// The top entries of a board (`boards` lists them). A windowed board (day, week,
    /// month) reads `period` (`2026-11-24`, `2026-W48`, `2026-11`) if it is still kept,
    /// by default the current one; an all-time board has no period. A board split `by`
    /// an attribute has one ranking per value: `of` names it (a challenge's id, say).
    #[graphql(complexity = "crate::graphql::pagination::cost(top, DEFAULT_TOP, child_complexity)")]
    async fn leaderboard(
        &self,
        ctx: &Context<'_>,
        name: String,
        of: Option<String>,
        top: Option<i32>,
        period: Option<String>,
    ) -> Result<Leaderboard> {
        let board = board(ctx, &name).await?;
        let of = ranking_of(&board, of)?;
        let top = check_top(ctx, top)?;
        let period = period_of(&board, period.as_deref())?;
        read(ctx, &board, of, period, top).await
    }

    /// The declared boards (PostgreSQL, written by `meridian migrate` from the catalogue).
    async fn boards(&self, ctx: &Context<'_>) -> Result<Vec<BoardInfo>> {
        let app = scope::app(ctx)?;
        let boards = app.boards().all(app.stores()).await?;
        let now = Utc::now();
        Ok(boards.values().map(|b| BoardInfo::new(b, now)).collect())
    }
}

#[derive(Default)]
pub struct LeaderboardMutation;

#[Object]
impl LeaderboardMutation {
    /// Sets a member's score on a manual board (service or admin role), in `period` or
    /// the current one. The member is an account address (with `chain` when the address
    /// alone is ambiguous). The score is kept in PostgreSQL, then in Redis, and
    /// subscribers of the board are told.
    async fn set_score(
        &self,
        ctx: &Context<'_>,
        board: String,
        member: String,
        chain: Option<Chain>,
        score: f64,
        period: Option<String>,
    ) -> Result<LeaderboardEntry> {
        scope::viewer(ctx).require_any(&[Role::Admin, Role::Service])?;
        let def = self::board(ctx, &board).await?;
        if !def.is_manual() {
            return Err(Error::field(
                "board",
                format!(
                    "board {board} is moved by its events ({}); only manual boards take setScore",
                    def.reads.join(", ")
                ),
            )
            .extend());
        }
        if !score.is_finite() {
            return Err(Error::field("score", "must be a finite number").extend());
        }
        let address = match chain {
            Some(chain) => Address::parse_as(ChainFamily::from(chain), &member),
            None => Address::parse(&member),
        }
        .map_err(|rule| Error::field("member", rule).extend())?;
        let period = period_of(&def, period.as_deref())?;
        let member = account_member(address.family().as_str(), address.as_str());
        let app = scope::app(ctx)?;
        let stores = scope::stores(ctx)?;
        stores
            .postgres()
            .set_board_score(&def.name, &period.name, &member, score)
            .await?;
        let boards = app.boards().all(app.stores()).await?;
        let announce = announcements(
            stores,
            &boards,
            [(def.name.clone(), period.name.clone())],
            Utc::now(),
        );
        stores
            .redis()
            .set_board_score(&def.name, &period, &member, score, &announce)
            .await?;
        let standing = stores
            .redis()
            .standings(&[(def.name.clone(), period.name.clone(), member.clone())])
            .await?;
        let rank = standing.into_iter().flatten().next().map_or(0, |s| s.rank);
        Ok(LeaderboardEntry::new(rank, score, member, period.name))
    }
}

/// The definition of board `name`, or BAD_USER_INPUT naming the known boards.
pub async fn board(ctx: &Context<'_>, name: &str) -> Result<BoardDef> {
    let app = scope::app(ctx)?;
    Ok(app.boards().get(app.stores(), name).await?)
}

/// The longest `of` value accepted (an attribute string's limit).
const MAX_OF: usize = 512;

/// The ranking asked of a board, checked: `of` is required by a board split `by` an
/// attribute and refused by any other (BAD_USER_INPUT on `of`).
pub fn ranking_of(board: &BoardDef, of: Option<String>) -> Result<Option<String>> {
    match (&board.by, of) {
        (Some(_), Some(value)) if !value.is_empty() && value.chars().count() <= MAX_OF => {
            Ok(Some(value))
        }
        (Some(by), _) => Err(Error::field(
            "of",
            format!(
                "board {} has one ranking per {by}: name one with `of` (1 to {MAX_OF} characters)",
                board.name
            ),
        )
        .extend()),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(Error::field(
            "of",
            format!("board {} has one ranking; leave `of` out", board.name),
        )
        .extend()),
    }
}

/// The period asked of a board, checked (BAD_USER_INPUT on `period` when it is not one).
pub fn period_of(board: &BoardDef, period: Option<&str>) -> Result<Period> {
    board
        .period(period, Utc::now())
        .map_err(|message| Error::field("period", message).extend())
}

/// `top`, defaulted and checked against the page-size cap.
pub fn check_top(ctx: &Context<'_>, top: Option<i32>) -> Result<usize> {
    let max = scope::app(ctx)?.config().max_page_size;
    match top {
        None => Ok(DEFAULT_TOP.min(max) as usize),
        Some(n) if n < 1 || n as u32 > max => Err(Error::BadUserInput(format!(
            "`top` must be between 1 and {max} (got {n})"
        ))
        .extend()),
        Some(n) => Ok(n as usize),
    }
}

/// The top `top` entries of one period of a ranking of a board, now.
pub async fn read(
    ctx: &Context<'_>,
    board: &BoardDef,
    of: Option<String>,
    period: Period,
    top: usize,
) -> Result<Leaderboard> {
    let instance = board.instance(of.as_deref());
    // Through a loader, so that many boards in one query (a list of challenges with
    // theirs) share one Redis pipeline.
    let (members, size) = scope::loaders(ctx)?
        .load_one(BoardTopOf {
            instance: instance.clone(),
            period: period.name.clone(),
            top,
        })
        .await?
        .unwrap_or_default();
    let entries = members
        .into_iter()
        .enumerate()
        .map(|(i, (member, score))| {
            LeaderboardEntry::new(i as u64 + 1, score, member, period.name.clone())
        })
        .collect();
    Ok(Leaderboard {
        name: board.name.clone(),
        of,
        instance,
        period: (!period.name.is_empty()).then_some(period.name),
        top,
        size: size as i64,
        entries,
    })
}

/// A member's place on a period of board `name` (the current one by default), through
/// the standings loader; the board must rank what the member is (`ranks`). No member
/// (an account of an unknown chain) has no place.
pub async fn place(
    ctx: &Context<'_>,
    name: &str,
    of: Option<String>,
    period: Option<String>,
    ranks: Member,
    member: Option<String>,
) -> Result<Option<LeaderboardEntry>> {
    let board = board(ctx, name).await?;
    let of = ranking_of(&board, of)?;
    if board.member() != ranks {
        let hint = match ranks {
            Member::User => "ranks accounts; ask `Account.rank` (an event's `subject`)",
            Member::Account => "ranks users; ask `User.rank`",
        };
        return Err(Error::field("board", format!("board {name} {hint}")).extend());
    }
    let period = period_of(&board, period.as_deref())?;
    let Some(member) = member else {
        return Ok(None);
    };
    let standing = scope::loaders(ctx)?
        .load_one(StandingOf {
            board: board.instance(of.as_deref()),
            period: period.name.clone(),
            member: member.clone(),
        })
        .await?;
    Ok(standing.map(|s| LeaderboardEntry::new(s.rank, s.score, member, period.name)))
}

/// A board's definition.
#[derive(SimpleObject)]
#[graphql(name = "Board")]
pub struct BoardInfo {
    name: String,
    description: String,
    /// The kinds whose events move it (`trade` for recorded trades); empty for a manual
    /// board.
    reads: Vec<String>,
    /// sum (of the amount), count, max (of the amount) or manual (set by `setScore`).
    score: String,
    /// all, day, week or month.
    window: String,
    /// How many periods a windowed board keeps, the current one included.
    retention: Option<i32>,
    /// What it ranks: `user` (trade boards) or `account`.
    member: String,
    /// The current period; null for an all-time board.
    current_period: Option<String>,
    /// The attribute that splits it into one ranking per value (`leaderboard(of:)`);
    /// null for a board of one ranking.
    by: Option<String>,
}

impl BoardInfo {
    fn new(b: &BoardDef, now: chrono::DateTime<Utc>) -> Self {
        let current = b.current(now).name;
        BoardInfo {
            name: b.name.clone(),
            description: b.description.clone(),
            reads: b.reads.clone(),
            score: b.score.as_str().into(),
            window: b.window.as_str().into(),
            retention: b.retention.and_then(|r| i32::try_from(r).ok()),
            member: match b.member() {
                Member::User => "user".into(),
                Member::Account => "account".into(),
            },
            current_period: (!current.is_empty()).then_some(current),
            by: b.by.clone(),
        }
    }
}

/// A ranking (Redis): the top entries of one period of a board.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Leaderboard {
    pub name: String,
    /// Which ranking of a board split `by` an attribute (its value); null otherwise.
    pub of: Option<String>,
    /// The ranking's key name (part of the id).
    #[graphql(skip)]
    pub instance: String,
    /// The period read (`2026-W48`...); null for an all-time board.
    pub period: Option<String>,
    /// How many entries were asked for: part of the id, since the top 10 and the top 20
    /// of one board are different objects to a client cache.
    #[graphql(skip)]
    pub top: usize,
    /// Number of members on the board (in this period).
    pub size: i64,
    /// Highest score first.
    pub entries: Vec<LeaderboardEntry>,
}

#[async_graphql::ComplexObject]
impl Leaderboard {
    /// `Leaderboard:<name>:<top>`, or `Leaderboard:<name>:<period>:<top>` for a period of
    /// a windowed board (`<name>~<value in base64url>` for a ranking of a split board).
    pub(crate) async fn id(&self) -> ID {
        crate::graphql::node::leaderboard_id(&self.instance, self.period.as_deref(), self.top)
    }
}

/// One place on a board.
pub struct LeaderboardEntry {
    pub rank: u64,
    pub score: f64,
    /// A user id, or `chain:address`.
    pub member: String,
    /// The period it is in (empty for all time).
    pub period: String,
}

impl LeaderboardEntry {
    pub fn new(rank: u64, score: f64, member: String, period: String) -> Self {
        LeaderboardEntry {
            rank,
            score,
            member,
            period,
        }
    }

    fn user_id(&self) -> Option<Uuid> {
        self.member.parse().ok()
    }

    fn ranked_account(&self) -> Option<Account> {
        let (chain, address) = self.member.split_once(':')?;
        Some(Account::from_stored(chain, address))
    }
}

#[Object]
impl LeaderboardEntry {
    /// 1 is the top.
    async fn rank(&self) -> i64 {
        self.rank as i64
    }

    async fn score(&self) -> f64 {
        self.score
    }

    /// What the board ranks, as it keeps it: a user id, or `chain:address`.
    async fn member(&self) -> &str {
        &self.member
    }

    /// The account ranked, on boards of accounts (domain events, manual boards).
    async fn account(&self) -> Option<Account> {
        self.ranked_account()
    }

    /// The user (PostgreSQL): the user ranked on a trade board, or the user who
    /// registered the account ranked; null if there is none.
    // On a trade board the member is the user id, so the user's profile and holdings,
    // when the query asks for them, are requested alongside the user row rather than
    // after it: one wave of round trips fewer (their answers wait in the loader cache).
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        if let Some(account) = self.ranked_account() {
            return account.registered_user(ctx).await;
        }
        let Some(id) = self.user_id() else {
            return Ok(None);
        };
        let loaders = scope::loaders(ctx)?;
        let wanted = ctx.look_ahead();
        let profile = async {
            if wanted.field("profile").exists() {
                let _ = loaders.load_one(ProfileOf(id)).await;
            }
        };
        let holdings = async {
            if wanted.field("holdings").exists() && scope::viewer(ctx).may_see(id).is_ok() {
                let _ = loaders.load_one(HoldingsOf(id)).await;
            }
        };
        let (row, (), ()) = tokio::join!(loaders.load_one(UserById(id)), profile, holdings);
        Ok(row?.map(User))
    }

    /// The period this place is in; null on an all-time board.
    async fn period(&self) -> Option<&str> {
        (!self.period.is_empty()).then_some(self.period.as_str())
    }
}
