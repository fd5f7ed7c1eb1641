//! `/dashboard`: a reference live dashboard (assets/dashboard), plain HTML and JavaScript
//! over the public schema: prices ticking with sparklines of hourly candles, the volume
//! leaderboard moving, and the top trader's positions (with a token in the page's
//! fragment). Served from Meridian itself, like GraphiQL.

use axum::{
    extract::Path,
    http::{header, StatusCode},
    response::{Html, IntoResponse, Response},
};

/// (file name, content type, bytes) of every asset.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/dashboard/dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/dashboard/dashboard.css"),
    ),
    (
        "graphql-ws.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/dashboard/graphql-ws.min.js"),
    ),
];

/// The dashboard page.
pub async fn page() -> Html<&'static str> {
    Html(include_str!("../../assets/dashboard/dashboard.html"))
}

/// One of the dashboard's files.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such dashboard file").into_response(),
    }
}
