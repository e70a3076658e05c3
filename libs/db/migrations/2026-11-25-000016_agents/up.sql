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
