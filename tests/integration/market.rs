//! Market data as the QiCore seed describes it, against the real stack: ticks with their
//! exchange, source and market figures through both ingestion paths; the 60-second market
//! cache and its ClickHouse fallback; prices per exchange and volume-weighted; the market
//! overview and the top movers; and hostile market figures.

use meridian::auth::Role;
use serde_json::{json, Value};

use crate::support::{refusals, TestEnv};

const INGEST: &str = "mutation($t: [PriceTickInput!]!) { ingestPrices(ticks: $t) { accepted } }";

fn ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339()
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64()
        .is_some_and(|a| (a - b).abs() <= 1e-6 * b.abs().max(1.0))
}

#[tokio::test]
async fn market_figures_are_cached_read_per_exchange_and_summed_into_the_overview() {
    let env = TestEnv::migrated().await;
    let state = env.state().await;
    let server = env.spawn().await;
    let admin = server.token("operator", &[Role::Admin]);
    let assets: Vec<Value> = ["BTC", "ETH", "SOL"]
        .iter()
        .map(|s| json!({ "symbol": s, "name": s, "chain": "ethereum", "decimals": 8 }))
        .collect();
    let (_, saved) = server
        .graphql_as(
            Some(&admin),
            "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { symbol } }",
            json!({ "a": assets }),
        )
        .await;
    assert!(saved["errors"].is_null(), "{saved}");

    // Through the mutation: BTC on two venues, and SOL without market figures.
    let ticks = json!([
        { "symbol": "BTC", "price": 60000.0, "volume": 1.0, "at": ago(50), "exchange": "Binance",
          "source": "exchange-api", "attribution": "Binance public API", "marketCap": 1.2e12 },
        { "symbol": "BTC", "price": 63000.0, "volume": 3.0, "at": ago(10), "exchange": "coinbase",
          "source": "exchange-api", "attribution": "Coinbase public API", "marketCap": 1.25e12,
          "volume24h": 3.1e10, "liquidity": 2.5e9, "participants": 4200 },
        { "symbol": "SOL", "price": 150.0, "at": ago(30) },
        { "symbol": "SOL", "price": 165.0, "at": ago(1) },
    ]);
    let body = server
        .graphql_with(INGEST, json!({ "t": ticks }), &[])
        .await;
    assert_eq!(body["data"]["ingestPrices"]["accepted"], 4, "{body}");
    // Through NDJSON: ETH on two venues.
    let ndjson = [
        json!({ "symbol": "ETH", "price": 3000.0, "volume": 10.0, "ts": ago(40), "exchange": "binance", "marketCap": 3.6e11 }),
        json!({ "symbol": "ETH", "price": 2850.0, "volume": 10.0, "ts": ago(5), "exchange": "kraken", "marketCap": 3.4e11,
                "source": "aggregator", "participants": 77 }),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let answer: Value = server
        .client
        .post(server.url("/ingest/prices"))
        .body(ndjson)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["accepted"], 2, "{answer}");
    // An older snapshot does not replace a newer one in the cache.
    let older = json!([{ "symbol": "BTC", "price": 61000.0, "at": ago(30), "exchange": "kraken", "marketCap": 1.0e12 }]);
    let body = server
        .graphql_with(INGEST, json!({ "t": older }), &[])
        .await;
    assert_eq!(body["data"]["ingestPrices"]["accepted"], 1, "{body}");

    let query = "{ btc: asset(symbol: \"BTC\") { market { price exchange source attribution marketCap volume24h liquidity participants servedFrom }
                     binance: exchangePrice(exchange: \"binance\") { price } okx: exchangePrice(exchange: \"okx\") { price }
                     vwap(window: HOUR) { price volume } }
                   sol: asset(symbol: \"SOL\") { market { price } vwap { price } }
                   marketOverview { totalMarketCap btcDominance ethDominance volume24h markets }
                   gainers: topMovers(window: HOUR) { asset { symbol } changePercent }
                   losers: topMovers(window: DAY, direction: LOSERS, first: 1) { asset { symbol } open close } }";
    let read = server.graphql(query).await;
    assert!(read["errors"].is_null(), "{read}");
    let data = &read["data"];
    assert_eq!(
        data["btc"]["market"],
        json!({ "price": 63000.0, "exchange": "coinbase", "source": "exchange-api", "attribution": "Coinbase public API",
                "marketCap": 1.25e12, "volume24h": 3.1e10, "liquidity": 2.5e9, "participants": 4200, "servedFrom": "CACHE" })
    );
    assert_eq!(data["btc"]["binance"], json!({ "price": 60000.0 }));
    assert_eq!(data["btc"]["okx"], Value::Null);
    // (60,000 x 1 + 63,000 x 3 + 61,000 x 0) / 4.
    assert!(close(&data["btc"]["vwap"]["price"], 62_250.0), "{data}");
    assert_eq!(data["sol"], json!({ "market": null, "vwap": null }));
    let overview = &data["marketOverview"];
    // Each asset's newest cap: BTC's from the tick of 10 minutes ago, not from the older
    // tick sent after it.
    let total = 1.25e12 + 3.4e11;
    assert!(close(&overview["totalMarketCap"], total), "{overview}");
    assert!(
        close(&overview["btcDominance"], 1.25e12 * 100.0 / total),
        "{overview}"
    );
    assert!(
        close(&overview["ethDominance"], 3.4e11 * 100.0 / total),
        "{overview}"
    );
    assert!(
        close(
            &overview["volume24h"],
            60_000.0 + 189_000.0 + 30_000.0 + 28_500.0
        ),
        "{overview}"
    );
    assert_eq!(overview["markets"], 3);
    let symbols = |movers: &Value| -> Vec<String> {
        movers
            .as_array()
            .expect("movers")
            .iter()
            .map(|m| m["asset"]["symbol"].as_str().expect("a symbol").to_owned())
            .collect()
    };
    assert_eq!(symbols(&data["gainers"]), ["SOL", "BTC", "ETH"]);
    assert!(close(&data["gainers"][0]["changePercent"], 10.0), "{data}");
    assert_eq!(
        data["losers"],
        json!([{ "asset": { "symbol": "ETH" }, "open": 3000.0, "close": 2850.0 }])
    );

    // The cache keeps a snapshot 60 s; once it is gone ClickHouse answers the same.
    let key = state.stores().redis().market_key("BTC");
    let mut conn = state.stores().redis().conn();
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("ttl");
    assert!((1..=60).contains(&ttl), "ttl {ttl}");
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("del");
    let fallback = server.graphql(query).await;
    assert_eq!(
        fallback["data"]["btc"]["market"]["servedFrom"], "CLICKHOUSE",
        "{fallback}"
    );
    let mut expected = data["btc"]["market"].clone();
    expected["servedFrom"] = json!("CLICKHOUSE");
    assert_eq!(fallback["data"]["btc"]["market"], expected);

    // Hostile market figures name their field; nothing is written.
    for (tick, field) in [
        (
            json!({ "symbol": "BTC", "price": 1.0, "exchange": "Bad Exchange!" }),
            "ticks[0].exchange",
        ),
        (
            json!({ "symbol": "BTC", "price": 1.0, "exchange": "" }),
            "ticks[0].exchange",
        ),
        (
            json!({ "symbol": "BTC", "price": 1.0, "marketCap": -1.0 }),
            "ticks[0].marketCap",
        ),
        (
            json!({ "symbol": "BTC", "price": 1.0, "liquidity": 1e300 }),
            "ticks[0].liquidity",
        ),
        (
            json!({ "symbol": "BTC", "price": 1.0, "participants": -5 }),
            "ticks[0].participants",
        ),
        (
            json!({ "symbol": "BTC", "price": 1.0, "source": "a\u{0}b" }),
            "ticks[0].source",
        ),
        (
            json!({ "symbol": "BTC", "price": 1.0, "attribution": "x".repeat(501) }),
            "ticks[0].attribution",
        ),
    ] {
        let body = server
            .graphql_with(INGEST, json!({ "t": [tick] }), &[])
            .await;
        assert_eq!(
            refusals(&body),
            [("BAD_USER_INPUT".to_owned(), field.to_owned())],
            "{body}"
        );
    }
    let answer: Value = server
        .client
        .post(server.url("/ingest/prices"))
        .body("{\"symbol\":\"BTC\",\"price\":1,\"marketCap\":\"big\"}\n{\"symbol\":\"BTC\",\"price\":1,\"volume24h\":-2}\n")
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        (answer["accepted"].clone(), answer["rejected"].clone()),
        (json!(0), json!(2)),
        "{answer}"
    );
    let (_, body) = server
        .graphql_as(
            None,
            "{ topMovers(window: DAY, first: 0) { changePercent } }",
            json!({}),
        )
        .await;
    assert_eq!(
        refusals(&body),
        [("BAD_USER_INPUT".to_owned(), "first".to_owned())]
    );
    let after = server
        .graphql("{ asset(symbol: \"BTC\") { exchangePrice(exchange: \"binance\") { price } } }")
        .await;
    assert_eq!(after["data"]["asset"]["exchangePrice"]["price"], 60000.0);
}

