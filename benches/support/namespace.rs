//! Shared by the benchmarks: the local stack's addresses, and a namespace of the
//! benchmark's own in every store (a Postgres database, ClickHouse database, Mongo database
//! and Redis prefix), dropped at the end.

use std::collections::HashMap;

use meridian::{AppState, Config};

/// A number from the environment, or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The stack's addresses: `MERIDIAN_*` variables, else `.stack/env`.
fn stack_vars() -> HashMap<String, String> {
    let mut vars = HashMap::new();
    if let Ok(text) = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.stack/env")) {
        for line in text.lines() {
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                vars.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    vars.extend(std::env::vars().filter(|(k, _)| k.starts_with("MERIDIAN_")));
    vars
}

fn with_path(url: &str, path: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let base = url[scheme_end..]
        .find('/')
        .map_or(url, |i| &url[..scheme_end + i]);
    format!("{base}/{path}")
}

pub struct Namespace {
    pub config: Config,
    name: String,
    admin: sqlx::PgPool,
}

/// The HS256 secret of benchmark servers (loopback only).
pub const BENCH_JWT_SECRET: &str = "meridian-benchmarks-jwt-secret-0123456789abcdef";

/// (Used by the fanout and compare benches, not by writes.)
#[allow(dead_code)]
/// The environment of a `meridian serve` process over this configuration (no relay, no
/// rate limits, no cap on one client's websocket operations, errors-only logs).
pub fn server_env(config: &Config) -> Vec<(&'static str, String)> {
    vec![
        ("MERIDIAN_HTTP_ADDR", config.http_addr.to_string()),
        ("MERIDIAN_POSTGRES_URL", config.postgres_url.clone()),
        (
            "MERIDIAN_POSTGRES_POOL_SIZE",
            config.postgres_pool_size.to_string(),
        ),
        ("MERIDIAN_REDIS_URL", config.redis_url.clone()),
        ("MERIDIAN_REDIS_PREFIX", config.redis_prefix.clone()),
        ("MERIDIAN_CLICKHOUSE_URL", config.clickhouse_url.clone()),
        (
            "MERIDIAN_CLICKHOUSE_DATABASE",
            config.clickhouse_database.clone(),
        ),
        ("MERIDIAN_MONGO_URL", config.mongo_url.clone()),
        ("MERIDIAN_RELAY", "false".into()),
        ("MERIDIAN_JWT_SECRET", BENCH_JWT_SECRET.to_owned()),
        ("MERIDIAN_RATE_LIMIT_PRINCIPAL", "0".into()),
        ("MERIDIAN_RATE_LIMIT_IP", "0".into()),
        (
            "MERIDIAN_WS_MAX_CLIENT_OPERATIONS",
            config.ws_max_client_operations.to_string(),
        ),
        ("MERIDIAN_LOG", "error".into()),
    ]
}

/// `Bearer <token>` for an operator (admin and service) of a server with `config`.
pub fn operator_bearer(config: &Config) -> anyhow::Result<String> {
    use meridian::auth::{jwt::mint_hs256, Role};
    let token = mint_hs256(
        &config.security,
        "bench-operator",
        &[Role::Admin, Role::Service],
        86_400,
    )?;
    Ok(format!("Bearer {token}"))
}

impl Namespace {
    /// Creates the namespace; `edit` adjusts the configuration (relay, limits, address).
    pub async fn create(edit: impl FnOnce(&mut Config)) -> anyhow::Result<Namespace> {
        let vars = stack_vars();
        let var = |k: &str| {
            vars.get(k)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("{k} is not set: run scripts/stack up"))
        };
        let name = format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let admin_url = var("MERIDIAN_POSTGRES_URL")?;
        let admin = sqlx::PgPool::connect(&admin_url).await?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&admin)
            .await?;
        // The declared defaults, with what the benchmarks need different.
        let mut config = Config {
            http_addr: "127.0.0.1:0".parse()?,
            postgres_url: with_path(&admin_url, &name),
            redis_url: var("MERIDIAN_REDIS_URL")?,
            redis_prefix: format!("{name}:"),
            clickhouse_url: var("MERIDIAN_CLICKHOUSE_URL")?,
            clickhouse_database: name.clone(),
            mongo_url: with_path(&var("MERIDIAN_MONGO_URL")?, &name),
            store_timeout_ms: 10_000,
            relay: false,
            relay_poll_ms: 50,
            ingest_max_bytes: 1 << 30,
            ws_init_timeout_ms: 30_000,
            // The fan-out bench opens tens of thousands of subscribers from one address.
            ws_max_client_operations: usize::MAX,
            security: meridian::config::SecurityConfig {
                jwt_secret: Some(BENCH_JWT_SECRET.into()),
                // Benchmarks measure the data path; rate limits would refuse the load.
                rate_limit_principal: 0,
                rate_limit_ip: 0,
                ..Default::default()
            },
            ..Default::default()
        };
        edit(&mut config);
        Ok(Namespace {
            config,
            name,
            admin,
        })
    }

    /// Drops everything the namespace holds, in every store.
    pub async fn drop_all(self) -> anyhow::Result<()> {
        let state = AppState::new(self.config).await?;
        let _ = state.stores().redis().reset_demo_data().await;
        let _ = state.stores().mongo().database().drop().await;
        state
            .stores()
            .mongo()
            .database()
            .client()
            .clone()
            .shutdown()
            .await;
        let drop_ch = format!("DROP DATABASE IF EXISTS `{}`", self.name);
        let _ = state
            .stores()
            .clickhouse()
            .client()
            .query(&drop_ch)
            .execute()
            .await;
        state.stores().postgres().pool().close().await;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&self.admin)
        .await?;
        Ok(())
    }
}
