//! The foundation: migrations, the seeded dataset, readiness, GraphiQL, metrics, the SDL.

use std::collections::HashMap;

use meridian::{migrate, store::StoreKind};
use redis::AsyncCommands;
use serde_json::Value;

use crate::support::{closed_port, small_shape, TestEnv, TestServer};

/// The Postgres catalogue of the public schema, to see whether a run changed anything.
async fn pg_catalogue(pool: &sqlx::PgPool) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = 'public' ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .expect("catalogue query")
}

#[tokio::test]
async fn migrate_twice_the_second_run_changes_nothing() {
    let env = TestEnv::new().await;
    let state = env.state().await;
    let stores = state.stores();

    let first = migrate::run(stores).await.expect("first run");
    assert!(
        !first.postgres.is_empty(),
        "first run applies the Postgres migrations"
    );
    let clickhouse_files = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/clickhouse"
    ))
    .expect("migrations dir")
    .count() as u32;
    assert_eq!(
        first.clickhouse,
        (1..=clickhouse_files).collect::<Vec<u32>>()
    );
    assert_eq!(first.mongo_indexes.len(), 3);
    let declared = meridian::domain::kinds::KindsFile::parse(meridian::domain::kinds::BUILTIN)
        .expect("the built-in kinds file parses")
        .kinds
        .len();
    assert_eq!(
        first.kinds, declared as u64,
        "every built-in kind is applied"
    );
    let catalogue = pg_catalogue(stores.postgres().pool()).await;
    assert!(catalogue
        .iter()
        .any(|(t, c, _)| t == "trades" && c == "tx_hash"));

    let second = migrate::run(stores).await.expect("second run");
    assert!(second.is_noop(), "second run applied {second:?}");
    assert_eq!(pg_catalogue(stores.postgres().pool()).await, catalogue);
    let recorded: u64 = stores
        .clickhouse()
        .client()
        .query("SELECT count() FROM schema_migrations")
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(recorded, u64::from(clickhouse_files));
}

#[tokio::test]
async fn two_concurrent_migrations_each_apply_once() {
    let env = TestEnv::new().await;
    let (a, b) = (env.state().await, env.state().await);
    let (ra, rb) = tokio::join!(migrate::run(a.stores()), migrate::run(b.stores()));
    let (ra, rb) = (
        ra.expect("instance A migrates"),
        rb.expect("instance B migrates"),
    );
    // One of them did the work; the other waited on the lock and found nothing to do.
    assert!(ra.is_noop() != rb.is_noop(), "A: {ra:?}, B: {rb:?}");

    let pg_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(a.stores().postgres().pool())
        .await
        .expect("count");
    let ch_rows: u64 = a
        .stores()
        .clickhouse()
        .client()
        .query("SELECT count() FROM schema_migrations")
        .fetch_one()
        .await
        .expect("count");
    let migration_files =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
            .expect("migrations dir")
            .count() as i64;
    assert_eq!(pg_rows, migration_files);
    let clickhouse_files = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/clickhouse"
    ))
    .expect("migrations dir")
    .count();
    assert_eq!(ch_rows as usize, clickhouse_files);
}

#[tokio::test]
async fn postgres_constraints_refuse_bad_rows() {
    let env = TestEnv::migrated().await;
    let state = env.state().await;
    let pool = state.stores().postgres().pool();
    let user = "INSERT INTO users (id, address, username) VALUES (gen_random_uuid(), $1, $2)";
    let ok_address = format!("0x{}", "a".repeat(40));
    sqlx::query(user)
        .bind(&ok_address)
        .bind("alice")
        .execute(pool)
        .await
        .expect("valid user");
    for (address, username, why) in [
        (ok_address.clone(), "bob", "duplicate address"),
        (
            format!("0x{}", "b".repeat(40)),
            "alice",
            "duplicate username",
        ),
        ("0xnothex".to_owned(), "carol", "malformed address"),
        (format!("0x{}", "c".repeat(40)), "x", "username too short"),
    ] {
        assert!(
            sqlx::query(user)
                .bind(&address)
                .bind(username)
                .execute(pool)
                .await
                .is_err(),
            "{why} accepted"
        );
    }
    sqlx::query("INSERT INTO assets (symbol, name, chain, decimals) VALUES ('BTC', 'Bitcoin', 'bitcoin', 8)")
        .execute(pool)
        .await
        .expect("valid asset");
    let holding = "INSERT INTO holdings (user_id, symbol, quantity, cost_basis) \
                   SELECT id, 'BTC', $1, 0 FROM users WHERE username = 'alice'";
    let negative = sqlx::query(holding)
        .bind(rust_decimal::Decimal::NEGATIVE_ONE)
        .execute(pool)
        .await;
    assert!(negative.is_err(), "negative holding accepted");

    // Trades land in the month partition ensure_trades_partition creates, and tx hashes are
    // unique across partitions.
    let at: chrono::DateTime<chrono::Utc> = "2026-03-15T10:00:00Z".parse().expect("time");
    sqlx::query("SELECT ensure_trades_partition($1)")
        .bind(at)
        .execute(pool)
        .await
        .expect("partition");
    let partition: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('trades_2026_03')::text")
            .fetch_one(pool)
            .await
            .expect("lookup");
    assert_eq!(partition.as_deref(), Some("trades_2026_03"));
    let hash = format!("0x{}", "d".repeat(64));
    let record = "INSERT INTO trade_tx_hashes (tx_hash, trade_id, executed_at) VALUES ($1, gen_random_uuid(), $2)";
    sqlx::query(record)
        .bind(&hash)
        .bind(at)
        .execute(pool)
        .await
        .expect("first hash");
    assert!(
        sqlx::query(record)
            .bind(&hash)
            .bind(at)
            .execute(pool)
            .await
            .is_err(),
        "duplicate tx hash accepted"
    );
}