/// A market dashboard over `n` assets: the snapshot, a venue's price and the VWAP of each.
const MARKET_DASHBOARD: &str = "query($n: Int!) { assets(first: $n) { edges { node { symbol
    price { price } market { marketCap servedFrom } exchangePrice(exchange: \"binance\") { price } vwap { price } } } }
    marketOverview { markets } topMovers(window: DAY) { asset { symbol } } }";

#[tokio::test]
async fn a_market_dashboard_costs_the_same_round_trips_for_3_and_12_assets() {
    let env = TestEnv::migrated().await;
    let server = env.spawn().await;
    let admin = server.token("operator", &[Role::Admin]);
    let mut trips = Vec::new();
    for n in [3usize, 12] {
        let assets: Vec<Value> = (0..n)
            .map(|i| json!({ "symbol": format!("TK{i}"), "name": "t", "chain": "ethereum", "decimals": 8 }))
            .collect();
        let (_, saved) = server
            .graphql_as(
                Some(&admin),
                "mutation($a: [AssetInput!]!) { upsertAssets(assets: $a) { symbol } }",
                json!({ "a": assets }),
            )
            .await;
        assert!(saved["errors"].is_null(), "{saved}");
        let ticks: Vec<Value> = (0..n)
            .flat_map(|i| {
                [
                    json!({ "symbol": format!("TK{i}"), "price": 10.0 + i as f64, "volume": 1.0, "at": ago(20),
                            "exchange": "binance", "marketCap": 1e9 }),
                    json!({ "symbol": format!("TK{i}"), "price": 11.0 + i as f64, "volume": 2.0, "at": ago(2),
                            "exchange": "kraken" }),
                ]
            })
            .collect();
        let body = server
            .graphql_with(INGEST, json!({ "t": ticks }), &[])
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let (response, counted) = server.traced(MARKET_DASHBOARD, json!({ "n": n })).await;
        assert!(response["errors"].is_null(), "{response}");
        let edges = response["data"]["assets"]["edges"]
            .as_array()
            .expect("edges");
        assert_eq!(edges.len(), n);
        assert!(edges.iter().all(|e| e["node"]["market"]["marketCap"] == 1e9
            && e["node"]["exchangePrice"]["price"].is_number()
            && e["node"]["vwap"]["price"].is_number()));
        trips.push(counted);
    }
    assert_eq!(trips[0], trips[1], "round trips grew with the assets");
}

