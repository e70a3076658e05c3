-- The instant a valuation values its moment at: the sales and games up to it counted. A
-- listing decided late is valued as the market stood at its event, not when it was computed.
ALTER TABLE valuations ADD COLUMN valued_at timestamptz;
UPDATE valuations SET valued_at = computed_at;
ALTER TABLE valuations ALTER COLUMN valued_at SET NOT NULL;
ALTER TABLE valuations ADD CONSTRAINT valuations_valued_before_computed CHECK (valued_at <= computed_at);
