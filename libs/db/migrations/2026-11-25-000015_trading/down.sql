DROP TABLE leaderboard_entries;
DROP TABLE equity_snapshots;
ALTER TABLE holdings DROP CONSTRAINT holdings_value_time, DROP COLUMN valued_at, DROP COLUMN value_cents,
    DROP COLUMN listing_id;
ALTER TABLE ledger_transactions DROP COLUMN hash;
DROP INDEX trades_settled;
DROP INDEX trades_user_kind;
DROP INDEX trades_one_purchase_per_listing;
ALTER TABLE trades DROP COLUMN realized_pnl_cents, DROP COLUMN failure_details, DROP COLUMN failure_code,
    DROP COLUMN request_hash, DROP COLUMN relist_price_cents, DROP COLUMN relist_source_id,
    DROP COLUMN max_price_cents, DROP COLUMN buyer_address, DROP COLUMN source_id,
    DROP COLUMN expected_value_cents, DROP COLUMN factors, DROP COLUMN valuation_id;
