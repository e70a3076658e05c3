-- Valuations of moments and the factors behind them (owned by the scouting service).

CREATE TABLE valuations (
    id                uuid PRIMARY KEY,
    moment_id         uuid NOT NULL REFERENCES moments (id),
    fair_value_cents  bigint NOT NULL CONSTRAINT valuations_fair_value_non_negative CHECK (fair_value_cents >= 0),
    confidence        double precision NOT NULL CONSTRAINT valuations_confidence_range CHECK (confidence BETWEEN 0 AND 1),
    recommendation    text NOT NULL CONSTRAINT valuations_recommendation CHECK (recommendation IN ('strong_buy', 'buy', 'hold', 'sell')),
    risk_score        double precision NOT NULL CONSTRAINT valuations_risk_range CHECK (risk_score BETWEEN 0 AND 1),
    price_cents       bigint CHECK (price_cents > 0),
    discount_bps      integer,
    model_version     text NOT NULL,
    computed_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX valuations_moment ON valuations (moment_id, computed_at DESC);

CREATE TABLE valuation_factors (
    valuation_id  uuid NOT NULL REFERENCES valuations (id) ON DELETE CASCADE,
    rank          integer NOT NULL CHECK (rank >= 1),
    name          text NOT NULL,
    weight        double precision NOT NULL CONSTRAINT valuation_factors_weight_range CHECK (weight BETWEEN 0 AND 1),
    impact_cents  bigint NOT NULL,
    explanation   text NOT NULL CONSTRAINT valuation_factors_explained CHECK (explanation <> ''),
    PRIMARY KEY (valuation_id, rank)
);
