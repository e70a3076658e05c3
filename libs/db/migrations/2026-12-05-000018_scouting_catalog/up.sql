-- Scouting's own catalog: what valuing needs of the marketplace's players, moments, listings
-- and sales, kept by scouting from the marketplace's `market_catalog` messages (see the outbox),
-- so that scouting reads only tables it owns. Filled here from the marketplace's tables once;
-- from then on only the messages change it.
CREATE TABLE scouting_players (
    id              text PRIMARY KEY,
    full_name       text NOT NULL,
    team_code       text NOT NULL,
    position        text NOT NULL,
    seasons_played  integer NOT NULL,
    jersey_number   integer
);

CREATE TABLE scouting_moments (
    id              uuid PRIMARY KEY,
    player_id       text NOT NULL REFERENCES scouting_players (id),
    set_name        text NOT NULL,
    play_category   text NOT NULL,
    play_at         timestamptz NOT NULL,
    rarity          text NOT NULL
        CONSTRAINT scouting_moments_rarity_known CHECK (rarity IN ('common', 'fandom', 'rare', 'legendary', 'ultimate')),
    serial_number   integer NOT NULL
);
CREATE INDEX scouting_moments_player_rarity ON scouting_moments (player_id, rarity);

-- `version` is the id of the message that last changed the listing: an older one never
-- overwrites a newer one.
CREATE TABLE scouting_listings (
    id           uuid PRIMARY KEY,
    moment_id    uuid NOT NULL REFERENCES scouting_moments (id),
    price_cents  bigint NOT NULL,
    active       boolean NOT NULL,
    version      bigint NOT NULL
);
CREATE INDEX scouting_listings_active_moment ON scouting_listings (moment_id) WHERE active;

CREATE TABLE scouting_sales (
    id           uuid PRIMARY KEY,
    moment_id    uuid NOT NULL REFERENCES scouting_moments (id),
    price_cents  bigint NOT NULL,
    sold_at      timestamptz NOT NULL
);
CREATE INDEX scouting_sales_moment ON scouting_sales (moment_id, sold_at DESC);

INSERT INTO scouting_players (id, full_name, team_code, position, seasons_played, jersey_number)
    SELECT id, full_name, team_code, position, seasons_played, jersey_number FROM players;
INSERT INTO scouting_moments (id, player_id, set_name, play_category, play_at, rarity, serial_number)
    SELECT id, player_id, set_name, play_category, play_at, rarity, serial_number FROM moments;
INSERT INTO scouting_listings (id, moment_id, price_cents, active, version)
    SELECT id, moment_id, price_cents, state = 'active', 0 FROM listings;
INSERT INTO scouting_sales (id, moment_id, price_cents, sold_at)
    SELECT id, moment_id, price_cents, sold_at FROM sales;

-- Scouting's rows refer to scouting's catalog, not to the marketplace's tables.
ALTER TABLE player_game_stats DROP CONSTRAINT player_game_stats_player_id_fkey,
    ADD CONSTRAINT player_game_stats_player_id_fkey FOREIGN KEY (player_id) REFERENCES scouting_players (id);
ALTER TABLE game_events DROP CONSTRAINT game_events_player_id_fkey,
    ADD CONSTRAINT game_events_player_id_fkey FOREIGN KEY (player_id) REFERENCES scouting_players (id);
ALTER TABLE valuations DROP CONSTRAINT valuations_moment_id_fkey,
    ADD CONSTRAINT valuations_moment_id_fkey FOREIGN KEY (moment_id) REFERENCES scouting_moments (id);
