//! Read-your-writes with a PostgreSQL read replica: after a mutation, the primary's WAL
//! position is kept under `{prefix}written:{subject}` for [`WRITTEN_KEEP_SECS`], so that
//! the writer's next requests, on any instance, read from the replica only once it has
//! replayed that far.

use super::Redis;

/// How long a writer's position is kept, in seconds: longer than any replica lag at
/// which the replica is still worth reading from.
pub const WRITTEN_KEEP_SECS: u64 = 300;

impl Redis {
    fn written_key(&self, subject: &str) -> String {
        self.key(&format!("written:{subject}"))
    }

    /// Remembers that `subject` wrote up to the WAL position `lsn`. Positions only grow:
    /// a slower instance's older position does not replace a newer one.
    pub async fn mark_written(&self, subject: &str, lsn: u64) -> Result<(), crate::Error> {
        self.calls
            .run::<(), redis::RedisError, _>("mark_written", async {
                redis::Script::new(
                    "local old = tonumber(redis.call('GET', KEYS[1]) or '0') \
                     if tonumber(ARGV[1]) > old then \
                       redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) \
                     else redis.call('EXPIRE', KEYS[1], ARGV[2]) end \
                     return 1",
                )
                .key(self.written_key(subject))
                .arg(lsn)
                .arg(WRITTEN_KEEP_SECS)
                .invoke_async::<()>(&mut self.conn())
                .await
            })
            .await
    }

    /// The WAL position `subject` last wrote up to, if it wrote in the last
    /// [`WRITTEN_KEEP_SECS`].
    pub async fn written_position(&self, subject: &str) -> Result<Option<u64>, crate::Error> {
        self.calls
            .run::<Option<u64>, redis::RedisError, _>("written_position", async {
                redis::cmd("GET")
                    .arg(self.written_key(subject))
                    .query_async(&mut self.conn())
                    .await
            })
            .await
    }
}
