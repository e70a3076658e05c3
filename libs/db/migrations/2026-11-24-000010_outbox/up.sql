-- Messages that must survive a crash: written in the same transaction as the change they
-- announce, delivered afterwards, at least once.

CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL CONSTRAINT outbox_topic_present CHECK (topic <> ''),
    message_key   text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    available_at  timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error    text NOT NULL DEFAULT '',
    delivered_at  timestamptz
);
CREATE INDEX outbox_due ON outbox (topic, available_at) WHERE delivered_at IS NULL;
