-- Trades mirrored from the Postgres outbox. ReplacingMergeTree keyed by event_id lets a
-- redelivered event collapse into one row; queries that must not double-count read FINAL
-- or aggregate by event_id.
CREATE TABLE IF NOT EXISTS trade_events (
    event_id     String,
    trade_id     String,
    user_id      String,
    symbol       String,
    side         String,
    quantity     Float64,
    price        Float64,
    executed_at  DateTime
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(executed_at)
ORDER BY (symbol, executed_at, event_id)
