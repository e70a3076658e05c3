DROP TRIGGER strategies_revision ON strategies;
DROP FUNCTION strategy_revision_next();
DROP TABLE strategy_revision;
