//! Writes to PostgreSQL: users, and trades recorded in one transaction with the holding
//! update and the outbox rows that carry the trade to the other stores.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::values::{Address, Symbol, TxHash};

use super::{Postgres, TradeRow, UserRow};

/// The outbox destinations a recorded trade is delivered to.
pub const TRADE_DESTINATIONS: [&str; 3] = ["clickhouse", "redis", "pubsub"];
/// The notification channel the relay listens on.
pub const OUTBOX_CHANNEL: &str = "meridian_outbox";

pub enum RegisterOutcome {
    Created(UserRow),
    AddressTaken,
    UsernameTaken,
}

/// A trade to record, already validated.
#[derive(Debug, Clone)]
pub struct NewTrade {
    pub id: Uuid,
    pub tx_hash: TxHash,
    pub user_id: Uuid,
    pub symbol: Symbol,
    pub side: &'static str,
    pub quantity: Decimal,
    pub price: Decimal,
    pub executed_at: DateTime<Utc>,
}

pub enum TradeOutcome {
    /// Recorded now.
    Recorded(TradeRow),
    /// This tx hash was recorded before with the same values: that trade.
    AlreadyRecorded(TradeRow),
    /// This tx hash was recorded before with other values.
    HashTaken(TradeRow),
    UnknownUser,
    UnknownAsset,
    /// The asset is delisted or renamed: it takes no new trades (a trade recorded before
    /// still answers as `AlreadyRecorded`).
    AssetNotListed {
        status: String,
    },
    /// A sell of more than the user holds.
    InsufficientHoldings {
        held: Decimal,
    },
}

const TRADE_COLUMNS: &str =
    "t.id, t.tx_hash, t.user_id, t.symbol, t.side, t.quantity::float8 AS quantity, \
                             t.price::float8 AS price, t.executed_at";

fn is_unique_violation(err: &sqlx::Error, constraint: &str) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") && db.constraint() == Some(constraint))
}

impl Postgres {
    pub async fn register_user(
        &self,
        id: Uuid,
        address: &Address,
        username: &str,
    ) -> Result<RegisterOutcome, crate::Error> {
        self.calls
            .run::<RegisterOutcome, sqlx::Error, _>("register_user", async {
                let inserted = sqlx::query_as::<_, UserRow>(
                    "INSERT INTO users (id, chain, address, username) VALUES ($1, $2, $3, $4) \
             RETURNING id, chain, address, username, created_at",
                )
                .bind(id)
                .bind(address.family().as_str())
                .bind(address.as_str())
                .bind(username)
                .fetch_one(&self.pool)
                .await;
                match inserted {
                    Ok(row) => Ok(RegisterOutcome::Created(row)),
                    Err(err) if is_unique_violation(&err, "users_address_key") => {
                        Ok(RegisterOutcome::AddressTaken)
                    }
                    Err(err) if is_unique_violation(&err, "users_username_key") => {
                        Ok(RegisterOutcome::UsernameTaken)
                    }
                    Err(err) => Err(err),
                }
            })
            .await
    }

    /// Creates the month partition of `trades` for `at`, once per process and month.
    async fn ensure_partition(&self, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
        self.ensure_month_partitions(&self.partitions, "ensure_trades_partition", [at])
            .await
    }

    /// Calls the partition function `function` (`ensure_*_partition`) for the months of
    /// `times` that `known` does not hold yet, and remembers them there.
    pub(super) async fn ensure_month_partitions(
        &self,
        known: &std::sync::Mutex<std::collections::HashSet<(i32, u32)>>,
        function: &'static str,
        times: impl IntoIterator<Item = DateTime<Utc>>,
    ) -> Result<(), sqlx::Error> {
        let months: std::collections::BTreeSet<(i32, u32)> = times
            .into_iter()
            .map(|at| (at.year(), at.month()))
            .collect();
        for (year, month) in months {
            if known
                .lock()
                .map(|p| p.contains(&(year, month)))
                .unwrap_or(false)
            {
                continue;
            }
            let first = Utc
                .with_ymd_and_hms(year, month, 1, 0, 0, 0)
                .single()
                .ok_or_else(|| sqlx::Error::Protocol(format!("no month {year}-{month}")))?;
            sqlx::query(&format!("SELECT {function}($1)"))
                .bind(first)
                .execute(&self.pool)
                .await?;
            if let Ok(mut known) = known.lock() {
                known.insert((year, month));
            }
        }
        Ok(())
    }

