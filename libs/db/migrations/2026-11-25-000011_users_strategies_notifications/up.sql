-- What the user, strategy and notification services need beyond the first schema: sign-in
-- throttling, strategy priority and daily scans, typed notification links, deduplicated
-- operator alerts, and webhook deliveries claimed with leases, every attempt recorded.

-- Failed sign-ins per email (lower case), whether or not a user has that email, so that the
-- answer never tells which emails exist.
CREATE TABLE sign_in_failures (
    email_key         text PRIMARY KEY CONSTRAINT sign_in_failures_email_key_present CHECK (email_key <> ''),
    failures          integer NOT NULL DEFAULT 0 CONSTRAINT sign_in_failures_count_non_negative CHECK (failures >= 0),
    window_started_at timestamptz NOT NULL DEFAULT now(),
    locked_until      timestamptz
);

ALTER TABLE strategies
    ADD COLUMN priority integer NOT NULL DEFAULT 50 CONSTRAINT strategies_priority_range CHECK (priority BETWEEN 1 AND 100),
    ADD COLUMN scan_time text CONSTRAINT strategies_scan_time_format CHECK (scan_time ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
    ADD COLUMN scan_time_zone text CONSTRAINT strategies_scan_time_zone_present CHECK (scan_time_zone <> ''),
    ADD CONSTRAINT strategies_scan_complete CHECK ((scan_time IS NULL) = (scan_time_zone IS NULL));
CREATE INDEX strategies_active_kind ON strategies (kind, id) WHERE state = 'active';

UPDATE strategy_templates
   SET parameters = parameters || '{"stat_triggers": [{"stat": "points", "at_least": 40}, {"stat": "rebounds", "at_least": 20}, {"stat": "assists", "at_least": 15}]}'
 WHERE id = 'post-game-spike';

-- Typed links to what a notification is about: [{"kind": "trade", "id": "..."}].
ALTER TABLE notifications
    ADD COLUMN links jsonb NOT NULL DEFAULT '[]' CONSTRAINT notifications_links_array CHECK (jsonb_typeof(links) = 'array');

ALTER TABLE system_alerts
    ADD COLUMN dedup_key text CONSTRAINT system_alerts_dedup_key_present CHECK (dedup_key <> ''),
    ADD CONSTRAINT system_alerts_dedup_key_unique UNIQUE (dedup_key);

-- A delivery is of a user's notification or of an operator alert; it is sent to the URL it
-- was made for, by the worker that holds its lease.
ALTER TABLE deliveries
    ALTER COLUMN notification_id DROP NOT NULL,
    ADD COLUMN system_alert_id uuid REFERENCES system_alerts (id) ON DELETE CASCADE,
    ADD COLUMN url text NOT NULL DEFAULT '' ,
    ADD COLUMN lease_owner uuid,
    ADD COLUMN lease_expires_at timestamptz,
    ADD CONSTRAINT deliveries_one_subject CHECK ((notification_id IS NULL) <> (system_alert_id IS NULL)),
    ADD CONSTRAINT deliveries_lease_complete CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL));
ALTER TABLE deliveries ALTER COLUMN url DROP DEFAULT;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_url_format CHECK (url ~ '^https?://[^\s]+$');
CREATE INDEX deliveries_notification ON deliveries (notification_id, created_at DESC);

CREATE TABLE delivery_attempts (
    delivery_id   uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt       integer NOT NULL CONSTRAINT delivery_attempts_number_positive CHECK (attempt >= 1),
    http_status   integer NOT NULL DEFAULT 0,
    error         text NOT NULL DEFAULT '',
    started_at    timestamptz NOT NULL,
    duration_ms   integer NOT NULL CONSTRAINT delivery_attempts_duration_non_negative CHECK (duration_ms >= 0),
    PRIMARY KEY (delivery_id, attempt)
);
