//! ClickHouse DDL from migrations/clickhouse, applied in order and recorded in
//! `schema_migrations`.

use clickhouse::Row;
use serde::Serialize;

use super::ClickHouse;

/// The migrations, in order. A unit test checks this list against the directory.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "price_ticks",
        include_str!("../../../migrations/clickhouse/0001_price_ticks.sql"),
    ),
    (
        2,
        "trade_events",
        include_str!("../../../migrations/clickhouse/0002_trade_events.sql"),
    ),
    (
        3,
        "activity_events",
        include_str!("../../../migrations/clickhouse/0003_activity_events.sql"),
    ),
    (
        4,
        "domain_events",
        include_str!("../../../migrations/clickhouse/0004_domain_events.sql"),
    ),
    (
        5,
        "market_data",
        include_str!("../../../migrations/clickhouse/0005_market_data.sql"),
    ),
    (
        6,
        "ohlcv",
        include_str!("../../../migrations/clickhouse/0006_ohlcv.sql"),
    ),
    (
        7,
        "candles_1m",
        include_str!("../../../migrations/clickhouse/0007_candles_1m.sql"),
    ),
    (
        8,
        "candles_1m_view",
        include_str!("../../../migrations/clickhouse/0008_candles_1m_view.sql"),
    ),
    (
        9,
        "candles_1m_backfill",
        include_str!("../../../migrations/clickhouse/0009_candles_1m_backfill.sql"),
    ),
    (
        10,
        "candles_1h",
        include_str!("../../../migrations/clickhouse/0010_candles_1h.sql"),
    ),
    (
        11,
        "candles_1h_view",
        include_str!("../../../migrations/clickhouse/0011_candles_1h_view.sql"),
    ),
    (
        12,
        "candles_1h_backfill",
        include_str!("../../../migrations/clickhouse/0012_candles_1h_backfill.sql"),
    ),
    (
        13,
        "candles_1d",
        include_str!("../../../migrations/clickhouse/0013_candles_1d.sql"),
    ),
    (
        14,
        "candles_1d_view",
        include_str!("../../../migrations/clickhouse/0014_candles_1d_view.sql"),
    ),
    (
        15,
        "candles_1d_backfill",
        include_str!("../../../migrations/clickhouse/0015_candles_1d_backfill.sql"),
    ),
    (
        16,
        "pool_metrics",
        include_str!("../../../migrations/clickhouse/0016_pool_metrics.sql"),
    ),
    (
        17,
        "portfolio_snapshots",
        include_str!("../../../migrations/clickhouse/0017_portfolio_snapshots.sql"),
    ),
];

#[derive(Row, Serialize)]
struct AppliedMigration<'a> {
    version: u32,
    name: &'a str,
    applied_at: u32,
}

impl ClickHouse {
    /// Creates the database if needed, then applies the migrations not yet recorded.
    pub async fn migrate(&self) -> Result<Vec<u32>, crate::Error> {
        self.calls
            .run::<Vec<u32>, clickhouse::error::Error, _>("migrate", async {
                if !is_identifier(&self.database) {
                    return Err(clickhouse::error::Error::Custom(format!(
                        "ClickHouse database name {:?} must be letters, digits and underscores",
                        self.database
                    )));
                }
                self.server
                    .query(&format!(
                        "CREATE DATABASE IF NOT EXISTS `{}`",
                        self.database
                    ))
                    .execute()
                    .await?;
                if let Some(sharding) = &self.sharding {
                    for (_, server) in sharding.shards.iter() {
                        server
                            .query(&format!(
                                "CREATE DATABASE IF NOT EXISTS `{}`",
                                self.database
                            ))
                            .execute()
                            .await?;
                    }
                }
                self.client
                    .query(
                        "CREATE TABLE IF NOT EXISTS schema_migrations \
                 (version UInt32, name String, applied_at DateTime) \
                 ENGINE = MergeTree() ORDER BY version",
                    )
                    .execute()
                    .await?;
                let applied: Vec<u32> = self
                    .client
                    .query("SELECT version FROM schema_migrations")
                    .fetch_all()
                    .await?;
                let mut newly = Vec::new();
                for &(version, name, sql) in MIGRATIONS {
                    if applied.contains(&version) {
                        continue;
                    }
                    for statement in statements(sql) {
                        self.apply(&statement).await?;
                    }
                    let mut insert = self
                        .client
                        .insert::<AppliedMigration>("schema_migrations")
                        .await?;
                    let applied_at =
                        u32::try_from(chrono::Utc::now().timestamp()).unwrap_or(u32::MAX);
                    insert
                        .write(&AppliedMigration {
                            version,
                            name,
                            applied_at,
                        })
                        .await?;
                    insert.end().await?;
                    tracing::info!(version, name, "applied ClickHouse migration");
                    newly.push(version);
                }
                Ok(newly)
            })
            .await
    }
}

