ALTER TABLE valuations DROP COLUMN valued_at;
