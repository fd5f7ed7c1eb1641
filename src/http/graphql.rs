//! `/graphql`: GraphQL over HTTP (POST, and GET for queries), and GraphiQL for browsers.
//!
//! Follows the GraphQL-over-HTTP spec: the response media type is negotiated from
//! `Accept` (`application/graphql-response+json` when accepted, else `application/json`);
//! with `application/graphql-response+json`, a request that fails before execution
//! (parse, validation or variable errors) gets 400; GET may only carry queries (405 for a
//! mutation).

use async_graphql::BatchResponse;
use async_graphql_axum::{rejection::GraphQLRejection, GraphQLBatchRequest, GraphQLRequest};
use axum::{
    extract::{FromRequest, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

use super::guard::Identity;
use super::HttpState;
use crate::{
    graphql::{guard::ensure_codes, scope::TraceRequested},
    ratelimit,
};

/// Header asking for `extensions.meridian.roundTrips` in the response.
pub const TRACE_HEADER: &str = "x-meridian-trace";

/// Most operations one batched request may carry (each is then limited on its own).
pub const MAX_BATCH_OPERATIONS: usize = 10;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The media type a response is written in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MediaType {
    GraphQLResponseJson,
    Json,
}

impl MediaType {
    /// From the request's `Accept`; None when it accepts neither JSON type.
    fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return Some(MediaType::Json);
        };
        let ranges: Vec<&str> = accept
            .split(',')
            .map(|r| r.split(';').next().unwrap_or_default().trim())
            .collect();
        if ranges.contains(&GRAPHQL_RESPONSE_JSON) {
            Some(MediaType::GraphQLResponseJson)
        } else if ranges
            .iter()
            .any(|r| *r == JSON || *r == "application/*" || *r == "*/*")
            || accept.trim().is_empty()
        {
            Some(MediaType::Json)
        } else {
            None
        }
    }

    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            MediaType::GraphQLResponseJson => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        })
    }
}

