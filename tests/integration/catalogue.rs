//! The writable catalogue against the real stack: assets with kinds, renames and
//! delistings that keep history readable, protocols with their pools, spot and prediction
//! markets with their lifecycle, MongoDB metadata beside each, ingestion of any listed
//! asset, hostile input for every mutation, and a protocol dashboard whose round trips do
//! not grow with the number of protocols.

use meridian::auth::Role;
use serde_json::{json, Value};

use crate::support::{refusals, TestEnv, TestServer};

const UPSERT_ASSETS: &str =
    "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { symbol name kind status } }";
const UPSERT_PROTOCOLS: &str =
    "mutation($p: [ProtocolInput!]!) { upsertProtocols(protocols: $p) { id chains } }";
const UPSERT_POOLS: &str =
    "mutation($p: [PoolInput!]!) { upsertPools(pools: $p) { id assets { symbol } protocol { id } } }";
const UPSERT_MARKETS: &str =
    "mutation($m: [MarketInput!]!) { upsertMarkets(markets: $m) { id kind status } }";
const INGEST: &str = "mutation($t: [PriceTickInput!]!) { ingestPrices(ticks: $t) { accepted } }";
const FARMER: &str = "GAOQJGUAB7NI7K7I62ORBXMN3J4SSWQUQ7FOEPSDJ322W2HMCNWPHXFB";

async fn ok(server: &TestServer, token: &str, query: &str, variables: Value) -> Value {
    let (_, body) = server.graphql_as(Some(token), query, variables).await;
    assert!(body["errors"].is_null(), "{query}: {body}");
    body["data"].clone()
}

/// The one BAD_USER_INPUT field a call is refused on.
async fn refused_on(server: &TestServer, token: &str, query: &str, variables: Value) -> String {
    let (_, body) = server.graphql_as(Some(token), query, variables).await;
    let found = refusals(&body);
    assert_eq!(found.len(), 1, "{query}: {body}");
    assert_eq!(found[0].0, "BAD_USER_INPUT", "{body}");
    found[0].1.clone()
}

fn asset(symbol: &str, name: &str, kind: &str) -> Value {
    json!({ "symbol": symbol, "name": name, "chain": "ethereum", "decimals": 18, "kind": kind })
}

