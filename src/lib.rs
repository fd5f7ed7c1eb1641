//! Meridian: one GraphQL API over PostgreSQL, ClickHouse, Redis and MongoDB.
//!
//! A tour of the modules, roughly in the order a request meets them:
//!
//! - [`cli`] the `meridian` subcommands (`serve`, `migrate`, `seed`, `schema`, `relay`,
//!   `reconcile`, `redrive`, `simulate`, `token`); [`config`] the `MERIDIAN_*` environment
//!   variables they read.
//! - [`app`] the shared application state and `run()`, which serves HTTP until the
//!   [`shutdown`] future resolves, then stops everything through one cancellation token.
//! - [`http`] the routes: `/graphql` (queries and GraphiQL), `/graphql/ws`
//!   (subscriptions), `/ingest/prices`, `/dashboard`, `/healthz`, `/readyz` and `/metrics`.
//! - [`auth`] who is calling (JWTs, wallet-signed sessions, roles); [`ratelimit`] the
//!   allowances per principal and per IP, shared in Redis.
//! - [`graphql`] the schema, one folder per domain, merged into [`graphql::AppSchema`].
//! - [`domain`] the seeds' platforms on shared primitives: declared event kinds, the
//!   domain events checked against them, and declared boards; [`boards`] the boards at
//!   run time (each instance's copy of the definitions, moves, rebuilds).
//! - [`values`] validated inputs (addresses, transaction hashes, symbols), parsed once
//!   where they enter.
//! - [`loaders`] the request-scoped dataloaders: one round trip per store and key type
//!   for each wave of a query, their batches run on the request's own task.
//! - [`store`] one adapter per store; each owns its client, its queries and its call
//!   wrapper ([`store::call`]: deadline, [`metrics`], breaker, span), so callers only
//!   see typed methods.
//! - [`ingest`] the price-tick and pool-sample write path shared by `ingestPrices`,
//!   `ingestPoolMetrics`, `/ingest/prices` and the simulator.
//! - [`snapshots`] the daily portfolio snapshots, written by one leader-elected instance.
//! - [`events`] what writes announce: the outbox relay (with its dead letters) and the
//!   pub/sub fan-out that feeds subscriptions.
//! - [`reconcile`] checks (and repairs) ClickHouse and Redis against PostgreSQL.
//! - [`migrate`] schema migrations for all four stores; [`seed`] the demo dataset;
//!   [`simulate`] the live demo feed.
//! - [`error`] the one error type, and the `extensions.code` each error carries;
//!   [`digest`] the SHA-256 hex digest `graphql` and `auth` share.
//! - [`symbols`] the catalogue's symbols, remembered per instance so that checking one
//!   costs no round trip.
//! - [`telemetry`] tracing set-up: text or JSON logs, and OpenTelemetry spans exported
//!   over OTLP when `MERIDIAN_OTLP_ENDPOINT` is set.

pub mod app;
pub mod auth;
pub mod boards;
pub mod cli;
pub mod config;
pub mod digest;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod ingest;
pub mod loaders;
pub mod metrics;
pub mod migrate;
pub mod ratelimit;
pub mod reconcile;
pub mod seed;
pub mod shutdown;
pub mod simulate;
pub mod snapshots;
pub mod store;
pub mod symbols;
pub mod telemetry;
pub mod values;

pub use app::AppState;
pub use config::Config;
pub use error::{Error, Result};
