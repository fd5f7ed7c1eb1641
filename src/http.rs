//! HTTP routes.

mod dashboard;
mod graphiql;
mod graphql;
pub mod guard;
mod headers;
mod health;
mod ingest;
mod metrics;
pub mod serve;
mod ws;

use axum::http::HeaderName;
use axum::{
    extract::{MatchedPath, Request, State},
    middleware::{self, Next},
    response::Response,
    routing::get,
    Router,
};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

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
                // The handler enforces each caller's own limit while reading.
                .layer(axum::extract::DefaultBodyLimit::max(
                    security.max_body_bytes.max(security.max_service_body_bytes),
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
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/{file}", get(dashboard::asset))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ));
    let request_id = HeaderName::from_static("x-request-id");
    headers::apply(router, &security)
        .layer(compression())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        // Outside the trace layer, so that its span sees the id, and the response gets it.
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// The span of one request: its method, path, `x-request-id` (the client's, or one made
/// here) and its trace id (joined to the client's W3C `traceparent` when it sent one), so
/// that every log line of the request can be found by either.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !crate::telemetry::exporting() {
        let trace_id = crate::telemetry::trace_id_of(request.headers());
        return tracing::info_span!(
            "request",
            method = %request.method(),
            path = request.uri().path(),
            request_id,
            trace_id,
        );
    }
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = request.uri().path(),
        request_id,
        trace_id = tracing::field::Empty,
    );
    let trace_id = crate::telemetry::join_trace(&span, request.headers());
    span.record("trace_id", trace_id.as_str());
    span
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
