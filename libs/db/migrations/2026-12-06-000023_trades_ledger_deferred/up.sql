-- A settlement names its ledger transaction (the trade's own id) on the trade first and posts
-- the transfer last, just before its commit: the transfer's entries update the market's and the
-- fees' account rows, which every purchase shares, so they are held for the shortest time. The
-- trade's reference is checked at the commit, when the ledger transaction exists.
ALTER TABLE trades ALTER CONSTRAINT trades_ledger_transaction_id_fkey DEFERRABLE INITIALLY DEFERRED;
