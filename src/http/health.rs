//! `/healthz` (the process is alive) and `/readyz` (every store answers).

use axum::{extract::State, http::StatusCode, response::IntoResponse, Json};
use serde_json::json;

use super::HttpState;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// 200 when all four stores answer; 503 naming those that do not.
pub async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
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
            if let Some(error) = &s.error {
                entry["error"] = json!(error);
            }
            (s.store.as_str().to_owned(), entry)
        })
        .collect();
    // The relay's backlog, for operators (it does not make the instance unready).
    let postgres = &state.app.stores().postgres;
    let relay = match state
        .app
        .stores()
        .call(
            crate::store::StoreKind::Postgres,
            "outbox_backlog",
            postgres.outbox_backlog(),
        )
        .await
    {
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
    let code = if down.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let status = if down.is_empty() {
        "ready"
    } else {
        "not_ready"
    };
    (
        code,
        Json(json!({ "status": status, "down": down, "stores": by_name, "relay": relay })),
    )
}
