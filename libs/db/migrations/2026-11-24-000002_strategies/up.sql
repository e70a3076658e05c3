-- Strategies, their templates and their performance (owned by the strategy service).

CREATE TABLE strategy_templates (
    id                     text PRIMARY KEY,
    display_name           text NOT NULL,
    description            text NOT NULL,
    kind                   text NOT NULL CONSTRAINT strategy_templates_kind CHECK (kind IN ('rookie_risers', 'post_game_spike', 'arbitrage_mode')),
    parameters             jsonb NOT NULL,
    min_confidence         double precision NOT NULL CHECK (min_confidence BETWEEN 0 AND 1),
    min_discount_bps       integer NOT NULL CHECK (min_discount_bps BETWEEN 0 AND 10000),
    max_price_cents        bigint NOT NULL CHECK (max_price_cents > 0),
    max_purchases_per_day  integer NOT NULL CHECK (max_purchases_per_day BETWEEN 1 AND 1000)
);

CREATE TABLE strategies (
    id                     uuid PRIMARY KEY,
    user_id                uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    display_name           text NOT NULL CONSTRAINT strategies_display_name_length CHECK (char_length(display_name) BETWEEN 1 AND 80),
    kind                   text NOT NULL CONSTRAINT strategies_kind CHECK (kind IN ('rookie_risers', 'post_game_spike', 'arbitrage_mode')),
    state                  text NOT NULL DEFAULT 'paused' CONSTRAINT strategies_state CHECK (state IN ('active', 'paused')),
    parameters             jsonb NOT NULL,
    min_confidence         double precision NOT NULL CONSTRAINT strategies_min_confidence_range CHECK (min_confidence BETWEEN 0 AND 1),
    min_discount_bps       integer NOT NULL CONSTRAINT strategies_min_discount_range CHECK (min_discount_bps BETWEEN 0 AND 10000),
    max_price_cents        bigint NOT NULL CONSTRAINT strategies_max_price_positive CHECK (max_price_cents > 0),
    max_purchases_per_day  integer NOT NULL CONSTRAINT strategies_max_purchases_range CHECK (max_purchases_per_day BETWEEN 1 AND 1000),
    template_id            text REFERENCES strategy_templates (id),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX strategies_user ON strategies (user_id, created_at DESC);
CREATE INDEX strategies_active ON strategies (id) WHERE state = 'active';

CREATE TABLE strategy_performance (
    strategy_id         uuid PRIMARY KEY REFERENCES strategies (id) ON DELETE CASCADE,
    purchase_count      bigint NOT NULL DEFAULT 0 CHECK (purchase_count >= 0),
    sale_count          bigint NOT NULL DEFAULT 0 CHECK (sale_count >= 0),
    spent_cents         bigint NOT NULL DEFAULT 0 CHECK (spent_cents >= 0),
    proceeds_cents      bigint NOT NULL DEFAULT 0 CHECK (proceeds_cents >= 0),
    realized_pnl_cents  bigint NOT NULL DEFAULT 0,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Each trade counts once in a strategy's performance.
CREATE TABLE strategy_outcomes (
    strategy_id         uuid NOT NULL REFERENCES strategies (id) ON DELETE CASCADE,
    trade_id            uuid NOT NULL,
    spent_cents         bigint NOT NULL CHECK (spent_cents >= 0),
    proceeds_cents      bigint NOT NULL CHECK (proceeds_cents >= 0),
    realized_pnl_cents  bigint NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (strategy_id, trade_id)
);

INSERT INTO strategy_templates VALUES
    ('rookie-risers-starter', 'Rookie risers', 'Buys common and fandom moments of rookies whose scoring rose 25% over their season average, before the market notices.',
     'rookie_risers', '{"max_seasons_played": 1, "min_performance_rise_percent": 25.0, "rarities": ["common", "fandom"], "team_codes": []}', 0.7, 1000, 5000, 5),
    ('post-game-spike', 'Post-game spike', 'Buys within six hours of a standout game (game score 40+), while prices lag the performance.',
     'post_game_spike', '{"min_game_score": 40, "buy_window_minutes": 360, "player_ids": [], "rarities": []}', 0.75, 1500, 10000, 3),
    ('arbitrage-conservative', 'Conservative arbitrage', 'Buys where one marketplace lists 8% under another after fees, and relists there at once.',
     'arbitrage_mode', '{"min_spread_bps": 800, "buy_source_ids": [], "relist_source_ids": [], "auto_relist": true}', 0.6, 800, 20000, 10);
