-- A strategy's protections (validated by the strategy service), and when the user last lifted
-- them: losses before that time no longer count towards them.
ALTER TABLE strategies
    ADD COLUMN protections jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN protections_reset_at timestamptz;

-- An outcome's moment and the time its trade settled, which the protections' windows read.
ALTER TABLE strategy_outcomes
    ADD COLUMN moment_id uuid,
    ADD COLUMN occurred_at timestamptz;
UPDATE strategy_outcomes SET occurred_at = recorded_at;
ALTER TABLE strategy_outcomes ALTER COLUMN occurred_at SET NOT NULL, ALTER COLUMN occurred_at SET DEFAULT now();
CREATE INDEX strategy_outcomes_by_time ON strategy_outcomes (strategy_id, occurred_at);

-- A purchase chosen by a strategy with manual approval waits for the user's approval until
-- approval_expires_at; then it is bought, declined or expired.
ALTER TABLE decisions DROP CONSTRAINT decisions_outcome;
ALTER TABLE decisions ADD CONSTRAINT decisions_outcome
    CHECK (outcome IN ('buy', 'skip', 'refused', 'awaiting_approval'));
ALTER TABLE decisions ADD COLUMN approval_expires_at timestamptz;
ALTER TABLE decisions ADD CONSTRAINT decisions_awaiting_has_deadline
    CHECK (outcome <> 'awaiting_approval' OR approval_expires_at IS NOT NULL);
CREATE INDEX decisions_awaiting_approval ON decisions (approval_expires_at) WHERE outcome = 'awaiting_approval';
