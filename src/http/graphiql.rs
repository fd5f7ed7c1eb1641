//! GraphiQL, served from Meridian itself (assets/graphiql), so the playground works on
//! machines without internet access. Queries go to `/graphql`, subscriptions to
//! `/graphql/ws` (graphql-transport-ws, through the client bundled in GraphiQL).

use axum::{
    extract::Path,
    http::{header, StatusCode},
    response::{Html, IntoResponse, Response},
};

/// Where the assets are mounted.
pub const ASSET_PREFIX: &str = "/graphiql";

/// (file name, content type, bytes) of every asset.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    ),
];

/// The query GraphiQL opens with.
const DEFAULT_QUERY: &str = r#"# Meridian: one GraphQL API over four stores.
# Run it (Ctrl-Enter) to see how each store is doing, then try
# subscription { priceUpdated(symbols: ["BTC", "ETH"]) { symbol price at } }
{
  health {
    status
    version
    stores { name up latencyMs }
  }
}
"#;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Meridian · GraphiQL</title>
  <link rel="stylesheet" href="/graphiql/graphiql.min.css">
  <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="/graphiql/react.production.min.js"></script>
  <script src="/graphiql/react-dom.production.min.js"></script>
  <script src="/graphiql/graphiql.min.js"></script>
  <script>
    const url = new URL('/graphql', window.location.href).toString();
    const ws = new URL('/graphql/ws', window.location.href);
    ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
    // Subscriptions carry the Headers tab's values (as saved when the page loaded) in
    // connection_init, so `Authorization` works for them too.
    let wsConnectionParams = {};
    try { wsConnectionParams = JSON.parse(localStorage.getItem('graphiql:headers') || '{}') || {}; } catch (e) {}
    const fetcher = GraphiQL.createFetcher({ url, subscriptionUrl: ws.toString(), wsConnectionParams });
    // A link may carry the query in the fragment: /graphql#query=...
    const linked = new URLSearchParams(window.location.hash.slice(1)).get('query');
    const props = { fetcher, defaultQuery: __DEFAULT_QUERY__, defaultEditorToolsVisibility: true };
    if (linked) props.query = linked;
    ReactDOM.createRoot(document.getElementById('graphiql')).render(React.createElement(GraphiQL, props));
  </script>
</body>
</html>
"#;

/// The GraphiQL page.
pub fn page() -> Html<String> {
    let query = serde_json::to_string(DEFAULT_QUERY).unwrap_or_else(|_| "''".into());
    Html(PAGE.replace("__DEFAULT_QUERY__", &query))
}

/// One of the bundled assets, cached by browsers for a day.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such GraphiQL asset").into_response(),
    }
}
