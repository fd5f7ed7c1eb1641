//! Astake's token assets and their writers' conflicts (see [`crate::domain::tokens`] for
//! the rule). A write takes each token's row lock, decides per field, and records the
//! row and its conflicts in one transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::types::Json;

use super::Postgres;
use crate::domain::tokens::{self, Provenance, Writer};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct TokenAssetRow {
    pub token_id: String,
    pub owner_chain: Option<String>,
    pub owner: Option<String>,
    pub value: Option<Decimal>,
    pub verified: Option<bool>,
    pub contract: Option<String>,
    pub provenance: Json<BTreeMap<String, Provenance>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TokenAssetRow {
    /// The fields set, as the rule compares them.
    pub fn values(&self) -> BTreeMap<String, Value> {
        let mut values = BTreeMap::new();
        if let (Some(chain), Some(owner)) = (&self.owner_chain, &self.owner) {
            values.insert("owner".into(), json!({ "chain": chain, "address": owner }));
        }
        if let Some(v) = self.value {
            values.insert("value".into(), Value::String(v.normalize().to_string()));
        }
        if let Some(v) = self.verified {
            values.insert("verified".into(), Value::Bool(v));
        }
        if let Some(v) = &self.contract {
            values.insert("contract".into(), Value::String(v.clone()));
        }
        values
    }

    /// Sets a field from its compared form.
    fn set(&mut self, field: &str, value: &Value) {
        match field {
            "owner" => {
                self.owner_chain = value["chain"].as_str().map(str::to_owned);
                self.owner = value["address"].as_str().map(str::to_owned);
            }
            "value" => self.value = value.as_str().and_then(|v| v.parse().ok()),
            "verified" => self.verified = value.as_bool(),
            "contract" => self.contract = value.as_str().map(str::to_owned),
            _ => {}
        }
    }

    fn empty(token_id: &str) -> TokenAssetRow {
        TokenAssetRow {
            token_id: token_id.to_owned(),
            owner_chain: None,
            owner: None,
            value: None,
            verified: None,
            contract: None,
            provenance: Json(BTreeMap::new()),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConflictRow {
    pub id: i64,
    pub entity: String,
    pub entity_id: String,
    pub fields: Vec<String>,
    pub kept_values: Json<Value>,
    pub kept_source: String,
    pub kept_block: i64,
    pub other_values: Json<Value>,
    pub other_source: String,
    pub other_block: i64,
    pub status: String,
    pub resolution: Option<String>,
    pub detected_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
}

/// One token's write: its values in the rule's compared form, at a block.
#[derive(Debug, Clone)]
pub struct TokenWrite {
    pub token_id: String,
    pub values: BTreeMap<String, Value>,
    pub block: i64,
}

/// What a write did to one token.
#[derive(Debug, Clone)]
pub struct TokenWriteResult {
    pub row: TokenAssetRow,
    pub applied: Vec<String>,
    pub stale: Vec<String>,
    pub conflicts: Vec<ConflictRow>,
}

/// Why a conflict was not resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolveRefusal {
    NotFound,
    AlreadyResolved(String),
    /// The indexer has since written one of the fields: the chain decides it now.
    ChainHasSpoken(String),
}

impl crate::store::Rows for Result<ConflictRow, ResolveRefusal> {}

impl Postgres {
    /// Applies `writer`'s writes token by token under the rule, all in one transaction.
    pub async fn write_token_assets(
        &self,
        writer: &Writer,
        writes: &[TokenWrite],
    ) -> Result<Vec<TokenWriteResult>, crate::Error> {
        self.calls
            .run::<Vec<TokenWriteResult>, sqlx::Error, _>("write_token_assets", async {
                let mut tx = self.pool.begin().await?;
                let now = Utc::now();
                let mut out = Vec::with_capacity(writes.len());
                for w in writes {
                    let mut row = lock_token(&mut tx, &w.token_id).await?;
                    let plan = tokens::decide(
                        &row.values(),
                        &row.provenance.0,
                        &w.values,
                        writer,
                        w.block,
                        now.timestamp(),
                    );
                    let mut applied = Vec::new();
                    for (field, value, by) in &plan.apply {
                        row.set(field, value);
                        row.provenance.0.insert(field.clone(), by.clone());
                        applied.push(field.clone());
                    }
                    if !applied.is_empty() {
                        row = save_token(&mut tx, &row).await?;
                    }
                    let mut conflicts = Vec::new();
                    for c in &plan.conflicts {
                        let (status, resolution) = if c.open {
                            ("open", None)
                        } else {
                            ("resolved", Some("chain"))
                        };
                        let found: ConflictRow = sqlx::query_as(
                            "INSERT INTO conflicts (entity, entity_id, fields, kept_values, kept_source, \
                             kept_block, other_values, other_source, other_block, status, resolution, \
                             resolved_at, resolved_by) VALUES ('token_asset', $1, $2, $3, $4, $5, $6, $7, \
                             $8, $9, $10, CASE WHEN $10::text IS NULL THEN NULL ELSE now() END, \
                             CASE WHEN $10::text IS NULL THEN NULL ELSE 'chain rule' END) RETURNING *",
                        )
                        .bind(&w.token_id)
                        .bind(&c.fields)
                        .bind(Json(json!(c.kept)))
                        .bind(&c.kept_source)
                        .bind(c.kept_block)
                        .bind(Json(json!(c.other)))
                        .bind(&c.other_source)
                        .bind(c.other_block)
                        .bind(status)
                        .bind(resolution)
                        .fetch_one(&mut *tx)
                        .await?;
                        conflicts.push(found);
                    }
                    out.push(TokenWriteResult {
                        row,
                        applied,
                        stale: plan.stale,
                        conflicts,
                    });
                }
                tx.commit().await?;
                Ok(out)
            })
            .await
    }

    pub async fn tokens_by_id(&self, ids: &[String]) -> Result<Vec<TokenAssetRow>, crate::Error> {
        self.read("tokens_by_id", |pool| async move {
            sqlx::query_as("SELECT * FROM token_assets WHERE token_id = ANY($1)")
                .bind(ids)
                .fetch_all(&pool)
                .await
        })
        .await
    }

    /// Conflicts in id order after `after`: open, resolved, or all.
    pub async fn conflicts_page(
        &self,
        status: Option<&str>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ConflictRow>, crate::Error> {
        self.read("conflicts_page", |pool| async move {
            sqlx::query_as(
                "SELECT * FROM conflicts WHERE ($1::text IS NULL OR status = $1) \
                     AND ($2::bigint IS NULL OR id > $2) ORDER BY id LIMIT $3",
            )
            .bind(status)
            .bind(after)
            .bind(limit)
            .fetch_all(&pool)
            .await
        })
        .await
    }

    /// Settles an open conflict by an admin: `replace` puts the other side's values in
    /// force (with its writer and block as their provenance), else the kept ones stay.
    pub async fn resolve_conflict(
        &self,
        id: i64,
        replace: bool,
        by: &str,
    ) -> Result<Result<ConflictRow, ResolveRefusal>, crate::Error> {
        self.calls
            .run::<Result<ConflictRow, ResolveRefusal>, sqlx::Error, _>("resolve_conflict", async {
                let mut tx = self.pool.begin().await?;
                let found: Option<ConflictRow> =
                    sqlx::query_as("SELECT * FROM conflicts WHERE id = $1 FOR UPDATE")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(conflict) = found else {
                    return Ok(Err(ResolveRefusal::NotFound));
                };
                if let Some(how) = &conflict.resolution {
                    return Ok(Err(ResolveRefusal::AlreadyResolved(how.clone())));
                }
                if replace {
                    let mut row = lock_token(&mut tx, &conflict.entity_id).await?;
                    let now = Utc::now().timestamp();
                    for field in &conflict.fields {
                        if row.provenance.0.get(field).is_some_and(|p| p.indexer) {
                            return Ok(Err(ResolveRefusal::ChainHasSpoken(field.clone())));
                        }
                        let value = &conflict.other_values.0[field];
                        row.set(field, value);
                        row.provenance.0.insert(
                            field.clone(),
                            Provenance {
                                source: conflict.other_source.clone(),
                                indexer: false,
                                block: conflict.other_block,
                                at: now,
                            },
                        );
                    }
                    save_token(&mut tx, &row).await?;
                }
                let resolved: ConflictRow = sqlx::query_as(
                    "UPDATE conflicts SET status = 'resolved', resolution = $2, resolved_at = now(), \
                     resolved_by = $3 WHERE id = $1 RETURNING *",
                )
                .bind(id)
                .bind(if replace { "replaced" } else { "kept" })
                .bind(by)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Ok(resolved))
            })
            .await
    }

    /// Open conflicts: how many, and the oldest few (for reconcile's report).
    pub async fn open_conflicts(
        &self,
        limit: i64,
    ) -> Result<(i64, Vec<ConflictRow>), crate::Error> {
        self.calls
            .run::<(i64, Vec<ConflictRow>), sqlx::Error, _>("open_conflicts", async {
                let count: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM conflicts WHERE status = 'open'")
                        .fetch_one(&self.pool)
                        .await?;
                let rows = sqlx::query_as(
                    "SELECT * FROM conflicts WHERE status = 'open' ORDER BY id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok((count, rows))
            })
            .await
    }
}

/// A token's row, locked for the transaction (an empty one when none is written yet).
async fn lock_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    token_id: &str,
) -> Result<TokenAssetRow, sqlx::Error> {
    let stored: Option<TokenAssetRow> =
        sqlx::query_as("SELECT * FROM token_assets WHERE token_id = $1 FOR UPDATE")
            .bind(token_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(stored.unwrap_or_else(|| TokenAssetRow::empty(token_id)))
}

/// Writes a token's row whole (inserted or replaced), as it is now.
async fn save_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    row: &TokenAssetRow,
) -> Result<TokenAssetRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO token_assets (token_id, owner_chain, owner, value, verified, \
         contract, provenance) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (token_id) DO UPDATE SET owner_chain = EXCLUDED.owner_chain, \
         owner = EXCLUDED.owner, value = EXCLUDED.value, verified = EXCLUDED.verified, \
         contract = EXCLUDED.contract, provenance = EXCLUDED.provenance, \
         updated_at = now() RETURNING *",
    )
    .bind(&row.token_id)
    .bind(&row.owner_chain)
    .bind(&row.owner)
    .bind(row.value)
    .bind(row.verified)
    .bind(&row.contract)
    .bind(&row.provenance)
    .fetch_one(&mut **tx)
    .await
}
