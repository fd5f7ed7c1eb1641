//! The test harness: isolated store namespaces and an in-process Meridian on port 0.

use std::{collections::HashMap, net::SocketAddr, sync::OnceLock};

use meridian::{app, migrate, seed, AppState, Config};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// The stack's addresses: the environment's `MERIDIAN_*` variables, or `.stack/env`.
fn stack_env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut vars = HashMap::new();
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/.stack/env");
        if let Ok(text) = std::fs::read_to_string(file) {
            for line in text.lines() {
                if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                    vars.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        for (k, v) in std::env::vars() {
            if k.starts_with("MERIDIAN_") {
                vars.insert(k, v);
            }
        }
        vars
    })
}

fn stack_var(name: &str) -> String {
    stack_env().get(name).cloned().unwrap_or_else(|| {
        panic!("{name} is not set: run `scripts/stack up` (it writes .stack/env)")
    })
}

/// Replaces the path (database) of a URL.
fn with_path(url: &str, path: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let base = match url[scheme_end..].find('/') {
        Some(i) => &url[..scheme_end + i],
        None => url,
    };
    format!("{base}/{path}")
}

/// Names of the isolated namespaces of one test.
#[derive(Clone)]
struct Namespace {
    name: String,
    admin_postgres_url: String,
}

/// One test's private slice of the stack, dropped (every store) when the test ends.
pub struct TestEnv {
    pub config: Config,
    namespace: Namespace,
}

impl TestEnv {
    /// A fresh, empty namespace in every store (nothing migrated).
    pub async fn new() -> TestEnv {
        let name = format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let admin_postgres_url = stack_var("MERIDIAN_POSTGRES_URL");
        let admin = sqlx::PgPool::connect(&admin_postgres_url)
            .await
            .expect("stack Postgres reachable");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&admin)
            .await
            .expect("create database");
        admin.close().await;
        let config = Config {
            http_addr: "127.0.0.1:0".parse().expect("valid address"),
            postgres_url: with_path(&admin_postgres_url, &name),
            postgres_pool_size: 8,
            redis_url: stack_var("MERIDIAN_REDIS_URL"),
            redis_prefix: format!("{name}:"),
            clickhouse_url: stack_var("MERIDIAN_CLICKHOUSE_URL"),
            clickhouse_database: name.clone(),
            clickhouse_user: "default".into(),
            clickhouse_password: String::new(),
            mongo_url: with_path(&stack_var("MERIDIAN_MONGO_URL"), &name),
            store_timeout_ms: 2000,
            max_page_size: 100,
            max_series_points: 1500,
            stats_cache_ttl_secs: 30,
            cursor_secret: Some("test-cursor-secret".into()),
            relay: true,
            relay_batch: 500,
            relay_poll_ms: 100,
            relay_retry_base_ms: 50,
            relay_retry_max_ms: 500,
            ingest_max_bytes: 64 * 1024 * 1024,
            log_format: meridian::telemetry::LogFormat::Text,
        };
        TestEnv {
            config,
            namespace: Namespace {
                name,
                admin_postgres_url,
            },
        }
    }

    /// A fresh namespace with every migration applied.
    pub async fn migrated() -> TestEnv {
        let env = TestEnv::new().await;
        migrate::run(env.state().await.stores())
            .await
            .expect("migrations apply");
        env
    }

    /// Application state over this namespace.
    pub async fn state(&self) -> AppState {
        AppState::new(self.config.clone())
            .await
            .expect("state builds")
    }

    /// Seeds a small dataset ending at a fixed time.
    pub async fn seed(&self, shape: &seed::Shape) -> seed::SeedReport {
        seed::run(self.state().await.stores(), shape, &seed::Progress::quiet())
            .await
            .expect("seed runs")
    }

    /// Starts Meridian on an ephemeral port.
    pub async fn spawn(&self) -> TestServer {
        TestServer::start(self.state().await).await
    }
}

/// A small dataset with a fixed end time, so runs are comparable.
pub fn small_shape() -> seed::Shape {
    seed::Shape {
        users: 40,
        assets: 6,
        days: 1,
        seed: 7,
        end: "2026-11-01T12:00:00Z".parse().expect("valid time"),
    }
}

/// The codes of a response's errors.
pub fn error_codes(response: &serde_json::Value) -> Vec<String> {
    response["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    e["extensions"]["code"]
                        .as_str()
                        .unwrap_or("<none>")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let ns = self.namespace.clone();
        let config = self.config.clone();
        // Async clean-up on a thread of its own: Drop cannot await, and the test's runtime
        // may already be shutting down.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let Ok(runtime) = runtime else { return };
            runtime.block_on(async move {
                if let Ok(state) = AppState::new(config).await {
                    let stores = state.stores();
                    let _ = stores.redis.reset_demo_data().await;
                    let _ = stores.mongo.database().drop().await;
                    let _ = stores
                        .clickhouse
                        .client()
                        .query(&format!("DROP DATABASE IF EXISTS `{}`", ns.name))
                        .execute()
                        .await;
                    stores.postgres.pool().close().await;
                }
                if let Ok(admin) = sqlx::PgPool::connect(&ns.admin_postgres_url).await {
                    let _ = sqlx::query(&format!(
                        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                        ns.name
                    ))
                    .execute(&admin)
                    .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// An in-process Meridian serving on 127.0.0.1 with an ephemeral port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start(state: AppState) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("bound address");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app::run(listener, state, async move {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs a GraphQL query and returns the JSON response.
    pub async fn graphql(&self, query: &str) -> serde_json::Value {
        self.client
            .post(self.url("/graphql"))
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("JSON response")
    }

    /// POSTs a GraphQL query with variables and extra headers.
    pub async fn graphql_with(
        &self,
        query: &str,
        variables: serde_json::Value,
        headers: &[(&str, &str)],
    ) -> serde_json::Value {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .json(&serde_json::json!({ "query": query, "variables": variables }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("JSON response")
    }

    /// POSTs a query with `x-meridian-trace: 1`; returns the response and its round trips.
    pub async fn traced(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> (serde_json::Value, serde_json::Value) {
        let response = self
            .graphql_with(query, variables, &[("x-meridian-trace", "1")])
            .await;
        let trips = response["extensions"]["meridian"]["roundTrips"].clone();
        assert!(trips.is_object(), "no roundTrips in {response}");
        (response, trips)
    }

    /// Sends the shutdown signal and waits for the server to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}