#[tokio::test]
async fn assets_are_catalogued_renamed_and_delisted_with_their_history_readable() {
    let env = TestEnv::migrated().await;
    let server = env.spawn().await;
    let service = server.token("catalogue-service", &[Role::Service]);
    let admin = server.token("operator", &[Role::Admin]);

    let mut matic = asset("matic", "Polygon", "TOKEN");
    matic["metadata"] =
        json!({ "description": "Polygon's token.", "tags": ["L2", "l2", "Scaling"] });
    let saved = ok(
        &server,
        &service,
        UPSERT_ASSETS,
        json!({ "a": [matic, asset("STETH", "Lido Staked Ether", "STAKING_DERIVATIVE"), asset("USDC", "USD Coin", "TOKEN")] }),
    )
    .await;
    assert_eq!(
        saved["upsertAssets"][0],
        json!({ "symbol": "MATIC", "name": "Polygon", "kind": "TOKEN", "status": "LISTED" })
    );
    assert_eq!(saved["upsertAssets"][1]["kind"], "STAKING_DERIVATIVE");
    // A new name joins the asset's names; ingestion takes any listed asset at once.
    ok(
        &server,
        &service,
        UPSERT_ASSETS,
        json!({ "a": [asset("MATIC", "Polygon Matic", "TOKEN")] }),
    )
    .await;
    ok(
        &server,
        &service,
        INGEST,
        json!({ "t": [{ "symbol": "MATIC", "price": 0.5, "at": "2026-11-20T10:00:00Z" },
                      { "symbol": "STETH", "price": 3000.0 }] }),
    )
    .await;

    // A trade of STETH, recorded before its delisting.
    let user = ok(
        &server,
        &admin,
        "mutation { registerUser(input: { address: \"0x00000000000000000000000000000000000000c1\", username: \"catalogue_trader\" }) { id } }",
        json!({}),
    )
    .await["registerUser"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let trade = |hash: &str| {
        format!(
            "mutation {{ recordTrade(input: {{ userId: \"{user}\", txHash: \"0x{hash}\", symbol: \"STETH\", side: BUY, quantity: 2, price: 3000 }}) {{ id }} }}"
        )
    };
    let first = ok(&server, &service, &trade(&"a".repeat(64)), json!({})).await;

    let renamed = ok(
        &server,
        &admin,
        "mutation { renameAsset(symbol: \"matic\", to: \"POL\", name: \"Polygon Ecosystem Token\") { previous { symbol status successor { symbol } } successor { symbol name status metadata { tags } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        renamed["renameAsset"],
        json!({ "previous": { "symbol": "MATIC", "status": "RENAMED", "successor": { "symbol": "POL" } },
                "successor": { "symbol": "POL", "name": "Polygon Ecosystem Token", "status": "LISTED",
                               "metadata": { "tags": ["l2", "scaling"] } } })
    );
    let delisted = ok(
        &server,
        &admin,
        "mutation { delistAsset(symbol: \"STETH\") { status statusChangedAt } }",
        json!({}),
    )
    .await;
    assert_eq!(delisted["delistAsset"]["status"], "DELISTED");
    assert!(delisted["delistAsset"]["statusChangedAt"].is_string());

    // Old symbols take nothing new, saying why; their history still reads.
    for (tick, why) in [
        (json!({ "symbol": "MATIC", "price": 0.6 }), "renamed to POL"),
        (json!({ "symbol": "STETH", "price": 3100.0 }), "delisted"),
    ] {
        let (_, body) = server
            .graphql_as(Some(&service), INGEST, json!({ "t": [tick] }))
            .await;
        assert_eq!(
            refusals(&body),
            [("BAD_USER_INPUT".to_owned(), "ticks[0].symbol".to_owned())]
        );
        assert!(body.to_string().contains(why), "{body}");
    }
    ok(
        &server,
        &service,
        INGEST,
        json!({ "t": [{ "symbol": "POL", "price": 0.61 }] }),
    )
    .await;
    let (_, body) = server
        .graphql_as(Some(&service), &trade(&"b".repeat(64)), json!({}))
        .await;
    assert_eq!(
        refusals(&body),
        [("BAD_USER_INPUT".to_owned(), "input.symbol".to_owned())]
    );
    // The trade sent again before the delisting still answers with itself.
    let again = ok(&server, &service, &trade(&"a".repeat(64)), json!({})).await;
    assert_eq!(again["recordTrade"]["id"], first["recordTrade"]["id"]);
    let history = ok(
        &server,
        &service,
        "{ matic: asset(symbol: \"MATIC\") { names { name } status successor { symbol price { price } }
             candles(interval: HOUR, from: \"2026-11-20T00:00:00Z\", to: \"2026-11-21T00:00:00Z\") { close } }
           steth: asset(symbol: \"STETH\") { status price { price } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        history,
        json!({ "matic": { "names": [{ "name": "Polygon" }, { "name": "Polygon Matic" }], "status": "RENAMED",
                           "successor": { "symbol": "POL", "price": { "price": 0.61 } },
                           "candles": [{ "close": 0.5 }] },
                "steth": { "status": "DELISTED", "price": { "price": 3000.0 } } })
    );

    // Hostile input: each refusal names its field, and writes nothing.
    let many: Vec<Value> = (0..1_001)
        .map(|i| asset(&format!("T{i}"), "x", "TOKEN"))
        .collect();
    for (query, variables, field) in [
        (UPSERT_ASSETS, json!({ "a": many }), "assets"),
        (
            UPSERT_ASSETS,
            json!({ "a": [asset("A", "x", "TOKEN")] }),
            "assets[0].symbol",
        ),
        (
            UPSERT_ASSETS,
            json!({ "a": [asset("ABC", "", "TOKEN")] }),
            "assets[0].name",
        ),
        (
            UPSERT_ASSETS,
            json!({ "a": [asset("ABC", "x", "TOKEN"), asset("abc", "y", "TOKEN")] }),
            "assets[1].symbol",
        ),
        (
            UPSERT_ASSETS,
            json!({ "a": [{ "symbol": "ABC", "name": "x", "chain": "Ethereum Mainnet!", "decimals": 18 }] }),
            "assets[0].chain",
        ),
        (
            UPSERT_ASSETS,
            json!({ "a": [{ "symbol": "ABC", "name": "x", "chain": "ethereum", "decimals": 99 }] }),
            "assets[0].decimals",
        ),
        (
            UPSERT_ASSETS,
            json!({ "a": [{ "symbol": "ABC", "name": "x", "chain": "ethereum", "decimals": 1,
                            "metadata": { "description": "x", "website": "javascript:alert(1)" } }] }),
            "assets[0].metadata.website",
        ),
        (
            "mutation { renameAsset(symbol: \"MATIC\", to: \"POL2\") { previous { symbol } } }",
            json!({}),
            "symbol",
        ),
        (
            "mutation { renameAsset(symbol: \"USDC\", to: \"POL\") { previous { symbol } } }",
            json!({}),
            "to",
        ),
        (
            "mutation { renameAsset(symbol: \"USDC\", to: \"usdc\") { previous { symbol } } }",
            json!({}),
            "to",
        ),
        (
            "mutation { delistAsset(symbol: \"STETH\") { symbol } }",
            json!({}),
            "symbol",
        ),
        (
            "mutation { delistAsset(symbol: \"NOPE\") { symbol } }",
            json!({}),
            "symbol",
        ),
    ] {
        assert_eq!(
            refused_on(&server, &admin, query, variables).await,
            field,
            "{query}"
        );
    }
    let unchanged = ok(
        &server,
        &service,
        "{ assets(first: 50) { edges { node { symbol status } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        unchanged["assets"]["edges"],
        json!([{ "node": { "symbol": "MATIC", "status": "RENAMED" } }, { "node": { "symbol": "POL", "status": "LISTED" } },
               { "node": { "symbol": "STETH", "status": "DELISTED" } }, { "node": { "symbol": "USDC", "status": "LISTED" } }])
    );
    // Only the admin and service roles write the catalogue.
    let user_token = server.token(&user, &[Role::User]);
    for token in [None, Some(user_token.as_str())] {
        let (_, body) = server
            .graphql_as(
                token,
                "mutation { delistAsset(symbol: \"USDC\") { symbol } }",
                json!({}),
            )
            .await;
        let code = &body["errors"][0]["extensions"]["code"];
        assert!(code == "UNAUTHENTICATED" || code == "FORBIDDEN", "{body}");
    }
}

/// Catalogues `n` protocols with two pools each over four assets.
async fn protocols(server: &TestServer, token: &str, n: usize) {
    ok(
        server,
        token,
        UPSERT_ASSETS,
        json!({ "a": [asset("ETH", "Ether", "TOKEN"), asset("USDC", "USD Coin", "TOKEN"),
                      asset("WBTC", "Wrapped Bitcoin", "TOKEN"), asset("UNIV2", "Uniswap V2 LP", "LP_TOKEN")] }),
    )
    .await;
    let list: Vec<Value> = (0..n)
        .map(|i| json!({ "id": format!("proto-{i:03}"), "name": format!("Protocol {i}"), "category": "DEX",
                         "risk": if i % 2 == 0 { "LOW" } else { "HIGH" }, "chains": ["Ethereum", "arbitrum", "ethereum"],
                         "metadata": { "audits": [{ "by": "firm", "year": 2025 }], "rank": i } }))
        .collect();
    ok(server, token, UPSERT_PROTOCOLS, json!({ "p": list })).await;
    let pools: Vec<Value> = (0..n)
        .flat_map(|i| {
            [
                json!({ "id": format!("proto-{i:03}-eth-usdc"), "protocol": format!("proto-{i:03}"),
                        "assets": ["eth", "USDC"], "feeBps": 30, "metadata": { "version": 2 } }),
                json!({ "id": format!("proto-{i:03}-wbtc-eth"), "protocol": format!("proto-{i:03}"),
                        "assets": ["WBTC", "ETH"], "feeBps": 5 }),
            ]
        })
        .collect();
    ok(server, token, UPSERT_POOLS, json!({ "p": pools })).await;
}

const PROTOCOL_DASHBOARD: &str = "query($n: Int!) { protocols(first: $n) { edges { node { id risk chains metadata
    pools { id feeBps metadata protocol { name } assets { symbol kind metadata { tags } price { price } } } } } } }";