    /// Records a trade: in one transaction the tx hash, the holding update, the trade row
    /// and one outbox row per destination (then a notification to the relay).
    pub async fn record_trade(
        &self,
        trade: &NewTrade,
        event_id: Uuid,
        payload: &serde_json::Value,
    ) -> Result<TradeOutcome, crate::Error> {
        self.calls
            .run::<TradeOutcome, sqlx::Error, _>("record_trade", async {
        self.ensure_partition(trade.executed_at).await?;
        let mut tx = self.pool.begin().await?;

        let (user_exists, asset_status): (bool, Option<String>) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1), \
             (SELECT status FROM assets WHERE symbol = $2)",
        )
        .bind(trade.user_id)
        .bind(trade.symbol.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if !user_exists {
            return Ok(TradeOutcome::UnknownUser);
        }
        let Some(asset_status) = asset_status else {
            return Ok(TradeOutcome::UnknownAsset);
        };

        let claimed: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO trade_tx_hashes (tx_hash, trade_id, executed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tx_hash) DO NOTHING RETURNING trade_id",
        )
        .bind(trade.tx_hash.as_str())
        .bind(trade.id)
        .bind(trade.executed_at)
        .fetch_optional(&mut *tx)
        .await?;
        if claimed.is_none() {
            drop(tx);
            let existing: TradeRow = sqlx::query_as(&format!(
                "SELECT {TRADE_COLUMNS} FROM trade_tx_hashes h \
                 JOIN trades t ON t.id = h.trade_id AND t.executed_at = h.executed_at WHERE h.tx_hash = $1"
            ))
            .bind(trade.tx_hash.as_str())
            .fetch_one(&self.pool)
            .await?;
            let same = existing.user_id == trade.user_id
                && existing.symbol == trade.symbol.as_str()
                && existing.side == trade.side
                && Decimal::try_from(existing.quantity)
                    .ok()
                    .map(|q| q.round_dp(12))
                    == Some(trade.quantity.round_dp(12))
                && Decimal::try_from(existing.price)
                    .ok()
                    .map(|p| p.round_dp(12))
                    == Some(trade.price.round_dp(12));
            return Ok(if same {
                TradeOutcome::AlreadyRecorded(existing)
            } else {
                TradeOutcome::HashTaken(existing)
            });
        }
        if asset_status != "listed" {
            // The claim above is rolled back with the transaction.
            return Ok(TradeOutcome::AssetNotListed {
                status: asset_status,
            });
        }

        if trade.side == "buy" {
            sqlx::query(
                "INSERT INTO holdings (user_id, symbol, quantity, cost_basis) VALUES ($1, $2, $3, $3 * $4) \
                 ON CONFLICT (user_id, symbol) DO UPDATE SET quantity = holdings.quantity + EXCLUDED.quantity, \
                 cost_basis = holdings.cost_basis + EXCLUDED.cost_basis, updated_at = now()",
            )
            .bind(trade.user_id)
            .bind(trade.symbol.as_str())
            .bind(trade.quantity)
            .bind(trade.price)
            .execute(&mut *tx)
            .await?;
        } else {
            // Average cost: a sell keeps the cost basis of what remains.
            let updated = sqlx::query(
                "UPDATE holdings SET \
                   cost_basis = CASE WHEN quantity = $3 THEN 0 ELSE round(cost_basis * (quantity - $3) / quantity, 18) END, \
                   quantity = quantity - $3, updated_at = now() \
                 WHERE user_id = $1 AND symbol = $2 AND quantity >= $3",
            )
            .bind(trade.user_id)
            .bind(trade.symbol.as_str())
            .bind(trade.quantity)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                let held: Option<Decimal> = sqlx::query_scalar(
                    "SELECT quantity FROM holdings WHERE user_id = $1 AND symbol = $2",
                )
                .bind(trade.user_id)
                .bind(trade.symbol.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                return Ok(TradeOutcome::InsufficientHoldings {
                    held: held.unwrap_or_default(),
                });
            }
        }

        let row: TradeRow = sqlx::query_as(&format!(
            "INSERT INTO trades AS t (id, tx_hash, user_id, symbol, side, quantity, price, executed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {TRADE_COLUMNS}"
        ))
        .bind(trade.id)
        .bind(trade.tx_hash.as_str())
        .bind(trade.user_id)
        .bind(trade.symbol.as_str())
        .bind(trade.side)
        .bind(trade.quantity)
        .bind(trade.price)
        .bind(trade.executed_at)
        .fetch_one(&mut *tx)
        .await?;

        super::outbox::enqueue(
            &mut tx,
            "trade_recorded",
            &[(event_id, payload.clone())],
            &TRADE_DESTINATIONS,
        )
        .await?;
        tx.commit().await?;
        Ok(TradeOutcome::Recorded(row))
            })
            .await
    }
}
