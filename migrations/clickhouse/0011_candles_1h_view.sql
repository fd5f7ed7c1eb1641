-- Folds each insert into price_ticks into candles_1h (buckets of 3600 s from the epoch, UTC).
CREATE MATERIALIZED VIEW IF NOT EXISTS candles_1h_view TO candles_1h AS
SELECT symbol, toDateTime(intDiv(toUInt32(ts), 3600) * 3600) AS bucket,
       argMinState(price, ts) AS first_price, maxState(price) AS high_price,
       minState(price) AS low_price, argMaxState(price, ts) AS last_price,
       sumState(volume) AS traded, countState() AS tick_count
FROM price_ticks GROUP BY symbol, bucket
