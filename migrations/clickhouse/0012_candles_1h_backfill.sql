-- The ticks written before the view existed. Migrations run before Meridian serves (under
-- an advisory lock); ticks inserted between the view's creation and this statement would
-- be counted twice, which `meridian reconcile` reports and `--repair` rebuilds.
INSERT INTO candles_1h
SELECT symbol, toDateTime(intDiv(toUInt32(ts), 3600) * 3600) AS bucket,
       argMinState(price, ts) AS first_price, maxState(price) AS high_price,
       minState(price) AS low_price, argMaxState(price, ts) AS last_price,
       sumState(volume) AS traded, countState() AS tick_count
FROM price_ticks GROUP BY symbol, bucket
