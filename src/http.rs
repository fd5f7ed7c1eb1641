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
}

pub fn router(app: AppState, schema: AppSchema) -> Router {
    let security = app.config().security.clone();
    let state = HttpState {
        app,
        schema: schema.clone(),
        ws_clients: Default::default(),
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
