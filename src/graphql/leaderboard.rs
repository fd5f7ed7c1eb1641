//! Leaderboards: Redis sorted sets whose members resolve to users through the user loader.

use async_graphql::{Context, ErrorExtensions, Object, Result, SimpleObject, ID};
use uuid::Uuid;

use crate::{
    error::Error,
    graphql::{scope, user::User},
    loaders::{HoldingsOf, ProfileOf, UserById},
    store::redis::LEADERBOARDS,
};

const DEFAULT_TOP: u32 = 10;

#[derive(Default)]
pub struct LeaderboardQuery;

#[Object]
impl LeaderboardQuery {
    /// The top entries of a leaderboard: `volume` (traded notional) or `trades` (count).
    #[graphql(complexity = "crate::graphql::pagination::cost(top, DEFAULT_TOP, child_complexity)")]
    async fn leaderboard(
        &self,
        ctx: &Context<'_>,
        name: String,
        top: Option<i32>,
    ) -> Result<Leaderboard> {
        check_board(&name)?;
        let top = check_top(ctx, top)?;
        read(ctx, name, top).await
    }
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

/// The top `top` entries of leaderboard `name`, now.
pub async fn read(ctx: &Context<'_>, name: String, top: usize) -> Result<Leaderboard> {
    let stores = scope::stores(ctx)?;
    let (members, size) = stores.redis().leaderboard_top(&name, top).await?;
    let entries = members
        .into_iter()
        .enumerate()
        .map(|(i, (member, score))| LeaderboardEntry {
            rank: i as u64 + 1,
            score,
            user_id: member.parse().ok(),
        })
        .collect();
    Ok(Leaderboard {
        name,
        top,
        size: size as i64,
        entries,
    })
}

/// Refuses a leaderboard name Meridian does not keep.
pub fn check_board(name: &str) -> Result<(), Error> {
    if LEADERBOARDS.contains(&name) {
        Ok(())
    } else {
        Err(Error::BadUserInput(format!(
            "unknown leaderboard {name:?}; known: {}",
            LEADERBOARDS.join(", ")
        )))
    }
}

/// A ranking (Redis): its top entries.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Leaderboard {
    pub name: String,
    /// How many entries were asked for: part of the id, since the top 10 and the top 20
    /// of one board are different objects to a client cache.
    #[graphql(skip)]
    pub top: usize,
    /// Number of users on the leaderboard.
    pub size: i64,
    /// Highest score first.
    pub entries: Vec<LeaderboardEntry>,
}

#[async_graphql::ComplexObject]
impl Leaderboard {
    /// `Leaderboard:<name>:<top>`.
    pub(crate) async fn id(&self) -> ID {
        crate::graphql::node::leaderboard_id(&self.name, self.top)
    }
}

/// One place on a leaderboard.
pub struct LeaderboardEntry {
    pub rank: u64,
    pub score: f64,
    pub user_id: Option<Uuid>,
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

    /// The user (PostgreSQL); null if the member is not a known user.
    // The member is the user id, so the user's profile and holdings, when the query asks
    // for them, are requested alongside the user row rather than after it: one wave of
    // round trips fewer (their answers wait in the loader cache for the user's fields).
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(id) = self.user_id else {
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
}
