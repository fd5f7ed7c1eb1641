//! The test harness: isolated store namespaces and an in-process Meridian on port 0.

use std::{collections::HashMap, net::SocketAddr, sync::OnceLock};

use meridian::{
    app,
    auth::{jwt::mint_hs256, Role},
    config::SecurityConfig,
    migrate, seed, AppState, Config,
};

/// The HS256 secret every test server accepts.
pub const TEST_JWT_SECRET: &str = "meridian-integration-tests-jwt-secret-0123456789";
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
        // The declared defaults, with what tests need different.
        let config = Config {
            http_addr: "127.0.0.1:0".parse().expect("valid address"),
            postgres_url: with_path(&admin_postgres_url, &name),
            postgres_pool_size: 8,
            redis_url: stack_var("MERIDIAN_REDIS_URL"),
            redis_prefix: format!("{name}:"),
            clickhouse_url: stack_var("MERIDIAN_CLICKHOUSE_URL"),
            clickhouse_database: name.clone(),
            mongo_url: with_path(&stack_var("MERIDIAN_MONGO_URL"), &name),
            cursor_secret: Some("test-cursor-secret".into()),
            // Fast retries and polls, so that tests about the relay finish quickly.
            relay_poll_ms: 100,
            relay_retry_base_ms: 50,
            relay_retry_max_ms: 500,
            // The snapshot job's tests turn it on.
            snapshot_every_secs: 0,
            ingest_max_bytes: 64 * 1024 * 1024,
            // Tests open many subscribers from one address; those about it set it lower.
            ws_max_client_operations: 100_000,
            security: SecurityConfig {
                jwt_secret: Some(TEST_JWT_SECRET.into()),
                // Tests that need limits set them; the rest must not trip them.
                rate_limit_principal: 0,
                rate_limit_ip: 0,
                ..SecurityConfig::default()
            },
            ..Config::default()
        };
        TestEnv {
            config,
            namespace: Namespace {
                name,
                admin_postgres_url,
            },
        }
    }

    /// A fresh namespace whose configuration `edit` changes (e.g. a private store).
    pub async fn new_with(edit: impl FnOnce(&mut Config)) -> TestEnv {
        let mut env = TestEnv::new().await;
        edit(&mut env.config);
        env
    }

    /// A fresh namespace with every migration applied.
    pub async fn migrated() -> TestEnv {
        TestEnv::migrated_with(|_| {}).await
    }

    /// A migrated namespace whose configuration `edit` changes first.
    pub async fn migrated_with(edit: impl FnOnce(&mut Config)) -> TestEnv {
        let env = TestEnv::new_with(edit).await;
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
        let state = self.state().await;
        seed::run(
            state.stores(),
            shape,
            &state.relay_settings(),
            &seed::Progress::quiet(),
        )
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
        platforms: seed::Platforms::TRADING,
    }
}

/// The small dataset of `platforms`, ending ten minutes ago (for what reads "the last
/// day" or "the last 7 days").
pub fn recent_shape(platforms: seed::Platforms) -> seed::Shape {
    seed::Shape {
        end: chrono::Utc::now() - chrono::Duration::minutes(10),
        platforms,
        ..small_shape()
    }
}

