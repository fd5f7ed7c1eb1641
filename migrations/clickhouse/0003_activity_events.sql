-- Per-user activity (trades, farming and staking rewards), bucketed by `User.activity`.
CREATE TABLE IF NOT EXISTS activity_events (
    event_id  String,
    user_id   String,
    kind      String,
    symbol    String,
    amount    Float64,
    ts        DateTime
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (user_id, ts, event_id)
