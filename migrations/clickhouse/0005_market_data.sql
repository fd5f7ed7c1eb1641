-- Market data as the platforms send it: which exchange a tick was seen on, where it came
-- from (source, attribution), and the market figures that some feeds carry with a price
-- (market cap, 24h volume, liquidity, participant count). Old rows read as exchange ''
-- and NULL figures.
ALTER TABLE price_ticks
    ADD COLUMN exchange String DEFAULT '',
    ADD COLUMN source String DEFAULT '',
    ADD COLUMN attribution String DEFAULT '',
    ADD COLUMN market_cap Nullable(Float64),
    ADD COLUMN volume_24h Nullable(Float64),
    ADD COLUMN liquidity Nullable(Float64),
    ADD COLUMN participants Nullable(UInt32)
