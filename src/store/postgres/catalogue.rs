//! The writable catalogue in PostgreSQL: assets (with their kind, status, successor and
//! names over time), protocols, pools and markets.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{reads::AssetRow, Postgres};
use crate::domain::catalogue::{market_transition, NewAsset, NewMarket, NewPool, NewProtocol};

pub(super) const ASSET_COLUMNS: &str = "a.symbol, a.name, a.chain, a.decimals, a.kind, a.status, \
     a.successor, a.status_changed_at";

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ProtocolRow {
    pub id: String,
    pub name: String,
    pub category: String,
    pub risk: String,
    pub chains: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct PoolRow {
    pub id: String,
    pub protocol: String,
    pub fee_bps: Option<i32>,
    /// Symbols, in the pool's order.
    pub assets: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct MarketRow {
    pub id: String,
    pub kind: String,
    pub base: Option<String>,
    pub quote: Option<String>,
    pub question: Option<String>,
    pub creator_chain: Option<String>,
    pub creator: Option<String>,
    pub target_price: Option<rust_decimal::Decimal>,
    pub resolve_at: Option<DateTime<Utc>>,
    pub status: String,
    pub outcome: Option<String>,
    pub status_changed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A name an asset had, from when.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AssetNameRow {
    pub symbol: String,
    pub name: String,
    pub since: DateTime<Utc>,
}

/// What a catalogue write did, when it did not save.
#[derive(Debug, PartialEq)]
pub enum CatalogueRefusal {
    /// The entry at `index` names, in `field`, something the catalogue does not have.
    Unknown {
        index: usize,
        field: &'static str,
        value: String,
    },
    /// The entry at `index` cannot be written as it is, for `reason`.
    Refused {
        index: usize,
        field: &'static str,
        reason: String,
    },
}

/// The rows saved, or why nothing was.
pub type CatalogueOutcome<T> = Result<Vec<T>, CatalogueRefusal>;

impl<T> crate::store::Rows for Result<Vec<T>, CatalogueRefusal> {
    fn rows(&self) -> Option<u64> {
        Some(self.as_ref().map_or(0, |rows| rows.len() as u64))
    }
}

pub(super) const POOL_SELECT: &str = "SELECT p.id, p.protocol, p.fee_bps, \
     ARRAY(SELECT pa.symbol FROM pool_assets pa WHERE pa.pool = p.id ORDER BY pa.position) AS assets, \
     p.created_at, p.updated_at FROM pools p";

impl Postgres {
    /// Adds or updates assets, all or nothing; a changed name is added to the asset's
    /// names. An asset's status is not changed here (see `delist_asset`, `rename_asset`).
    pub async fn upsert_assets(&self, assets: &[NewAsset]) -> Result<Vec<AssetRow>, crate::Error> {
        self.calls
            .run::<Vec<AssetRow>, sqlx::Error, _>("upsert_assets", async {
                let mut tx = self.pool.begin().await?;
                for a in assets {
                    sqlx::query(
                        "INSERT INTO assets (symbol, name, chain, decimals, kind) \
                         VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (symbol) DO UPDATE SET name = EXCLUDED.name, \
                         chain = EXCLUDED.chain, decimals = EXCLUDED.decimals, \
                         kind = EXCLUDED.kind, updated_at = now()",
                    )
                    .bind(&a.symbol)
                    .bind(&a.name)
                    .bind(&a.chain)
                    .bind(a.decimals)
                    .bind(a.kind)
                    .execute(&mut *tx)
                    .await?;
                    note_name(&mut tx, &a.symbol, &a.name).await?;
                }
                let symbols: Vec<String> = assets.iter().map(|a| a.symbol.clone()).collect();
                let rows: Vec<AssetRow> = sqlx::query_as(&format!(
                    "SELECT {ASSET_COLUMNS} FROM assets a WHERE a.symbol = ANY($1)"
                ))
                .bind(&symbols)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(in_order(&symbols, rows, |r| &r.symbol))
            })
            .await
    }

    /// Delists a listed asset: it keeps its history and stays readable, but takes no new
    /// ticks or trades.
    pub async fn delist_asset(
        &self,
        symbol: &str,
    ) -> Result<CatalogueOutcome<AssetRow>, crate::Error> {
        self.calls
            .run::<CatalogueOutcome<AssetRow>, sqlx::Error, _>("delist_asset", async {
                let mut tx = self.pool.begin().await?;
                if let Err(refusal) = lock_listed(&mut tx, symbol).await? {
                    return Ok(Err(refusal));
                }
                let row: AssetRow = sqlx::query_as(&format!(
                    "UPDATE assets a SET status = 'delisted', status_changed_at = now(), \
                     updated_at = now() WHERE a.symbol = $1 RETURNING {ASSET_COLUMNS}"
                ))
                .bind(symbol)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Ok(vec![row]))
            })
            .await
    }

    /// Renames a listed asset to a new symbol: the successor is a new asset of the same
    /// chain, decimals and kind (named `name`, or as before), and the old one becomes
    /// `renamed`, pointing to it. History stays under the old symbol. Returns [old, new].
    pub async fn rename_asset(
        &self,
        symbol: &str,
        to: &str,
        name: Option<&str>,
    ) -> Result<CatalogueOutcome<AssetRow>, crate::Error> {
        self.calls
            .run::<CatalogueOutcome<AssetRow>, sqlx::Error, _>("rename_asset", async {
                let mut tx = self.pool.begin().await?;
                if let Err(refusal) = lock_listed(&mut tx, symbol).await? {
                    return Ok(Err(refusal));
                }
                let created = sqlx::query(
                    "INSERT INTO assets (symbol, name, chain, decimals, kind) \
                     SELECT $2, coalesce($3, name), chain, decimals, kind FROM assets \
                     WHERE symbol = $1 ON CONFLICT (symbol) DO NOTHING",
                )
                .bind(symbol)
                .bind(to)
                .bind(name)
                .execute(&mut *tx)
                .await?;
                if created.rows_affected() == 0 {
                    return Ok(Err(CatalogueRefusal::Refused {
                        index: 0,
                        field: "to",
                        reason: format!("{to} is already catalogued"),
                    }));
                }
                let new_name: String =
                    sqlx::query_scalar("SELECT name FROM assets WHERE symbol = $1")
                        .bind(to)
                        .fetch_one(&mut *tx)
                        .await?;
                note_name(&mut tx, to, &new_name).await?;
                sqlx::query(
                    "UPDATE assets SET status = 'renamed', successor = $2, \
                     status_changed_at = now(), updated_at = now() WHERE symbol = $1",
                )
                .bind(symbol)
                .bind(to)
                .execute(&mut *tx)
                .await?;
                let symbols = vec![symbol.to_owned(), to.to_owned()];
                let rows: Vec<AssetRow> = sqlx::query_as(&format!(
                    "SELECT {ASSET_COLUMNS} FROM assets a WHERE a.symbol = ANY($1)"
                ))
                .bind(&symbols)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Ok(in_order(&symbols, rows, |r| &r.symbol)))
            })
            .await
    }

    /// Every name of each of these assets, oldest first.
    pub async fn asset_names(&self, symbols: &[String]) -> Result<Vec<AssetNameRow>, crate::Error> {
        self.read("asset_names", |pool| async move {
            sqlx::query_as(
                "SELECT symbol, name, since FROM asset_names WHERE symbol = ANY($1) \
                     ORDER BY symbol, since",
            )
            .bind(symbols)
            .fetch_all(&pool)
            .await
        })
        .await
    }

    /// Each asset's status, and its successor when renamed.
    pub async fn asset_statuses(
        &self,
    ) -> Result<Vec<(String, String, Option<String>)>, crate::Error> {
        self.calls
            .run::<Vec<(String, String, Option<String>)>, sqlx::Error, _>("asset_statuses", async {
                sqlx::query_as("SELECT symbol, status, successor FROM assets")
                    .fetch_all(&self.pool)
                    .await
            })
            .await
    }

    /// What ingestion may name, in one statement: each asset with its status and successor,
    /// and each pool (status `pool`).
    pub async fn ingest_names(
        &self,
    ) -> Result<Vec<(String, String, Option<String>)>, crate::Error> {
        self.calls
            .run::<Vec<(String, String, Option<String>)>, sqlx::Error, _>("ingest_names", async {
                sqlx::query_as(
                    "SELECT symbol, status, successor FROM assets \
                     UNION ALL SELECT id, 'pool', NULL FROM pools",
                )
                .fetch_all(&self.pool)
                .await
            })
            .await
    }

    pub async fn upsert_protocols(
        &self,
        protocols: &[NewProtocol],
    ) -> Result<Vec<ProtocolRow>, crate::Error> {
        self.calls
            .run::<Vec<ProtocolRow>, sqlx::Error, _>("upsert_protocols", async {
                let mut tx = self.pool.begin().await?;
                let mut rows = Vec::with_capacity(protocols.len());
                for p in protocols {
                    rows.push(
                        sqlx::query_as::<_, ProtocolRow>(
                            "INSERT INTO protocols (id, name, category, risk, chains) \
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET \
                             name = EXCLUDED.name, category = EXCLUDED.category, \
                             risk = EXCLUDED.risk, chains = EXCLUDED.chains, updated_at = now() \
                             RETURNING id, name, category, risk, chains, created_at, updated_at",
                        )
                        .bind(&p.id)
                        .bind(&p.name)
                        .bind(p.category)
                        .bind(p.risk)
                        .bind(&p.chains)
                        .fetch_one(&mut *tx)
                        .await?,
                    );
                }
                tx.commit().await?;
                Ok(rows)
            })
            .await
    }

    /// Adds or replaces pools, all or nothing: each must name a catalogued protocol and
    /// catalogued assets.
    pub async fn upsert_pools(
        &self,
        pools: &[NewPool],
    ) -> Result<CatalogueOutcome<PoolRow>, crate::Error> {
        self.calls
            .run::<CatalogueOutcome<PoolRow>, sqlx::Error, _>("upsert_pools", async {
                let mut tx = self.pool.begin().await?;
                let protocols: Vec<String> = pools.iter().map(|p| p.protocol.clone()).collect();
                let known: Vec<String> =
                    sqlx::query_scalar("SELECT id FROM protocols WHERE id = ANY($1)")
                        .bind(&protocols)
                        .fetch_all(&mut *tx)
                        .await?;
                if let Some((index, p)) = pools.iter().enumerate().find(|(_, p)| !known.contains(&p.protocol)) {
                    return Ok(Err(CatalogueRefusal::Unknown {
                        index,
                        field: "protocol",
                        value: p.protocol.clone(),
                    }));
                }
                let symbols: Vec<String> = pools.iter().flat_map(|p| p.assets.clone()).collect();
                let known: Vec<String> =
                    sqlx::query_scalar("SELECT symbol FROM assets WHERE symbol = ANY($1)")
                        .bind(&symbols)
                        .fetch_all(&mut *tx)
                        .await?;
                for (index, p) in pools.iter().enumerate() {
                    if let Some(s) = p.assets.iter().find(|s| !known.contains(s)) {
                        return Ok(Err(CatalogueRefusal::Unknown {
                            index,
                            field: "assets",
                            value: s.clone(),
                        }));
                    }
                }
                for p in pools {
                    sqlx::query(
                        "INSERT INTO pools (id, protocol, fee_bps) VALUES ($1, $2, $3) \
                         ON CONFLICT (id) DO UPDATE SET protocol = EXCLUDED.protocol, \
                         fee_bps = EXCLUDED.fee_bps, updated_at = now()",
                    )
                    .bind(&p.id)
                    .bind(&p.protocol)
                    .bind(p.fee_bps)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM pool_assets WHERE pool = $1")
                        .bind(&p.id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO pool_assets (pool, position, symbol) \
                         SELECT $1, ord::int, symbol FROM UNNEST($2::text[]) WITH ORDINALITY AS t(symbol, ord)",
                    )
                    .bind(&p.id)
                    .bind(&p.assets)
                    .execute(&mut *tx)
                    .await?;
                }
                let ids: Vec<String> = pools.iter().map(|p| p.id.clone()).collect();
                let rows: Vec<PoolRow> = sqlx::query_as(&format!("{POOL_SELECT} WHERE p.id = ANY($1)"))
                    .bind(&ids)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Ok(in_order(&ids, rows, |r| &r.id)))
            })
            .await
    }

    /// Adds or updates markets, all or nothing. A market keeps its kind and its status;
    /// the assets it names must be catalogued.
    pub async fn upsert_markets(
        &self,
        markets: &[NewMarket],
    ) -> Result<CatalogueOutcome<MarketRow>, crate::Error> {
        self.calls
            .run::<CatalogueOutcome<MarketRow>, sqlx::Error, _>("upsert_markets", async {
                let mut tx = self.pool.begin().await?;
                let symbols: Vec<String> = markets
                    .iter()
                    .flat_map(|m| m.base.iter().chain(m.quote.iter()).cloned())
                    .collect();
                let known: Vec<String> =
                    sqlx::query_scalar("SELECT symbol FROM assets WHERE symbol = ANY($1)")
                        .bind(&symbols)
                        .fetch_all(&mut *tx)
                        .await?;
                for (index, m) in markets.iter().enumerate() {
                    for (field, symbol) in [("base", &m.base), ("quote", &m.quote)] {
                        if let Some(s) = symbol.as_ref().filter(|s| !known.contains(s)) {
                            return Ok(Err(CatalogueRefusal::Unknown {
                                index,
                                field,
                                value: s.clone(),
                            }));
                        }
                    }
                }
                let ids: Vec<String> = markets.iter().map(|m| m.id.clone()).collect();
                let kinds: Vec<(String, String)> =
                    sqlx::query_as("SELECT id, kind FROM markets WHERE id = ANY($1) FOR UPDATE")
                        .bind(&ids)
                        .fetch_all(&mut *tx)
                        .await?;
                for (index, m) in markets.iter().enumerate() {
                    if let Some((_, kind)) = kinds.iter().find(|(id, kind)| *id == m.id && kind != m.kind) {
                        return Ok(Err(CatalogueRefusal::Refused {
                            index,
                            field: "kind",
                            reason: format!("{} is a {kind} market; its kind cannot change", m.id),
                        }));
                    }
                }
                for m in markets {
                    sqlx::query(
                        "INSERT INTO markets (id, kind, base, quote, question, creator_chain, creator, \
                         target_price, resolve_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (id) DO UPDATE SET base = EXCLUDED.base, quote = EXCLUDED.quote, \
                         question = EXCLUDED.question, creator_chain = EXCLUDED.creator_chain, \
                         creator = EXCLUDED.creator, target_price = EXCLUDED.target_price, \
                         resolve_at = EXCLUDED.resolve_at, updated_at = now()",
                    )
                    .bind(&m.id)
                    .bind(m.kind)
                    .bind(&m.base)
                    .bind(&m.quote)
                    .bind(&m.question)
                    .bind(m.creator.as_ref().map(|c| c.family().as_str()))
                    .bind(m.creator.as_ref().map(|c| c.as_str()))
                    .bind(m.target_price)
                    .bind(m.resolve_at)
                    .execute(&mut *tx)
                    .await?;
                }
                let rows: Vec<MarketRow> = sqlx::query_as("SELECT * FROM markets WHERE id = ANY($1)")
                    .bind(&ids)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Ok(in_order(&ids, rows, |r| &r.id)))
            })
            .await
    }

    /// Moves a market to `status` (with the outcome, for a resolved prediction), when the
    /// rules allow it (see [`market_transition`]).
    pub async fn set_market_status(
        &self,
        id: &str,
        status: &str,
        outcome: Option<&str>,
    ) -> Result<CatalogueOutcome<MarketRow>, crate::Error> {
        self.calls
            .run::<CatalogueOutcome<MarketRow>, sqlx::Error, _>("set_market_status", async {
                let mut tx = self.pool.begin().await?;
                let current: Option<(String, String)> =
                    sqlx::query_as("SELECT kind, status FROM markets WHERE id = $1 FOR UPDATE")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some((kind, from)) = current else {
                    return Ok(Err(CatalogueRefusal::Unknown {
                        index: 0,
                        field: "id",
                        value: id.to_owned(),
                    }));
                };
                if let Err(reason) = market_transition(&kind, &from, status) {
                    return Ok(Err(CatalogueRefusal::Refused {
                        index: 0,
                        field: "status",
                        reason,
                    }));
                }
                if (status == "resolved") != outcome.is_some() {
                    return Ok(Err(CatalogueRefusal::Refused {
                        index: 0,
                        field: "outcome",
                        reason: "an outcome is given when, and only when, a market resolves".into(),
                    }));
                }
                let row: MarketRow = sqlx::query_as(
                    "UPDATE markets SET status = $2, outcome = $3, status_changed_at = now(), \
                     updated_at = now() WHERE id = $1 RETURNING *",
                )
                .bind(id)
                .bind(status)
                .bind(outcome)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Ok(vec![row]))
            })
            .await
    }

    pub async fn protocols_by_id(&self, ids: &[String]) -> Result<Vec<ProtocolRow>, crate::Error> {
        self.rows_by_keys(
            "protocols_by_id",
            "SELECT * FROM protocols WHERE id = ANY($1)",
            ids,
        )
        .await
    }

    /// Protocols in id order after `after`: of a category, on a chain, or all.
    pub async fn protocols_page(
        &self,
        category: Option<&str>,
        chain: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ProtocolRow>, crate::Error> {
        self.read("protocols_page", |pool| async move {
            sqlx::query_as(
                "SELECT * FROM protocols WHERE ($1::text IS NULL OR category = $1) \
                     AND ($2::text IS NULL OR $2 = ANY(chains)) AND ($3::text IS NULL OR id > $3) \
                     ORDER BY id LIMIT $4",
            )
            .bind(category)
            .bind(chain)
            .bind(after)
            .bind(limit)
            .fetch_all(&pool)
            .await
        })
        .await
    }

    pub async fn pools_by_id(&self, ids: &[String]) -> Result<Vec<PoolRow>, crate::Error> {
        let sql = format!("{POOL_SELECT} WHERE p.id = ANY($1)");
        self.rows_by_keys("pools_by_id", &sql, ids).await
    }

    /// The pools of each of these protocols, in id order.
    pub async fn pools_of_protocols(
        &self,
        protocols: &[String],
    ) -> Result<Vec<PoolRow>, crate::Error> {
        let sql = format!("{POOL_SELECT} WHERE p.protocol = ANY($1) ORDER BY p.protocol, p.id");
        self.rows_by_keys("pools_of_protocols", &sql, protocols)
            .await
    }

    /// Pools in id order after `after`: of a protocol, holding an asset, or all.
    pub async fn pools_page(
        &self,
        protocol: Option<&str>,
        asset: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PoolRow>, crate::Error> {
        self.read("pools_page", |pool| async move {
            sqlx::query_as(&format!(
                "{POOL_SELECT} WHERE ($1::text IS NULL OR p.protocol = $1) \
                     AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM pool_assets pa \
                         WHERE pa.pool = p.id AND pa.symbol = $2)) \
                     AND ($3::text IS NULL OR p.id > $3) ORDER BY p.id LIMIT $4"
            ))
            .bind(protocol)
            .bind(asset)
            .bind(after)
            .bind(limit)
            .fetch_all(&pool)
            .await
        })
        .await
    }

    pub async fn markets_by_id(&self, ids: &[String]) -> Result<Vec<MarketRow>, crate::Error> {
        self.rows_by_keys(
            "markets_by_id",
            "SELECT * FROM markets WHERE id = ANY($1)",
            ids,
        )
        .await
    }

    /// The rows `sql` selects for the text keys bound as `$1`.
    async fn rows_by_keys<T>(
        &self,
        op: &'static str,
        sql: &str,
        keys: &[String],
    ) -> Result<Vec<T>, crate::Error>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        self.read(op, |pool| async move {
            sqlx::query_as(sql).bind(keys).fetch_all(&pool).await
        })
        .await
    }

    /// Markets in id order after `after`: of a kind, of a status, or all.
    pub async fn markets_page(
        &self,
        kind: Option<&str>,
        status: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MarketRow>, crate::Error> {
        self.read("markets_page", |pool| async move {
            sqlx::query_as(
                "SELECT * FROM markets WHERE ($1::text IS NULL OR kind = $1) \
                     AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR id > $3) \
                     ORDER BY id LIMIT $4",
            )
            .bind(kind)
            .bind(status)
            .bind(after)
            .bind(limit)
            .fetch_all(&pool)
            .await
        })
        .await
    }
}

/// Adds `name` to the asset's names unless it is already the latest one.
async fn note_name(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    symbol: &str,
    name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO asset_names (symbol, name, since) SELECT $1, $2, clock_timestamp() \
         WHERE $2 IS DISTINCT FROM (SELECT name FROM asset_names WHERE symbol = $1 \
         ORDER BY since DESC LIMIT 1)",
    )
    .bind(symbol)
    .bind(name)
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// Locks a listed asset's row for a status change; the refusal says why it cannot change
/// (not catalogued, or not listed).
async fn lock_listed(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    symbol: &str,
) -> Result<Result<(), CatalogueRefusal>, sqlx::Error> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM assets WHERE symbol = $1 FOR UPDATE")
            .bind(symbol)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(match status {
        None => Err(CatalogueRefusal::Unknown {
            index: 0,
            field: "symbol",
            value: symbol.to_owned(),
        }),
        Some(status) if status != "listed" => Err(CatalogueRefusal::Refused {
            index: 0,
            field: "symbol",
            reason: format!("{symbol} is {status}, not listed"),
        }),
        Some(_) => Ok(()),
    })
}

/// `rows` in the order of `keys` (each key once).
fn in_order<T>(keys: &[String], mut rows: Vec<T>, key: impl Fn(&T) -> &String) -> Vec<T> {
    let mut ordered = Vec::with_capacity(rows.len());
    for k in keys {
        if let Some(i) = rows.iter().position(|r| key(r) == k) {
            ordered.push(rows.swap_remove(i));
        }
    }
    ordered
}
