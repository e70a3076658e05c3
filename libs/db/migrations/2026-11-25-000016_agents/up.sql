-- Agents: what decided each decision (a reason code, the rule, the valuation and its weighted
-- factors, whether data was missing), one decision per strategy and listing event, and where
-- each stream the agents follow was left.

ALTER TABLE decisions
    ADD COLUMN reason_code text NOT NULL DEFAULT 'unspecified',
    ADD COLUMN rule text NOT NULL DEFAULT '',
    ADD COLUMN valuation_id uuid,
    ADD COLUMN factors jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN data_incomplete boolean NOT NULL DEFAULT false,
    ADD COLUMN event_sequence bigint;
CREATE UNIQUE INDEX decisions_one_per_event ON decisions (strategy_id, event_sequence) WHERE event_sequence IS NOT NULL;
CREATE INDEX decisions_strategy_day ON decisions (strategy_id, created_at) WHERE outcome = 'buy';
CREATE INDEX decisions_moment ON decisions (user_id, moment_id);

CREATE TABLE agent_cursors (
    stream      text PRIMARY KEY,
    sequence    bigint NOT NULL CONSTRAINT agent_cursors_sequence_non_negative CHECK (sequence >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A user's automation, paused or running (running unless paused).
CREATE TABLE agent_automation (
    user_id     uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    paused      boolean NOT NULL,
    reason      text NOT NULL DEFAULT '' CONSTRAINT agent_automation_reason_length CHECK (char_length(reason) <= 500),
    changed_at  timestamptz NOT NULL DEFAULT now()
);

-- A scan started by hand under a key happens once.
ALTER TABLE agent_runs
    ADD COLUMN idempotency_key text
        CONSTRAINT agent_runs_idempotency_key_length CHECK (char_length(idempotency_key) BETWEEN 1 AND 128),
    ADD CONSTRAINT agent_runs_user_key_unique UNIQUE (user_id, idempotency_key);

-- Arbitrage opportunities set runs off too.
ALTER TABLE agent_runs DROP CONSTRAINT agent_runs_trigger,
    ADD CONSTRAINT agent_runs_trigger CHECK (trigger IN ('listing_event', 'game_event', 'scheduled_scan', 'manual_scan', 'arbitrage'));

-- A run started by a game event names it; its decisions are made once per strategy, listing
-- and event.
ALTER TABLE agent_runs ADD COLUMN trigger_event text;
ALTER TABLE decisions ADD COLUMN trigger_event text;
CREATE UNIQUE INDEX decisions_one_per_trigger ON decisions (strategy_id, listing_id, trigger_event)
    WHERE trigger_event IS NOT NULL;

-- Each strategy's daily scan slot is taken once (before the scan runs), so that no slot runs
-- twice, whatever restarts or replicas.
CREATE TABLE agent_scan_slots (
    strategy_id  uuid NOT NULL,
    slot         timestamptz NOT NULL,
    run_id       uuid NOT NULL,
    taken_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (strategy_id, slot)
);
