ALTER TABLE trades ALTER CONSTRAINT trades_ledger_transaction_id_fkey NOT DEFERRABLE;
