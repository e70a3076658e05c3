-- Budget limits, pending limit changes, holds, spending, emergency stops and risk alerts
-- (owned by the risk service).

-- daily <= weekly <= monthly <= total, for whichever of them are set: limits in force and
-- proposed ones obey the same rule.
CREATE FUNCTION budget_limits_ordered(daily bigint, weekly bigint, monthly bigint, total bigint)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT (daily   IS NULL OR weekly  IS NULL OR daily   <= weekly)
       AND (daily   IS NULL OR monthly IS NULL OR daily   <= monthly)
       AND (daily   IS NULL OR total   IS NULL OR daily   <= total)
       AND (weekly  IS NULL OR monthly IS NULL OR weekly  <= monthly)
       AND (weekly  IS NULL OR total   IS NULL OR weekly  <= total)
       AND (monthly IS NULL OR total   IS NULL OR monthly <= total)
$$;

CREATE TABLE budget_limits (
    user_id           uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    daily_cents       bigint CONSTRAINT budget_limits_daily_positive CHECK (daily_cents > 0),
    weekly_cents      bigint CONSTRAINT budget_limits_weekly_positive CHECK (weekly_cents > 0),
    monthly_cents     bigint CONSTRAINT budget_limits_monthly_positive CHECK (monthly_cents > 0),
    total_cents       bigint CONSTRAINT budget_limits_total_positive CHECK (total_cents > 0),
    per_moment_cents  bigint CONSTRAINT budget_limits_per_moment_positive CHECK (per_moment_cents > 0),
    reserve_cents     bigint CONSTRAINT budget_limits_reserve_non_negative CHECK (reserve_cents >= 0),
    effective_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT budget_limits_ordered CHECK (budget_limits_ordered(daily_cents, weekly_cents, monthly_cents, total_cents))
);

CREATE TABLE budget_limit_changes (
    id                uuid PRIMARY KEY,
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    daily_cents       bigint CONSTRAINT budget_limit_changes_daily_positive CHECK (daily_cents > 0),
    weekly_cents      bigint CONSTRAINT budget_limit_changes_weekly_positive CHECK (weekly_cents > 0),
    monthly_cents     bigint CONSTRAINT budget_limit_changes_monthly_positive CHECK (monthly_cents > 0),
    total_cents       bigint CONSTRAINT budget_limit_changes_total_positive CHECK (total_cents > 0),
    per_moment_cents  bigint CONSTRAINT budget_limit_changes_per_moment_positive CHECK (per_moment_cents > 0),
    reserve_cents     bigint CONSTRAINT budget_limit_changes_reserve_non_negative CHECK (reserve_cents >= 0),
    state             text NOT NULL DEFAULT 'pending' CONSTRAINT budget_limit_changes_state CHECK (state IN ('pending', 'confirmed', 'cancelled', 'expired')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    resolved_at       timestamptz,
    CONSTRAINT budget_limit_changes_ordered CHECK (budget_limits_ordered(daily_cents, weekly_cents, monthly_cents, total_cents)),
    CONSTRAINT budget_limit_changes_resolved CHECK ((state = 'pending') = (resolved_at IS NULL))
);
-- At most one change waits for confirmation per user.
CREATE UNIQUE INDEX budget_limit_changes_one_pending ON budget_limit_changes (user_id) WHERE state = 'pending';

CREATE TABLE holds (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    amount_cents     bigint NOT NULL CONSTRAINT holds_amount_positive CHECK (amount_cents > 0),
    moment_id        uuid NOT NULL,
    idempotency_key  text NOT NULL CONSTRAINT holds_idempotency_key_length CHECK (char_length(idempotency_key) BETWEEN 1 AND 128),
    state            text NOT NULL DEFAULT 'placed' CONSTRAINT holds_state CHECK (state IN ('placed', 'committed', 'released')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    resolved_at      timestamptz,
    release_reason   text,
    CONSTRAINT holds_idempotency_key_unique UNIQUE (user_id, idempotency_key),
    CONSTRAINT holds_resolved CHECK ((state = 'placed') = (resolved_at IS NULL)),
    CONSTRAINT holds_release_reason CHECK ((state = 'released') = (release_reason IS NOT NULL))
);
CREATE INDEX holds_user_placed ON holds (user_id) WHERE state = 'placed';

-- Committed spending: one row per committed hold.
CREATE TABLE spending (
    hold_id       uuid PRIMARY KEY REFERENCES holds (id),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    amount_cents  bigint NOT NULL CONSTRAINT spending_amount_positive CHECK (amount_cents > 0),
    spent_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX spending_user_time ON spending (user_id, spent_at);

CREATE TABLE emergency_stops (
    user_id      uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    engaged      boolean NOT NULL,
    reason       text NOT NULL DEFAULT '' CHECK (char_length(reason) <= 500),
    engaged_at   timestamptz,
    released_at  timestamptz,
    CONSTRAINT emergency_stops_engaged_time CHECK (NOT engaged OR engaged_at IS NOT NULL)
);

CREATE TABLE risk_alerts (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    severity         text NOT NULL CONSTRAINT risk_alerts_severity CHECK (severity IN ('info', 'warning', 'critical')),
    kind             text NOT NULL CONSTRAINT risk_alerts_kind CHECK (kind IN ('limit_approached', 'limit_reached', 'suspicious_activity')),
    limit_name       text CONSTRAINT risk_alerts_limit_name CHECK (limit_name IN ('daily', 'weekly', 'monthly', 'total', 'per_moment', 'reserve')),
    message          text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz
);
CREATE INDEX risk_alerts_user ON risk_alerts (user_id, created_at DESC);
