//! Configuration, read from `MERIDIAN_*` environment variables (or the matching flags).
//! The README's configuration table lists the same variables.

use std::{fmt, net::SocketAddr, time::Duration};

use crate::telemetry::LogFormat;

/// Everything Meridian reads from its environment.
#[derive(Clone, clap::Args)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "MERIDIAN_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// PostgreSQL connection URL (the database is part of the URL).
    #[arg(
        long,
        env = "MERIDIAN_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:55432/meridian",
        hide_env_values = true
    )]
    pub postgres_url: String,

    /// Maximum connections in the PostgreSQL pool.
    #[arg(long, env = "MERIDIAN_POSTGRES_POOL_SIZE", default_value_t = 16)]
    pub postgres_pool_size: u32,

    /// A streaming replica (hot standby) of that database. When set, queries read their
    /// pages and entities from it while it is up and has replayed the viewer's own recent
    /// writes; mutations, subscriptions, the outbox, the relay and the background jobs use
    /// the primary (see the README's "Running at scale").
    #[arg(long, env = "MERIDIAN_POSTGRES_READ_URL", hide_env_values = true)]
    pub postgres_read_url: Option<String>,

    /// Redis connection URL.
    #[arg(
        long,
        env = "MERIDIAN_REDIS_URL",
        default_value = "redis://127.0.0.1:56379/",
        hide_env_values = true
    )]
    pub redis_url: String,

    /// A Redis Cluster instead of one server: comma-separated seed nodes
    /// (`redis://host:port`, or `host:port`); any reachable subset of the cluster will do.
    /// When set, `MERIDIAN_REDIS_URL` is not used.
    #[arg(long, env = "MERIDIAN_REDIS_CLUSTER_NODES", hide_env_values = true)]
    pub redis_cluster_nodes: Option<String>,

    /// How many replicas must acknowledge the relay's Redis writes (boards, the event
    /// stream, latest proofs) before their outbox rows are settled, so that a master's
    /// failover loses none of them (`WAIT`); 0 does not wait. When fewer answer within
    /// the store timeout, the rows are retried (their markers keep them applied once).
    #[arg(long, env = "MERIDIAN_REDIS_WAIT_REPLICAS", default_value_t = 0)]
    pub redis_wait_replicas: u32,

    /// Prefix of every Redis key and channel Meridian uses, so that several deployments
    /// (or tests) can share one Redis.
    #[arg(long, env = "MERIDIAN_REDIS_PREFIX", default_value = "meridian:")]
    pub redis_prefix: String,

    /// ClickHouse HTTP URL.
    #[arg(
        long,
        env = "MERIDIAN_CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:58123",
        hide_env_values = true
    )]
    pub clickhouse_url: String,

    /// ClickHouse database (created by `meridian migrate`).
    #[arg(long, env = "MERIDIAN_CLICKHOUSE_DATABASE", default_value = "meridian")]
    pub clickhouse_database: String,

    /// A sharded ClickHouse: the cluster's name in the servers' `remote_servers`. `migrate`
    /// then creates each table on every shard (as `<table>_local`) and a Distributed table
    /// over them under the table's own name; reads and writes go through the Distributed
    /// tables on the server of `MERIDIAN_CLICKHOUSE_URL`. Needs
    /// `MERIDIAN_CLICKHOUSE_SHARD_URLS`.
    #[arg(long, env = "MERIDIAN_CLICKHOUSE_CLUSTER")]
    pub clickhouse_cluster: Option<String>,

    /// Every shard's HTTP URL, comma-separated (with `MERIDIAN_CLICKHOUSE_CLUSTER`): where
    /// `migrate`, the seed's reset and reconcile's repairs run their per-shard statements.
    #[arg(long, env = "MERIDIAN_CLICKHOUSE_SHARD_URLS", hide_env_values = true)]
    pub clickhouse_shard_urls: Option<String>,

    /// ClickHouse user.
    #[arg(long, env = "MERIDIAN_CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,

    /// ClickHouse password.
    #[arg(
        long,
        env = "MERIDIAN_CLICKHOUSE_PASSWORD",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub clickhouse_password: String,

    /// MongoDB connection URL; its path names the database.
    #[arg(
        long,
        env = "MERIDIAN_MONGO_URL",
        default_value = "mongodb://127.0.0.1:57017/meridian",
        hide_env_values = true
    )]
    pub mongo_url: String,

    /// Deadline for any single store call, in milliseconds.
    #[arg(long, env = "MERIDIAN_STORE_TIMEOUT_MS", default_value_t = 2000)]
    pub store_timeout_ms: u64,

    /// Largest page a connection (`first`) or a leaderboard (`top`) may ask for.
    #[arg(long, env = "MERIDIAN_MAX_PAGE_SIZE", default_value_t = 100)]
    pub max_page_size: u32,

    /// Most points a time series (candles, activity) may return.
    #[arg(long, env = "MERIDIAN_MAX_SERIES_POINTS", default_value_t = 1500)]
    pub max_series_points: u32,

    /// Seconds a cached `stats24h` entry lives in Redis (0: no cache, every request asks
    /// ClickHouse).
    #[arg(long, env = "MERIDIAN_STATS_CACHE_TTL_SECS", default_value_t = 30)]
    pub stats_cache_ttl_secs: u64,

    /// Key that signs pagination cursors. Instances behind one load balancer need the same
    /// key; when unset, each process picks a random one (cursors then do not survive a
    /// restart).
    #[arg(long, env = "MERIDIAN_CURSOR_SECRET", hide_env_values = true)]
    pub cursor_secret: Option<String>,

    /// Run the outbox relay inside `serve` (`meridian relay` runs it alone).
    #[arg(long, env = "MERIDIAN_RELAY", default_value_t = true, action = clap::ArgAction::Set)]
    pub relay: bool,

    /// Outbox rows the relay delivers per batch and destination.
    #[arg(long, env = "MERIDIAN_RELAY_BATCH", default_value_t = 500)]
    pub relay_batch: i64,

    /// How often the relay looks for due rows when no notification arrives, in ms.
    #[arg(long, env = "MERIDIAN_RELAY_POLL_MS", default_value_t = 500)]
    pub relay_poll_ms: u64,

    /// First retry delay of a failed delivery, in ms (doubling per attempt).
    #[arg(long, env = "MERIDIAN_RELAY_RETRY_BASE_MS", default_value_t = 250)]
    pub relay_retry_base_ms: u64,

    /// Longest retry delay of a failed delivery, in ms.
    #[arg(long, env = "MERIDIAN_RELAY_RETRY_MAX_MS", default_value_t = 30_000)]
    pub relay_retry_max_ms: u64,

    /// Times a store may refuse an outbox row before it is set aside as a dead letter.
    #[arg(long, env = "MERIDIAN_RELAY_MAX_ATTEMPTS", default_value_t = 10)]
    pub relay_max_attempts: u32,

    /// How often the instance that leads the snapshot job (one per deployment, elected
    /// through a PostgreSQL advisory lock) writes each user's portfolio value for the
    /// current UTC day, in seconds; 0 turns the job off in this process.
    #[arg(long, env = "MERIDIAN_SNAPSHOT_EVERY_SECS", default_value_t = 3_600)]
    pub snapshot_every_secs: u64,

    /// After SIGTERM, how long `/readyz` answers 503 `draining` while requests are still
    /// served, before the listener closes, in milliseconds. Behind a load balancer, set it
    /// above the time its health checks take to mark the instance down.
    #[arg(long, env = "MERIDIAN_SHUTDOWN_DRAIN_MS", default_value_t = 0)]
    pub shutdown_drain_ms: u64,

    /// Domain events kept in the Redis stream that subscribers resume from (`after:`); the
    /// cap is approximate (Redis trims whole nodes).
    #[arg(long, env = "MERIDIAN_EVENT_STREAM_LEN", default_value_t = 100_000)]
    pub event_stream_len: u64,

    /// Largest body `POST /ingest/prices` accepts, in bytes.
    #[arg(long, env = "MERIDIAN_INGEST_MAX_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub ingest_max_bytes: u64,

    /// How long a client may take to send a request's headers, in ms (then the
    /// connection is closed).
    #[arg(
        long,
        env = "MERIDIAN_HTTP_HEADER_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub http_header_timeout_ms: u64,

    /// How long a client may take to send a `/graphql` body, and the longest pause
    /// between two chunks of a `/ingest/prices` body, in ms (then 408).
    #[arg(long, env = "MERIDIAN_HTTP_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    pub http_body_timeout_ms: u64,

    /// How long a websocket may wait before `connection_init`, in ms.
    #[arg(long, env = "MERIDIAN_WS_INIT_TIMEOUT_MS", default_value_t = 10_000)]
    pub ws_init_timeout_ms: u64,

    /// Most operations one websocket connection may have running at once.
    #[arg(long, env = "MERIDIAN_WS_MAX_OPERATIONS", default_value_t = 100)]
    pub ws_max_operations: usize,

    /// Most websocket operations one client (its principal, or its IP when anonymous)
    /// may have running at once on this instance, over all its connections.
    #[arg(long, env = "MERIDIAN_WS_MAX_CLIENT_OPERATIONS", default_value_t = 500)]
    pub ws_max_client_operations: usize,

    /// Interval of the server's websocket keepalive pings, in ms.
    #[arg(long, env = "MERIDIAN_WS_KEEPALIVE_MS", default_value_t = 15_000)]
    pub ws_keepalive_ms: u64,

    /// Log format: text or json.
    #[arg(long, env = "MERIDIAN_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// An OpenTelemetry collector's OTLP/HTTP base URL (e.g. `http://127.0.0.1:4318`):
    /// spans go to `<url>/v1/traces`. Unset, nothing is exported.
    #[arg(long, env = "MERIDIAN_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Authentication, rate limits, query limits and HTTP headers.
    #[command(flatten)]
    pub security: SecurityConfig,

    /// Circuit breakers and stale-data fallbacks.
    #[command(flatten)]
    pub resilience: ResilienceConfig,
}

