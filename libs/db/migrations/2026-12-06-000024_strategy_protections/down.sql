DROP INDEX decisions_awaiting_approval;
ALTER TABLE decisions DROP CONSTRAINT decisions_awaiting_has_deadline;
ALTER TABLE decisions DROP COLUMN approval_expires_at;
UPDATE decisions SET outcome = 'skip' WHERE outcome = 'awaiting_approval';
ALTER TABLE decisions DROP CONSTRAINT decisions_outcome;
ALTER TABLE decisions ADD CONSTRAINT decisions_outcome CHECK (outcome IN ('buy', 'skip', 'refused'));
DROP INDEX strategy_outcomes_by_time;
ALTER TABLE strategy_outcomes DROP COLUMN occurred_at, DROP COLUMN moment_id;
ALTER TABLE strategies DROP COLUMN protections_reset_at, DROP COLUMN protections;
