-- Artifacts: content-addressed metadata of files kept on IPFS or a blob store (proofs,
-- logs, test cases, binaries, documents), keyed by their CID, and the events they back.
CREATE TABLE artifacts (
    cid          text PRIMARY KEY,
    -- Pages and outbox rows refer to it.
    uid          uuid NOT NULL UNIQUE,
    sha256       text NOT NULL CONSTRAINT artifacts_sha256 CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size         bigint NOT NULL CONSTRAINT artifacts_size CHECK (size >= 0),
    media_type   text NOT NULL,
    kind         text NOT NULL
        CONSTRAINT artifacts_kind CHECK (kind IN ('proof', 'log', 'test_case', 'binary', 'document')),
    owner_chain  text NOT NULL,
    owner        text NOT NULL,
    name         text,
    -- The body it was recorded with: the same CID with another body is a conflict.
    digest       text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
-- An owner's artifacts, newest first; a kind's.
CREATE INDEX artifacts_owner_idx ON artifacts (owner, recorded_at DESC, uid);
CREATE INDEX artifacts_kind_idx ON artifacts (kind, recorded_at DESC, uid);
CREATE INDEX artifacts_recorded_idx ON artifacts (recorded_at DESC, uid);

-- Events an artifact was recorded as backing (events also name one in their own
-- `artifact` column).
CREATE TABLE artifact_events (
    cid        text NOT NULL REFERENCES artifacts (cid),
    event_uid  uuid NOT NULL,
    PRIMARY KEY (cid, event_uid)
);
CREATE INDEX artifact_events_event_idx ON artifact_events (event_uid);

-- The events naming an artifact.
CREATE INDEX events_artifact_idx ON events (artifact) WHERE artifact IS NOT NULL;
