DROP TRIGGER listing_events_notify ON listing_events;
DROP FUNCTION listing_events_notify();