/// What persisted queries a server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PersistedQueries {
    /// Every request carries its document; persisted-query hashes are refused.
    Off,
    /// Automatic persisted queries (Apollo protocol), registered on first use in Redis.
    Apq,
    /// Only documents in the allow-list file run, by hash or by full text.
    Allowlist,
}

/// Who may call, how often, and what they may ask.
/// (No `Debug`: it holds the JWT secret.)
#[derive(Clone, clap::Args)]
pub struct SecurityConfig {
    /// HS256 secret of bearer JWTs. Unset: HS256 tokens are refused.
    #[arg(long, env = "MERIDIAN_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// JWKS file (JSON) with the RS256/ES256 public keys of bearer JWTs, chosen by `kid`.
    #[arg(long, env = "MERIDIAN_JWKS_FILE")]
    pub jwks_file: Option<std::path::PathBuf>,

    /// Required `iss` of bearer JWTs.
    #[arg(long, env = "MERIDIAN_JWT_ISSUER", default_value = "meridian")]
    pub jwt_issuer: String,

    /// Required `aud` of bearer JWTs.
    #[arg(long, env = "MERIDIAN_JWT_AUDIENCE", default_value = "meridian")]
    pub jwt_audience: String,

    /// Lifetime of a session created by `login`, in seconds.
    #[arg(long, env = "MERIDIAN_SESSION_TTL_SECS", default_value_t = 86_400)]
    pub session_ttl_secs: u64,

