DROP TRIGGER listing_events_number ON listing_events;
DROP FUNCTION listing_events_number();
ALTER TABLE listing_events ALTER COLUMN sequence SET DEFAULT nextval('listing_events_sequence_seq');
DROP SEQUENCE listing_events_draft;
