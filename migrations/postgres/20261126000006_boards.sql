-- Declared boards (written by `meridian migrate` from catalogue/kinds.json), and the
-- scores of manual boards, which `setScore` writes here before Redis so that reconcile
-- can rebuild them.
CREATE TABLE boards (
    name text PRIMARY KEY,
    definition jsonb NOT NULL,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE board_scores (
    board text NOT NULL,
    -- '' for an all-time board; otherwise the period's name (2026-11-24, 2026-W48, 2026-11).
    period text NOT NULL,
    member text NOT NULL,
    score double precision NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (board, period, member)
);
