//! Writes the demo dataset into PostgreSQL, in bulk (one `UNNEST` statement per chunk).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use rust_decimal::Decimal;

use super::Postgres;
use crate::seed::dataset::{Asset, Holding, Trade, User};

/// Rows per bulk statement.
const CHUNK: usize = 5_000;

impl Postgres {
    /// Empties every table the demo dataset fills.
    pub async fn reset_demo_data(&self) -> Result<(), crate::Error> {
        self.calls
            .run::<(), sqlx::Error, _>("reset_demo_data", async {
                sqlx::query(
                    "TRUNCATE users, assets, asset_names, holdings, trades, trade_tx_hashes, outbox, \
                     events, event_ids, artifacts, artifact_events, challenges, board_scores, \
                     protocols, pools, pool_assets, markets, token_assets, conflicts CASCADE",
                )
                .execute(&self.pool)
                .await
                .map(drop)
            })
            .await
    }

    pub async fn insert_assets(&self, assets: &[Asset]) -> Result<(), crate::Error> {
        self.calls
            .run::<(), sqlx::Error, _>("insert_assets", async {
                // Each asset's first name is kept with it (see `asset_names`).
                sqlx::query(
                    "WITH added AS (INSERT INTO assets (symbol, name, chain, decimals) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int[]) \
             RETURNING symbol, name, created_at) \
             INSERT INTO asset_names (symbol, name, since) SELECT * FROM added",
                )
                .bind(assets.iter().map(|a| a.symbol.clone()).collect::<Vec<_>>())
                .bind(assets.iter().map(|a| a.name.clone()).collect::<Vec<_>>())
                .bind(assets.iter().map(|a| a.chain.clone()).collect::<Vec<_>>())
                .bind(assets.iter().map(|a| a.decimals).collect::<Vec<_>>())
                .execute(&self.pool)
                .await
                .map(drop)
            })
            .await
    }

    pub async fn insert_users(&self, users: &[User]) -> Result<(), crate::Error> {
        self.calls
            .run::<(), sqlx::Error, _>("insert_users", async {
                for chunk in users.chunks(CHUNK) {
                    sqlx::query(
                        "INSERT INTO users (id, address, username, created_at, chain) \
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], \
                 $5::text[])",
                    )
                    .bind(chunk.iter().map(|u| u.id).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|u| u.address.clone()).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|u| u.username.clone()).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|u| u.created_at).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|u| u.chain.as_str()).collect::<Vec<_>>())
                    .execute(&self.pool)
                    .await?;
                }
                Ok(())
            })
            .await
    }

    /// Inserts trades (and their tx hashes) in chunks, creating month partitions first.
    /// Calls `progress` with the number of rows after each chunk.
    pub async fn insert_trades(
        &self,
        trades: &[Trade],
        mut progress: impl FnMut(u64),
    ) -> Result<(), crate::Error> {
        self.calls
            .run::<(), sqlx::Error, _>("insert_trades", async {
        let months: BTreeSet<(i32, u32)> = trades
            .iter()
            .map(|t| (t.executed_at.year(), t.executed_at.month()))
            .collect();
        for (year, month) in months {
            let first: DateTime<Utc> = Utc
                .with_ymd_and_hms(year, month, 1, 0, 0, 0)
                .single()
                .unwrap_or_default();
            sqlx::query("SELECT ensure_trades_partition($1)")
                .bind(first)
                .execute(&self.pool)
                .await?;
        }
        for chunk in trades.chunks(CHUNK) {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO trades (id, tx_hash, user_id, symbol, side, quantity, price, executed_at) \
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], \
                                      $6::numeric[], $7::numeric[], $8::timestamptz[])",
            )
            .bind(chunk.iter().map(|t| t.id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.tx_hash.clone()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.user_id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.symbol.clone()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.side.as_str().to_owned()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.quantity).collect::<Vec<Decimal>>())
            .bind(chunk.iter().map(|t| t.price).collect::<Vec<Decimal>>())
            .bind(chunk.iter().map(|t| t.executed_at).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO trade_tx_hashes (tx_hash, trade_id, executed_at) \
                 SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::timestamptz[])",
            )
            .bind(chunk.iter().map(|t| t.tx_hash.clone()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|t| t.executed_at).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            progress(chunk.len() as u64);
        }
        Ok(())
            })
            .await
    }

    pub async fn insert_holdings(&self, holdings: &[Holding]) -> Result<(), crate::Error> {
        self.calls
            .run::<(), sqlx::Error, _>("insert_holdings", async {
                for chunk in holdings.chunks(CHUNK) {
                    sqlx::query(
                        "INSERT INTO holdings (user_id, symbol, quantity, cost_basis) \
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::numeric[], $4::numeric[])",
                    )
                    .bind(chunk.iter().map(|h| h.user_id).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|h| h.symbol.clone()).collect::<Vec<_>>())
                    .bind(chunk.iter().map(|h| h.quantity).collect::<Vec<Decimal>>())
                    .bind(chunk.iter().map(|h| h.cost_basis).collect::<Vec<Decimal>>())
                    .execute(&self.pool)
                    .await?;
                }
                Ok(())
            })
            .await
    }
}
