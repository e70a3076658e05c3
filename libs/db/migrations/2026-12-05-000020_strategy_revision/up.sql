-- The revision of the strategies: one row, moved on by every statement that creates, changes
-- or deletes strategies, in that statement's transaction (a reader that sees the new revision
-- sees the change too). The agents read it to know when the strategies they hold are stale.
CREATE TABLE strategy_revision (
    id boolean PRIMARY KEY DEFAULT true CONSTRAINT strategy_revision_one_row CHECK (id),
    revision bigint NOT NULL DEFAULT 0 CONSTRAINT strategy_revision_not_negative CHECK (revision >= 0)
);
INSERT INTO strategy_revision (id, revision) VALUES (true, 0);

CREATE FUNCTION strategy_revision_next() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE strategy_revision SET revision = revision + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER strategies_revision
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON strategies
    FOR EACH STATEMENT EXECUTE FUNCTION strategy_revision_next();
