-- A writable catalogue: assets gain a kind and a status (a delisted asset, or one renamed
-- to a successor, stays readable with its history but takes no new ticks or trades), and
-- every name an asset had is kept. Protocols, their pools and markets (spot, and
-- prediction markets with their question and outcome) are written by the admin and
-- service roles; their free-form metadata lives in MongoDB (`catalogue_documents`).
ALTER TABLE assets
    ADD COLUMN kind text NOT NULL DEFAULT 'token'
        CONSTRAINT assets_kind CHECK (kind IN ('token', 'lp_token', 'staking_derivative', 'nft_collection')),
    ADD COLUMN status text NOT NULL DEFAULT 'listed'
        CONSTRAINT assets_status CHECK (status IN ('listed', 'delisted', 'renamed')),
    ADD COLUMN successor text REFERENCES assets (symbol),
    ADD COLUMN status_changed_at timestamptz,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT assets_successor CHECK ((status = 'renamed') = (successor IS NOT NULL));
CREATE INDEX assets_successor_idx ON assets (successor) WHERE successor IS NOT NULL;

-- Each name an asset has had, from when.
CREATE TABLE asset_names (
    symbol  text NOT NULL REFERENCES assets (symbol) ON DELETE CASCADE,
    name    text NOT NULL,
    since   timestamptz NOT NULL,
    PRIMARY KEY (symbol, since)
);
INSERT INTO asset_names (symbol, name, since) SELECT symbol, name, created_at FROM assets;

CREATE TABLE protocols (
    id          text PRIMARY KEY CONSTRAINT protocols_id CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    category    text NOT NULL CONSTRAINT protocols_category CHECK (category IN
                    ('dex', 'lending', 'staking', 'yield', 'bridge', 'derivatives', 'prediction', 'other')),
    risk        text NOT NULL CONSTRAINT protocols_risk CHECK (risk IN ('low', 'medium', 'high')),
    chains      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pools (
    id          text PRIMARY KEY CONSTRAINT pools_id CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    protocol    text NOT NULL REFERENCES protocols (id),
    -- Fee tier in basis points (30 = 0.30%).
    fee_bps     integer CONSTRAINT pools_fee CHECK (fee_bps BETWEEN 0 AND 10000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pools_protocol_idx ON pools (protocol, id);

-- A pool's assets, in order.
CREATE TABLE pool_assets (
    pool      text NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    position  integer NOT NULL,
    symbol    text NOT NULL REFERENCES assets (symbol),
    PRIMARY KEY (pool, position),
    UNIQUE (pool, symbol)
);
CREATE INDEX pool_assets_symbol_idx ON pool_assets (symbol);

CREATE TABLE markets (
    id            text PRIMARY KEY CONSTRAINT markets_id CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    kind          text NOT NULL CONSTRAINT markets_kind CHECK (kind IN ('spot', 'prediction')),
    base          text REFERENCES assets (symbol),
    quote         text REFERENCES assets (symbol),
    question      text,
    creator_chain text,
    creator       text,
    target_price  numeric(38, 18),
    resolve_at    timestamptz,
    status        text NOT NULL DEFAULT 'open'
        CONSTRAINT markets_status CHECK (status IN ('open', 'closed', 'resolved', 'cancelled')),
    outcome       text CONSTRAINT markets_outcome CHECK (outcome IN ('yes', 'no')),
    status_changed_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT markets_shape CHECK (
        (kind = 'spot' AND base IS NOT NULL AND quote IS NOT NULL AND question IS NULL)
        OR (kind = 'prediction' AND question IS NOT NULL AND resolve_at IS NOT NULL)
    ),
    -- Only a prediction market resolves, and it resolves with an outcome.
    CONSTRAINT markets_resolved CHECK (
        (status = 'resolved') = (outcome IS NOT NULL)
        AND (status <> 'resolved' OR kind = 'prediction')
    )
);
CREATE INDEX markets_kind_status_idx ON markets (kind, status, id);
