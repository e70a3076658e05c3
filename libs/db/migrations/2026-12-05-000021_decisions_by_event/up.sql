-- One decision per strategy and listing event, indexed by the event first: the agents ask which
-- strategies decided on a batch of events (a replay) by the events' sequences, and a new
-- event's decisions land at the end of the index.
DROP INDEX decisions_one_per_event;
CREATE UNIQUE INDEX decisions_one_per_event ON decisions (event_sequence, strategy_id) WHERE event_sequence IS NOT NULL;
