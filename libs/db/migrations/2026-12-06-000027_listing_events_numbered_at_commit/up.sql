-- Listing events are numbered as their transaction commits. Readers resume after the last
-- sequence they saw, so sequences must become visible in order: a reader that has seen n+1
-- never gets n later. An event is stored with a draft number (negative, seen by nobody else)
-- and, at its transaction's commit, a deferred trigger takes the listing events lock and gives
-- it the next sequence. The lock is held from there to the end of the commit only, inside the
-- server, so transactions that append events commit one after another without waiting on each
-- other's work or round trips. A transaction that rolls back uses no sequence.
CREATE SEQUENCE listing_events_draft AS bigint;
ALTER TABLE listing_events ALTER COLUMN sequence SET DEFAULT -nextval('listing_events_draft');

CREATE FUNCTION listing_events_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('listing_events', 0));
    UPDATE listing_events SET sequence = nextval('listing_events_sequence_seq') WHERE sequence = NEW.sequence;
    RETURN NULL;
END
$$;

-- Deferred row triggers fire at commit in the order the rows were inserted.
CREATE CONSTRAINT TRIGGER listing_events_number
    AFTER INSERT ON listing_events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION listing_events_number();
