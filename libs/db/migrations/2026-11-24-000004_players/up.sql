-- Players, their game lines and game events (owned by the scouting service).

CREATE TABLE players (
    id              text PRIMARY KEY,
    full_name       text NOT NULL CHECK (full_name <> ''),
    team_code       text NOT NULL CONSTRAINT players_team_code_format CHECK (team_code ~ '^[A-Z]{3}$'),
    position        text NOT NULL,
    seasons_played  integer NOT NULL CONSTRAINT players_seasons_positive CHECK (seasons_played >= 1)
);

CREATE TABLE player_game_stats (
    game_id        text NOT NULL,
    player_id      text NOT NULL REFERENCES players (id),
    game_at        timestamptz NOT NULL,
    opponent_code  text NOT NULL CHECK (opponent_code ~ '^[A-Z]{3}$'),
    minutes        integer NOT NULL CHECK (minutes BETWEEN 0 AND 70),
    points         integer NOT NULL CHECK (points >= 0),
    rebounds       integer NOT NULL CHECK (rebounds >= 0),
    assists        integer NOT NULL CHECK (assists >= 0),
    steals         integer NOT NULL CHECK (steals >= 0),
    blocks         integer NOT NULL CHECK (blocks >= 0),
    turnovers      integer NOT NULL CHECK (turnovers >= 0),
    PRIMARY KEY (game_id, player_id)
);
CREATE INDEX player_game_stats_player ON player_game_stats (player_id, game_at DESC);

CREATE TABLE game_events (
    id           text PRIMARY KEY,
    game_id      text NOT NULL,
    player_id    text NOT NULL REFERENCES players (id),
    is_final     boolean NOT NULL,
    highlights   text[] NOT NULL DEFAULT '{}',
    occurred_at  timestamptz NOT NULL,
    ingested_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX game_events_player ON game_events (player_id, occurred_at DESC);
CREATE INDEX game_events_ingested ON game_events (ingested_at);
