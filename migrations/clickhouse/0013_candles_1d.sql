-- Candles of 1d kept by ClickHouse itself: a materialized view (next migration) folds
-- every insert into price_ticks into aggregate states per (symbol, 1d bucket), merged
-- in the background (AggregatingMergeTree) and at read time (-Merge). Column names differ
-- from price_ticks' on purpose: an alias equal to a column name would be read inside the
-- aggregates as the alias.
CREATE TABLE IF NOT EXISTS candles_1d (
    symbol      String,
    bucket      DateTime,
    first_price AggregateFunction(argMin, Float64, DateTime),
    high_price  AggregateFunction(max, Float64),
    low_price   AggregateFunction(min, Float64),
    last_price  AggregateFunction(argMax, Float64, DateTime),
    traded      AggregateFunction(sum, Float64),
    tick_count  AggregateFunction(count)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(bucket)
ORDER BY (symbol, bucket)
