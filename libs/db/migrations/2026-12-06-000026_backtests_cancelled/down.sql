UPDATE backtests SET state = 'failed' WHERE state = 'cancelled';
ALTER TABLE backtests DROP CONSTRAINT backtests_state;
ALTER TABLE backtests ADD CONSTRAINT backtests_state CHECK (state IN ('running', 'succeeded', 'failed'));
