DROP TABLE idempotency_keys; DROP TABLE holdings; DROP TABLE trades;
DROP TABLE ledger_entries; DROP TABLE ledger_transactions; DROP TABLE ledger_accounts;
DROP FUNCTION ledger_transaction_balanced(); DROP FUNCTION ledger_balance_guard();
DROP FUNCTION ledger_entries_immutable(); DROP FUNCTION ledger_apply_entry();
