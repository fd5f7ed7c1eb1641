//! `/healthz` (the process is alive) and `/readyz` (which stores answer).
//!
//! Readiness has four states. `draining` (503): the instance was asked to stop and serves
//! out its drain period. `ready`: every store answers. `degraded` (still 200, keep
//! routing traffic here): PostgreSQL answers but another store does not; the fields it
//! serves fail fast or fall back (a read replica that is down: queries read from the
//! primary). `down` (503): PostgreSQL, the source of truth behind
//! every write and most reads, does not answer.

use axum::{extract::State, http::StatusCode, response::IntoResponse, Json};
use serde_json::json;

use super::HttpState;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// 200 `ready` or `degraded`, or 503 `down`, naming the stores that do not answer.
pub async fn readyz(State(state): State<HttpState>) -> axum::response::Response {
    if state.app.draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
            .into_response();
    }
    let stores = state.app.stores().readiness().await;
    let down: Vec<&str> = stores
        .iter()
        .filter(|s| !s.up)
        .map(|s| s.store.as_str())
        .collect();
    let by_name: serde_json::Map<String, serde_json::Value> = stores
        .iter()
        .map(|s| {
            let mut entry =
                json!({ "status": if s.up { "up" } else { "down" }, "latencyMs": s.latency_ms });
            if state.app.stores().circuit_open(s.store) {
                entry["circuit"] = json!("open");
            }
            if let Some(error) = &s.error {
                entry["error"] = json!(error);
            }
            if s.store == crate::store::StoreKind::PostgresReplica && !s.up {
                // Queries read from the primary meanwhile.
                entry["reads"] = json!("primary");
            }
            (s.store.as_str().to_owned(), entry)
        })
        .collect();
    // The relay's backlog, for operators (it does not make the instance unready).
    let relay = match state.app.stores().postgres().outbox_backlog().await {
        Ok(backlog) => crate::store::postgres::TRADE_DESTINATIONS
            .iter()
            .map(|d| {
                let entry = backlog.iter().find(|b| b.destination == *d);
                let pending = entry.map_or(0, |b| b.pending);
                let lag = entry.map_or(0.0, |b| b.oldest_secs);
                (
                    (*d).to_owned(),
                    json!({ "pending": pending, "lagSeconds": lag }),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        Err(_) => serde_json::Value::Null,
    };
    let (code, status) = if down.is_empty() {
        (StatusCode::OK, "ready")
    } else if down.contains(&crate::store::StoreKind::Postgres.as_str()) {
        (StatusCode::SERVICE_UNAVAILABLE, "down")
    } else {
        (StatusCode::OK, "degraded")
    };
    (
        code,
        Json(json!({ "status": status, "down": down, "stores": by_name, "relay": relay })),
    )
        .into_response()
}
