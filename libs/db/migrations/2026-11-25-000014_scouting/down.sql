DROP INDEX moments_player_rarity;
ALTER TABLE game_events DROP CONSTRAINT game_events_sequence_unique, DROP COLUMN sequence;
ALTER TABLE players DROP COLUMN jersey_number;