    /// Lifetime of a wallet login challenge, in seconds.
    #[arg(long, env = "MERIDIAN_LOGIN_CHALLENGE_TTL_SECS", default_value_t = 300)]
    pub login_challenge_ttl_secs: u64,

    /// Requests per window per authenticated principal (0: no limit).
    #[arg(long, env = "MERIDIAN_RATE_LIMIT_PRINCIPAL", default_value_t = 600)]
    pub rate_limit_principal: u32,

    /// Requests per window per client IP (0: no limit).
    #[arg(long, env = "MERIDIAN_RATE_LIMIT_IP", default_value_t = 1200)]
    pub rate_limit_ip: u32,

    /// The rate-limit window, in seconds (the allowance refills evenly over it).
    #[arg(long, env = "MERIDIAN_RATE_LIMIT_WINDOW_SECS", default_value_t = 60)]
    pub rate_limit_window_secs: u64,

    /// How many reverse proxies in front of Meridian append to `X-Forwarded-For`. With
    /// N, the client IP is the N-th entry from the right (the one the outermost trusted
    /// proxy appended); entries further left are the client's own claims. 0: the peer.
    #[arg(long, env = "MERIDIAN_TRUSTED_PROXIES", default_value_t = 0)]
    pub trusted_proxies: usize,

