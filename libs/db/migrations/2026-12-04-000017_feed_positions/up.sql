-- Where each market feed is: the position after its last stored batch, written in the same
-- transaction as the batch, so a restarted marketplace goes on from there (the simulator
-- continues its market instead of opening a second one; a real feed resumes at its cursor).
CREATE TABLE feed_positions (
    feed        text PRIMARY KEY CONSTRAINT feed_positions_feed_length CHECK (char_length(feed) BETWEEN 1 AND 64),
    position    text NOT NULL CONSTRAINT feed_positions_position_length CHECK (char_length(position) BETWEEN 1 AND 4096),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
