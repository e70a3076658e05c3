-- Scouting: players' jersey numbers (serials that match them are worth more), game events in
-- the order they were recorded (the stream subscribers resume from), and the comparables index.

ALTER TABLE players ADD COLUMN jersey_number integer
    CONSTRAINT players_jersey_range CHECK (jersey_number BETWEEN 0 AND 99);

-- Writers take one advisory lock before recording (see the repository), so sequences commit
-- in order.
ALTER TABLE game_events ADD COLUMN sequence bigserial;
ALTER TABLE game_events ADD CONSTRAINT game_events_sequence_unique UNIQUE (sequence);

CREATE INDEX moments_player_rarity ON moments (player_id, rarity);
