//! The `meridian` command line.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::{
    app, config::Config, events, graphql, migrate, reconcile, seed, shutdown, simulate, AppState,
};

#[derive(Debug, Parser)]
#[command(
    name = "meridian",
    version,
    about = "One GraphQL API over PostgreSQL, ClickHouse, Redis and MongoDB"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve GraphQL over HTTP and websockets (GraphiQL at /graphql).
    Serve {
        /// Also run the live demo feed (`meridian simulate`) in-process.
        #[arg(long)]
        simulate: bool,
        #[command(flatten)]
        rates: simulate::Rates,
    },
    /// Write random-walk price ticks and trades through the real write paths, until
    /// SIGTERM or Ctrl-C (a live demo feed; needs seeded data).
    Simulate {
        #[command(flatten)]
        rates: simulate::Rates,
    },
    /// Bring all four stores to the current schema and apply the event kinds (idempotent).
    Migrate {
        /// A kinds file to apply instead of the built-in catalogue/kinds.json.
        #[arg(long, value_name = "FILE")]
        kinds: Option<std::path::PathBuf>,
    },
    /// Replace the demo data in all four stores with a deterministic dataset.
    Seed(SeedArgs),
    /// Print the GraphQL schema (SDL), as committed in schema.graphql.
    Schema,
    /// Run the outbox relay alone (no HTTP server), until SIGTERM or Ctrl-C.
    Relay,
    /// Print an HS256 bearer token signed with MERIDIAN_JWT_SECRET (for operators, demos
    /// and scripts; production tokens usually come from your identity provider).
    Token {
        /// The subject: a user id for the user role, any name for admin or service.
        #[arg(long, default_value = "operator")]
        sub: String,
        /// Roles to grant (repeatable): user, admin, service.
        #[arg(long = "role", value_enum, default_values_t = [TokenRole::Admin])]
        roles: Vec<TokenRole>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Compare ClickHouse and Redis with PostgreSQL; exit 1 when they differ.
    Reconcile {
        /// Rebuild the derived data from PostgreSQL, then check again.
        #[arg(long)]
        repair: bool,
    },
    /// Put the outbox's dead letters back in the queue, with their attempts reset (all of
    /// them, one destination's, or the ids given).
    Redrive {
        /// Only this destination's (clickhouse, redis or pubsub).
        #[arg(long)]
        destination: Option<String>,
        /// Only these rows (as `meridian reconcile` lists them; repeatable).
        #[arg(long = "id")]
        ids: Vec<i64>,
    },
}

/// A role `meridian token` can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenRole {
    User,
    Admin,
    Service,
}

impl From<TokenRole> for crate::auth::Role {
    fn from(role: TokenRole) -> Self {
        match role {
            TokenRole::User => crate::auth::Role::User,
            TokenRole::Admin => crate::auth::Role::Admin,
            TokenRole::Service => crate::auth::Role::Service,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// Number of users.
    #[arg(long, default_value_t = 200)]
    pub users: u32,
    /// Number of assets (well-known ones first, then generated tokens).
    #[arg(long, default_value_t = 20)]
    pub assets: u32,
    /// Days of one-minute price ticks per asset.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Random seed: the same seed gives the same dataset.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Time of the last tick (RFC 3339); defaults to now.
    #[arg(long)]
    pub end: Option<chrono::DateTime<chrono::Utc>>,
    /// Platforms whose data to write, comma-separated or repeated.
    #[arg(
        long = "platform",
        value_enum,
        value_delimiter = ',',
        default_value = "all"
    )]
    pub platforms: Vec<PlatformArg>,
}

/// A platform of `meridian seed --platform`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlatformArg {
    /// Traders, assets, ticks, trades, holdings, prices (EVM).
    Trading,
    /// KALE-ndar farmers (Stellar): plant, work and harvest events with proofs.
    Kale,
    /// Fathuss: the challenge catalogue, coders and graded submissions.
    Fathuss,
    /// YieldSensei: protocols, pools with hourly TVL and APY, daily portfolio snapshots.
    Yieldsensei,
    /// Astake: Casper stakers' staking events, token assets and their writers' conflicts.
    Astake,
    /// QiCore: a day of quotes per exchange with market figures, hourly OHLCV rows.
    Qicore,
    /// All of the above.
    All,
}

