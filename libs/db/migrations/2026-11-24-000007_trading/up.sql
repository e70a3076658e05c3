-- The double-entry ledger (paper trading), trades, holdings and idempotency keys (owned by the
-- trading service).

-- 'user_cash' is a user's paper money; 'funding' is where deposits come from; 'market' stands
-- for every outside buyer and seller; 'fees' collects marketplace fees. Only user accounts must
-- stay non-negative; the others mirror the outside world, so the sum of all balances is zero.
CREATE TABLE ledger_accounts (
    id             uuid PRIMARY KEY,
    kind           text NOT NULL CONSTRAINT ledger_accounts_kind CHECK (kind IN ('user_cash', 'funding', 'market', 'fees')),
    user_id        uuid REFERENCES users (id),
    balance_cents  bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_accounts_user_balance_non_negative CHECK (kind <> 'user_cash' OR balance_cents >= 0),
    CONSTRAINT ledger_accounts_owner CHECK ((kind = 'user_cash') = (user_id IS NOT NULL))
);
CREATE UNIQUE INDEX ledger_accounts_one_per_user ON ledger_accounts (user_id) WHERE kind = 'user_cash';
CREATE UNIQUE INDEX ledger_accounts_one_system_account ON ledger_accounts (kind) WHERE kind <> 'user_cash';
INSERT INTO ledger_accounts (id, kind) VALUES
    ('00000000-0000-0000-0000-00000000f001', 'funding'),
    ('00000000-0000-0000-0000-00000000f002', 'market'),
    ('00000000-0000-0000-0000-00000000f003', 'fees');

CREATE TABLE ledger_transactions (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL CONSTRAINT ledger_transactions_kind CHECK (kind IN ('deposit', 'purchase', 'sale')),
    description  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledger_entries (
    id              bigserial PRIMARY KEY,
    transaction_id  uuid NOT NULL REFERENCES ledger_transactions (id),
    account_id      uuid NOT NULL REFERENCES ledger_accounts (id),
    amount_cents    bigint NOT NULL CONSTRAINT ledger_entries_amount_non_zero CHECK (amount_cents <> 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id);
CREATE INDEX ledger_entries_transaction ON ledger_entries (transaction_id);

-- Entries move balances.
CREATE FUNCTION ledger_apply_entry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ledger_accounts SET balance_cents = balance_cents + NEW.amount_cents WHERE id = NEW.account_id;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_entries_apply AFTER INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_apply_entry();

-- Entries are never changed or removed.
CREATE FUNCTION ledger_entries_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are immutable' USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entries_immutable';
END $$;
CREATE TRIGGER ledger_entries_no_change BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_immutable();

-- Balances change only through entries.
CREATE FUNCTION ledger_balance_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 AND NEW.balance_cents <> OLD.balance_cents THEN
        RAISE EXCEPTION 'ledger balances change only through ledger entries'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_accounts_balance_through_entries';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_accounts_balance_guard BEFORE UPDATE ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_balance_guard();

-- Money is conserved: at commit, the entries of every transaction add up to zero.
CREATE FUNCTION ledger_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
BEGIN
    SELECT COALESCE(sum(amount_cents), 0) INTO total FROM ledger_entries WHERE transaction_id = NEW.transaction_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance (off by % cents)', NEW.transaction_id, total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_transactions_balanced';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced();

CREATE TABLE trades (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id),
    kind             text NOT NULL CONSTRAINT trades_kind CHECK (kind IN ('purchase', 'sale_listing', 'sale', 'relist')),
    state            text NOT NULL CONSTRAINT trades_state CHECK (state IN ('pending', 'settled', 'failed')),
    origin           text NOT NULL CONSTRAINT trades_origin CHECK (origin IN ('manual', 'automated')),
    moment_id        uuid NOT NULL REFERENCES moments (id),
    listing_id       uuid REFERENCES listings (id),
    price_cents      bigint NOT NULL CONSTRAINT trades_price_non_negative CHECK (price_cents >= 0),
    fee_cents        bigint NOT NULL DEFAULT 0 CONSTRAINT trades_fee_non_negative CHECK (fee_cents >= 0),
    strategy_id      uuid,
    decision_id      uuid,
    reasoning        text[] NOT NULL DEFAULT '{}',
    idempotency_key  text NOT NULL,
    hold_id          uuid,
    ledger_transaction_id uuid REFERENCES ledger_transactions (id),
    failure_reason   text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    settled_at       timestamptz,
    CONSTRAINT trades_key_unique UNIQUE (user_id, idempotency_key, kind),
    CONSTRAINT trades_settled_time CHECK ((state = 'settled') = (settled_at IS NOT NULL)),
    CONSTRAINT trades_failure_reason CHECK ((state = 'failed') = (failure_reason IS NOT NULL)),
    CONSTRAINT trades_automated_reasoning CHECK (origin = 'manual' OR cardinality(reasoning) >= 1)
);
CREATE INDEX trades_user ON trades (user_id, created_at DESC);
CREATE INDEX trades_pending ON trades (created_at) WHERE state = 'pending';

-- What each user owns, with its cost; one holder per moment at most.
CREATE TABLE holdings (
    moment_id    uuid PRIMARY KEY REFERENCES moments (id),
    user_id      uuid NOT NULL REFERENCES users (id),
    cost_cents   bigint NOT NULL CONSTRAINT holdings_cost_non_negative CHECK (cost_cents >= 0),
    trade_id     uuid REFERENCES trades (id),
    acquired_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX holdings_user ON holdings (user_id, acquired_at DESC);

-- An operation asked for with a key happens at most once; repeats get the first answer.
CREATE TABLE idempotency_keys (
    user_id        uuid NOT NULL REFERENCES users (id),
    key            text NOT NULL CONSTRAINT idempotency_keys_length CHECK (char_length(key) BETWEEN 1 AND 128),
    operation      text NOT NULL,
    request_hash   text NOT NULL,
    response       jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    PRIMARY KEY (user_id, key),
    CONSTRAINT idempotency_keys_completed CHECK ((completed_at IS NULL) = (response IS NULL))
);
