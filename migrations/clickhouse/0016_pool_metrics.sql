-- Pools' TVL and APY over time (YieldSensei): one row per sample a feed sends, through
-- the same NDJSON and mutation paths as ticks. TVL in USD; APY in percent (4.2 is 4.2%).
CREATE TABLE IF NOT EXISTS pool_metrics (
    pool    String,
    ts      DateTime,
    tvl     Float64,
    apy     Float64,
    source  String DEFAULT ''
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (pool, ts);

-- Hourly and daily series kept by ClickHouse: every insert into pool_metrics is folded
-- into aggregate states per (pool, bucket), merged in the background and at read time.
-- The table is new in this migration, so no backfill is needed. Last, high and low are
-- unchanged by a sample sent twice; the average APY (sum / count) counts it twice, as a
-- candle's volume does.
CREATE TABLE IF NOT EXISTS pool_metrics_1h (
    pool        String,
    bucket      DateTime,
    tvl_last    AggregateFunction(argMax, Float64, DateTime),
    tvl_high    AggregateFunction(max, Float64),
    tvl_low     AggregateFunction(min, Float64),
    apy_last    AggregateFunction(argMax, Float64, DateTime),
    apy_high    AggregateFunction(max, Float64),
    apy_low     AggregateFunction(min, Float64),
    apy_total   AggregateFunction(sum, Float64),
    samples     AggregateFunction(count)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(bucket)
ORDER BY (pool, bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS pool_metrics_1h_view TO pool_metrics_1h AS
SELECT pool, toDateTime(intDiv(toUInt32(ts), 3600) * 3600) AS bucket,
       argMaxState(tvl, ts) AS tvl_last, maxState(tvl) AS tvl_high, minState(tvl) AS tvl_low,
       argMaxState(apy, ts) AS apy_last, maxState(apy) AS apy_high, minState(apy) AS apy_low,
       sumState(apy) AS apy_total, countState() AS samples
FROM pool_metrics GROUP BY pool, bucket;

CREATE TABLE IF NOT EXISTS pool_metrics_1d (
    pool        String,
    bucket      DateTime,
    tvl_last    AggregateFunction(argMax, Float64, DateTime),
    tvl_high    AggregateFunction(max, Float64),
    tvl_low     AggregateFunction(min, Float64),
    apy_last    AggregateFunction(argMax, Float64, DateTime),
    apy_high    AggregateFunction(max, Float64),
    apy_low     AggregateFunction(min, Float64),
    apy_total   AggregateFunction(sum, Float64),
    samples     AggregateFunction(count)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(bucket)
ORDER BY (pool, bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS pool_metrics_1d_view TO pool_metrics_1d AS
SELECT pool, toDateTime(intDiv(toUInt32(ts), 86400) * 86400) AS bucket,
       argMaxState(tvl, ts) AS tvl_last, maxState(tvl) AS tvl_high, minState(tvl) AS tvl_low,
       argMaxState(apy, ts) AS apy_last, maxState(apy) AS apy_high, minState(apy) AS apy_low,
       sumState(apy) AS apy_total, countState() AS samples
FROM pool_metrics GROUP BY pool, bucket