#[tokio::test]
async fn seed_agrees_with_itself_across_stores() {
    let env = TestEnv::migrated().await;
    let shape = small_shape();
    let report = env.seed(&shape).await;
    let state = env.state().await;
    let stores = state.stores();
    let pool = stores.postgres().pool();

    // Every leaderboard score equals what Postgres computes from the trades.
    let expected: Vec<(String, f64, i64)> = sqlx::query_as(
        "SELECT user_id::text, sum(quantity * price)::float8, count(*) FROM trades GROUP BY user_id",
    )
    .fetch_all(pool)
    .await
    .expect("scores");
    assert_eq!(expected.len(), report.users, "every seeded user traded");
    let mut conn = stores.redis().conn();
    let volume: HashMap<String, f64> = conn
        .zrange_withscores(stores.redis().leaderboard_key("volume", ""), 0, -1)
        .await
        .expect("zrange");
    let trades: HashMap<String, f64> = conn
        .zrange_withscores(stores.redis().leaderboard_key("trades", ""), 0, -1)
        .await
        .expect("zrange");
    assert_eq!(volume.len(), expected.len());
    assert_eq!(trades.len(), expected.len());
    for (user, sum, count) in &expected {
        let got = volume[user];
        assert!(
            (got - sum).abs() <= sum.abs() * 1e-12,
            "volume of {user}: redis {got}, postgres {sum}"
        );
        assert_eq!(trades[user], *count as f64, "trade count of {user}");
    }

    // One tick per minute per asset over the days asked.
    let ticks: u64 = stores
        .clickhouse()
        .client()
        .query("SELECT count() FROM price_ticks")
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(ticks, u64::from(shape.assets * shape.days * 24 * 60));
    assert_eq!(report.ticks, ticks);

    // The latest price in Redis is the last tick in ClickHouse.
    let last: Vec<(String, f64)> = stores
        .clickhouse()
        .client()
        .query("SELECT symbol, argMax(price, ts) FROM price_ticks GROUP BY symbol ORDER BY symbol")
        .fetch_all()
        .await
        .expect("last ticks");
    assert_eq!(last.len(), shape.assets as usize);
    for (symbol, price) in last {
        let raw: String = conn
            .get(stores.redis().price_key(&symbol))
            .await
            .expect("price key");
        let stored: meridian::store::redis::LatestPrice =
            serde_json::from_str(&raw).expect("price JSON");
        assert_eq!(stored.price, price, "latest price of {symbol}");
    }

    // Holdings are the net of each user's trades, and trades mirror into ClickHouse.
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM holdings h FULL JOIN ( \
           SELECT user_id, symbol, sum(CASE side WHEN 'buy' THEN quantity ELSE -quantity END) AS net \
           FROM trades GROUP BY user_id, symbol HAVING sum(CASE side WHEN 'buy' THEN quantity ELSE -quantity END) > 0 \
         ) t USING (user_id, symbol) WHERE h.quantity IS DISTINCT FROM t.net",
    )
    .fetch_one(pool)
    .await
    .expect("holdings check");
    assert_eq!(mismatched, 0);
    let pg_trades: i64 = sqlx::query_scalar("SELECT count(*) FROM trades")
        .fetch_one(pool)
        .await
        .expect("count");
    let ch_trades: u64 = stores
        .clickhouse()
        .client()
        .query("SELECT count() FROM trade_events")
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(ch_trades as i64, pg_trades);

    // A profile per user and metadata per asset in MongoDB.
    let db = stores.mongo().database();
    let profiles = db
        .collection::<mongodb::bson::Document>("profiles")
        .count_documents(mongodb::bson::doc! {})
        .await;
    assert_eq!(profiles.expect("count"), u64::from(shape.users));
    let metadata = db
        .collection::<mongodb::bson::Document>("asset_metadata")
        .count_documents(mongodb::bson::doc! {})
        .await;
    assert_eq!(metadata.expect("count"), u64::from(shape.assets));
}

