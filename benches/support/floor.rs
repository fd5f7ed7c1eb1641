//! The floor: the same data as Meridian's answers, fetched with the same drivers (through
//! Meridian's store adapters, so the same clients, pools and queries where one query is
//! already the fewest) in the fewest round trips, concurrently where nothing depends on
//! an earlier answer, and built into the same JSON. Served over HTTP so the load
//! generator measures both the same way.

use std::{collections::HashMap, sync::Arc};

use axum::{extract::State, routing::post, Json, Router};
use meridian::store::Stores;
use serde_json::{json, Value};
use uuid::Uuid;

/// What each floor endpoint needs to know.
#[derive(Clone)]
pub struct Floor {
    pub stores: Stores,
    pub user: Uuid,
    pub candles_from: u32,
    pub candles_to: u32,
}

pub fn router(floor: Floor) -> Router {
    Router::new()
        .route("/dashboard", post(dashboard))
        .route("/users", post(users_with_holdings))
        .route("/leaderboard", post(leaderboard))
        .route("/user", post(user))
        .route("/candles", post(candles))
        .route("/profile", post(profile))
        .with_state(Arc::new(floor))
}

type Answer = Result<Json<Value>, (axum::http::StatusCode, String)>;

fn fail(err: impl std::fmt::Display) -> (axum::http::StatusCode, String) {
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        err.to_string(),
    )
}

/// Leaderboard top 50 with each user's profile, holdings, assets, metadata and prices:
/// Redis (top), then Postgres (users joined with holdings and assets) alongside MongoDB
/// (profiles), then MongoDB (metadata) alongside Redis (prices).
async fn dashboard(State(f): State<Arc<Floor>>) -> Answer {
    let s = &f.stores;
    let (top, _) = s
        .redis()
        .leaderboard_top("volume", "", 50)
        .await
        .map_err(fail)?;
    let ids: Vec<Uuid> = top.iter().filter_map(|(m, _)| m.parse().ok()).collect();
    let id_texts: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let rows = sqlx::query_as::<_, (Uuid, String, Option<String>, Option<f64>, Option<String>)>(
        "SELECT u.id, u.username, h.symbol, h.quantity::float8, a.name \
         FROM users u LEFT JOIN holdings h ON h.user_id = u.id AND h.quantity > 0 \
         LEFT JOIN assets a ON a.symbol = h.symbol \
         WHERE u.id = ANY($1) ORDER BY u.id, h.symbol",
    )
    .bind(&ids)
    .fetch_all(s.postgres().pool());
    let (rows, profiles) = tokio::join!(rows, s.mongo().profiles_by_user(&id_texts));
    let (rows, profiles) = (rows.map_err(fail)?, profiles.map_err(fail)?);
    let mut symbols: Vec<String> = rows.iter().filter_map(|r| r.2.clone()).collect();
    symbols.sort();
    symbols.dedup();
    let (metadata, prices) = tokio::join!(
        s.mongo().asset_metadata_by_symbol(&symbols),
        s.redis().latest_prices(&symbols)
    );
    let metadata: HashMap<String, Value> = metadata
        .map_err(fail)?
        .into_iter()
        .map(|d| (d.symbol.clone(), json!({ "tags": d.tags })))
        .collect();
    let prices: HashMap<&String, Value> = symbols
        .iter()
        .zip(prices.map_err(fail)?)
        .filter_map(|(s, p)| Some((s, json!({ "price": p?.price, "source": "REDIS" }))))
        .collect();
    let profiles: HashMap<String, Value> = profiles
        .into_iter()
        .map(|p| (p.user_id.clone(), json!({ "displayName": p.display_name })))
        .collect();
    let mut users: HashMap<Uuid, (String, Vec<Value>)> = HashMap::new();
    for (id, username, symbol, quantity, name) in rows {
        let entry = users.entry(id).or_insert_with(|| (username, Vec::new()));
        if let (Some(symbol), Some(quantity)) = (symbol, quantity) {
            entry.1.push(json!({
                "quantity": quantity,
                "asset": {
                    "symbol": symbol,
                    "name": name,
                    "metadata": metadata.get(&symbol),
                    "price": prices.get(&symbol),
                },
            }));
        }
    }
    let entries: Vec<Value> = top
        .iter()
        .enumerate()
        .map(|(i, (member, score))| {
            let user = member
                .parse::<Uuid>()
                .ok()
                .and_then(|id| users.get(&id).map(|u| (id, u)))
                .map(|(id, (username, holdings))| {
                    json!({
                        "id": id.to_string(),
                        "username": username,
                        "profile": profiles.get(&id.to_string()),
                        "holdings": holdings,
                    })
                });
            json!({ "rank": i + 1, "score": score, "user": user })
        })
        .collect();
    Ok(Json(
        json!({ "data": { "leaderboard": { "entries": entries } } }),
    ))
}

