-- Trading: what a trade needs to be replayed and explained, a purchase at most once per
-- listing, ledger hashes, last known values, equity snapshots and leaderboards.

ALTER TABLE trades
    ADD COLUMN valuation_id uuid,
    ADD COLUMN factors jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN expected_value_cents bigint NOT NULL DEFAULT 0
        CONSTRAINT trades_expected_value_non_negative CHECK (expected_value_cents >= 0),
    ADD COLUMN source_id text NOT NULL DEFAULT '',
    ADD COLUMN buyer_address text NOT NULL DEFAULT '',
    ADD COLUMN max_price_cents bigint NOT NULL DEFAULT 0,
    -- The relist of an arbitrage: where and at what price (zero and empty otherwise).
    ADD COLUMN relist_source_id text NOT NULL DEFAULT '',
    ADD COLUMN relist_price_cents bigint NOT NULL DEFAULT 0,
    -- A hash of the request's parameters: the same key with other parameters is refused.
    ADD COLUMN request_hash text NOT NULL DEFAULT '',
    -- A failed trade's status, so that a replay answers exactly as the first call did.
    ADD COLUMN failure_code integer,
    ADD COLUMN failure_details jsonb,
    ADD COLUMN realized_pnl_cents bigint NOT NULL DEFAULT 0;

-- One purchase of a listing is under way or done at a time: a taken listing always has
-- exactly one trade to answer for it.
CREATE UNIQUE INDEX trades_one_purchase_per_listing ON trades (listing_id)
    WHERE kind = 'purchase' AND state <> 'failed';
CREATE INDEX trades_user_kind ON trades (user_id, kind, created_at DESC);
CREATE INDEX trades_settled ON trades (settled_at) WHERE state = 'settled';

-- The transaction hash: what a chain would give back for the transfer.
ALTER TABLE ledger_transactions ADD COLUMN hash text NOT NULL DEFAULT '';

ALTER TABLE holdings
    ADD COLUMN listing_id uuid,
    ADD COLUMN value_cents bigint,
    ADD COLUMN valued_at timestamptz,
    ADD CONSTRAINT holdings_value_time CHECK ((value_cents IS NULL) = (valued_at IS NULL));

-- A user's equity (cash and moments at market value) and deposits so far, once a day: the
-- base of the day's, week's and month's returns.
CREATE TABLE equity_snapshots (
    user_id         uuid NOT NULL REFERENCES users (id),
    taken_at        timestamptz NOT NULL,
    equity_cents    bigint NOT NULL,
    deposits_cents  bigint NOT NULL,
    PRIMARY KEY (user_id, taken_at)
);

CREATE TABLE leaderboard_entries (
    metric       text NOT NULL,
    period       text NOT NULL,
    rank         integer NOT NULL CONSTRAINT leaderboard_entries_rank_positive CHECK (rank >= 1),
    user_id      uuid NOT NULL REFERENCES users (id),
    alias        text NOT NULL,
    value        bigint NOT NULL,
    computed_at  timestamptz NOT NULL,
    PRIMARY KEY (metric, period, rank),
    CONSTRAINT leaderboard_entries_user_once UNIQUE (metric, period, user_id)
);
