DROP TABLE agent_scan_slots;
DROP INDEX decisions_one_per_trigger;
ALTER TABLE decisions DROP COLUMN trigger_event;
ALTER TABLE agent_runs DROP COLUMN trigger_event;
ALTER TABLE agent_runs DROP CONSTRAINT agent_runs_user_key_unique, DROP COLUMN idempotency_key;
DROP TABLE agent_automation;
DROP TABLE agent_cursors;
DROP INDEX decisions_moment;
DROP INDEX decisions_strategy_day;
DROP INDEX decisions_one_per_event;
ALTER TABLE decisions DROP COLUMN event_sequence, DROP COLUMN data_incomplete, DROP COLUMN factors,
    DROP COLUMN valuation_id, DROP COLUMN rule, DROP COLUMN reason_code;
DELETE FROM agent_runs WHERE trigger = 'arbitrage';
ALTER TABLE agent_runs DROP CONSTRAINT agent_runs_trigger,
    ADD CONSTRAINT agent_runs_trigger CHECK (trigger IN ('listing_event', 'game_event', 'scheduled_scan', 'manual_scan'));
