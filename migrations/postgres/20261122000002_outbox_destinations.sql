-- One outbox row per (event, destination), so that a destination that is down delays only
-- its own deliveries, and failed deliveries wait for their retry time.

DROP INDEX outbox_pending_idx;
ALTER TABLE outbox DROP CONSTRAINT outbox_event_id_key;
ALTER TABLE outbox
    ADD COLUMN destination text NOT NULL
        CONSTRAINT outbox_destination CHECK (destination IN ('clickhouse', 'redis', 'pubsub')),
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT outbox_event_destination_key UNIQUE (event_id, destination);

-- The relay claims what is pending and due, oldest first, per destination.
CREATE INDEX outbox_pending_idx ON outbox (destination, next_attempt_at, id) WHERE delivered_at IS NULL;
