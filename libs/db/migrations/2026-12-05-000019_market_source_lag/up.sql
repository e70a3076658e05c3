-- How far a chain-following source is behind the chain's sealed head after its last batch, in
-- blocks and seconds (unset for a source that follows no chain).
ALTER TABLE market_sources
    ADD COLUMN lag_blocks bigint CONSTRAINT market_sources_lag_blocks_not_negative CHECK (lag_blocks >= 0),
    ADD COLUMN lag_seconds bigint CONSTRAINT market_sources_lag_seconds_not_negative CHECK (lag_seconds >= 0);
