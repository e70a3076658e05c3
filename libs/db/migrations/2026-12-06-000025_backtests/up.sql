-- A backtest: a seeded simulated season replayed through the agents' decision code for some of
-- a user's strategies, each on a paper ledger. Running until its report is stored (or it fails).
CREATE TABLE backtests (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    state text NOT NULL CONSTRAINT backtests_state CHECK (state IN ('running', 'succeeded', 'failed')),
    strategy_ids uuid[] NOT NULL,
    seed bigint NOT NULL,
    days integer NOT NULL CONSTRAINT backtests_days CHECK (days > 0),
    starting_cents bigint NOT NULL CONSTRAINT backtests_starting CHECK (starting_cents > 0),
    hold_days integer NOT NULL CONSTRAINT backtests_hold CHECK (hold_days >= 0),
    days_done integer NOT NULL DEFAULT 0,
    report jsonb,
    chart_svg text,
    failure_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CONSTRAINT backtests_finished CHECK ((state = 'running') = (finished_at IS NULL)),
    CONSTRAINT backtests_reported CHECK ((state = 'succeeded') = (report IS NOT NULL))
);
CREATE INDEX backtests_by_user ON backtests (user_id, created_at DESC, id DESC);
-- At most one backtest of a user runs at a time.
CREATE UNIQUE INDEX backtests_one_running ON backtests (user_id) WHERE state = 'running';