#[tokio::test]
async fn protocols_pools_and_markets_are_catalogued_with_metadata_in_fixed_round_trips() {
    let env = TestEnv::migrated().await;
    let server = env.spawn().await;
    let service = server.token("catalogue-service", &[Role::Service]);
    protocols(&server, &service, 3).await;
    let (small, trips_small) = server.traced(PROTOCOL_DASHBOARD, json!({ "n": 3 })).await;
    assert!(small["errors"].is_null(), "{small}");
    let first = &small["data"]["protocols"]["edges"][0]["node"];
    assert_eq!(first["chains"], json!(["ethereum", "arbitrum"]));
    assert_eq!(
        first["metadata"],
        json!({ "audits": [{ "by": "firm", "year": 2025 }], "rank": 0 })
    );
    assert_eq!(
        first["pools"][0],
        json!({ "id": "proto-000-eth-usdc", "feeBps": 30, "metadata": { "version": 2 }, "protocol": { "name": "Protocol 0" },
                "assets": [{ "symbol": "ETH", "kind": "TOKEN", "metadata": null, "price": null },
                           { "symbol": "USDC", "kind": "TOKEN", "metadata": null, "price": null }] })
    );
    assert_eq!(first["pools"][1]["metadata"], Value::Null);
    protocols(&server, &service, 30).await;
    let (large, trips_large) = server.traced(PROTOCOL_DASHBOARD, json!({ "n": 30 })).await;
    assert!(large["errors"].is_null(), "{large}");
    assert_eq!(
        large["data"]["protocols"]["edges"].as_array().map(Vec::len),
        Some(30)
    );
    assert_eq!(
        trips_small, trips_large,
        "round trips grew with the protocols"
    );
    let filtered = ok(
        &server,
        &service,
        "{ protocols(category: DEX, chain: \"ARBITRUM\", first: 2) { edges { node { id } } pageInfo { hasNextPage } }
           pools(asset: \"wbtc\", first: 1) { edges { node { id } } }
           pool(id: \"proto-001-wbtc-eth\") { assets { symbol } } }",
        json!({}),
    )
    .await;
    assert_eq!(filtered["protocols"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(
        filtered["pools"]["edges"][0]["node"]["id"],
        "proto-000-wbtc-eth"
    );
    assert_eq!(
        filtered["pool"]["assets"],
        json!([{ "symbol": "WBTC" }, { "symbol": "ETH" }])
    );

    // Markets: spot and prediction, and a prediction's lifecycle.
    let markets = ok(
        &server,
        &service,
        UPSERT_MARKETS,
        json!({ "m": [
            { "id": "eth-usdc", "kind": "SPOT", "base": "ETH", "quote": "usdc", "metadata": { "venue": "demo" } },
            { "id": "eth-5k", "kind": "PREDICTION", "base": "ETH", "question": "Will ETH trade above 5,000 USD?",
              "creator": FARMER, "targetPrice": "5000.00", "resolveAt": "2026-12-31T00:00:00Z" } ] }),
    )
    .await;
    assert_eq!(
        markets["upsertMarkets"][1],
        json!({ "id": "eth-5k", "kind": "PREDICTION", "status": "OPEN" })
    );
    let set = "mutation($s: MarketStatus!, $o: Outcome) { setMarketStatus(id: \"eth-5k\", status: $s, outcome: $o) { status outcome } }";
    let resolved = ok(
        &server,
        &service,
        set,
        json!({ "s": "RESOLVED", "o": "YES" }),
    )
    .await;
    assert_eq!(
        resolved["setMarketStatus"],
        json!({ "status": "RESOLVED", "outcome": "YES" })
    );
    let read = ok(
        &server,
        &service,
        "{ market(id: \"eth-5k\") { question targetPrice resolveAt creator { chain address } base { symbol } outcome }
           markets(kind: SPOT) { edges { node { id base { symbol } quote { symbol } metadata } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        read,
        json!({ "market": { "question": "Will ETH trade above 5,000 USD?", "targetPrice": "5000", "resolveAt": "2026-12-31T00:00:00+00:00",
                            "creator": { "chain": "STELLAR", "address": FARMER }, "base": { "symbol": "ETH" }, "outcome": "YES" },
                "markets": { "edges": [{ "node": { "id": "eth-usdc", "base": { "symbol": "ETH" }, "quote": { "symbol": "USDC" },
                                                   "metadata": { "venue": "demo" } } }] } })
    );

    // Hostile input for protocols, pools and markets.
    let protocol = |over: Value| {
        let mut p = json!({ "id": "p1", "name": "P", "category": "LENDING", "risk": "LOW", "chains": ["ethereum"] });
        p.as_object_mut()
            .expect("an object")
            .extend(over.as_object().expect("an object").clone());
        json!({ "p": [p] })
    };
    let pool = |over: Value| {
        let mut p = json!({ "id": "x1", "protocol": "proto-000", "assets": ["ETH"] });
        p.as_object_mut()
            .expect("an object")
            .extend(over.as_object().expect("an object").clone());
        json!({ "p": [p] })
    };
    let market = |m: Value| json!({ "m": [m] });
    for (query, variables, field) in [
        (UPSERT_PROTOCOLS, protocol(json!({ "id": "Bad Id" })), "protocols[0].id"),
        (UPSERT_PROTOCOLS, protocol(json!({ "chains": [] })), "protocols[0].chains"),
        (UPSERT_PROTOCOLS, protocol(json!({ "metadata": { "$where": "1" } })), "protocols[0].metadata"),
        (UPSERT_PROTOCOLS, protocol(json!({ "metadata": [1, 2] })), "protocols[0].metadata"),
        (UPSERT_PROTOCOLS, protocol(json!({ "metadata": { "blob": "x".repeat(20_000) } })), "protocols[0].metadata"),
        (UPSERT_POOLS, pool(json!({ "protocol": "nope" })), "pools[0].protocol"),
        (UPSERT_POOLS, pool(json!({ "assets": ["ETH", "DOGE"] })), "pools[0].assets"),
        (UPSERT_POOLS, pool(json!({ "assets": ["ETH", "eth"] })), "pools[0].assets"),
        (UPSERT_POOLS, pool(json!({ "feeBps": -1 })), "pools[0].feeBps"),
        (UPSERT_MARKETS, market(json!({ "id": "m1", "kind": "SPOT", "base": "ETH" })), "markets[0].quote"),
        (UPSERT_MARKETS, market(json!({ "id": "m1", "kind": "SPOT", "base": "ETH", "quote": "DOGE" })), "markets[0].quote"),
        (UPSERT_MARKETS, market(json!({ "id": "m1", "kind": "SPOT", "base": "ETH", "quote": "USDC", "question": "?" })), "markets[0].question"),
        (UPSERT_MARKETS, market(json!({ "id": "m1", "kind": "PREDICTION", "question": "Will it?" })), "markets[0].resolveAt"),
        (UPSERT_MARKETS, market(json!({ "id": "m1", "kind": "PREDICTION", "question": "Will it?", "resolveAt": "2027-01-01T00:00:00Z",
                                        "creator": "GABC" })), "markets[0].creator"),
        (UPSERT_MARKETS, market(json!({ "id": "m1", "kind": "PREDICTION", "question": "Will it?", "resolveAt": "2027-01-01T00:00:00Z",
                                        "targetPrice": "-5" })), "markets[0].targetPrice"),
        (UPSERT_MARKETS, market(json!({ "id": "eth-usdc", "kind": "PREDICTION", "question": "Will it?", "resolveAt": "2027-01-01T00:00:00Z" })), "markets[0].kind"),
        (set, json!({ "s": "OPEN" }), "status"),
        ("mutation { setMarketStatus(id: \"eth-usdc\", status: RESOLVED, outcome: NO) { status } }", json!({}), "status"),
        ("mutation { setMarketStatus(id: \"eth-usdc\", status: CLOSED, outcome: NO) { status } }", json!({}), "outcome"),
        ("mutation { setMarketStatus(id: \"nope\", status: CLOSED) { status } }", json!({}), "id"),
    ] {
        assert_eq!(refused_on(&server, &service, query, variables.clone()).await, field, "{variables}");
    }
    let after = ok(&server, &service, "{ protocols(category: LENDING) { edges { node { id } } } pools(protocol: \"nope\") { edges { node { id } } } market(id: \"eth-usdc\") { kind status } }", json!({})).await;
    assert_eq!(
        after,
        json!({ "protocols": { "edges": [] }, "pools": { "edges": [] }, "market": { "kind": "SPOT", "status": "OPEN" } })
    );
}
