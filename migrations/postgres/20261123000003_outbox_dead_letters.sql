-- Dead letters: an outbox row that failed on its own too many times (or whose payload
-- cannot be read) is set aside with `dead_at`, so that the rows behind it keep flowing.
-- `meridian outbox redrive` puts it back.

ALTER TABLE outbox ADD COLUMN dead_at timestamptz;

DROP INDEX outbox_pending_idx;
CREATE INDEX outbox_pending_idx ON outbox (destination, next_attempt_at, id)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX outbox_dead_idx ON outbox (destination, id)
    WHERE delivered_at IS NULL AND dead_at IS NOT NULL;