/// The codes of a response's errors.
/// The (code, field) of each error of a response.
pub fn refusals(response: &serde_json::Value) -> Vec<(String, String)> {
    response["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
                    (
                        text(&e["extensions"]["code"]),
                        text(&e["extensions"]["field"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

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
                    let _ = stores.redis().reset_demo_data().await;
                    let _ = stores.mongo().database().drop().await;
                    let _ = stores
                        .clickhouse()
                        .client()
                        .query(&format!("DROP DATABASE IF EXISTS `{}`", ns.name))
                        .execute()
                        .await;
                    stores.postgres().pool().close().await;
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
    /// Sends the operator's token with every request.
    pub client: reqwest::Client,
    /// Sends no credentials.
    pub anonymous: reqwest::Client,
    pub state: AppState,
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
        // The default client is an operator (admin and service); tests about who may
        // do what use `anonymous` or a user token.
        let client = client_as(&token_for(
            &state,
            "operator",
            &[Role::Admin, Role::Service],
        ));
        let task = tokio::spawn(app::run(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            client,
            anonymous: reqwest::Client::new(),
            state,
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

    /// POSTs a query with `token` as the bearer (or none); returns status and JSON.
    pub async fn graphql_as(
        &self,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .anonymous
            .post(self.url("/graphql"))
            .json(&serde_json::json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON response"))
    }

    /// A bearer token for `subject` with `roles`, accepted by this server.
    pub fn token(&self, subject: &str, roles: &[Role]) -> String {
        token_for(&self.state, subject, roles)
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

/// A client that sends `token` as its bearer with every request.
pub fn client_as(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client builds")
}

/// A loopback port that accepts connections and never answers; the task holds them.
pub async fn silent_listener() -> (u16, JoinHandle<()>) {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    (port, hold)
}

/// A bearer token for `subject` with `roles`, valid for an hour.
pub fn token_for(state: &AppState, subject: &str, roles: &[Role]) -> String {
    mint_hs256(&state.config().security, subject, roles, 3600).expect("token minted")
}

/// A user's bearer token.
pub fn user_token(state: &AppState, user_id: &str) -> String {
    token_for(state, user_id, &[Role::User])
}

/// Runs `meridian serve` as its own process with `config`.
pub fn spawn_binary(config: &Config) -> Spawned {
    spawn_binary_with(config, &[], std::process::Stdio::null())
}

/// Runs `meridian serve` on a port of its own with `config` (its address replaced), `extra`
/// variables and its log to `stderr`; returns once it answers `/healthz`.
pub async fn serve_listening(
    config: &Config,
    extra: &[(&str, String)],
    stderr: std::process::Stdio,
) -> (Spawned, u16) {
    let port = closed_port();
    let mut config = config.clone();
    config.http_addr = format!("127.0.0.1:{port}").parse().expect("address");
    let child = spawn_binary_with(&config, extra, stderr);
    let client = reqwest::Client::new();
    wait_until("meridian to listen", 60, || async {
        client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok()
    })
    .await;
    (child, port)
}

/// Runs `meridian serve` with `config`, `extra` variables, and its log to `stderr`.
pub fn spawn_binary_with(
    config: &Config,
    extra: &[(&str, String)],
    stderr: std::process::Stdio,
) -> Spawned {
    Spawned(
        std::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
            .arg("serve")
            .envs(config_env(config))
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("meridian starts"),
    )
}

/// A `meridian` process that is killed (SIGKILL) and reaped when dropped, so that a test
/// that fails half-way leaves no server behind.
pub struct Spawned(std::process::Child);

impl Spawned {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Sends SIGTERM (the orderly stop a supervisor sends).
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// The exit status, once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().expect("try_wait")
    }

    /// SIGKILL, then wait for it to be gone.
    pub fn kill(&mut self) -> std::io::Result<()> {
        self.0.kill()?;
        self.0.wait().map(drop)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Polls `condition` every 20 ms until it holds; panics naming `what` after `secs`.
pub async fn wait_until<F, Fut>(what: &str, secs: u64, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Undelivered outbox rows for `destination`.
pub async fn pending(state: &AppState, destination: &str) -> i64 {
    state
        .stores()
        .postgres()
        .outbox_backlog()
        .await
        .expect("backlog")
        .iter()
        .find(|b| b.destination == destination)
        .map_or(0, |b| b.pending)
}

/// A store server of the test's own (ClickHouse or Redis), run by `scripts/stack` in a
/// directory and on a port of its own, so that stopping it disturbs no other test.
pub struct PrivateStore {
    store: &'static str,
    dir: std::path::PathBuf,
    pub port: u16,
    second_port: u16,
    /// A replica's primary (`postgres-replica` only).
    primary_port: Option<u16>,
}

impl PrivateStore {
    pub fn start(store: &'static str) -> PrivateStore {
        let dir = std::env::temp_dir().join(format!(
            "meridian-{store}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        // A Redis Cluster takes twelve consecutive ports (six nodes, six bus ports), a
        // ClickHouse cluster its shards' HTTP ports and, ten above, their native ports.
        let port = match store {
            "redis-cluster" | "clickhouse-cluster" => free_ports(12),
            _ => closed_port(),
        };
        let private = PrivateStore {
            store,
            dir,
            port,
            second_port: closed_port(),
            primary_port: None,
        };
        private.up();
        private
    }

    /// A streaming hot standby of a private PostgreSQL (`scripts/stack up
    /// postgres-replica`), in a directory and on a port of its own.
    pub fn replica_of(primary: &PrivateStore) -> PrivateStore {
        assert_eq!(
            primary.store, "postgres",
            "only PostgreSQL has replicas here"
        );
        let private = PrivateStore {
            store: "postgres-replica",
            dir: std::env::temp_dir().join(format!(
                "meridian-postgres-replica-{}",
                uuid::Uuid::new_v4().simple()
            )),
            port: closed_port(),
            second_port: closed_port(),
            primary_port: Some(primary.port),
        };
        private.up();
        private
    }

    fn stack(&self, command: &str) {
        let port_var = format!(
            "MERIDIAN_STACK_{}_PORT",
            self.store.to_uppercase().replace('-', "_")
        );
        let mut stack =
            std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/stack"));
        if let Some(primary) = self.primary_port {
            stack.env("MERIDIAN_STACK_POSTGRES_PORT", primary.to_string());
        }
        let output = stack
            .args([command, self.store])
            .env("MERIDIAN_STACK_DIR", &self.dir)
            .env(port_var, self.port.to_string())
            // ClickHouse's native port, also one known to be free (not HTTP + 877,
            // which may be some other process's ephemeral port).
            .env(
                "MERIDIAN_STACK_CLICKHOUSE_TCP_PORT",
                self.second_port.to_string(),
            )
            .output()
            .expect("scripts/stack runs");
        assert!(
            output.status.success(),
            "scripts/stack {command} {} failed:\n{}{}",
            self.store,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn up(&self) {
        self.stack("up");
    }

    pub fn down(&self) {
        self.stack("down");
    }

    /// Crashes the store: SIGKILL to its main process and everything it started, at once,
    /// with no chance to flush anything (`up` restarts it, with crash recovery). The
    /// stores run as session leaders (`pg_ctl` starts PostgreSQL so), so their process
    /// group is all of them, including a backend forked a moment ago.
    pub async fn crash(&self) {
        let pidfile = self.dir.join("pids").join(format!("{}.pid", self.store));
        let pid: u32 = std::fs::read_to_string(&pidfile)
            .expect("the store's pid file")
            .trim()
            .parse()
            .expect("a pid");
        // The fields after the parenthesised command: state, parent, process group.
        let fields = |p: &str| -> Option<Vec<String>> {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            Some(
                stat.rsplit(')')
                    .next()?
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
            )
        };
        let group = fields(&pid.to_string()).expect("the store runs")[2].clone();
        assert_eq!(group, pid.to_string(), "the store leads its process group");
        let status = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -9 -{pid}");
        // Gone, not merely zombies: a restarted PostgreSQL refuses to start while a
        // process of the old one still exists.
        let members = move || {
            std::fs::read_dir("/proc")
                .map(|dir| {
                    dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                        .filter(|p| fields(p).is_some_and(|f| f.get(2) == Some(&group)))
                        .count()
                })
                .unwrap_or(0)
        };
        wait_until("the store's processes to be gone", 10, || {
            let left = members();
            async move { left == 0 }
        })
        .await;
    }

    /// The URL Meridian reaches it at.
    pub fn url(&self) -> String {
        match self.store {
            "clickhouse" => format!("http://127.0.0.1:{}", self.port),
            "mongo" => format!("mongodb://127.0.0.1:{}/meridian", self.port),
            "postgres" | "postgres-replica" => {
                format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
            }
            "clickhouse-cluster" | "clickhouse-current" => {
                format!("http://127.0.0.1:{}", self.port)
            }
            "redis-cluster" => (self.port..self.port + 6)
                .map(|p| format!("redis://127.0.0.1:{p}"))
                .collect::<Vec<_>>()
                .join(","),
            _ => format!("redis://127.0.0.1:{}/", self.port),
        }
    }
}

impl PrivateStore {
    /// Every shard's HTTP URL of a private ClickHouse cluster (comma-separated).
    pub fn shard_urls(&self) -> String {
        format!(
            "http://127.0.0.1:{},http://127.0.0.1:{}",
            self.port,
            self.port + 1
        )
    }

    /// The node ports of a private Redis Cluster.
    pub fn cluster_ports(&self) -> std::ops::Range<u16> {
        self.port..self.port + 6
    }

    /// SIGKILLs one node of a private Redis Cluster.
    pub fn kill_cluster_node(&self, port: u16) {
        let pidfile = self
            .dir
            .join(format!("redis-cluster/node-{port}/redis.pid"));
        let pid = std::fs::read_to_string(&pidfile).expect("the node's pid file");
        let status = std::process::Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -9 {pid}");
    }

    /// Starts one node of a private Redis Cluster again (it rejoins from its nodes.conf).
    pub fn restart_cluster_node(&self, port: u16) {
        let start = self.dir.join(format!("redis-cluster/node-{port}/start"));
        let status = std::process::Command::new("sh")
            .arg(start)
            .status()
            .expect("sh runs");
        assert!(status.success(), "node {port} restarts");
    }
}

/// `member`'s score on the all-time volume board, read straight from Redis (0 if absent).
pub async fn volume_score(state: &AppState, member: &str) -> f64 {
    let mut conn = state.stores().redis().conn();
    redis::cmd("ZSCORE")
        .arg(state.stores().redis().leaderboard_key("volume", ""))
        .arg(member)
        .query_async::<Option<f64>>(&mut conn)
        .await
        .expect("ZSCORE")
        .unwrap_or(0.0)
}

/// The volume-board scores of `members`, in order.
pub async fn scores(state: &AppState, members: &[String]) -> Vec<f64> {
    let mut out = Vec::with_capacity(members.len());
    for member in members {
        out.push(volume_score(state, member).await);
    }
    out
}

/// The first of `n` consecutive loopback ports with nothing listening on them.
pub fn free_ports(n: u16) -> u16 {
    loop {
        let base = closed_port();
        if base.checked_add(n).is_none() {
            continue;
        }
        let free = (base..base + n).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            return base;
        }
    }
}

impl Drop for PrivateStore {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.down());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The environment that makes a `meridian` process use `config`.
pub fn config_env(config: &Config) -> Vec<(&'static str, String)> {
    vec![
        ("MERIDIAN_HTTP_ADDR", config.http_addr.to_string()),
        ("MERIDIAN_POSTGRES_URL", config.postgres_url.clone()),
        ("MERIDIAN_REDIS_URL", config.redis_url.clone()),
        ("MERIDIAN_REDIS_PREFIX", config.redis_prefix.clone()),
        ("MERIDIAN_CLICKHOUSE_URL", config.clickhouse_url.clone()),
        (
            "MERIDIAN_CLICKHOUSE_DATABASE",
            config.clickhouse_database.clone(),
        ),
        ("MERIDIAN_MONGO_URL", config.mongo_url.clone()),
        (
            "MERIDIAN_POSTGRES_READ_URL",
            config.postgres_read_url.clone().unwrap_or_default(),
        ),
        (
            "MERIDIAN_STORE_TIMEOUT_MS",
            config.store_timeout_ms.to_string(),
        ),
        ("MERIDIAN_RELAY_BATCH", config.relay_batch.to_string()),
        ("MERIDIAN_RELAY_POLL_MS", config.relay_poll_ms.to_string()),
        (
            "MERIDIAN_SNAPSHOT_EVERY_SECS",
            config.snapshot_every_secs.to_string(),
        ),
        (
            "MERIDIAN_RELAY_RETRY_BASE_MS",
            config.relay_retry_base_ms.to_string(),
        ),
        (
            "MERIDIAN_RELAY_RETRY_MAX_MS",
            config.relay_retry_max_ms.to_string(),
        ),
        (
            "MERIDIAN_RELAY_MAX_ATTEMPTS",
            config.relay_max_attempts.to_string(),
        ),
        ("MERIDIAN_LOG", "warn".to_owned()),
        (
            "MERIDIAN_JWT_SECRET",
            config.security.jwt_secret.clone().unwrap_or_default(),
        ),
        (
            "MERIDIAN_RATE_LIMIT_PRINCIPAL",
            config.security.rate_limit_principal.to_string(),
        ),
        (
            "MERIDIAN_RATE_LIMIT_IP",
            config.security.rate_limit_ip.to_string(),
        ),
        (
            "MERIDIAN_RATE_LIMIT_WINDOW_SECS",
            config.security.rate_limit_window_secs.to_string(),
        ),
        (
            "MERIDIAN_TRUSTED_PROXIES",
            config.security.trusted_proxies.to_string(),
        ),
        (
            "MERIDIAN_SHUTDOWN_DRAIN_MS",
            config.shutdown_drain_ms.to_string(),
        ),
        (
            "MERIDIAN_HTTP_HEADER_TIMEOUT_MS",
            config.http_header_timeout_ms.to_string(),
        ),
        (
            "MERIDIAN_HTTP_BODY_TIMEOUT_MS",
            config.http_body_timeout_ms.to_string(),
        ),
        (
            "MERIDIAN_WS_MAX_OPERATIONS",
            config.ws_max_operations.to_string(),
        ),
        (
            "MERIDIAN_WS_MAX_CLIENT_OPERATIONS",
            config.ws_max_client_operations.to_string(),
        ),
        (
            "MERIDIAN_REQUEST_TIMEOUT_MS",
            config.security.request_timeout_ms.to_string(),
        ),
    ]
}

/// `query { ...F{levels} }` where each fragment spreads the one below twice: a document
/// of a few hundred bytes that expands to 2^levels selections of `leaf`.
pub fn fragment_bomb(levels: usize, leaf: &str) -> String {
    let mut doc = format!("query {{ ...F{levels} }} fragment F0 on Query {{ {leaf} }} ");
    for i in 1..=levels {
        doc += &format!("fragment F{i} on Query {{ ...F{} ...F{} }} ", i - 1, i - 1);
    }
    doc
}

/// Runs `node script args...` in tests/js and returns its last stdout line as JSON.
pub async fn node(script: &'static str, args: Vec<String>) -> (bool, serde_json::Value) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .args(args)
            .current_dir(dir)
            .output()
    })
    .await
    .expect("join")
    .expect("node runs (scripts/test installs tests/js)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let value = serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "{script} printed no JSON line:\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), value)
}

/// Waits until the relay has delivered every outbox row to every destination.
pub async fn all_delivered(state: &AppState) {
    wait_until("the outbox to drain", 60, || async {
        pending(state, "clickhouse").await
            + pending(state, "redis").await
            + pending(state, "pubsub").await
            == 0
    })
    .await;
}

/// Waits until every channel has a subscriber (this instance's fan-out listens on it):
/// pub/sub keeps nothing for late listeners.
pub async fn listened(state: &AppState, channels: Vec<String>) {
    wait_until("the subscriptions to listen", 10, || {
        let channels = channels.clone();
        let mut conn = state.stores().redis().conn();
        async move {
            let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channels)
                .query_async(&mut conn)
                .await
                .expect("numsub");
            counts.iter().all(|(_, n)| *n > 0)
        }
    })
    .await;
}

/// Fails with how to install Chromium when the browser tests cannot find it.
pub fn require_chromium() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists()
            || std::env::var_os("CHROMIUM").is_some(),
        "Chromium is missing: scripts/test installs Debian's chromium package"
    );
}
