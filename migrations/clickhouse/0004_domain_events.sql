-- Domain events mirrored from the Postgres outbox (farming, submissions, staking...).
-- ReplacingMergeTree keyed by the event's uid: a redelivered event collapses into one row;
-- reads that must not double-count use FINAL or aggregate by uid. Attributes stay as the
-- JSON text PostgreSQL checked against the kind; amount is the analytics' Float64 copy.
CREATE TABLE IF NOT EXISTS domain_events (
    uid            String,
    id             String,
    kind           String,
    subject_chain  String,
    subject        String,
    amount         Float64,
    has_amount     UInt8,
    attributes     String,
    tx_hash        String,
    block_number   UInt64,
    artifact       String,
    occurred_at    DateTime
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (kind, occurred_at, uid)
