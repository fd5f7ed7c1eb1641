//! `/metrics`: Prometheus text exposition.

use axum::{extract::State, http::header, response::IntoResponse};

use super::HttpState;

pub async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.app.metrics().render(),
    )
}
