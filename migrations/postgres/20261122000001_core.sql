-- Meridian's system of record: users, assets, holdings, trades and the outbox.

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    address     text NOT NULL CONSTRAINT users_address_key UNIQUE
                CONSTRAINT users_address_format CHECK (address ~ '^0x[0-9a-f]{40}$'),
    username    text NOT NULL CONSTRAINT users_username_key UNIQUE
                CONSTRAINT users_username_format CHECK (username ~ '^[A-Za-z0-9_]{3,32}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Keyset pagination of `users` walks (created_at, id).
CREATE INDEX users_created_at_id_idx ON users (created_at, id);

CREATE TABLE assets (
    symbol      text PRIMARY KEY CONSTRAINT assets_symbol_format CHECK (symbol ~ '^[A-Z0-9]{2,12}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    chain       text NOT NULL CHECK (length(chain) BETWEEN 1 AND 50),
    decimals    integer NOT NULL CHECK (decimals BETWEEN 0 AND 36),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE holdings (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    symbol      text NOT NULL REFERENCES assets (symbol),
    quantity    numeric(38, 18) NOT NULL CONSTRAINT holdings_quantity_nonnegative CHECK (quantity >= 0),
    cost_basis  numeric(38, 18) NOT NULL CONSTRAINT holdings_cost_basis_nonnegative CHECK (cost_basis >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, symbol)
);
-- Who holds an asset (the primary key serves holdings by user).
CREATE INDEX holdings_symbol_idx ON holdings (symbol);

-- Trades, partitioned by month of execution. A partitioned table's unique constraints must
-- include the partition key, so the global uniqueness of tx_hash is enforced by
-- trade_tx_hashes below, written in the same transaction as the trade.
CREATE TABLE trades (
    id           uuid NOT NULL,
    tx_hash      text NOT NULL CONSTRAINT trades_tx_hash_format CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    user_id      uuid NOT NULL REFERENCES users (id),
    symbol       text NOT NULL REFERENCES assets (symbol),
    side         text NOT NULL CONSTRAINT trades_side CHECK (side IN ('buy', 'sell')),
    quantity     numeric(38, 18) NOT NULL CONSTRAINT trades_quantity_positive CHECK (quantity > 0),
    price        numeric(38, 18) NOT NULL CONSTRAINT trades_price_positive CHECK (price > 0),
    executed_at  timestamptz NOT NULL,
    PRIMARY KEY (id, executed_at)
) PARTITION BY RANGE (executed_at);
-- A user's trades, newest first (the `User.trades` connection).
CREATE INDEX trades_user_executed_idx ON trades (user_id, executed_at DESC, id);
-- A symbol's trades over time (analytics, reconciliation).
CREATE INDEX trades_symbol_executed_idx ON trades (symbol, executed_at);

CREATE TABLE trade_tx_hashes (
    tx_hash      text PRIMARY KEY,
    trade_id     uuid NOT NULL,
    executed_at  timestamptz NOT NULL
);

-- Creates the month partition of `trades` holding `at`, if it does not exist yet.
-- Serialised by an advisory lock so that concurrent writers cannot race on it.
CREATE FUNCTION ensure_trades_partition(at timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    month_start date := date_trunc('month', at AT TIME ZONE 'UTC')::date;
    part text := format('trades_%s', to_char(month_start, 'YYYY_MM'));
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('meridian.trades_partition'));
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF trades FOR VALUES FROM (%L) TO (%L)',
        part,
        (month_start::timestamp AT TIME ZONE 'UTC'),
        ((month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC')
    );
END;
$$;

-- The transactional outbox: events written with the change that caused them and
-- delivered to ClickHouse, Redis and pub/sub by the relay.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    kind          text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    delivered_at  timestamptz
);
-- The relay reads only what is still pending.
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE delivered_at IS NULL;
