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
                        self.client.query(&statement).execute().await?;
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
    fn identifiers() {
        assert!(is_identifier("meridian_t1"));
        assert!(!is_identifier("1abc"));
        assert!(!is_identifier("a`; DROP"));
        assert!(!is_identifier(""));
    }
}
