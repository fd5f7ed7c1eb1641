//! The graph's reads from PostgreSQL. Every batch binds its keys as one array.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{catalogue::ASSET_COLUMNS, Postgres};
use crate::values::Address;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    /// The address's chain family (`evm`, `stellar` or `casper`).
    pub chain: String,
    pub address: String,
    pub username: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AssetRow {
    pub symbol: String,
    pub name: String,
    pub chain: String,
    pub decimals: i32,
    /// token, lp_token, staking_derivative or nft_collection.
    pub kind: String,
    /// listed, delisted or renamed.
    pub status: String,
    /// The asset it was renamed to.
    pub successor: Option<String>,
    pub status_changed_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HoldingRow {
    pub user_id: Uuid,
    pub symbol: String,
    pub quantity: f64,
    pub cost_basis: f64,
    /// The held asset's row, joined in the same query.
    #[sqlx(flatten)]
    pub asset: AssetRow,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TradeRow {
    pub id: Uuid,
    pub tx_hash: String,
    pub user_id: Uuid,
    pub symbol: String,
    pub side: String,
    pub quantity: f64,
    pub price: f64,
    pub executed_at: DateTime<Utc>,
}

/// Which of a user's trades to read: newest first, strictly before `before` (a keyset
/// position), within [from, to), at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TradeWindow {
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: i64,
}

const USER_COLUMNS: &str = "id, chain, address, username, created_at";

impl Postgres {
    pub async fn users_by_id(&self, ids: &[Uuid]) -> Result<Vec<UserRow>, crate::Error> {
        self.read("users_by_id", |pool| async move {
            sqlx::query_as(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE id = ANY($1)"
            ))
            .bind(ids)
            .fetch_all(&pool)
            .await
        })
        .await
    }

    pub async fn users_by_address(
        &self,
        addresses: &[Address],
    ) -> Result<Vec<UserRow>, crate::Error> {
        self.read("users_by_address", |pool| async move {
            sqlx::query_as(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE address = ANY($1)"
            ))
            .bind(addresses.iter().map(Address::as_str).collect::<Vec<_>>())
            .fetch_all(&pool)
            .await
        })
        .await
    }

    /// Users in (created_at, id) order, after a keyset position.
    pub async fn users_page(
        &self,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<UserRow>, crate::Error> {
        self.read("users_page", |pool| async move {
            sqlx::query_as(&format!(
                "SELECT {USER_COLUMNS} FROM users \
             WHERE $1::timestamptz IS NULL OR (created_at, id) > ($1, $2) \
             ORDER BY created_at, id LIMIT $3"
            ))
            .bind(after.map(|a| a.0))
            .bind(after.map(|a| a.1))
            .bind(limit)
            .fetch_all(&pool)
            .await
        })
        .await
    }

    pub async fn assets_by_symbol(
        &self,
        symbols: &[String],
    ) -> Result<Vec<AssetRow>, crate::Error> {
        self.read("assets_by_symbol", |pool| async move {
            sqlx::query_as(&format!(
                "SELECT {ASSET_COLUMNS} FROM assets a WHERE a.symbol = ANY($1)"
            ))
            .bind(symbols)
            .fetch_all(&pool)
            .await
        })
        .await
    }

    /// Assets in symbol order after `after`, optionally only among `only`.
    pub async fn assets_page(
        &self,
        after: Option<&str>,
        only: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<AssetRow>, crate::Error> {
        self.read("assets_page", |pool| async move {
                sqlx::query_as(&format!(
                    "SELECT {ASSET_COLUMNS} FROM assets a \
             WHERE ($1::text IS NULL OR a.symbol > $1) AND ($2::text[] IS NULL OR a.symbol = ANY($2)) \
             ORDER BY a.symbol LIMIT $3"
                ))
                .bind(after)
                .bind(only)
                .bind(limit)
                .fetch_all(&pool)
                .await
            })
            .await
    }

    pub async fn holdings_by_user(&self, users: &[Uuid]) -> Result<Vec<HoldingRow>, crate::Error> {
        self.read("holdings_by_user", |pool| async move {
            sqlx::query_as(
                "SELECT h.user_id, h.symbol, h.quantity::float8 AS quantity, \
                    h.cost_basis::float8 AS cost_basis, a.name, a.chain, a.decimals, a.kind, \
                    a.status, a.successor, a.status_changed_at \
             FROM holdings h JOIN assets a ON a.symbol = h.symbol \
             WHERE h.user_id = ANY($1) AND h.quantity > 0 ORDER BY h.user_id, h.symbol",
            )
            .bind(users)
            .fetch_all(&pool)
            .await
        })
        .await
    }

    /// Trades by id (any month: each partition's primary key starts with the id).
    pub async fn trades_by_id(&self, ids: &[Uuid]) -> Result<Vec<TradeRow>, crate::Error> {
        self.read("trades_by_id", |pool| async move {
            sqlx::query_as(
                "SELECT id, tx_hash, user_id, symbol, side, quantity::float8 AS quantity, \
                    price::float8 AS price, executed_at \
             FROM trades WHERE id = ANY($1)",
            )
            .bind(ids)
            .fetch_all(&pool)
            .await
        })
        .await
    }

    /// The same window of trades for each of `users`, in one statement.
    pub async fn trades_page(
        &self,
        users: &[Uuid],
        window: &TradeWindow,
    ) -> Result<Vec<TradeRow>, crate::Error> {
        self.read("trades_page", |pool| async move {
            sqlx::query_as(
                "SELECT t.* FROM UNNEST($1::uuid[]) AS u(id) CROSS JOIN LATERAL ( \
               SELECT id, tx_hash, user_id, symbol, side, quantity::float8 AS quantity, \
                      price::float8 AS price, executed_at \
               FROM trades \
               WHERE user_id = u.id \
                 AND ($2::timestamptz IS NULL OR executed_at >= $2) \
                 AND ($3::timestamptz IS NULL OR executed_at < $3) \
                 AND ($4::timestamptz IS NULL OR (executed_at, id) < ($4, $5)) \
               ORDER BY executed_at DESC, id DESC LIMIT $6 \
             ) t",
            )
            .bind(users)
            .bind(window.from)
            .bind(window.to)
            .bind(window.before.map(|b| b.0))
            .bind(window.before.map(|b| b.1))
            .bind(window.limit)
            .fetch_all(&pool)
            .await
        })
        .await
    }
}

impl Postgres {
    /// The symbols of listed assets (those that take ticks and trades).
    pub async fn asset_symbols(&self) -> Result<Vec<String>, crate::Error> {
        self.calls
            .run::<Vec<String>, sqlx::Error, _>("asset_symbols", async {
                sqlx::query_scalar("SELECT symbol FROM assets WHERE status = 'listed'")
                    .fetch_all(&self.pool)
                    .await
            })
            .await
    }

    /// Every catalogued symbol, delisted and renamed ones included (their history reads).
    pub async fn catalogued_symbols(&self) -> Result<Vec<String>, crate::Error> {
        self.calls
            .run::<Vec<String>, sqlx::Error, _>("catalogued_symbols", async {
                sqlx::query_scalar("SELECT symbol FROM assets")
                    .fetch_all(&self.pool)
                    .await
            })
            .await
    }

    /// Trade count and volume per UTC day and symbol.
    pub async fn trade_totals(
        &self,
    ) -> Result<Vec<crate::store::clickhouse::DayTotals>, crate::Error> {
        self.calls
            .run::<Vec<crate::store::clickhouse::DayTotals>, sqlx::Error, _>(
                "trade_totals",
                async {
                    let rows: Vec<(String, String, i64, f64)> = sqlx::query_as(
            "SELECT to_char(executed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, symbol, \
                    count(*)::int8 AS trades, sum(quantity * price)::float8 AS volume \
             FROM trades GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?;
                    Ok(rows.into_iter().map(Into::into).collect())
                },
            )
            .await
    }

    /// Every trade, oldest first, `limit` at a time after a keyset position.
    pub async fn trades_after(
        &self,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<TradeRow>, crate::Error> {
        self.calls
            .run::<Vec<TradeRow>, sqlx::Error, _>("trades_after", async {
        sqlx::query_as(
            "SELECT id, tx_hash, user_id, symbol, side, quantity::float8 AS quantity, price::float8 AS price, executed_at \
             FROM trades WHERE $1::timestamptz IS NULL OR (executed_at, id) > ($1, $2) \
             ORDER BY executed_at, id LIMIT $3",
        )
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
            })
            .await
    }
}

impl Postgres {
    /// Up to `limit` user ids.
    pub async fn user_ids(&self, limit: i64) -> Result<Vec<Uuid>, crate::Error> {
        self.calls
            .run::<Vec<Uuid>, sqlx::Error, _>("user_ids", async {
                sqlx::query_scalar(
                    "SELECT id FROM users WHERE chain = 'evm' ORDER BY created_at LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            })
            .await
    }

    /// What the demo feed's platforms act on: Stellar accounts (KALE-ndar farmers), the
    /// accounts that have submitted to a challenge (Fathuss coders), and the challenges
    /// with their difficulty; up to `limit` of each.
    pub async fn demo_platform_actors(&self, limit: i64) -> Result<DemoActors, crate::Error> {
        self.calls
            .run::<DemoActors, sqlx::Error, _>("demo_platform_actors", async {
                let farmers = sqlx::query_scalar(
                    "SELECT address FROM users WHERE chain = 'stellar' ORDER BY created_at LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let coders = sqlx::query_scalar(
                    "SELECT DISTINCT subject FROM events WHERE kind = 'challenge_submission' \
                     AND subject_chain = 'evm' ORDER BY subject LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let challenges = sqlx::query_as(
                    "SELECT id, difficulty FROM challenges ORDER BY id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(DemoActors {
                    farmers,
                    coders,
                    challenges,
                })
            })
            .await
    }
}

/// See [`Postgres::demo_platform_actors`].
#[derive(Debug, Default)]
pub struct DemoActors {
    pub farmers: Vec<String>,
    pub coders: Vec<String>,
    /// (id, difficulty as stored).
    pub challenges: Vec<(String, String)>,
}

impl crate::store::Rows for DemoActors {
    fn rows(&self) -> Option<u64> {
        Some((self.farmers.len() + self.coders.len() + self.challenges.len()) as u64)
    }
}
