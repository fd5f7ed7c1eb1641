//! Fathuss analytics over `domain_events` (FINAL): per challenge, from its graded
//! submissions. The stack's ClickHouse (18.16) has no JSONExtract*, so the attributes'
//! JSON (compact, as PostgreSQL checked it) is read with visitParamExtract*.

use clickhouse::Row;
use serde::Deserialize;

use super::{reads::InList, ClickHouse};

/// One challenge's submissions, summed up.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct ChallengeStatsRow {
    pub challenge: String,
    pub attempts: u64,
    pub solvers: u64,
    pub passed: u64,
    pub median_score: f64,
    pub best_score: f64,
}

impl ClickHouse {
    /// Attempts, distinct solvers, passed attempts, median and best score of each
    /// challenge that has submissions.
    pub async fn challenge_stats(
        &self,
        challenges: &[String],
    ) -> Result<Vec<ChallengeStatsRow>, crate::Error> {
        self.calls
            .run::<Vec<ChallengeStatsRow>, clickhouse::error::Error, _>("challenge_stats", async {
                self.client
                    .query(
                        "SELECT challenge, toUInt64(count()) AS attempts, \
                                toUInt64(uniqExact(subject)) AS solvers, \
                                toUInt64(sum(passed)) AS passed, \
                                toFloat64(median(amount)) AS median_score, \
                                toFloat64(max(amount)) AS best_score \
                         FROM (SELECT subject, amount, \
                                 visitParamExtractString(attributes, 'challenge') AS challenge, \
                                 visitParamExtractBool(attributes, 'passed') AS passed \
                               FROM domain_events FINAL \
                               WHERE kind = 'challenge_submission') \
                         WHERE challenge IN ? GROUP BY challenge",
                    )
                    .bind(InList(challenges))
                    .fetch_all()
                    .await
            })
            .await
    }
}
