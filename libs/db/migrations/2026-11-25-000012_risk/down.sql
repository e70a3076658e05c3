DROP TABLE risk_states;
DROP INDEX risk_alerts_open_suspicious;
DROP INDEX risk_alerts_unnotified;
ALTER TABLE risk_alerts
    DROP CONSTRAINT risk_alerts_dedup_key_unique,
    DROP COLUMN next_notify_at,
    DROP COLUMN notify_attempts,
    DROP COLUMN notified_at,
    DROP COLUMN dedup_key;
DELETE FROM risk_alerts WHERE kind = 'emergency_stop' OR limit_name = 'emergency_threshold';
ALTER TABLE risk_alerts DROP CONSTRAINT risk_alerts_limit_name;
ALTER TABLE risk_alerts ADD CONSTRAINT risk_alerts_limit_name
    CHECK (limit_name IN ('daily', 'weekly', 'monthly', 'total', 'per_moment', 'reserve'));
ALTER TABLE risk_alerts DROP CONSTRAINT risk_alerts_kind;
ALTER TABLE risk_alerts ADD CONSTRAINT risk_alerts_kind
    CHECK (kind IN ('limit_approached', 'limit_reached', 'suspicious_activity'));
DROP TABLE emergency_stop_events;
ALTER TABLE emergency_stops DROP COLUMN released_by, DROP COLUMN engaged_by;
DROP INDEX holds_user_created;
DROP INDEX holds_placed_expiry;
ALTER TABLE holds DROP COLUMN origin, DROP COLUMN expires_at;
ALTER TABLE budget_limit_changes DROP COLUMN time_zone, DROP COLUMN emergency_threshold_cents;
ALTER TABLE budget_limits DROP COLUMN time_zone, DROP COLUMN emergency_threshold_cents;
