-- The marketplace: every listing change as an ordered event (the stream subscribers resume
-- from), listings created once per seller and key, and the indexes search and arbitrage use.

ALTER TABLE listings
    ADD COLUMN idempotency_key text
        CONSTRAINT listings_idempotency_key_length CHECK (char_length(idempotency_key) BETWEEN 1 AND 128),
    ADD CONSTRAINT listings_seller_key_unique UNIQUE (seller_address, idempotency_key);
CREATE INDEX listings_moment_active ON listings (moment_id, price_cents) WHERE state = 'active';

-- Writers take one advisory lock before appending (see the repository), so sequences commit
-- in order and a reader that has seen sequence n has seen every event before it.
CREATE TABLE listing_events (
    sequence     bigserial PRIMARY KEY,
    kind         text NOT NULL CONSTRAINT listing_events_kind CHECK (kind IN ('created', 'price_changed', 'sold', 'withdrawn')),
    listing_id   uuid NOT NULL REFERENCES listings (id),
    price_cents  bigint NOT NULL CONSTRAINT listing_events_price_positive CHECK (price_cents > 0),
    occurred_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX sales_time ON sales (sold_at);
CREATE INDEX moments_rarity ON moments (rarity);
