//! HTTP routes.

mod graphiql;
mod graphql;
pub mod guard;
mod headers;
mod health;
mod ingest;
mod metrics;
pub mod serve;
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
    /// Websocket operations running per client on this instance.
    pub ws_clients: std::sync::Arc<ws::ClientOperations>,
    /// The subscription root's fields: the labels of `meridian_subscriptions_active`.
    pub subscription_fields: std::sync::Arc<std::collections::HashSet<String>>,
}

pub fn router(app: AppState, schema: AppSchema) -> Router {
    let security = app.config().security.clone();
    let types = crate::graphql::nulls::TypeMap::from_sdl(&schema.sdl());
    let subscription_fields: std::collections::HashSet<String> = types
        .fields_of(types.root(async_graphql::parser::types::OperationType::Subscription))
        .map(str::to_owned)
        .collect();
    for field in &subscription_fields {
        app.metrics().subscriptions(field).set(0);
    }
    let state = HttpState {
        app,
        schema: schema.clone(),
        ws_clients: Default::default(),
        subscription_fields: std::sync::Arc::new(subscription_fields),
    };
    // Authenticated and rate-limited routes.
    let guarded = Router::new()
        .route(
            "/graphql",
            get(graphql::get)
                .post(graphql::post)
                .layer(axum::extract::DefaultBodyLimit::max(
                    security.max_body_bytes,
                )),
        )
        .route("/graphql/ws", get(ws::upgrade))
        .route(
            "/ingest/prices",
            axum::routing::post(ingest::prices).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::guard));
    let router = Router::new()
        .merge(guarded)
        .route(
            &format!("{}/{{file}}", graphiql::ASSET_PREFIX),
            get(graphiql::asset),
        )
        .route("/favicon.ico", get(graphiql::favicon))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ));
    headers::apply(router, &security)
        .layer(compression())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Smallest response body worth compressing, in bytes.
const COMPRESS_ABOVE: u64 = 1024;

/// Compresses responses over [`COMPRESS_ABOVE`] bytes with the best encoding the client
/// accepts (`zstd`, `br` or `gzip`, from `Accept-Encoding`); smaller ones, websockets and
/// responses already encoded go as they are.
fn compression() -> tower_http::compression::CompressionLayer<
    tower_http::compression::predicate::And<
        tower_http::compression::DefaultPredicate,
        tower_http::compression::predicate::SizeAbove,
    >,
> {
    use tower_http::compression::{
        predicate::SizeAbove, CompressionLayer, DefaultPredicate, Predicate,
    };
    CompressionLayer::new()
        .compress_when(DefaultPredicate::new().and(SizeAbove::new(COMPRESS_ABOVE)))
}

/// Counts every request in `meridian_http_requests_total` and times it in
/// `meridian_http_request_duration_seconds`, labelled by route.
async fn count_requests(State(state): State<HttpState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let metrics = state.app.metrics();
    metrics.observe_http(&route, response.status().as_u16());
    metrics.observe_http_duration(&route, started.elapsed());
    response
}
