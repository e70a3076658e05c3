-- A running backtest can be cancelled by its user: it ends 'cancelled', with when and why.
ALTER TABLE backtests DROP CONSTRAINT backtests_state;
ALTER TABLE backtests ADD CONSTRAINT backtests_state
    CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled'));