/// The first 50 users (sign-up order) with their holdings and each holding's asset
/// name: one Postgres query.
async fn users_with_holdings(State(f): State<Arc<Floor>>) -> Answer {
    let rows = sqlx::query_as::<_, (Uuid, String, Option<f64>, Option<String>)>(
        "WITH u AS (SELECT id, username, created_at FROM users ORDER BY created_at, id LIMIT 50) \
         SELECT u.id, u.username, h.quantity::float8, a.name FROM u \
         LEFT JOIN holdings h ON h.user_id = u.id AND h.quantity > 0 \
         LEFT JOIN assets a ON a.symbol = h.symbol \
         ORDER BY u.created_at, u.id, h.symbol",
    )
    .fetch_all(f.stores.postgres().pool())
    .await
    .map_err(fail)?;
    let mut edges: Vec<Value> = Vec::with_capacity(50);
    let mut last: Option<Uuid> = None;
    for (id, username, quantity, name) in rows {
        if last != Some(id) {
            edges.push(json!({ "node": { "username": username, "holdings": [] } }));
            last = Some(id);
        }
        if let (Some(quantity), Some(edge)) = (quantity, edges.last_mut()) {
            if let Some(list) = edge["node"]["holdings"].as_array_mut() {
                list.push(json!({ "quantity": quantity, "asset": { "name": name } }));
            }
        }
    }
    Ok(Json(json!({ "data": { "users": { "edges": edges } } })))
}

/// Leaderboard top 10, ranks and scores: one Redis pipeline.
async fn leaderboard(State(f): State<Arc<Floor>>) -> Answer {
    let (top, _) = f
        .stores
        .redis()
        .leaderboard_top("volume", "", 10)
        .await
        .map_err(fail)?;
    let entries: Vec<Value> = top
        .iter()
        .enumerate()
        .map(|(i, (_, score))| json!({ "rank": i + 1, "score": score }))
        .collect();
    Ok(Json(
        json!({ "data": { "leaderboard": { "entries": entries } } }),
    ))
}

/// One user by id: one Postgres query.
async fn user(State(f): State<Arc<Floor>>) -> Answer {
    let (id, username, address) = sqlx::query_as::<_, (Uuid, String, String)>(
        "SELECT id, username, address FROM users WHERE id = $1",
    )
    .bind(f.user)
    .fetch_one(f.stores.postgres().pool())
    .await
    .map_err(fail)?;
    Ok(Json(
        json!({ "data": { "user": { "id": id.to_string(), "username": username, "address": address } } }),
    ))
}

/// A day of hourly BTC candles: one ClickHouse query.
async fn candles(State(f): State<Arc<Floor>>) -> Answer {
    let rows = f
        .stores
        .clickhouse()
        .candles(&["BTC".to_owned()], 3600, f.candles_from, f.candles_to)
        .await
        .map_err(fail)?;
    let candles: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({ "open": r.open, "high": r.high, "low": r.low, "close": r.close, "volume": r.volume, "ticks": r.ticks })
        })
        .collect();
    Ok(Json(json!({ "data": { "asset": { "candles": candles } } })))
}

/// One user's profile: one MongoDB query.
async fn profile(State(f): State<Arc<Floor>>) -> Answer {
    let docs = f
        .stores
        .mongo()
        .profiles_by_user(&[f.user.to_string()])
        .await
        .map_err(fail)?;
    let profile = docs
        .first()
        .map(|p| json!({ "displayName": p.display_name, "bio": p.bio }));
    Ok(Json(json!({ "data": { "user": { "profile": profile } } })))
}
