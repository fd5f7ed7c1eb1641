-- Fathuss challenges: a catalogue the admin and service roles write (upsertChallenges),
-- each naming the artifacts of its test cases. Submissions are domain events
-- (challenge_submission) whose `challenge` attribute names a challenge here.
CREATE TABLE challenges (
    id          text PRIMARY KEY CONSTRAINT challenges_id CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    -- Pages refer to it.
    uid         uuid NOT NULL UNIQUE,
    title       text NOT NULL,
    difficulty  text NOT NULL
        CONSTRAINT challenges_difficulty CHECK (difficulty IN ('easy', 'medium', 'hard', 'expert')),
    tags        text[] NOT NULL DEFAULT '{}',
    -- CIDs of recorded TEST_CASE artifacts.
    test_cases  text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX challenges_created_idx ON challenges (created_at DESC, uid);
CREATE INDEX challenges_tags_idx ON challenges USING gin (tags);
