-- Notifications, preferences, deliveries and operator alerts (owned by the notification service).

CREATE TABLE notifications (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    category         text NOT NULL CONSTRAINT notifications_category CHECK (category IN ('purchase', 'sale', 'risk', 'strategy', 'system')),
    priority         text NOT NULL CONSTRAINT notifications_priority CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    title            text NOT NULL CONSTRAINT notifications_title_length CHECK (char_length(title) BETWEEN 1 AND 120),
    body             text NOT NULL CONSTRAINT notifications_body_length CHECK (char_length(body) <= 4000),
    idempotency_key  text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    read_at          timestamptz,
    CONSTRAINT notifications_key_unique UNIQUE (user_id, idempotency_key)
);
CREATE INDEX notifications_user ON notifications (user_id, created_at DESC);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;

CREATE TABLE notification_preferences (
    user_id               uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    webhook_min_priority  text NOT NULL DEFAULT 'high' CONSTRAINT notification_preferences_priority CHECK (webhook_min_priority IN ('low', 'normal', 'high', 'urgent')),
    webhook_url           text CONSTRAINT notification_preferences_webhook_url CHECK (webhook_url ~ '^https?://[^\s]+$'),
    muted_categories      text[] NOT NULL DEFAULT '{}',
    webhook_secret        text,
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
    id                uuid PRIMARY KEY,
    notification_id   uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    state             text NOT NULL DEFAULT 'pending' CONSTRAINT deliveries_state CHECK (state IN ('pending', 'delivered', 'failed')),
    attempt_count     integer NOT NULL DEFAULT 0 CONSTRAINT deliveries_attempts_non_negative CHECK (attempt_count >= 0),
    last_http_status  integer NOT NULL DEFAULT 0,
    last_error        text NOT NULL DEFAULT '',
    next_attempt_at   timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deliveries_pending_scheduled CHECK ((state = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';

CREATE TABLE system_alerts (
    id              uuid PRIMARY KEY,
    severity        text NOT NULL CONSTRAINT system_alerts_severity CHECK (severity IN ('warning', 'critical')),
    source          text NOT NULL CHECK (source <> ''),
    message         text NOT NULL CONSTRAINT system_alerts_message_length CHECK (char_length(message) BETWEEN 1 AND 4000),
    correlation_id  text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX system_alerts_time ON system_alerts (created_at DESC);
