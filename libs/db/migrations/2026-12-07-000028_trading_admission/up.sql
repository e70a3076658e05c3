-- Admitting a purchase locks the user's cash account (made if missing) and then reads what
-- the admission decides on, in one call: one round trip where there were two, so a user's
-- admissions, which run one at a time, each hold the account's lock for less.
--
-- The read is a statement of its own after the lock, never a part of the locking statement:
-- a function of this kind takes a new snapshot for each statement under READ COMMITTED, so
-- the read sees every purchase the lock's previous holder committed. A single statement would
-- read with the snapshot it took before it waited for the lock, and miss them.
--
-- The lock is FOR NO KEY UPDATE, the lock a balance's update takes: admissions wait for each
-- other and for every change of the balance, never for a transaction that only checked that
-- the account exists. A ledger entry's insert checks its account's key (FOR KEY SHARE) and then
-- moves its balance; an admission that waited FOR UPDATE between the two deadlocked with it
-- (PostgreSQL broke it after its deadlock_timeout, a second).
CREATE FUNCTION trading_admission(p_user uuid, p_key text, p_listing uuid)
RETURNS TABLE (balance_cents bigint, at timestamptz, pending_cents bigint, existing uuid, live_state text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    balance bigint;
BEGIN
    SELECT a.balance_cents INTO balance FROM ledger_accounts a
     WHERE a.user_id = p_user AND a.kind = 'user_cash' FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        INSERT INTO ledger_accounts (id, kind, user_id) VALUES (gen_random_uuid(), 'user_cash', p_user)
            ON CONFLICT DO NOTHING;
        SELECT a.balance_cents INTO STRICT balance FROM ledger_accounts a
         WHERE a.user_id = p_user AND a.kind = 'user_cash' FOR NO KEY UPDATE;
    END IF;
    RETURN QUERY SELECT balance, clock_timestamp(),
        (SELECT coalesce(sum(t.price_cents), 0)::bigint FROM trades t
          WHERE t.user_id = p_user AND t.kind = 'purchase' AND t.state = 'pending'),
        (SELECT t.id FROM trades t
          WHERE t.user_id = p_user AND t.idempotency_key = p_key AND t.kind = 'purchase'),
        (SELECT t.state FROM trades t
          WHERE t.listing_id = p_listing AND t.kind = 'purchase' AND t.state <> 'failed' LIMIT 1);
END
$$;
