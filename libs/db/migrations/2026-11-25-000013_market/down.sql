DROP INDEX moments_rarity;
DROP INDEX sales_time;
DROP TABLE listing_events;
DROP INDEX listings_moment_active;
ALTER TABLE listings DROP CONSTRAINT listings_seller_key_unique, DROP COLUMN idempotency_key;
