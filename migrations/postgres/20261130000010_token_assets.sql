-- Astake's token assets and the conflicts between their writers. "The chain is the source
-- of truth": every write names its writer (the chain indexer, or any other) and the block
-- it holds at. Each field keeps who wrote it, at which block and when (provenance). An
-- indexer write wins over any other writer's value; two other writers that disagree are
-- flagged for an admin. Each disagreement is kept as a conflict.
CREATE TABLE token_assets (
    token_id    text PRIMARY KEY
        CONSTRAINT token_assets_id CHECK (token_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    owner_chain text,
    owner       text,
    value       numeric(38, 18) CONSTRAINT token_assets_value CHECK (value >= 0),
    verified    boolean,
    contract    text,
    -- Per field written: {"source": writer, "indexer": bool, "block": n, "at": time}.
    provenance  jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX token_assets_owner_idx ON token_assets (owner, token_id);

CREATE TABLE conflicts (
    id            bigserial PRIMARY KEY,
    entity        text NOT NULL,
    entity_id     text NOT NULL,
    fields        text[] NOT NULL,
    -- The values in force after the write (the winner, or the stored ones while open).
    kept_values   jsonb NOT NULL,
    kept_source   text NOT NULL,
    kept_block    bigint NOT NULL,
    -- The values that lost (or await review).
    other_values  jsonb NOT NULL,
    other_source  text NOT NULL,
    other_block   bigint NOT NULL,
    status        text NOT NULL CONSTRAINT conflicts_status CHECK (status IN ('open', 'resolved')),
    -- chain: the rule decided (an indexer write was one side); kept or replaced: an admin.
    resolution    text CONSTRAINT conflicts_resolution CHECK (resolution IN ('chain', 'kept', 'replaced')),
    detected_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz,
    resolved_by   text,
    CONSTRAINT conflicts_resolved CHECK ((status = 'resolved') = (resolution IS NOT NULL))
);
CREATE INDEX conflicts_status_idx ON conflicts (status, id);
CREATE INDEX conflicts_entity_idx ON conflicts (entity, entity_id, id);
