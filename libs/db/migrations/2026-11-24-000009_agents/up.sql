-- Agent runs and their decisions (owned by the agents service).

CREATE TABLE agent_runs (
    id                  uuid PRIMARY KEY,
    user_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    trigger             text NOT NULL CONSTRAINT agent_runs_trigger CHECK (trigger IN ('listing_event', 'game_event', 'scheduled_scan', 'manual_scan')),
    state               text NOT NULL DEFAULT 'running' CONSTRAINT agent_runs_state CHECK (state IN ('running', 'succeeded', 'failed')),
    listings_evaluated  integer NOT NULL DEFAULT 0 CHECK (listings_evaluated >= 0),
    decision_count      integer NOT NULL DEFAULT 0 CHECK (decision_count >= 0),
    purchase_count      integer NOT NULL DEFAULT 0 CHECK (purchase_count >= 0),
    attempt_count       integer NOT NULL DEFAULT 1 CHECK (attempt_count >= 1),
    failure_reason      text,
    started_at          timestamptz NOT NULL DEFAULT now(),
    ended_at            timestamptz,
    CONSTRAINT agent_runs_ended CHECK ((state = 'running') = (ended_at IS NULL)),
    CONSTRAINT agent_runs_failure_reason CHECK ((state = 'failed') = (failure_reason IS NOT NULL))
);
CREATE INDEX agent_runs_user ON agent_runs (user_id, started_at DESC);

-- Every automated decision, buy or skip, is recorded with at least one reason.
CREATE TABLE decisions (
    id                uuid PRIMARY KEY,
    run_id            uuid NOT NULL REFERENCES agent_runs (id) ON DELETE CASCADE,
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    strategy_id       uuid NOT NULL,
    listing_id        uuid NOT NULL,
    moment_id         uuid NOT NULL,
    outcome           text NOT NULL CONSTRAINT decisions_outcome CHECK (outcome IN ('buy', 'skip', 'refused')),
    reasons           text[] NOT NULL CONSTRAINT decisions_have_reasons CHECK (cardinality(reasons) >= 1 AND array_position(reasons, '') IS NULL),
    price_cents       bigint NOT NULL CHECK (price_cents > 0),
    fair_value_cents  bigint NOT NULL CHECK (fair_value_cents >= 0),
    confidence        double precision NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    trade_id          uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT decisions_buy_has_trade CHECK (outcome <> 'buy' OR trade_id IS NOT NULL)
);
CREATE INDEX decisions_user ON decisions (user_id, created_at DESC);
CREATE INDEX decisions_run ON decisions (run_id);
