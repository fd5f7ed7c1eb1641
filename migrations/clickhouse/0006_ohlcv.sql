-- OHLCV rows as market-data providers publish them, per exchange and timeframe, beside the
-- candles Meridian derives from ticks. A row sent again for the same (symbol, exchange,
-- timeframe, start) replaces the earlier one (reads use FINAL).
CREATE TABLE IF NOT EXISTS ohlcv (
    symbol       String,
    exchange     String,
    timeframe    String,
    ts           DateTime,
    open         Float64,
    high         Float64,
    low          Float64,
    close        Float64,
    volume       Float64,
    source       String,
    attribution  String,
    written_at   DateTime
) ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (symbol, exchange, timeframe, ts)
