-- Risk: the emergency threshold and the time zone of the periods, hold expiry and origin, who
-- engaged and released an emergency stop (with its history), alert de-duplication and delivery
-- of their notifications, and each user's run of refusals.

ALTER TABLE budget_limits
    ADD COLUMN emergency_threshold_cents bigint
        CONSTRAINT budget_limits_emergency_threshold_positive CHECK (emergency_threshold_cents > 0),
    ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC'
        CONSTRAINT budget_limits_time_zone_length CHECK (char_length(time_zone) BETWEEN 1 AND 64);

ALTER TABLE budget_limit_changes
    ADD COLUMN emergency_threshold_cents bigint
        CONSTRAINT budget_limit_changes_emergency_threshold_positive CHECK (emergency_threshold_cents > 0),
    ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC'
        CONSTRAINT budget_limit_changes_time_zone_length CHECK (char_length(time_zone) BETWEEN 1 AND 64);

ALTER TABLE holds
    ADD COLUMN expires_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN origin text NOT NULL DEFAULT 'manual'
        CONSTRAINT holds_origin CHECK (origin IN ('manual', 'automated'));
ALTER TABLE holds ALTER COLUMN expires_at DROP DEFAULT;
-- The reconciler's work list, and each user's recent purchases (for bursts).
CREATE INDEX holds_placed_expiry ON holds (expires_at) WHERE state = 'placed';
CREATE INDEX holds_user_created ON holds (user_id, created_at);

ALTER TABLE emergency_stops
    ADD COLUMN engaged_by text CONSTRAINT emergency_stops_engaged_by CHECK (engaged_by IN ('user', 'operator', 'system')),
    ADD COLUMN released_by text CONSTRAINT emergency_stops_released_by CHECK (released_by IN ('user', 'operator', 'system'));

-- Every engagement and release, in order: the stop's history.
CREATE TABLE emergency_stop_events (
    id          bigserial PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    action      text NOT NULL CONSTRAINT emergency_stop_events_action CHECK (action IN ('engaged', 'released')),
    actor       text NOT NULL CONSTRAINT emergency_stop_events_actor CHECK (actor IN ('user', 'operator', 'system')),
    reason      text NOT NULL DEFAULT '' CHECK (char_length(reason) <= 500),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX emergency_stop_events_user ON emergency_stop_events (user_id, id);

ALTER TABLE risk_alerts DROP CONSTRAINT risk_alerts_kind;
ALTER TABLE risk_alerts ADD CONSTRAINT risk_alerts_kind
    CHECK (kind IN ('limit_approached', 'limit_reached', 'suspicious_activity', 'emergency_stop'));
ALTER TABLE risk_alerts DROP CONSTRAINT risk_alerts_limit_name;
ALTER TABLE risk_alerts ADD CONSTRAINT risk_alerts_limit_name
    CHECK (limit_name IN ('daily', 'weekly', 'monthly', 'total', 'per_moment', 'reserve', 'emergency_threshold'));
ALTER TABLE risk_alerts
    -- One alert per key and user, such as "daily:2026-11-25:80": once per period per limit.
    ADD COLUMN dedup_key text,
    -- Its notification: sent when notified_at is set; until then tried again from next_notify_at.
    ADD COLUMN notified_at timestamptz,
    ADD COLUMN notify_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN next_notify_at timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT risk_alerts_dedup_key_unique UNIQUE (user_id, dedup_key);
CREATE INDEX risk_alerts_unnotified ON risk_alerts (next_notify_at) WHERE notified_at IS NULL;
-- Automated purchases are paused while a suspicious-activity alert is unacknowledged.
CREATE INDEX risk_alerts_open_suspicious ON risk_alerts (user_id)
    WHERE kind = 'suspicious_activity' AND acknowledged_at IS NULL;

-- Each user's run of refused purchases since the last granted one.
CREATE TABLE risk_states (
    user_id               uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    consecutive_refusals  integer NOT NULL DEFAULT 0 CONSTRAINT risk_states_refusals_non_negative CHECK (consecutive_refusals >= 0),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
