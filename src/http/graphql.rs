//! `/graphql`: GraphQL over HTTP (POST, and GET for queries), and GraphiQL for browsers.

use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::{
    extract::{FromRequest, Request, State},
    http::header,
    response::{IntoResponse, Response},
};

use super::HttpState;

pub async fn post(State(state): State<HttpState>, request: GraphQLRequest) -> GraphQLResponse {
    state.schema.execute(request.into_inner()).await.into()
}

/// A browser (HTML accepted, no query in the URL) gets GraphiQL; anything else is a
/// GraphQL request carried in the query string.
pub async fn get(State(state): State<HttpState>, request: Request) -> Response {
    let wants_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html && request.uri().query().is_none_or(str::is_empty) {
        return super::graphiql::page().into_response();
    }
    match GraphQLRequest::<async_graphql_axum::rejection::GraphQLRejection>::from_request(
        request,
        &(),
    )
    .await
    {
        Ok(request) => {
            GraphQLResponse::from(state.schema.execute(request.into_inner()).await).into_response()
        }
        Err(rejection) => rejection.into_response(),
    }
}
