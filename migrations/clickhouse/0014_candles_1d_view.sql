-- Folds each insert into price_ticks into candles_1d (buckets of 86400 s from the epoch, UTC).
CREATE MATERIALIZED VIEW IF NOT EXISTS candles_1d_view TO candles_1d AS
SELECT symbol, toDateTime(intDiv(toUInt32(ts), 86400) * 86400) AS bucket,
       argMinState(price, ts) AS first_price, maxState(price) AS high_price,
       minState(price) AS low_price, argMaxState(price, ts) AS last_price,
       sumState(volume) AS traded, countState() AS tick_count
FROM price_ticks GROUP BY symbol, bucket
