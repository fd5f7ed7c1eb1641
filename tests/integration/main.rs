//! Integration tests against the real local stack (`scripts/stack up`).
//!
//! Each test builds a [`support::TestEnv`] with a Postgres database, ClickHouse database,
//! MongoDB database and Redis key prefix of its own, so tests run in parallel and leave
//! nothing behind.

mod abuse;
mod artifacts;
mod bad_input;
mod balancer;

mod boards;
mod catalogue;
mod clients;
mod drill;
mod events;
mod faults;
mod foundation;
mod graph;
mod http_spec;
mod live;
mod market;
mod platforms;
mod scale;
mod security;
mod staking;
mod support;
mod writes;
mod yields;
