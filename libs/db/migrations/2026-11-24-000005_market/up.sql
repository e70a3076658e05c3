-- Market sources, moments, listings, sales and price history (owned by the marketplace service).

CREATE TABLE market_sources (
    id               text PRIMARY KEY CONSTRAINT market_sources_id_format CHECK (id ~ '^[a-z][a-z0-9_-]{0,31}$'),
    display_name     text NOT NULL,
    fee_bps          integer NOT NULL CONSTRAINT market_sources_fee_range CHECK (fee_bps BETWEEN 0 AND 10000),
    enabled          boolean NOT NULL DEFAULT true,
    healthy          boolean NOT NULL DEFAULT true,
    last_error       text NOT NULL DEFAULT '',
    last_success_at  timestamptz
);
INSERT INTO market_sources (id, display_name, fee_bps) VALUES ('simulator', 'Built-in market simulator', 500);

-- A moment has exactly one owner, by construction: one non-null owner address.
CREATE TABLE moments (
    id              uuid PRIMARY KEY,
    player_id       text NOT NULL REFERENCES players (id),
    set_name        text NOT NULL,
    play_category   text NOT NULL,
    play_at         timestamptz NOT NULL,
    rarity          text NOT NULL CONSTRAINT moments_rarity CHECK (rarity IN ('common', 'fandom', 'rare', 'legendary', 'ultimate')),
    serial_number   integer NOT NULL CONSTRAINT moments_serial_positive CHECK (serial_number >= 1),
    edition_size    integer NOT NULL,
    owner_address   text NOT NULL CONSTRAINT moments_owner_address_format CHECK (owner_address ~ '^0x[0-9a-f]{16}$'),
    CONSTRAINT moments_serial_within_edition CHECK (serial_number <= edition_size),
    CONSTRAINT moments_edition_serial_unique UNIQUE (player_id, set_name, play_category, play_at, serial_number)
);
CREATE INDEX moments_player ON moments (player_id);
CREATE INDEX moments_owner ON moments (owner_address);

CREATE TABLE listings (
    id              uuid PRIMARY KEY,
    moment_id       uuid NOT NULL REFERENCES moments (id),
    source_id       text NOT NULL REFERENCES market_sources (id),
    price_cents     bigint NOT NULL CONSTRAINT listings_price_positive CHECK (price_cents > 0),
    seller_address  text NOT NULL CHECK (seller_address ~ '^0x[0-9a-f]{16}$'),
    state           text NOT NULL DEFAULT 'active' CONSTRAINT listings_state CHECK (state IN ('active', 'sold', 'withdrawn')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- A moment is listed at most once per source at a time.
CREATE UNIQUE INDEX listings_one_active_per_source ON listings (moment_id, source_id) WHERE state = 'active';
CREATE INDEX listings_active_price ON listings (price_cents) WHERE state = 'active';

CREATE TABLE sales (
    id              uuid PRIMARY KEY,
    moment_id       uuid NOT NULL REFERENCES moments (id),
    listing_id      uuid REFERENCES listings (id),
    source_id       text NOT NULL REFERENCES market_sources (id),
    price_cents     bigint NOT NULL CONSTRAINT sales_price_positive CHECK (price_cents > 0),
    seller_address  text NOT NULL,
    buyer_address   text NOT NULL,
    sold_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sales_listing_sold_once UNIQUE (listing_id)
);
CREATE INDEX sales_moment ON sales (moment_id, sold_at DESC);

-- Daily price history per moment, kept up to date as sales are recorded.
CREATE TABLE price_points (
    moment_id    uuid NOT NULL REFERENCES moments (id),
    day          date NOT NULL,
    open_cents   bigint NOT NULL CHECK (open_cents > 0),
    high_cents   bigint NOT NULL,
    low_cents    bigint NOT NULL CHECK (low_cents > 0),
    close_cents  bigint NOT NULL CHECK (close_cents > 0),
    sale_count   bigint NOT NULL CHECK (sale_count >= 1),
    PRIMARY KEY (moment_id, day),
    CONSTRAINT price_points_range CHECK (low_cents <= open_cents AND low_cents <= close_cents AND high_cents >= open_cents AND high_cents >= close_cents)
);