#[tokio::test]
async fn the_same_seed_gives_the_same_dataset() {
    let (a, b) = tokio::join!(TestEnv::migrated(), TestEnv::migrated());
    let shape = small_shape();
    tokio::join!(a.seed(&shape), b.seed(&shape));
    let fingerprint = "SELECT md5(string_agg(tx_hash || side || quantity::text || price::text, ',' ORDER BY tx_hash)) FROM trades";
    let (sa, sb) = (a.state().await, b.state().await);
    let fa: String = sqlx::query_scalar(fingerprint)
        .fetch_one(sa.stores().postgres().pool())
        .await
        .expect("a");
    let fb: String = sqlx::query_scalar(fingerprint)
        .fetch_one(sb.stores().postgres().pool())
        .await
        .expect("b");
    assert_eq!(fa, fb);

    // Seeding again replaces the data rather than adding to it.
    let again = a.seed(&small_shape()).await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM trades")
        .fetch_one(sa.stores().postgres().pool())
        .await
        .expect("count");
    assert_eq!(count as usize, again.trades);
}

#[tokio::test]
async fn readyz_reports_every_store_up() {
    let env = TestEnv::migrated().await;
    let server = env.spawn().await;
    let response = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["status"], "ready");
    for store in StoreKind::ALL {
        assert_eq!(
            body["stores"][store.as_str()]["status"],
            "up",
            "{store}: {body}"
        );
        assert!(body["stores"][store.as_str()]["latencyMs"]
            .as_f64()
            .is_some());
    }
    let health = server
        .graphql("{ health { status stores { name up } } }")
        .await;
    assert_eq!(health["data"]["health"]["status"], "OK", "{health}");
    assert_eq!(
        server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        200
    );
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn readyz_names_a_store_that_is_down_and_the_server_keeps_serving() {
    let env = TestEnv::migrated().await;
    for store in StoreKind::ALL {
        let mut config = env.config.clone();
        config.store_timeout_ms = 1000;
        let port = closed_port();
        match store {
            StoreKind::Postgres => {
                config.postgres_url = format!("postgres://postgres@127.0.0.1:{port}/x")
            }
            StoreKind::Redis => config.redis_url = format!("redis://127.0.0.1:{port}/"),
            StoreKind::ClickHouse => config.clickhouse_url = format!("http://127.0.0.1:{port}"),
            StoreKind::Mongo => config.mongo_url = format!("mongodb://127.0.0.1:{port}/x"),
            StoreKind::PostgresReplica => unreachable!("not one of StoreKind::ALL"),
        }
        let server = TestServer::start(meridian::AppState::new(config).await.expect("state")).await;

        let response = server
            .client
            .get(server.url("/readyz"))
            .send()
            .await
            .expect("readyz");
        // Without Postgres the instance is down; without another store, degraded.
        let (status, word) = match store {
            StoreKind::Postgres => (503, "down"),
            _ => (200, "degraded"),
        };
        assert_eq!(response.status(), status, "{store}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["status"], word, "{body}");
        assert_eq!(body["down"], serde_json::json!([store.as_str()]), "{body}");
        assert_eq!(body["stores"][store.as_str()]["status"], "down");
        assert!(body["stores"][store.as_str()]["error"].is_string());

        // Still serving: liveness, and a query that reports the degraded store.
        assert_eq!(
            server
                .client
                .get(server.url("/healthz"))
                .send()
                .await
                .expect("healthz")
                .status(),
            200
        );
        let health = server
            .graphql("{ health { status stores { name up } } }")
            .await;
        assert_eq!(health["data"]["health"]["status"], "DEGRADED", "{health}");
        let stores = health["data"]["health"]["stores"]
            .as_array()
            .expect("stores");
        for entry in stores {
            assert_eq!(entry["up"], entry["name"] != store.as_str(), "{entry}");
        }
        server.stop().await.expect("clean shutdown");
    }
}

#[tokio::test]
async fn graphiql_is_served_to_browsers() {
    let env = TestEnv::new().await;
    let server = env.spawn().await;
    let response = server
        .client
        .get(server.url("/graphql"))
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .send()
        .await
        .expect("GET /graphql");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.expect("body");
    assert!(page.to_lowercase().contains("graphiql"));
    assert!(
        page.contains("/graphql/ws"),
        "GraphiQL is wired to the websocket endpoint"
    );
    assert!(
        !page.contains("https://"),
        "GraphiQL loads nothing from the internet"
    );

    // Every script and stylesheet the page names is served by Meridian itself.
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
    ] {
        let path = format!("/graphiql/{asset}");
        assert!(page.contains(&path), "page does not load {path}");
        let response = server
            .client
            .get(server.url(&path))
            .send()
            .await
            .expect("asset");
        assert_eq!(response.status(), 200, "{path}");
        let kind = response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(kind.starts_with(if asset.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        }));
        assert!(
            response.bytes().await.expect("body").len() > 1000,
            "{path} is empty"
        );
    }
    let missing = server
        .client
        .get(server.url("/graphiql/nope.js"))
        .send()
        .await
        .expect("asset");
    assert_eq!(missing.status(), 404);

    // Without an HTML Accept header, GET /graphql is GraphQL over HTTP.
    let json: Value = server
        .client
        .get(server.url("/graphql?query=%7B__typename%7D"))
        .header("accept", "application/graphql-response+json")
        .send()
        .await
        .expect("GET query")
        .json()
        .await
        .expect("JSON");
    assert_eq!(json["data"]["__typename"], "Query");
}