const INGEST_OHLCV: &str = "mutation($r: [OhlcvInput!]!) { ingestOhlcv(rows: $r) { accepted } }";

/// Ingested OHLCV rows sit beside the derived candles: read back per exchange and
/// timeframe, replaced when sent again for the same period, and refused by field when bad.
#[tokio::test]
async fn ohlcv_rows_are_ingested_per_exchange_and_timeframe_beside_derived_candles() {
    let env = TestEnv::migrated().await;
    let server = env.spawn().await;
    let admin = server.token("operator", &[Role::Admin]);
    let (_, saved) = server
        .graphql_as(
            Some(&admin),
            "mutation { upsertAssets(assets: [{ symbol: \"BTC\", name: \"Bitcoin\", chain: \"bitcoin\", decimals: 8 }]) { symbol } }",
            json!({}),
        )
        .await;
    assert!(saved["errors"].is_null(), "{saved}");
    let row = |exchange: &str, start: &str, close: f64| {
        json!({ "symbol": "btc", "exchange": exchange, "timeframe": "HOUR", "start": start,
                "open": 60000.0, "high": 61000.0, "low": 59000.0, "close": close, "volume": 12.5,
                "source": "provider", "attribution": "Example Data Ltd" })
    };
    let rows = json!([
        row("binance", "2026-11-20T10:00:00Z", 60500.0),
        row("binance", "2026-11-20T11:00:00Z", 60800.0),
        row("Kraken", "2026-11-20T10:00:00Z", 60400.0),
    ]);
    let body = server
        .graphql_with(INGEST_OHLCV, json!({ "r": rows }), &[])
        .await;
    assert_eq!(body["data"]["ingestOhlcv"]["accepted"], 3, "{body}");
    // The provider corrects a period: the row sent last is kept.
    let fix = json!([row("binance", "2026-11-20T11:00:00Z", 60900.0)]);
    let body = server
        .graphql_with(INGEST_OHLCV, json!({ "r": fix }), &[])
        .await;
    assert_eq!(body["data"]["ingestOhlcv"]["accepted"], 1, "{body}");
    // A tick, so the derived candles have something beside the ingested rows.
    let body = server
        .graphql_with(
            INGEST,
            json!({ "t": [{ "symbol": "BTC", "price": 60100.0, "at": "2026-11-20T10:30:00Z" }] }),
            &[],
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let read = server
        .graphql(
            "{ asset(symbol: \"BTC\") {
                 binance: ohlcv(exchange: \"binance\", timeframe: HOUR, from: \"2026-11-20T00:00:00Z\", to: \"2026-11-21T00:00:00Z\") { start close source attribution }
                 kraken: ohlcv(exchange: \"kraken\", timeframe: HOUR, from: \"2026-11-20T00:00:00Z\", to: \"2026-11-21T00:00:00Z\") { close }
                 daily: ohlcv(exchange: \"binance\", timeframe: DAY, from: \"2026-11-20T00:00:00Z\", to: \"2026-11-21T00:00:00Z\") { close }
                 candles(interval: HOUR, from: \"2026-11-20T00:00:00Z\", to: \"2026-11-21T00:00:00Z\") { close } } }",
        )
        .await;
    assert!(read["errors"].is_null(), "{read}");
    assert_eq!(
        read["data"]["asset"],
        json!({ "binance": [
                    { "start": "2026-11-20T10:00:00+00:00", "close": 60500.0, "source": "provider", "attribution": "Example Data Ltd" },
                    { "start": "2026-11-20T11:00:00+00:00", "close": 60900.0, "source": "provider", "attribution": "Example Data Ltd" }],
                "kraken": [{ "close": 60400.0 }], "daily": [], "candles": [{ "close": 60100.0 }] })
    );

    let bad = |over: Value| {
        let mut r = row("binance", "2026-11-20T12:00:00Z", 60000.0);
        r.as_object_mut()
            .expect("object")
            .extend(over.as_object().expect("object").clone());
        json!({ "r": [r] })
    };
    for (variables, field) in [
        (
            bad(json!({ "start": "2026-11-20T12:30:00Z" })),
            "rows[0].start",
        ),
        (
            bad(json!({ "timeframe": "WEEK", "start": "2026-11-20T00:00:00Z" })),
            "rows[0].start",
        ),
        (bad(json!({ "high": 59500.0 })), "rows[0].high"),
        (bad(json!({ "low": 60500.0 })), "rows[0].low"),
        (bad(json!({ "open": -1.0 })), "rows[0].open"),
        (bad(json!({ "close": 1e300 })), "rows[0].close"),
        (bad(json!({ "volume": -1.0 })), "rows[0].volume"),
        (bad(json!({ "symbol": "NOPE" })), "rows[0].symbol"),
        (bad(json!({ "exchange": "" })), "rows[0].exchange"),
        (
            bad(json!({ "start": "2099-01-01T00:00:00Z" })),
            "rows[0].start",
        ),
    ] {
        let body = server
            .graphql_with(INGEST_OHLCV, variables.clone(), &[])
            .await;
        assert_eq!(
            refusals(&body),
            [("BAD_USER_INPUT".to_owned(), field.to_owned())],
            "{variables}: {body}"
        );
    }
    let (_, body) = server
        .graphql_as(
            None,
            "{ asset(symbol: \"BTC\") { ohlcv(exchange: \"binance\", timeframe: MINUTE, from: \"2020-01-01T00:00:00Z\", to: \"2026-01-01T00:00:00Z\") { close } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        refusals(&body),
        [("BAD_USER_INPUT".to_owned(), "to".to_owned())],
        "{body}"
    );
    let (_, body) = server
        .graphql_as(
            Some(&admin),
            INGEST_OHLCV,
            json!({ "r": [row("binance", "2026-11-20T12:00:00Z", 60000.0)] }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
}

/// The candle views agree with the raw ticks under concurrent ingestion: every aligned
/// window read through a view equals the same candles computed from the ticks; reconcile
/// finds a view that counts ticks twice, and `--repair` rebuilds it.
#[tokio::test]
async fn candle_views_match_the_raw_ticks_under_concurrent_ingestion_and_are_reconciled() {
    let env = TestEnv::migrated().await;
    let state = env.state().await;
    let server = env.spawn().await;
    let admin = server.token("operator", &[Role::Admin]);
    let (_, saved) = server
        .graphql_as(
            Some(&admin),
            "mutation { upsertAssets(assets: [{ symbol: \"BTC\", name: \"Bitcoin\", chain: \"bitcoin\", decimals: 8 },
                                              { symbol: \"ETH\", name: \"Ether\", chain: \"ethereum\", decimals: 18 }]) { symbol } }",
            json!({}),
        )
        .await;
    assert!(saved["errors"].is_null(), "{saved}");
    // Three days of ticks, every 7 minutes per symbol, sent as four concurrent NDJSON
    // bodies (each its own insert, each folded into the views as it lands).
    let start: i64 = 1_793_232_000; // 2026-10-29T00:00:00Z
    let lines: Vec<String> = (0..(3 * 86_400 / 420))
        .flat_map(|i| {
            let ts = start + i * 420;
            ["BTC", "ETH"].map(|symbol| {
                let base = if symbol == "BTC" { 60_000.0 } else { 3_000.0 };
                let price = base + ((i * 37) % 101) as f64;
                json!({ "symbol": symbol, "price": price, "volume": 0.5 + (i % 7) as f64 * 0.25, "ts": ts }).to_string()
            })
        })
        .collect();
    let bodies: Vec<String> = lines
        .chunks(lines.len() / 4 + 1)
        .map(|c| c.join("\n"))
        .collect();
    let sends = bodies.into_iter().map(|body| {
        let request = server.client.post(server.url("/ingest/prices")).body(body);
        async move {
            let answer: Value = request
                .send()
                .await
                .expect("answered")
                .json()
                .await
                .expect("JSON");
            answer["accepted"].as_u64().expect("accepted")
        }
    });
    let accepted: u64 = futures::future::join_all(sends).await.into_iter().sum();
    assert_eq!(accepted, lines.len() as u64);

    let symbols = vec!["BTC".to_owned(), "ETH".to_owned()];
    let ch = state.stores().clickhouse();
    for (interval, bucket, from, to) in [
        ("MINUTE", 60u32, start + 3_600, start + 4 * 3_600),
        ("FIFTEEN_MINUTES", 900, start + 86_400, start + 2 * 86_400),
        ("HOUR", 3_600, start, start + 3 * 86_400),
        ("DAY", 86_400, start, start + 3 * 86_400),
        // Not on a minute boundary: read from the raw ticks.
        ("HOUR", 3_600, start + 30, start + 86_400 + 30),
    ] {
        let (from, to) = (from as u32, to as u32);
        let view = meridian::store::clickhouse::candle_view(bucket, from, to);
        assert_eq!(view.is_none(), from % 60 != 0, "{interval} {from}");
        let served = ch
            .candles(&symbols, bucket, from, to)
            .await
            .expect("candles");
        let raw = ch
            .candles_from_ticks(&symbols, bucket, from, to)
            .await
            .expect("raw candles");
        assert!(!raw.is_empty());
        assert_eq!(served.len(), raw.len(), "{interval} via {view:?}");
        for (a, b) in served.iter().zip(&raw) {
            assert_eq!(
                (&a.symbol, a.bucket, a.open, a.high, a.low, a.close, a.ticks),
                (&b.symbol, b.bucket, b.open, b.high, b.low, b.close, b.ticks),
                "{interval} via {view:?}"
            );
            assert!(
                (a.volume - b.volume).abs() < 1e-9 * b.volume.max(1.0),
                "{interval}"
            );
        }
        // The same through the graph.
        let query = format!(
            "{{ asset(symbol: \"ETH\") {{ candles(interval: {interval}, from: \"{}\", to: \"{}\") {{ close ticks }} }} }}",
            chrono::DateTime::from_timestamp(i64::from(from), 0).expect("time").to_rfc3339(),
            chrono::DateTime::from_timestamp(i64::from(to), 0).expect("time").to_rfc3339(),
        );
        let body = server.graphql(&query).await;
        let candles = body["data"]["asset"]["candles"]
            .as_array()
            .expect("candles")
            .clone();
        let eth: Vec<Value> = raw
            .iter()
            .filter(|r| r.symbol == "ETH")
            .map(|r| json!({ "close": r.close, "ticks": r.ticks }))
            .collect();
        assert_eq!(candles, eth, "{interval}");
    }

    let clean = meridian::reconcile::check(state.stores())
        .await
        .expect("reconcile");
    assert!(clean.is_clean(), "{:?}", clean.lines());
    // A view that counts a day's ticks twice is found, and rebuilt by the repair.
    ch.client()
        .query(
            "INSERT INTO candles_1h SELECT symbol, toDateTime(intDiv(toUInt32(ts), 3600) * 3600) AS bucket, \
             argMinState(price, ts), maxState(price), minState(price), argMaxState(price, ts), sumState(volume), countState() \
             FROM price_ticks WHERE symbol = 'ETH' AND ts < toDateTime(1793318400) GROUP BY symbol, bucket",
        )
        .execute()
        .await
        .expect("a double count");
    let found = meridian::reconcile::check(state.stores())
        .await
        .expect("reconcile");
    assert_eq!(
        found.clickhouse,
        ["candles_1h ETH 2026-10-29: ticks 206, view 412"],
        "{:?}",
        found.lines()
    );
    let repaired = meridian::reconcile::repair(state.stores())
        .await
        .expect("repair");
    assert!(repaired.is_clean(), "{:?}", repaired.lines());
}

/// The README's QiCore dashboard on a seed of QiCore alone: the overview sums each
/// asset's newest generated market cap, each exchange's price is its last generated
/// quote, and the hourly bars are Binance's whole hours of the day.
#[tokio::test]
async fn the_readme_market_dashboard_runs_on_the_seed() {
    use meridian::seed::{qicore, Dataset, Platforms};

    let env = TestEnv::migrated().await;
    let shape = crate::support::recent_shape(Platforms {
        qicore: true,
        ..Platforms::NONE
    });
    let report = env.seed(&shape).await;
    let quotes = qicore::ticks(&shape, &Dataset::default());
    assert_eq!(report.quotes, quotes.len());
    let server = env.spawn().await;
    let body = server
        .graphql(&crate::platforms::readme_block(
            "<!-- dashboard: qicore -->",
        ))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let data = &body["data"];

    let ts = |q: &meridian::ingest::TickInput| match q.ts {
        Some(meridian::ingest::TickTime::Unix(t)) => t,
        _ => panic!("the seed stamps its quotes"),
    };
    let last = quotes.iter().map(ts).max().expect("quotes");
    // Each asset's newest cap (every exchange quotes the same cap at a time).
    let caps: f64 = quotes
        .iter()
        .filter(|q| ts(q) == last && q.exchange.as_deref() == Some("binance"))
        .filter_map(|q| q.market_cap)
        .sum();
    assert!(
        close(&data["marketOverview"]["totalMarketCap"], caps),
        "{body}"
    );
    assert_eq!(data["marketOverview"]["markets"], 5);
    let btc = &data["asset"];
    for exchange in ["binance", "coinbase", "kraken"] {
        let quote = quotes
            .iter()
            .filter(|q| q.symbol == "BTC" && q.exchange.as_deref() == Some(exchange))
            .max_by_key(|q| ts(q))
            .expect("a quote");
        assert_eq!(btc[exchange]["price"].as_f64(), Some(quote.price), "{btc}");
    }
    assert_eq!(btc["market"]["servedFrom"], "CACHE");
    assert_eq!(btc["market"]["source"], "exchange-api");
    let bars = btc["ohlcv"].as_array().expect("bars");
    assert!((22..=24).contains(&bars.len()), "{btc}");
    for bar in bars {
        let f = |k: &str| bar[k].as_f64().expect("a price");
        assert!(f("low") <= f("open").min(f("close")), "{bar}");
        assert!(f("high") >= f("open").max(f("close")), "{bar}");
    }
    let vwap = btc["vwap"]["price"].as_f64().expect("a vwap");
    let prices: Vec<f64> = quotes
        .iter()
        .filter(|q| q.symbol == "BTC")
        .map(|q| q.price)
        .collect();
    let (lo, hi) = prices
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(*p), hi.max(*p)));
    assert!((lo..=hi).contains(&vwap), "{btc}");
    assert!(
        data["gainers"].as_array().is_some_and(|g| g.len() == 5),
        "{body}"
    );
}

/// ClickHouse killed (SIGKILL) while NDJSON ingests run and then restarted: each body is
/// retried with its idempotency key until it is accepted; afterwards reconcile's repair
/// leaves every candle view equal to the raw ticks, bucket by bucket, whatever the kill
/// interrupted (an insert whose ticks landed without their view rows, or the reverse).
#[tokio::test]
async fn candle_views_are_consistent_after_clickhouse_restarts_mid_insert() {
    use crate::support::{wait_until, PrivateStore};

    let clickhouse = PrivateStore::start("clickhouse");
    let env = TestEnv::migrated_with(|c| c.clickhouse_url = clickhouse.url()).await;
    let state = env.state().await;
    let server = env.spawn().await;
    let admin = server.token("operator", &[Role::Admin]);
    let (_, saved) = server
        .graphql_as(
            Some(&admin),
            "mutation { upsertAssets(assets: [{ symbol: \"BTC\", name: \"Bitcoin\", chain: \"bitcoin\", decimals: 8 },
                                              { symbol: \"ETH\", name: \"Ether\", chain: \"ethereum\", decimals: 18 }]) { symbol } }",
            json!({}),
        )
        .await;
    assert!(saved["errors"].is_null(), "{saved}");
    let start: i64 = 1_793_232_000; // 2026-10-29T00:00:00Z
                                    // Eight bodies of 20,000 ticks each, a tick every 3 s per symbol.
    let bodies: Vec<String> = (0..8)
        .map(|b| {
            (0..10_000)
                .flat_map(|i| {
                    let n = b * 10_000 + i;
                    let ts = start + n * 3;
                    ["BTC", "ETH"].map(|symbol| {
                        let price = if symbol == "BTC" { 60_000.0 } else { 3_000.0 } + (n % 97) as f64;
                        json!({ "symbol": symbol, "price": price, "volume": 0.25 + (n % 5) as f64, "ts": ts })
                            .to_string()
                    })
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    let client = server.client.clone();
    let url = server.url("/ingest/prices");
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = accepted.clone();
    let sender = tokio::spawn(async move {
        for (b, body) in bodies.into_iter().enumerate() {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
            loop {
                let sent = client
                    .post(&url)
                    .header("idempotency-key", format!("restart-{b}"))
                    .body(body.clone())
                    .send()
                    .await;
                if sent.as_ref().is_ok_and(|r| r.status().is_success()) {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "body {b} never accepted"
                );
                // Back off while ClickHouse restarts.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    wait_until("the first body to be accepted", 60, || async {
        accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1
    })
    .await;
    clickhouse.crash().await;
    clickhouse.up();
    sender.await.expect("every body accepted");

    let stores = state.stores();
    let before = meridian::reconcile::check(stores).await.expect("reconcile");
    eprintln!("after the restart, before the repair: {:?}", before.lines());
    // Whatever differs is a view against the ticks, never anything else.
    assert!(
        before.clickhouse.iter().all(|d| d.starts_with("candles_")),
        "{:?}",
        before.lines()
    );
    let repaired = meridian::reconcile::repair(stores).await.expect("repair");
    assert!(repaired.is_clean(), "{:?}", repaired.lines());
    let symbols = vec!["BTC".to_owned(), "ETH".to_owned()];
    let ch = stores.clickhouse();
    let end = (start + 80_000 * 3) as u32;
    for (view, bucket) in [
        ("candles_1m", 60u32),
        ("candles_1h", 3_600),
        ("candles_1d", 86_400),
    ] {
        let from = start as u32;
        let to = end.div_ceil(86_400) * 86_400;
        let folded = ch
            .candles_from_view(view, &symbols, bucket, from, to)
            .await
            .expect("view candles");
        let raw = ch
            .candles_from_ticks(&symbols, bucket, from, to)
            .await
            .expect("raw candles");
        assert!(
            raw.iter().map(|c| c.ticks).sum::<u64>() >= 160_000,
            "{view}"
        );
        assert_eq!(folded.len(), raw.len(), "{view}");
        for (a, b) in folded.iter().zip(&raw) {
            assert_eq!(
                (&a.symbol, a.bucket, a.open, a.high, a.low, a.close, a.ticks),
                (&b.symbol, b.bucket, b.open, b.high, b.low, b.close, b.ticks),
                "{view}"
            );
            assert!(
                (a.volume - b.volume).abs() < 1e-9 * b.volume.max(1.0),
                "{view}"
            );
        }
    }
}
