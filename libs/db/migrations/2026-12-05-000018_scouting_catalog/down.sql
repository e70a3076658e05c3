ALTER TABLE valuations DROP CONSTRAINT valuations_moment_id_fkey,
    ADD CONSTRAINT valuations_moment_id_fkey FOREIGN KEY (moment_id) REFERENCES moments (id);
ALTER TABLE game_events DROP CONSTRAINT game_events_player_id_fkey,
    ADD CONSTRAINT game_events_player_id_fkey FOREIGN KEY (player_id) REFERENCES players (id);
ALTER TABLE player_game_stats DROP CONSTRAINT player_game_stats_player_id_fkey,
    ADD CONSTRAINT player_game_stats_player_id_fkey FOREIGN KEY (player_id) REFERENCES players (id);
DROP TABLE scouting_sales;
DROP TABLE scouting_listings;
DROP TABLE scouting_moments;
DROP TABLE scouting_players;
