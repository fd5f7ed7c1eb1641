//! HTTP routes.

mod graphiql;
mod graphql;
mod health;
mod ingest;
mod metrics;
mod ws;

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::{self, Next},
    response::Response,
    routing::get,
    Router,
};
use tower_http::trace::TraceLayer;

use crate::{app::AppState, graphql::AppSchema};

/// What every handler can reach.
#[derive(Clone)]
pub struct HttpState {
    pub app: AppState,
    pub schema: AppSchema,
}

/// Largest request body accepted on `/graphql`.
const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn router(app: AppState, schema: AppSchema) -> Router {
    let state = HttpState {
        app,
        schema: schema.clone(),
    };
    Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", get(ws::upgrade))
        .route(
            &format!("{}/{{file}}", graphiql::ASSET_PREFIX),
            get(graphiql::asset),
        )
        .route(
            "/ingest/prices",
            axum::routing::post(ingest::prices).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Counts every request in `meridian_http_requests_total`, labelled by route.
async fn count_requests(State(state): State<HttpState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    state
        .app
        .metrics()
        .observe_http(&route, response.status().as_u16());
    response
}
