ALTER TABLE market_sources DROP COLUMN lag_blocks, DROP COLUMN lag_seconds;