pub async fn post(State(state): State<HttpState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let identity = identity_of(&request);
    let Some(media) = MediaType::negotiate(&headers) else {
        return not_acceptable();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !matches!(
        essence.as_str(),
        "application/json" | "application/graphql" | "multipart/form-data"
    ) {
        let mut response = bad_request(media, "send the request as application/json");
        *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return response;
    }
    // The body is read here, under the size limit, before anything parses it.
    let security = &state.app.config().security;
    let trusted = identity
        .principal
        .as_ref()
        .is_some_and(|p| p.is_admin() || p.has(crate::auth::Role::Service));
    let max = if trusted {
        security.max_service_body_bytes
    } else {
        security.max_body_bytes
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return too_large(media, max);
    }
    let (parts, body) = request.into_parts();
    let deadline = std::time::Duration::from_millis(state.app.config().http_body_timeout_ms);
    let bytes = match tokio::time::timeout(deadline, axum::body::to_bytes(body, max)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return too_large(media, max),
        Err(_) => {
            return refusal(
                media,
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                &format!(
                    "the request body did not arrive within {} ms",
                    deadline.as_millis()
                ),
            )
        }
    };
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    match GraphQLBatchRequest::<GraphQLRejection>::from_request(request, &()).await {
        Ok(batch) => {
            execute(
                &state,
                &identity,
                &headers,
                media,
                batch.into_inner(),
                false,
            )
            .await
        }
        Err(rejection) => bad_request(media, &rejection_message(rejection)),
    }
}

/// A browser (HTML accepted, no query in the URL) gets GraphiQL; anything else is a
/// GraphQL request carried in the query string.
pub async fn get(State(state): State<HttpState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let identity = identity_of(&request);
    let accepts_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if accepts_html && request.uri().query().is_none_or(str::is_empty) {
        return super::graphiql::page().into_response();
    }
    let Some(media) = MediaType::negotiate(&headers) else {
        return not_acceptable();
    };
    match GraphQLRequest::<GraphQLRejection>::from_request(request, &()).await {
        Ok(single) => {
            let batch = async_graphql::BatchRequest::Single(single.into_inner());
            let mut response = execute(&state, &identity, &headers, media, batch, true).await;
            // Answers are live (prices move every second) and may depend on who asks: no
            // cache, shared or private, may keep them.
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(rejection) => bad_request(media, &rejection_message(rejection)),
    }
}

async fn execute(
    state: &HttpState,
    identity: &Identity,
    headers: &HeaderMap,
    media: MediaType,
    batch: async_graphql::BatchRequest,
    is_get: bool,
) -> Response {
    let trace = headers
        .get(TRACE_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1");
    let mut batch = batch.data(identity.viewer());
    if trace {
        batch = batch.data(TraceRequested);
    }
    if let async_graphql::BatchRequest::Batch(requests) = &batch {
        if requests.len() > MAX_BATCH_OPERATIONS {
            return bad_request(
                media,
                &format!("a batch may carry at most {MAX_BATCH_OPERATIONS} operations"),
            );
        }
        // The door counted the request once; a batch counts each of its operations.
        let extra = u32::try_from(requests.len().saturating_sub(1)).unwrap_or(u32::MAX);
        let verdict = ratelimit::check(
            state.app.stores(),
            &state.app.config().security,
            identity.principal.as_ref(),
            identity.ip,
            ratelimit::Count::Requests(extra),
        )
        .await;
        if let ratelimit::Verdict::Limited {
            retry_after_secs,
            allowances,
        } = verdict
        {
            return super::guard::too_many_requests(retry_after_secs, &allowances);
        }
    }
    let missing_query = batch
        .iter()
        .any(|r| r.query.trim().is_empty() && !r.extensions.contains_key("persistedQuery"));
    if missing_query {
        return bad_request(media, "the request has no `query`");
    }
    if is_get {
        if let async_graphql::BatchRequest::Single(request) = &batch {
            if is_mutation(request) {
                let mut response = bad_request(media, "mutations must be sent with POST");
                *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
                return response;
            }
        }
    }
    // The operation's own deadline (in the scope) answers first; this one also covers
    // what comes before execution (persisted-query lookups, parsing, validation).
    let timeout_ms = state.app.config().security.request_timeout_ms;
    let deadline = std::time::Duration::from_millis(timeout_ms.saturating_add(1000));
    // The operation runs on a task of its own: its batches' I/O then wakes only that task,
    // not the connection's whole HTTP stack (see `loaders::drive`). The task ends with the
    // request: dropped (client gone, deadline) means aborted.
    let schema = state.schema.clone();
    // It stays inside the request's span: its logs and exported spans carry the request.
    let operation = async move { schema.execute_batch(batch).await };
    let run = OwnedTask(tokio::spawn(tracing::Instrument::in_current_span(
        operation,
    )));
    let mut response = match tokio::time::timeout(deadline, run).await {
        Ok(Some(response)) => response,
        // Cancelled by the runtime: the process is going down.
        Ok(None) => {
            return refusal(
                media,
                StatusCode::SERVICE_UNAVAILABLE,
                "SHUTTING_DOWN",
                "the server is shutting down; retry",
            )
        }
        Err(_) => {
            return refusal(
                media,
                StatusCode::GATEWAY_TIMEOUT,
                "TIMEOUT",
                &format!("the request did not finish within {timeout_ms} ms"),
            )
        }
    };
    match &mut response {
        BatchResponse::Single(single) => ensure_codes(single),
        BatchResponse::Batch(all) => all.iter_mut().for_each(ensure_codes),
    }
    let metrics = state.app.metrics();
    match &response {
        BatchResponse::Single(single) => metrics.count_errors(&single.errors),
        BatchResponse::Batch(all) => all.iter().for_each(|r| metrics.count_errors(&r.errors)),
    }
    let (status, body) = match &response {
        // A request that failed before execution has no `data` entry at all.
        BatchResponse::Single(single) if is_request_error(single) => {
            let status = match media {
                MediaType::GraphQLResponseJson => StatusCode::BAD_REQUEST,
                MediaType::Json => StatusCode::OK,
            };
            (
                status,
                serde_json::to_vec(&serde_json::json!({ "errors": single.errors })),
            )
        }
        _ => (StatusCode::OK, serde_json::to_vec(&response)),
    };
    match body {
        Ok(body) => (status, [(header::CONTENT_TYPE, media.header())], body).into_response(),
        Err(err) => {
            tracing::error!(%err, "cannot encode a GraphQL response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The guard's finding (anonymous if the route is not guarded).
fn identity_of(request: &Request) -> Identity {
    request
        .extensions()
        .get::<Identity>()
        .cloned()
        .unwrap_or_default()
}

/// True when the request failed before execution: no data, and errors without a path.
fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// Whether the operation the request would run is a mutation.
fn is_mutation(request: &async_graphql::Request) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let wanted = request.operation_name.as_deref();
    doc.operations.iter().any(|(name, op)| {
        let selected = match (wanted, name) {
            (Some(w), Some(n)) => w == n.as_str(),
            (None, _) => true,
            (Some(_), None) => false,
        };
        selected && op.node.ty == async_graphql::parser::types::OperationType::Mutation
    })
}

fn rejection_message(rejection: GraphQLRejection) -> String {
    let text = rejection.0.to_string();
    if text.is_empty() {
        "the request is not a GraphQL request".into()
    } else {
        text
    }
}

/// A malformed request: 400, with a GraphQL-shaped error body.
fn bad_request(media: MediaType, message: &str) -> Response {
    refusal(media, StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
}

/// A request refused before GraphQL: `status`, with a GraphQL-shaped error body.
fn refusal(media: MediaType, status: StatusCode, code: &str, message: &str) -> Response {
    let body =
        serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (
        status,
        [(header::CONTENT_TYPE, media.header())],
        body.to_string(),
    )
        .into_response()
}

fn too_large(media: MediaType, max: usize) -> Response {
    refusal(
        media,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        &format!("the request body is larger than {max} bytes"),
    )
}

fn not_acceptable() -> Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        format!("accept {GRAPHQL_RESPONSE_JSON} or {JSON}"),
    )
        .into_response()
}

/// A spawned task that is aborted when its handle drops. It yields `None` when the runtime
/// cancelled it (shutting down); a panic in it resumes here.
struct OwnedTask<T>(tokio::task::JoinHandle<T>);

impl<T> std::future::Future for OwnedTask<T> {
    type Output = Option<T>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|joined| match joined {
                Ok(out) => Some(out),
                Err(err) => match err.try_into_panic() {
                    Ok(panic) => std::panic::resume_unwind(panic),
                    Err(_) => None,
                },
            })
    }
}

impl<T> Drop for OwnedTask<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
