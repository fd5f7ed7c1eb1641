//! KALE-ndar farming analytics over `domain_events` (FINAL: a redelivered event counts
//! once): per farmer, and over all farmers in time buckets.

use clickhouse::Row;
use serde::Deserialize;

use super::{reads::InList, ClickHouse};

/// The farming kinds, as declared in the catalogue.
pub const FARMING_KINDS: [&str; 3] = ["farming_plant", "farming_work", "farming_harvest"];

/// One farmer's totals over a window.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct FarmerTotalsRow {
    pub subject: String,
    pub plants: u64,
    pub works: u64,
    pub harvests: u64,
    pub staked: f64,
    pub rewards: f64,
    /// Unix seconds of the first and last farming event in the window.
    pub first_at: u32,
    pub last_at: u32,
}

/// All farmers' totals in one bucket (or the whole window, bucket 0).
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct FarmingBucketRow {
    pub bucket: u32,
    pub plants: u64,
    pub works: u64,
    pub harvests: u64,
    pub staked: f64,
    pub rewards: f64,
    pub farmers: u64,
}

const TOTALS: &str = "toUInt64(countIf(kind = 'farming_plant')) AS plants, \
     toUInt64(countIf(kind = 'farming_work')) AS works, \
     toUInt64(countIf(kind = 'farming_harvest')) AS harvests, \
     toFloat64(sumIf(amount, kind = 'farming_plant')) AS staked, \
     toFloat64(sumIf(amount, kind = 'farming_harvest')) AS rewards";

impl ClickHouse {
    /// Each farmer's totals over [from, to) in unix seconds; farmers without farming
    /// events there have no row.
    pub async fn farmer_totals(
        &self,
        subjects: &[String],
        from: u32,
        to: u32,
    ) -> Result<Vec<FarmerTotalsRow>, crate::Error> {
        self.calls
            .run::<Vec<FarmerTotalsRow>, clickhouse::error::Error, _>("farmer_totals", async {
                let kinds = farming_kinds();
                self.client
                    .query(&format!(
                        "SELECT subject, {TOTALS}, toUInt32(min(occurred_at)) AS first_at, \
                                toUInt32(max(occurred_at)) AS last_at \
                         FROM domain_events FINAL \
                         WHERE kind IN ? AND subject IN ? \
                           AND occurred_at >= toDateTime(?) AND occurred_at < toDateTime(?) \
                         GROUP BY subject"
                    ))
                    .bind(InList(&kinds))
                    .bind(InList(subjects))
                    .bind(from)
                    .bind(to)
                    .fetch_all()
                    .await
            })
            .await
    }

    /// Every farmer's activity over [from, to): the whole window (bucket 0), then one row
    /// per bucket of `bucket_secs` that has any, oldest first. With no farming in the
    /// window, the whole-window row has zeros.
    pub async fn farming_buckets(
        &self,
        bucket_secs: u32,
        from: u32,
        to: u32,
    ) -> Result<Vec<FarmingBucketRow>, crate::Error> {
        self.calls
            .run::<Vec<FarmingBucketRow>, clickhouse::error::Error, _>("farming_buckets", async {
                let kinds = farming_kinds();
                let mut rows: Vec<FarmingBucketRow> = self.client
                    .query(&format!(
                        "SELECT toUInt32(0) AS bucket, {TOTALS}, toUInt64(uniqExact(subject)) AS farmers \
                         FROM domain_events FINAL \
                         WHERE kind IN ? \
                           AND occurred_at >= toDateTime(?) AND occurred_at < toDateTime(?) \
                         UNION ALL \
                         SELECT toUInt32(intDiv(toUInt32(occurred_at), ?) * ?) AS bucket, {TOTALS}, \
                                toUInt64(uniqExact(subject)) AS farmers \
                         FROM domain_events FINAL \
                         WHERE kind IN ? \
                           AND occurred_at >= toDateTime(?) AND occurred_at < toDateTime(?) \
                         GROUP BY bucket"
                    ))
                    .bind(InList(&kinds))
                    .bind(from)
                    .bind(to)
                    .bind(bucket_secs)
                    .bind(bucket_secs)
                    .bind(InList(&kinds))
                    .bind(from)
                    .bind(to)
                    .fetch_all()
                    .await?;
                rows.sort_by_key(|r| r.bucket);
                Ok(rows)
            })
            .await
    }
}

fn farming_kinds() -> Vec<String> {
    FARMING_KINDS.map(str::to_owned).to_vec()
}
