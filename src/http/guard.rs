//! The door of `/graphql`, `/graphql/ws` and `/ingest/prices`: who is calling (a bearer
//! token, checked once here) and whether they are within their rate limits. Handlers
//! find the outcome as an [`Identity`] in the request's extensions.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::HttpState;
use crate::{
    auth::{AuthError, Principal},
    error::Error,
    graphql::scope::Viewer,
    ratelimit::{self, Verdict},
};

/// Who made the request.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub principal: Option<Principal>,
    pub ip: Option<IpAddr>,
}

impl Identity {
    pub fn viewer(&self) -> Viewer {
        Viewer {
            principal: self.principal.clone(),
            ip: self.ip,
        }
    }
}

/// The client address. Behind `trusted_proxies` proxies, each appends the address it
/// received the request from to `X-Forwarded-For`, so the entry the outermost one wrote,
/// `trusted_proxies` from the right, is the client; anything left of it came from the
/// client and proves nothing. Without enough entries (the request skipped a proxy), or
/// with no proxies trusted, the peer address.
fn client_ip(request: &Request, trusted_proxies: usize) -> Option<IpAddr> {
    if trusted_proxies > 0 {
        let entries: Vec<&str> = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let trusted = entries.len().checked_sub(trusted_proxies);
        if let Some(ip) = trusted.and_then(|i| entries[i].parse().ok()) {
            return Some(ip);
        }
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// A GraphQL-shaped error response.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body =
        serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body.to_string(),
    )
        .into_response()
}

fn refused(err: AuthError) -> Response {
    match Error::from(err) {
        Error::Unauthenticated(message) => {
            let mut response =
                error_response(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &message);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            response
        }
        other => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            other.code(),
            &other.to_string(),
        ),
    }
}

/// Authenticates and rate-limits one request.
pub async fn guard(State(state): State<HttpState>, mut request: Request, next: Next) -> Response {
    let security = &state.app.config().security;
    let ip = client_ip(&request, security.trusted_proxies);
    let principal = match bearer(request.headers()) {
        None => None,
        Some(header) => match state
            .app
            .auth()
            .from_header(state.app.stores(), header)
            .await
        {
            Ok(principal) => Some(principal),
            Err(err) => {
                state.app.metrics().count_error_code("UNAUTHENTICATED");
                return negotiated(refused(err), request.headers());
            }
        },
    };
    let verdict = ratelimit::check(
        state.app.stores(),
        security,
        principal.as_ref(),
        ip,
        ratelimit::Count::Requests(1),
    )
    .await;
    let allowances = match verdict {
        Verdict::Limited {
            retry_after_secs,
            allowances,
        } => {
            state.app.metrics().count_error_code("RATE_LIMITED");
            return negotiated(
                too_many_requests(retry_after_secs, &allowances),
                request.headers(),
            );
        }
        Verdict::Allowed(allowances) => allowances,
        Verdict::Unchecked => Vec::new(),
    };
    request.extensions_mut().insert(Identity { principal, ip });
    let mut response = next.run(request).await;
    // The tightest allowance, for clients that pace themselves.
    if let Some(tightest) = allowances.iter().min_by_key(|a| a.state.remaining) {
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", HeaderValue::from(tightest.limit));
        headers.insert(
            "x-ratelimit-remaining",
            HeaderValue::from(tightest.state.remaining),
        );
        headers.insert(
            "x-ratelimit-reset",
            HeaderValue::from(tightest.state.reset_ms.div_ceil(1000)),
        );
    }
    response
}

/// A refusal in the media type the request asked for: GraphQL-over-HTTP clients that
/// accept `application/graphql-response+json` get it (the body is a GraphQL error either
/// way); others get `application/json`.
fn negotiated(mut response: Response, request: &HeaderMap) -> Response {
    let wants_graphql = request
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept
                .split(',')
                .any(|r| r.split(';').next().unwrap_or_default().trim() == GRAPHQL_RESPONSE_JSON)
        });
    if wants_graphql {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/graphql-response+json; charset=utf-8"),
        );
    }
    response
}

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// 429 with `Retry-After`, naming the allowances that ran out.
pub fn too_many_requests(retry_after_secs: u64, allowances: &[ratelimit::Allowance]) -> Response {
    let message = limited_message(retry_after_secs, allowances);
    let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", &message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

/// What a refusal by the rate limits says: which allowances ran out, and when to retry.
pub fn limited_message(retry_after_secs: u64, allowances: &[ratelimit::Allowance]) -> String {
    let scopes: Vec<&str> = allowances
        .iter()
        .filter(|a| !a.state.allowed)
        .map(|a| a.scope)
        .collect();
    format!(
        "rate limit exceeded ({}); retry in {retry_after_secs} s",
        scopes.join(" and ")
    )
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(forwarded: &[&str]) -> Request {
        let mut builder = axum::http::Request::builder().uri("/graphql");
        for value in forwarded {
            builder = builder.header("x-forwarded-for", *value);
        }
        let mut request = builder.body(axum::body::Body::empty()).expect("request");
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 4000))));
        request
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("an IP"))
    }

    #[test]
    fn the_client_ip_is_what_the_outermost_trusted_proxy_saw() {
        // The client claims 1.2.3.4; the one proxy appended the address it saw.
        let one = request(&["1.2.3.4, 203.0.113.7"]);
        assert_eq!(client_ip(&one, 1), ip("203.0.113.7"));
        // Two proxies, the header split over two lines.
        let two = request(&["1.2.3.4, 203.0.113.7", "192.168.1.5"]);
        assert_eq!(client_ip(&two, 2), ip("203.0.113.7"));
        // Untrusted: the peer, whatever the header says.
        assert_eq!(client_ip(&one, 0), ip("10.0.0.1"));
        // Fewer entries than proxies, or garbage where the proxy's entry goes: the peer.
        assert_eq!(client_ip(&request(&["203.0.113.7"]), 2), ip("10.0.0.1"));
        assert_eq!(
            client_ip(&request(&["1.2.3.4, nonsense"]), 1),
            ip("10.0.0.1")
        );
        assert_eq!(client_ip(&request(&[]), 1), ip("10.0.0.1"));
    }
}
