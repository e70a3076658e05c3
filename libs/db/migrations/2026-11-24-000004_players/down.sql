DROP TABLE game_events; DROP TABLE player_game_stats; DROP TABLE players;
