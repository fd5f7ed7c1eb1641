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
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/graphiql/graphiql.min.css">
  <style>
    body { margin: 0; height: 100vh; display: flex; flex-direction: column; font-family: system-ui, sans-serif; }
    #credentials { padding: 6px 12px; font-size: 13px; background: #f3f5f9; border-bottom: 1px solid #d8dde6; }
    #credentials code { background: #e4e8f0; padding: 0 4px; border-radius: 3px; }
    #graphiql { flex: 1; min-height: 0; }
  </style>
</head>
<body>
  <div id="credentials">
    Anonymous requests see public data. For private fields and mutations, open the
    <strong>Headers</strong> tab below and paste
    <code>{"Authorization": "Bearer &lt;token&gt;"}</code>
    (<code>scripts/demo</code> prints an admin token; <code>meridian token --role admin --sub you</code>
    makes one). Headers are kept in this browser, and subscriptions use them after a reload.
  </div>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="/graphiql/react.production.min.js"></script>
  <script src="/graphiql/react-dom.production.min.js"></script>
  <script src="/graphiql/graphiql.min.js"></script>
  <script>
    const url = new URL('/graphql', window.location.href).toString();
    const ws = new URL('/graphql/ws', window.location.href);
    ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
    // Subscriptions carry the Headers tab's values in connection_init, read when the
    // websocket connects, so `Authorization` works for them too. GraphiQL keeps the
    // headers of each tab in its saved tab state.
    const wsConnectionParams = () => {
      try {
        const state = JSON.parse(localStorage.getItem('graphiql:tabState') || 'null');
        const tab = state && state.tabs && state.tabs[state.activeTabIndex];
        const text = (tab && tab.headers) || localStorage.getItem('graphiql:headers');
        return (text && JSON.parse(text)) || {};
      } catch (e) {
        return {};
      }
    };
    const fetcher = GraphiQL.createFetcher({ url, subscriptionUrl: ws.toString(), wsConnectionParams });
    // A link may carry the query in the fragment: /graphql#query=...
    const linked = new URLSearchParams(window.location.hash.slice(1)).get('query');
    const props = {
      fetcher,
      defaultQuery: __DEFAULT_QUERY__,
      defaultEditorToolsVisibility: true,
      // A header pasted into the Headers tab survives a reload (and reaches subscriptions).
      shouldPersistHeaders: true,
    };
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

/// `/favicon.ico`: nothing to show, said without an error (the page itself names an empty
/// icon; this answers browsers that ask anyway).
pub async fn favicon() -> StatusCode {
    StatusCode::NO_CONTENT
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
