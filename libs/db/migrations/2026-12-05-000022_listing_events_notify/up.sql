-- A statement that appends listing events notifies the channel `listing_events`, delivered when
-- its transaction commits: every marketplace process listens and wakes its stream followers.
CREATE FUNCTION listing_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('listing_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER listing_events_notify
    AFTER INSERT ON listing_events
    FOR EACH STATEMENT EXECUTE FUNCTION listing_events_notify();