    /// Deepest selection nesting a query may have.
    #[arg(long, env = "MERIDIAN_MAX_DEPTH", default_value_t = 12)]
    pub max_depth: usize,

    /// Highest query cost: each field costs 1, list fields multiply their selection by
    /// their page size.
    #[arg(long, env = "MERIDIAN_MAX_COMPLEXITY", default_value_t = 20_000)]
    pub max_complexity: usize,

    /// Most fields one document may select once its fragment spreads are expanded
    /// (counted without expanding them, so fragment bombs are refused at once).
    #[arg(long, env = "MERIDIAN_MAX_FIELDS", default_value_t = 2_000)]
    pub max_fields: usize,

    /// Most aliased fields in one document.
    #[arg(long, env = "MERIDIAN_MAX_ALIASES", default_value_t = 30)]
    pub max_aliases: usize,

    /// Most root fields in one operation.
    #[arg(long, env = "MERIDIAN_MAX_ROOT_FIELDS", default_value_t = 20)]
    pub max_root_fields: usize,

    /// Most lexical tokens in one document.
    #[arg(long, env = "MERIDIAN_MAX_TOKENS", default_value_t = 5_000)]
    pub max_tokens: usize,

    /// Largest `/graphql` request body, in bytes.
    #[arg(long, env = "MERIDIAN_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest `/graphql` request body from an admin or service token, in bytes (a
    /// `recordEvents` call carries up to 10,000 events).
    #[arg(long, env = "MERIDIAN_MAX_SERVICE_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_service_body_bytes: usize,

    /// Deadline of one GraphQL operation, in ms.
    #[arg(long, env = "MERIDIAN_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,

    /// Answer introspection queries (turn off in production if the schema is private).
    #[arg(long, env = "MERIDIAN_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,

    /// Persisted queries: off, apq or allowlist.
    #[arg(
        long,
        env = "MERIDIAN_PERSISTED_QUERIES",
        value_enum,
        default_value = "apq"
    )]
    pub persisted_queries: PersistedQueries,

    /// The allow-list: a JSON object of SHA-256 hex hash to document.
    #[arg(long, env = "MERIDIAN_PERSISTED_QUERIES_FILE")]
    pub persisted_queries_file: Option<std::path::PathBuf>,

    /// Lifetime of an automatic persisted query in Redis, in seconds.
    #[arg(long, env = "MERIDIAN_APQ_TTL_SECS", default_value_t = 86_400)]
    pub apq_ttl_secs: u64,

    /// Origins allowed by CORS, comma-separated, or `*` (empty: no CORS headers).
    #[arg(long, env = "MERIDIAN_CORS_ORIGINS", default_value = "")]
    pub cors_origins: String,

    /// Send `Strict-Transport-Security` (set when served over HTTPS).
    #[arg(long, env = "MERIDIAN_HSTS", default_value_t = false, action = clap::ArgAction::Set)]
    pub hsts: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        defaults()
    }
}

/// How Meridian behaves when a store fails.
#[derive(Debug, Clone, clap::Args)]
pub struct ResilienceConfig {
    /// Consecutive failures of a store that open its circuit breaker (0: never).
    #[arg(long, env = "MERIDIAN_BREAKER_FAILURES", default_value_t = 5)]
    pub breaker_failures: u32,

    /// How long an open breaker fails fast before letting one probe through, in ms.
    #[arg(long, env = "MERIDIAN_BREAKER_COOLDOWN_MS", default_value_t = 1_000)]
    pub breaker_cooldown_ms: u64,

    /// How long asset metadata stays servable from memory when MongoDB is down, in seconds.
    #[arg(long, env = "MERIDIAN_STALE_CACHE_SECS", default_value_t = 300)]
    pub stale_cache_secs: u64,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        defaults()
    }
}

impl Default for Config {
    fn default() -> Self {
        defaults()
    }
}