impl PlatformArg {
    fn select(chosen: &[PlatformArg]) -> seed::Platforms {
        let has = |p: PlatformArg| chosen.contains(&p) || chosen.contains(&PlatformArg::All);
        seed::Platforms {
            trading: has(PlatformArg::Trading),
            kale: has(PlatformArg::Kale),
            fathuss: has(PlatformArg::Fathuss),
            yieldsensei: has(PlatformArg::Yieldsensei),
            astake: has(PlatformArg::Astake),
            qicore: has(PlatformArg::Qicore),
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { simulate, rates } => serve(cli.config, simulate.then_some(rates)).await,
        Command::Simulate { rates } => {
            let state = connected_state(cli.config).await?;
            eprintln!(
                "simulate: {} ticks/s, {} trades/s, {} platform events/s until SIGTERM or Ctrl-C",
                rates.ticks_per_sec, rates.trades_per_sec, rates.events_per_sec
            );
            simulate::run(state, rates, shutdown::signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { sub, roles, ttl } => {
            let roles: Vec<crate::auth::Role> = roles.into_iter().map(Into::into).collect();
            if roles.contains(&crate::auth::Role::User) && sub.parse::<uuid::Uuid>().is_err() {
                anyhow::bail!("--role user needs --sub <user id>");
            }
            let token = crate::auth::jwt::mint_hs256(&cli.config.security, &sub, &roles, ttl)?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Relay => {
            let state = AppState::new(cli.config).await?;
            eprintln!("relay: delivering the outbox until SIGTERM or Ctrl-C");
            events::relay::run(state, shutdown::signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reconcile { repair } => {
            let state = connected_state(cli.config).await?;
            let report = if repair {
                reconcile::repair(&bulk(&state)).await?
            } else {
                reconcile::check(&bulk(&state)).await?
            };
            for line in report.lines() {
                println!("{line}");
            }
            if report.is_clean() {
                println!("reconcile: clickhouse and redis agree with postgres");
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "reconcile: {} differences in clickhouse, {} in redis",
                    report.clickhouse.len(),
                    report.redis.len()
                );
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Redrive { destination, ids } => {
            let state = connected_state(cli.config).await?;
            let moved = state
                .stores()
                .postgres()
                .redrive_outbox(destination.as_deref(), &ids)
                .await
                .context("redriving the outbox's dead letters")?;
            println!("redrive: {moved} dead letters queued again");
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { kinds } => {
            let kinds = match kinds {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    crate::domain::kinds::KindsFile::parse(&text)
                        .with_context(|| format!("{} is not a valid kinds file", path.display()))?
                }
                None => crate::domain::kinds::KindsFile::parse(crate::domain::kinds::BUILTIN)?,
            };
            let state = connected_state(cli.config).await?;
            let report = migrate::run_with_kinds(&bulk(&state), &kinds).await?;
            if report.is_noop() {
                eprintln!("migrate: every store is up to date");
            } else {
                eprintln!(
                    "migrate: postgres {:?}, clickhouse {:?}, mongodb indexes {:?}, event kinds changed {}, boards changed {}",
                    report.postgres, report.clickhouse, report.mongo_indexes, report.kinds, report.boards
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Seed(args) => {
            if args.users == 0 || args.assets == 0 || args.days == 0 {
                anyhow::bail!("--users, --assets and --days must each be at least 1");
            }
            let state = connected_state(cli.config).await?;
            let shape = seed::Shape {
                users: args.users,
                assets: args.assets,
                days: args.days,
                seed: args.seed,
                end: args.end.unwrap_or_else(chrono::Utc::now),
                platforms: PlatformArg::select(&args.platforms),
            };
            let report = seed::run(
                &bulk(&state),
                &shape,
                &state.relay_settings(),
                &seed::Progress::auto(),
            )
            .await?;
            eprintln!(
                "seed: {} users, {} assets, {} trades, {} holdings, {} ticks, {} activity events, \
                 {} domain events, {} artifacts, {} challenges, {} pools with {} samples, \
                 {} portfolio snapshots, {} token assets with {} conflicts, {} quotes, {} OHLCV rows in {:.1}s",
                report.users,
                report.assets,
                report.trades,
                report.holdings,
                report.ticks,
                report.activity_events,
                report.events,
                report.artifacts,
                report.challenges,
                report.pools,
                report.pool_samples,
                report.snapshots,
                report.tokens,
                report.conflicts,
                report.quotes,
                report.ohlcv,
                report.elapsed.as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn serve(config: Config, simulate: Option<simulate::Rates>) -> anyhow::Result<ExitCode> {
    tracing::info!(?config, "starting");
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    let addr = listener.local_addr()?;
    if config.cursor_secret.is_none() {
        tracing::warn!(
            "MERIDIAN_CURSOR_SECRET is not set: pagination cursors are valid only in this process"
        );
    }
    let state = AppState::new(config).await?;
    tracing::info!("listening on http://{addr}; GraphiQL at http://{addr}/graphql");
    eprintln!("meridian: GraphiQL at http://{addr}/graphql");
    let feed = simulate.map(|rates| {
        let state = state.clone();
        let stopped = state.shutdown().clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(err) = simulate::run(state, rates, stopped).await {
                tracing::error!(error = format!("{err:#}"), "the demo feed stopped");
            }
        })
    });
    app::run(listener, state, shutdown::signal()).await?;
    if let Some(feed) = feed {
        let _ = feed.await;
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Deadline of one store call in the bulk commands (seed, migrate, reconcile): one insert
/// carries up to 200,000 rows, and a migration waits for another's lock.
const BULK_CALL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

/// The stores for a bulk command.
fn bulk(state: &AppState) -> crate::store::Stores {
    state.stores().with_deadline(BULK_CALL_DEADLINE)
}

/// State for a one-off command, after checking that every store answers, so that a store
/// that is down fails fast with its name rather than part-way through.
async fn connected_state(config: Config) -> anyhow::Result<AppState> {
    let state = AppState::new(config).await?;
    let down: Vec<String> = state
        .stores()
        .readiness()
        .await
        .into_iter()
        .filter(|s| !s.up)
        .map(|s| format!("{} ({})", s.store, s.error.unwrap_or_default()))
        .collect();
    if !down.is_empty() {
        anyhow::bail!(
            "cannot reach {}; is the stack up? (scripts/stack status)",
            down.join(", ")
        );
    }
    Ok(state)
}
