-- Users, their Flow wallets and their access tokens (owned by the user service).

CREATE TABLE users (
    id                   uuid PRIMARY KEY,
    display_name         text NOT NULL CONSTRAINT users_display_name_length CHECK (char_length(display_name) BETWEEN 1 AND 64),
    email                text NOT NULL CONSTRAINT users_email_format CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    password_hash        text NOT NULL CONSTRAINT users_password_hash_present CHECK (password_hash <> ''),
    leaderboard_opt_out  boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_unique ON users (lower(email));

CREATE TABLE wallets (
    user_id           uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    flow_address      text NOT NULL CONSTRAINT wallets_flow_address_format CHECK (flow_address ~ '^0x[0-9a-f]{16}$'),
    connected         boolean NOT NULL DEFAULT true,
    registered_at     timestamptz NOT NULL DEFAULT now(),
    state_changed_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT wallets_flow_address_unique UNIQUE (flow_address)
);

CREATE TABLE access_tokens (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  text NOT NULL CONSTRAINT access_tokens_hash_unique UNIQUE,
    label       text NOT NULL DEFAULT '' CONSTRAINT access_tokens_label_length CHECK (char_length(label) <= 64),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CONSTRAINT access_tokens_expiry_after_creation CHECK (expires_at > created_at)
);
CREATE INDEX access_tokens_user ON access_tokens (user_id, created_at DESC);
