//! `/graphql`: GraphQL over HTTP (POST, and GET for queries), and GraphiQL for browsers.

use async_graphql_axum::{rejection::GraphQLRejection, GraphQLRequest, GraphQLResponse};
use axum::{
    extract::{FromRequest, Request, State},
    http::{header, HeaderMap},
    response::{IntoResponse, Response},
};

use super::HttpState;
use crate::graphql::scope::{TraceRequested, Viewer};

/// Header naming the user `me` resolves to, until authentication exists.
pub const USER_HEADER: &str = "x-meridian-user";
/// Header asking for `extensions.meridian.roundTrips` in the response.
pub const TRACE_HEADER: &str = "x-meridian-trace";

pub async fn post(
    State(state): State<HttpState>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    execute(&state, &headers, request).await
}

/// A browser (HTML accepted, no query in the URL) gets GraphiQL; anything else is a
/// GraphQL request carried in the query string.
pub async fn get(State(state): State<HttpState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html && request.uri().query().is_none_or(str::is_empty) {
        return super::graphiql::page().into_response();
    }
    match GraphQLRequest::<GraphQLRejection>::from_request(request, &()).await {
        Ok(request) => execute(&state, &headers, request).await.into_response(),
        Err(rejection) => rejection.into_response(),
    }
}

async fn execute(
    state: &HttpState,
    headers: &HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let mut request = request.into_inner();
    let claimed = headers
        .get(USER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    request = request.data(Viewer { claimed });
    if headers
        .get(TRACE_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1")
    {
        request = request.data(TraceRequested);
    }
    state.schema.execute(request).await.into()
}