#[tokio::test]
async fn metrics_count_store_round_trips() {
    let env = TestEnv::new().await;
    let server = env.spawn().await;
    server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    let text = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    for store in ["postgres", "clickhouse", "redis", "mongodb"] {
        let series = format!("meridian_store_requests_total{{op=\"ping\",store=\"{store}\"}} 1");
        assert!(text.contains(&series), "missing {series} in\n{text}");
        assert!(text.contains(&format!(
            "meridian_store_request_duration_seconds_bucket{{op=\"ping\",store=\"{store}\""
        )));
    }
    assert!(
        text.contains("meridian_http_requests_total{route=\"/readyz\",status=\"200\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let env = TestEnv::new().await;
    let server = env.spawn().await;
    let addr = server.addr;
    server.stop().await.expect("clean shutdown");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[test]
fn schema_graphql_is_in_sync() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql exists");
    assert!(
        committed == meridian::graphql::sdl(),
        "schema.graphql is out of date: run `cargo run -q -- schema > schema.graphql`"
    );
}

/// The `MERIDIAN_*` variables the binary reads, from its command-line definition.
fn variables_the_code_reads() -> std::collections::BTreeSet<String> {
    use clap::CommandFactory;
    meridian::cli::Cli::command()
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|name| name.to_string_lossy().into_owned())
        .collect()
}

fn variables_named_in(path: &str) -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .expect("file exists");
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("MERIDIAN_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn docker_compose_uses_only_variables_the_code_reads() {
    let known = variables_the_code_reads();
    let unknown: Vec<_> = variables_named_in("docker/compose.yaml")
        .difference(&known)
        .cloned()
        .collect();
    assert!(
        unknown.is_empty(),
        "docker/compose.yaml sets variables the code ignores: {unknown:?}"
    );
}

#[test]
fn deployment_files_pass_their_validators_and_set_only_variables_the_code_reads() {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = std::process::Command::new(format!("{root}/scripts/validate-deploy"))
        .output()
        .expect("scripts/validate-deploy runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}");
    for check in [
        "files valid for Kubernetes",
        "docker/compose.yaml: valid Compose file",
        "docker/haproxy.cfg: valid HAProxy configuration",
    ] {
        assert!(said.contains(check), "{check}: {said}");
    }
    let known = variables_the_code_reads();
    let manifests = std::fs::read_dir(format!("{root}/deploy/kubernetes")).expect("manifests");
    for entry in manifests {
        let path = entry.expect("entry").path();
        let relative = path.strip_prefix(root).expect("in the project");
        let unknown: Vec<_> = variables_named_in(&relative.to_string_lossy())
            .difference(&known)
            .cloned()
            .collect();
        assert!(
            unknown.is_empty(),
            "{relative:?} sets variables the code ignores: {unknown:?}"
        );
    }
}

#[test]
fn readme_documents_every_variable_the_code_reads() {
    let known = variables_the_code_reads();
    let documented = variables_named_in("README.md");
    let missing: Vec<_> = known.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "README.md does not document {missing:?}"
    );
    // The scripts' own variables (scripts/stack's, scripts/balancer's) and the log filter
    // are read outside the binary's flags.
    let scripts: std::collections::BTreeSet<String> = ["scripts/stack", "scripts/balancer"]
        .iter()
        .flat_map(|script| variables_named_in(script))
        .collect();
    let unknown: Vec<_> = documented
        .difference(&known)
        .filter(|n| !scripts.contains(*n) && *n != "MERIDIAN_LOG" && *n != "MERIDIAN_")
        .collect();
    assert!(
        unknown.is_empty(),
        "README.md names variables the code does not read: {unknown:?}"
    );
}
