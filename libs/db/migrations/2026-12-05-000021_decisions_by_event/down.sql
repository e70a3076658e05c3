DROP INDEX decisions_one_per_event;
CREATE UNIQUE INDEX decisions_one_per_event ON decisions (strategy_id, event_sequence) WHERE event_sequence IS NOT NULL;
