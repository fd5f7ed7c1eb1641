-- Price ticks: one row per (symbol, second) observation. Candles and 24h stats come from here.
CREATE TABLE IF NOT EXISTS price_ticks (
    symbol  String,
    ts      DateTime,
    price   Float64,
    volume  Float64
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (symbol, ts)