/// Every setting of `T` at the default its `#[arg]` declares (the one place defaults are
/// written), from an empty command line with the environment ignored.
fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("meridian")).mut_args(|arg| arg.env(None));
    let matches = command
        .try_get_matches_from(["meridian"])
        .expect("every setting has a default");
    T::from_arg_matches(&matches).expect("the defaults parse")
}

impl Config {
    /// Deadline for one store call.
    pub fn store_timeout(&self) -> Duration {
        Duration::from_millis(self.store_timeout_ms)
    }
}

/// Shows the configuration with any password in a URL replaced, so that it can be logged.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("http_addr", &self.http_addr)
            .field("postgres_url", &redact_url(&self.postgres_url))
            .field("postgres_pool_size", &self.postgres_pool_size)
            .field(
                "postgres_read_url",
                &self.postgres_read_url.as_deref().map(redact_url),
            )
            .field("redis_url", &redact_url(&self.redis_url))
            .field(
                "redis_cluster_nodes",
                &self.redis_cluster_nodes.as_deref().map(redact_url),
            )
            .field("redis_wait_replicas", &self.redis_wait_replicas)
            .field("redis_prefix", &self.redis_prefix)
            .field("clickhouse_url", &redact_url(&self.clickhouse_url))
            .field("clickhouse_database", &self.clickhouse_database)
            .field("clickhouse_cluster", &self.clickhouse_cluster)
            .field(
                "clickhouse_shard_urls",
                &self.clickhouse_shard_urls.as_deref().map(redact_url),
            )
            .field("clickhouse_user", &self.clickhouse_user)
            .field("mongo_url", &redact_url(&self.mongo_url))
            .field("store_timeout_ms", &self.store_timeout_ms)
            .field("max_page_size", &self.max_page_size)
            .field("max_series_points", &self.max_series_points)
            .field("stats_cache_ttl_secs", &self.stats_cache_ttl_secs)
            .field("relay", &self.relay)
            .field("relay_batch", &self.relay_batch)
            .field("relay_poll_ms", &self.relay_poll_ms)
            .field("relay_retry_base_ms", &self.relay_retry_base_ms)
            .field("relay_retry_max_ms", &self.relay_retry_max_ms)
            .field("relay_max_attempts", &self.relay_max_attempts)
            .field("snapshot_every_secs", &self.snapshot_every_secs)
            .field("shutdown_drain_ms", &self.shutdown_drain_ms)
            .field("event_stream_len", &self.event_stream_len)
            .field("ingest_max_bytes", &self.ingest_max_bytes)
            .field("http_header_timeout_ms", &self.http_header_timeout_ms)
            .field("http_body_timeout_ms", &self.http_body_timeout_ms)
            .field("ws_init_timeout_ms", &self.ws_init_timeout_ms)
            .field("ws_keepalive_ms", &self.ws_keepalive_ms)
            .field("ws_max_operations", &self.ws_max_operations)
            .field("ws_max_client_operations", &self.ws_max_client_operations)
            .field("cursor_secret", &self.cursor_secret.as_ref().map(|_| "***"))
            .field("log_format", &self.log_format)
            .field("otlp_endpoint", &self.otlp_endpoint)
            .field(
                "jwt_secret",
                &self.security.jwt_secret.as_ref().map(|_| "***"),
            )
            .field("jwks_file", &self.security.jwks_file)
            .field("persisted_queries", &self.security.persisted_queries)
            .field("resilience", &self.resilience)
            .finish_non_exhaustive()
    }
}

/// Replaces the password of `scheme://user:password@host` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_only_the_password() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/meridian"),
            "postgres://app:***@db:5432/meridian"
        );
        assert_eq!(redact_url("redis://:pw@cache/"), "redis://:***@cache/");
        assert_eq!(redact_url("mongodb://h:1/db"), "mongodb://h:1/db");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}

#[cfg(test)]
mod default_tests {
    use super::*;

    #[test]
    fn defaults_are_the_declared_ones_whatever_the_environment() {
        let config = Config::default();
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.relay_max_attempts, 10);
        assert_eq!(config.security.max_depth, 12);
        assert_eq!(config.security.rate_limit_ip, 1200);
        assert_eq!(config.resilience.breaker_failures, 5);
        assert!(config.otlp_endpoint.is_none());
    }
}