impl ClickHouse {
    /// Applies one migration statement. Sharded, it runs on every shard with each table
    /// named `<table>_local`; a created table also gets, on every shard, a Distributed
    /// table under its own name over the shards' tables (sharded by [`shard_key`]); an
    /// altered table's Distributed table is altered too.
    async fn apply(&self, statement: &str) -> Result<(), clickhouse::error::Error> {
        let Some(sharding) = &self.sharding else {
            return self.client.query(statement).execute().await;
        };
        let mut on_shards = vec![localize(statement)];
        if let Some(table) = named_after(statement, "CREATE TABLE IF NOT EXISTS ") {
            let key = shard_key(table).ok_or_else(|| {
                clickhouse::error::Error::Custom(format!(
                    "no sharding key for the ClickHouse table {table}: add one to shard_key"
                ))
            })?;
            on_shards.push(format!(
                "CREATE TABLE IF NOT EXISTS {table} AS {table}_local \
                 ENGINE = Distributed({cluster}, {db}, {table}_local, {key})",
                cluster = sharding.cluster,
                db = self.database,
            ));
        } else if named_after(statement, "ALTER TABLE ").is_some() {
            on_shards.push(statement.to_owned());
        }
        self.on_every_shard(&on_shards).await
    }
}

/// How each table's rows are spread over the shards. Rows that a ReplacingMergeTree
/// collapses (the same event redelivered, the same bar or snapshot written again) must
/// meet on one shard, so the key covers what identifies them; a view's table is sharded
/// as the raw table it folds.
pub(crate) fn shard_key(table: &str) -> Option<&'static str> {
    Some(match table {
        "price_ticks" | "candles_1m" | "candles_1h" | "candles_1d" => "cityHash64(symbol)",
        "trade_events" | "activity_events" => "cityHash64(event_id)",
        "domain_events" => "cityHash64(uid)",
        "ohlcv" => "cityHash64(symbol, exchange, timeframe)",
        "pool_metrics" | "pool_metrics_1h" | "pool_metrics_1d" => "cityHash64(pool)",
        "portfolio_snapshots" => "cityHash64(user_id)",
        _ => return None,
    })
}

/// The table a statement names right after `prefix` (`CREATE TABLE IF NOT EXISTS `, ...).
fn named_after<'a>(statement: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = statement.trim_start().strip_prefix(prefix)?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|name| !name.is_empty())
}

/// The statement with every sharded table named as its shard-local table.
fn localize(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len() + 32);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if shard_key(word).is_some() {
            out.push_str(word);
            out.push_str("_local");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in statement.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Splits a migration file into statements: `;` at the end of a line ends one, and
/// `--` comment lines are dropped.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            out.push(current.trim().trim_end_matches(';').to_owned());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/clickhouse");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("migrations/clickhouse exists")
            .map(|e| {
                e.expect("readable entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|(v, name, _)| format!("{v:04}_{name}.sql"))
            .collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn splits_statements_and_drops_comments() {
        let sql =
            "-- a comment\nCREATE TABLE a (x UInt8)\nENGINE = Memory;\n\nDROP TABLE b;\nSELECT 1";
        assert_eq!(
            statements(sql),
            vec![
                "CREATE TABLE a (x UInt8)\nENGINE = Memory",
                "DROP TABLE b",
                "SELECT 1"
            ]
        );
    }

    #[test]
    fn sharded_statements_name_the_local_tables() {
        assert_eq!(
            localize("CREATE MATERIALIZED VIEW IF NOT EXISTS candles_1m_view TO candles_1m AS\nSELECT symbol FROM price_ticks GROUP BY symbol"),
            "CREATE MATERIALIZED VIEW IF NOT EXISTS candles_1m_view TO candles_1m_local AS\nSELECT symbol FROM price_ticks_local GROUP BY symbol"
        );
        assert_eq!(
            named_after(
                "CREATE TABLE IF NOT EXISTS pool_metrics (\n pool String",
                "CREATE TABLE IF NOT EXISTS "
            ),
            Some("pool_metrics")
        );
        // Every table the migrations create has a sharding key.
        for (_, _, sql) in MIGRATIONS {
            for statement in statements(sql) {
                if let Some(table) = named_after(&statement, "CREATE TABLE IF NOT EXISTS ") {
                    assert!(shard_key(table).is_some(), "{table} has no sharding key");
                }
            }
        }
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("meridian_t1"));
        assert!(!is_identifier("1abc"));
        assert!(!is_identifier("a`; DROP"));
        assert!(!is_identifier(""));
    }
}
