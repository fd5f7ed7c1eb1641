-- Domain events: one idempotent model for every platform's events (farming, submissions,
-- staking...), checked against declared kinds and carried by the outbox like trades.

-- The kinds in force, written by `meridian migrate` from the kinds file (catalogue/kinds.json
-- unless --kinds names another). `version` is the file's version that last wrote the row.
CREATE TABLE event_kinds (
    name         text PRIMARY KEY CONSTRAINT event_kinds_name CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    description  text NOT NULL DEFAULT '',
    attributes   jsonb NOT NULL,
    version      integer NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Events, partitioned by month of occurrence. The caller's id is the idempotency key; its
-- global uniqueness is kept by event_ids below (a partitioned table's unique constraints
-- must include the partition key), written in the same transaction.
CREATE TABLE events (
    uid            uuid NOT NULL,
    id             text NOT NULL,
    kind           text NOT NULL REFERENCES event_kinds (name),
    subject_chain  text NOT NULL,
    subject        text NOT NULL,
    occurred_at    timestamptz NOT NULL,
    amount         numeric(38, 18),
    attributes     jsonb NOT NULL DEFAULT '{}',
    tx_hash        text,
    block_number   bigint CONSTRAINT events_block_number CHECK (block_number >= 0),
    artifact       text,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (uid, occurred_at)
) PARTITION BY RANGE (occurred_at);
-- A subject's events, newest first; a kind's events over time.
CREATE INDEX events_subject_idx ON events (subject, occurred_at DESC, uid);
CREATE INDEX events_kind_idx ON events (kind, occurred_at DESC, uid);

-- The idempotency keys: a key maps to its event, and to the digest of the body it was first
-- recorded with (a second call with the same key and another body is a conflict).
CREATE TABLE event_ids (
    id           text PRIMARY KEY CONSTRAINT event_ids_length CHECK (length(id) BETWEEN 1 AND 128),
    uid          uuid NOT NULL UNIQUE,
    occurred_at  timestamptz NOT NULL,
    digest       text NOT NULL
);

-- Creates the month partition of `events` holding `at`, if it does not exist yet.
CREATE FUNCTION ensure_events_partition(at timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    month_start date := date_trunc('month', at AT TIME ZONE 'UTC')::date;
    part text := format('events_%s', to_char(month_start, 'YYYY_MM'));
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('meridian.events_partition'));
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
        part,
        (month_start::timestamp AT TIME ZONE 'UTC'),
        ((month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC')
    );
END;
$$;
