-- Each user's portfolio value per UTC day, written by the snapshot job that one `serve`
-- instance runs (leader-elected through a PostgreSQL advisory lock). The job writes the
-- current day again on each run; the newest write of a day is the one kept.
CREATE TABLE IF NOT EXISTS portfolio_snapshots (
    user_id    String,
    day        Date,
    value      Float64,
    positions  UInt32,
    -- Positions without any known price (left out of value).
    unpriced   UInt32,
    taken_at   DateTime
) ENGINE = ReplacingMergeTree(taken_at)
PARTITION BY toYYYYMM(day)
ORDER BY (user_id, day)
