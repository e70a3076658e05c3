//! The double-entry ledger, trades, holdings and idempotency keys.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use fastbreak_db::DatabaseError;
use fastbreak_db::Reuse as _;
use fastbreak_db::schema::{
    equity_snapshots, holdings, idempotency_keys, leaderboard_entries, ledger_accounts, ledger_entries,
    ledger_transactions, trades,
};
use fastbreak_db::{Cursor, Page, PageRequest, text_enum};

text_enum! {
    /// What a ledger account stands for.
    AccountKind {
        /// A user's paper money; never negative.
        UserCash => "user_cash",
        /// Where deposits come from.
        Funding => "funding",
        /// Every outside buyer and seller.
        Market => "market",
        /// Marketplace fees.
        Fees => "fees",
    }
}

/// A ledger account.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = ledger_accounts)]
pub struct LedgerAccount {
    /// Id.
    pub id: Uuid,
    /// What it stands for.
    pub kind: AccountKind,
    /// The user, for user accounts.
    pub user_id: Option<Uuid>,
    /// Balance, moved only by entries.
    pub balance_cents: i64,
    /// Opened.
    pub created_at: DateTime<Utc>,
}

/// A user's cash account, opened on first use (one round trip once it is open).
pub async fn user_account(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<LedgerAccount, DatabaseError> {
    let find = || {
        ledger_accounts::table
            .filter(ledger_accounts::user_id.eq(user_id))
            .filter(ledger_accounts::kind.eq(AccountKind::UserCash))
            .select(LedgerAccount::as_select())
    };
    if let Some(account) = find().first(conn).await.optional()? {
        return Ok(account);
    }
    diesel::insert_into(ledger_accounts::table)
        .values((
            ledger_accounts::id.eq(Uuid::new_v4()),
            ledger_accounts::kind.eq(AccountKind::UserCash),
            ledger_accounts::user_id.eq(Some(user_id)),
        ))
        .on_conflict_do_nothing()
        .reused()
        .execute(conn)
        .await?;
    Ok(find().first(conn).await?)
}

/// The system account of a kind (funding, market or fees).
pub async fn system_account(conn: &mut AsyncPgConnection, kind: AccountKind) -> Result<LedgerAccount, DatabaseError> {
    Ok(ledger_accounts::table
        .filter(ledger_accounts::kind.eq(kind))
        .filter(ledger_accounts::user_id.is_null())
        .select(LedgerAccount::as_select())
        .first(conn)
        .await?)
}

/// The id of the system account of a kind, as the schema opened it (no read needed); `None`
/// for a user's cash account.
pub fn system_account_id(kind: AccountKind) -> Option<Uuid> {
    match kind {
        AccountKind::Funding => Some(uuid::uuid!("00000000-0000-0000-0000-00000000f001")),
        AccountKind::Market => Some(uuid::uuid!("00000000-0000-0000-0000-00000000f002")),
        AccountKind::Fees => Some(uuid::uuid!("00000000-0000-0000-0000-00000000f003")),
        AccountKind::UserCash => None,
    }
}

/// Finds an account.
pub async fn find_account(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<LedgerAccount>, DatabaseError> {
    Ok(ledger_accounts::table.find(id).select(LedgerAccount::as_select()).first(conn).await.optional()?)
}

/// The sum of every account's balance: zero, always (money is conserved).
pub async fn total_balance(conn: &mut AsyncPgConnection) -> Result<i64, DatabaseError> {
    let total: Option<i64> = ledger_accounts::table
        .select(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>(
            "sum(balance_cents)::bigint",
        ))
        .first(conn)
        .await?;
    Ok(total.unwrap_or(0))
}

text_enum! {
    /// What a ledger transaction records.
    LedgerTransactionKind {
        /// Paper funds added.
        Deposit => "deposit",
        /// A moment bought.
        Purchase => "purchase",
        /// A moment sold.
        Sale => "sale",
    }
}

/// A posted ledger transaction.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = ledger_transactions)]
pub struct LedgerTransaction {
    /// Id.
    pub id: Uuid,
    /// What it records.
    pub kind: LedgerTransactionKind,
    /// A sentence saying what happened.
    pub description: String,
    /// Posted.
    pub created_at: DateTime<Utc>,
    /// The transaction's hash: SHA-256 over its id, kind and entries (what a chain would give
    /// back for the transfer).
    pub hash: String,
}

/// One entry of a ledger transaction.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = ledger_entries)]
pub struct LedgerEntry {
    /// Sequence number.
    pub id: i64,
    /// Its transaction.
    pub transaction_id: Uuid,
    /// The account moved.
    pub account_id: Uuid,
    /// Positive credits, negative debits.
    pub amount_cents: i64,
    /// Posted.
    pub created_at: DateTime<Utc>,
}

/// Posts a transaction: every `(account, amount)` entry at once. The entries must add up to
/// zero (the database refuses the commit otherwise) and no user account may go negative.
pub async fn post_transaction(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    kind: LedgerTransactionKind,
    description: &str,
    entries: &[(Uuid, i64)],
) -> Result<LedgerTransaction, DatabaseError> {
    let transaction = diesel::insert_into(ledger_transactions::table)
        .values((
            ledger_transactions::id.eq(id),
            ledger_transactions::kind.eq(kind),
            ledger_transactions::description.eq(description),
            ledger_transactions::hash.eq(transaction_hash(id, kind, entries)),
        ))
        .returning(LedgerTransaction::as_returning())
        .reused()
        .get_result(conn)
        .await?;
    let rows: Vec<_> = entries
        .iter()
        .map(|(account, amount)| {
            (
                ledger_entries::transaction_id.eq(id),
                ledger_entries::account_id.eq(*account),
                ledger_entries::amount_cents.eq(*amount),
            )
        })
        .collect();
    diesel::insert_into(ledger_entries::table).values(rows).reused().execute(conn).await?;
    Ok(transaction)
}

/// The hash of a transaction: SHA-256 over its id, kind and entries, in hex with `0x`.
pub fn transaction_hash(id: Uuid, kind: LedgerTransactionKind, entries: &[(Uuid, i64)]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(id.as_bytes());
    hasher.update(kind.as_str().as_bytes());
    for (account, amount) in entries {
        hasher.update(account.as_bytes());
        hasher.update(amount.to_be_bytes());
    }
    let digest = hasher.finalize();
    let mut text = String::with_capacity(66);
    text.push_str("0x");
    for byte in digest.iter() {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// The entries of a transaction.
pub async fn transaction_entries(
    conn: &mut AsyncPgConnection,
    transaction_id: Uuid,
) -> Result<Vec<LedgerEntry>, DatabaseError> {
    Ok(ledger_entries::table
        .filter(ledger_entries::transaction_id.eq(transaction_id))
        .order(ledger_entries::id)
        .select(LedgerEntry::as_select())
        .load(conn)
        .await?)
}

text_enum! {
    /// What a trade did.
    TradeKind {
        /// Bought.
        Purchase => "purchase",
        /// Listed for sale.
        SaleListing => "sale_listing",
        /// Sold.
        Sale => "sale",
        /// Price changed.
        Relist => "relist",
    }
}

text_enum! {
    /// Where a trade stands.
    TradeState {
        /// Authorised and settling.
        Pending => "pending",
        /// Settled.
        Settled => "settled",
        /// Did not happen.
        Failed => "failed",
    }
}

text_enum! {
    /// Who decided a trade.
    TradeOrigin {
        /// The user.
        Manual => "manual",
        /// The agents.
        Automated => "automated",
    }
}

/// A trade.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = trades)]
pub struct Trade {
    /// Id.
    pub id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// What it did.
    pub kind: TradeKind,
    /// Where it stands.
    pub state: TradeState,
    /// Who decided it.
    pub origin: TradeOrigin,
    /// The moment.
    pub moment_id: Uuid,
    /// The listing bought or created.
    pub listing_id: Option<Uuid>,
    /// Price.
    pub price_cents: i64,
    /// Fee.
    pub fee_cents: i64,
    /// The strategy, for automated trades.
    pub strategy_id: Option<Uuid>,
    /// The decision, for automated trades.
    pub decision_id: Option<Uuid>,
    /// Why, in sentences.
    pub reasoning: Vec<String>,
    /// Its key.
    pub idempotency_key: String,
    /// The risk hold behind it.
    pub hold_id: Option<Uuid>,
    /// The ledger transaction that settled it.
    pub ledger_transaction_id: Option<Uuid>,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Asked for.
    pub created_at: DateTime<Utc>,
    /// Settled.
    pub settled_at: Option<DateTime<Utc>>,
    /// The valuation the decision relied on.
    pub valuation_id: Option<Uuid>,
    /// The weighted factors behind it (JSON: name, weight, impact_cents, explanation).
    pub factors: serde_json::Value,
    /// What the caller expected the moment to be worth (0: not given).
    pub expected_value_cents: i64,
    /// The listing's market source.
    pub source_id: String,
    /// The buyer's wallet address, for purchases.
    pub buyer_address: String,
    /// The most the buyer pays.
    pub max_price_cents: i64,
    /// Where an arbitrage relists (empty otherwise).
    pub relist_source_id: String,
    /// At what price an arbitrage relists (0 otherwise).
    pub relist_price_cents: i64,
    /// A hash of the request's parameters.
    pub request_hash: String,
    /// A failed trade's gRPC status code.
    pub failure_code: Option<i32>,
    /// A failed trade's error details (reason and metadata).
    pub failure_details: Option<serde_json::Value>,
    /// For a sale: what it made over the moment's cost, after the fee.
    pub realized_pnl_cents: i64,
}

/// Records a new trade.
pub async fn insert_trade(conn: &mut AsyncPgConnection, trade: &Trade) -> Result<Trade, DatabaseError> {
    Ok(diesel::insert_into(trades::table)
        .values(trade)
        .returning(Trade::as_returning())
        .reused()
        .get_result(conn)
        .await?)
}

/// Marks a pending trade settled by a ledger transaction.
pub async fn settle_trade(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    ledger_transaction_id: Uuid,
) -> Result<Trade, DatabaseError> {
    diesel::update(trades::table.find(id).filter(trades::state.eq(TradeState::Pending)))
        .set((
            trades::state.eq(TradeState::Settled),
            trades::ledger_transaction_id.eq(Some(ledger_transaction_id)),
            trades::settled_at.eq(Some(Utc::now())),
        ))
        .returning(Trade::as_returning())
        .reused()
        .get_result(conn)
        .await
        .optional()?
        .ok_or(DatabaseError::NotFound("pending trade"))
}

/// Marks a pending trade failed, with the reason.
pub async fn fail_trade(conn: &mut AsyncPgConnection, id: Uuid, reason: &str) -> Result<Trade, DatabaseError> {
    diesel::update(trades::table.find(id).filter(trades::state.eq(TradeState::Pending)))
        .set((trades::state.eq(TradeState::Failed), trades::failure_reason.eq(Some(reason))))
        .returning(Trade::as_returning())
        .reused()
        .get_result(conn)
        .await
        .optional()?
        .ok_or(DatabaseError::NotFound("pending trade"))
}

/// Finds one of a user's trades.
pub async fn find_trade(conn: &mut AsyncPgConnection, user_id: Uuid, id: Uuid) -> Result<Option<Trade>, DatabaseError> {
    Ok(trades::table
        .find(id)
        .filter(trades::user_id.eq(user_id))
        .select(Trade::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Finds the trade of a kind made under a key.
pub async fn find_trade_by_key(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    key: &str,
    kind: TradeKind,
) -> Result<Option<Trade>, DatabaseError> {
    Ok(trades::table
        .filter(trades::user_id.eq(user_id))
        .filter(trades::idempotency_key.eq(key))
        .filter(trades::kind.eq(kind))
        .select(Trade::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A user's trades, newest first, optionally of one kind.
pub async fn list_trades(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    kind: Option<TradeKind>,
    page: PageRequest,
) -> Result<Page<Trade>, DatabaseError> {
    list_trades_by(conn, user_id, kind, None, page).await
}

/// Trades still pending that were asked for before `before`, oldest first (for the reconciler).
pub async fn list_pending_trades(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    size: i64,
) -> Result<Vec<Trade>, DatabaseError> {
    Ok(trades::table
        .filter(trades::state.eq(TradeState::Pending))
        .filter(trades::created_at.lt(before))
        .order((trades::created_at, trades::id))
        .limit(size)
        .select(Trade::as_select())
        .load(conn)
        .await?)
}

/// A moment a user owns, with its cost.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = holdings)]
pub struct Holding {
    /// The moment.
    pub moment_id: Uuid,
    /// The owner.
    pub user_id: Uuid,
    /// What it cost.
    pub cost_cents: i64,
    /// The trade that bought it.
    pub trade_id: Option<Uuid>,
    /// Acquired.
    pub acquired_at: DateTime<Utc>,
    /// The listing it is offered on, if listed.
    pub listing_id: Option<Uuid>,
    /// Its last known market value.
    pub value_cents: Option<i64>,
    /// When that value was read.
    pub valued_at: Option<DateTime<Utc>>,
}

/// Records that a user now holds a moment (replacing any previous holder's record).
pub async fn put_holding(conn: &mut AsyncPgConnection, holding: &Holding) -> Result<Holding, DatabaseError> {
    Ok(diesel::insert_into(holdings::table)
        .values(holding)
        .on_conflict(holdings::moment_id)
        .do_update()
        .set((
            holdings::user_id.eq(holding.user_id),
            holdings::cost_cents.eq(holding.cost_cents),
            holdings::trade_id.eq(holding.trade_id),
            holdings::acquired_at.eq(holding.acquired_at),
        ))
        .returning(Holding::as_returning())
        .reused()
        .get_result(conn)
        .await?)
}

/// Removes a user's holding of a moment (it was sold); false when they did not hold it.
pub async fn remove_holding(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    moment_id: Uuid,
) -> Result<bool, DatabaseError> {
    let removed =
        diesel::delete(holdings::table.find(moment_id).filter(holdings::user_id.eq(user_id))).execute(conn).await?;
    Ok(removed == 1)
}

/// A user's holdings, newest first.
pub async fn list_holdings(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    page: PageRequest,
) -> Result<Page<Holding>, DatabaseError> {
    let mut query = holdings::table
        .filter(holdings::user_id.eq(user_id))
        .select(Holding::as_select())
        .order((holdings::acquired_at.desc(), holdings::moment_id.desc()))
        .limit(page.size + 1)
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(
            holdings::acquired_at
                .lt(after.time)
                .or(holdings::acquired_at.eq(after.time).and(holdings::moment_id.lt(after.id))),
        );
    }
    let rows = query.load(conn).await?;
    Ok(Page::from_rows(rows, page.size, |h| Cursor { time: h.acquired_at, id: h.moment_id }))
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyClaim {
    /// The key is new: this caller does the work, then completes the key.
    New,
    /// The work was done before: here is its first answer.
    Completed(serde_json::Value),
    /// Another call with the key is doing the work now.
    InProgress,
    /// The key was used for a different request.
    Mismatch {
        /// The operation it was used for.
        operation: String,
    },
}

/// Claims a key for an operation and request (a hash of its parameters).
pub async fn claim_idempotency_key(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    key: &str,
    operation: &str,
    request_hash: &str,
) -> Result<IdempotencyClaim, DatabaseError> {
    let inserted = diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::user_id.eq(user_id),
            idempotency_keys::key.eq(key),
            idempotency_keys::operation.eq(operation),
            idempotency_keys::request_hash.eq(request_hash),
        ))
        .on_conflict_do_nothing()
        .reused()
        .execute(conn)
        .await?;
    if inserted == 1 {
        return Ok(IdempotencyClaim::New);
    }
    let (stored_operation, stored_hash, response): (String, String, Option<serde_json::Value>) =
        idempotency_keys::table
            .find((user_id, key))
            .select((idempotency_keys::operation, idempotency_keys::request_hash, idempotency_keys::response))
            .first(conn)
            .await?;
    Ok(if stored_operation != operation || stored_hash != request_hash {
        IdempotencyClaim::Mismatch { operation: stored_operation }
    } else {
        match response {
            Some(response) => IdempotencyClaim::Completed(response),
            None => IdempotencyClaim::InProgress,
        }
    })
}

/// Stores the first answer under a claimed key.
pub async fn complete_idempotency_key(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    key: &str,
    response: &serde_json::Value,
) -> Result<(), DatabaseError> {
    let updated =
        diesel::update(idempotency_keys::table.find((user_id, key)).filter(idempotency_keys::completed_at.is_null()))
            .set((idempotency_keys::response.eq(Some(response)), idempotency_keys::completed_at.eq(Some(Utc::now()))))
            .reused()
            .execute(conn)
            .await?;
    if updated == 1 { Ok(()) } else { Err(DatabaseError::NotFound("claimed idempotency key")) }
}

/// What admitting a purchase decides on, read under the user's account lock.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct AdmissionFacts {
    /// The user's cash balance, read under the lock.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub balance_cents: i64,
    /// The database's clock once the lock is held: the trade's time.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub at: DateTime<Utc>,
    /// What the user's purchases still under way will take from their balance.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub pending_cents: i64,
    /// The user's purchase under this idempotency key, if any.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    pub existing: Option<Uuid>,
    /// The state of the listing's purchase under way or done, if any (one at most).
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub live_state: Option<TradeState>,
}

/// Locks the user's cash account (opening it if missing) until the transaction ends, then
/// reads [`AdmissionFacts`] for a purchase of a listing under a key: one round trip. The read is
/// a statement of its own after the lock (in the database's `trading_admission`), so it sees
/// every purchase committed by the lock's previous holder.
pub async fn lock_for_admission(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    key: &str,
    listing_id: Uuid,
) -> Result<AdmissionFacts, DatabaseError> {
    use diesel::sql_types::{Text, Uuid as SqlUuid};
    Ok(diesel::sql_query(
        "SELECT balance_cents, at, pending_cents, existing, live_state FROM trading_admission($1, $2, $3)",
    )
    .bind::<SqlUuid, _>(user_id)
    .bind::<Text, _>(key)
    .bind::<SqlUuid, _>(listing_id)
    .reused()
    .get_result(conn)
    .await?)
}

/// Records a trade unless one of its kind already has its key; `None` when one has.
pub async fn insert_trade_if_new(conn: &mut AsyncPgConnection, trade: &Trade) -> Result<Option<Trade>, DatabaseError> {
    Ok(diesel::insert_into(trades::table)
        .values(trade)
        .on_conflict((trades::user_id, trades::idempotency_key, trades::kind))
        .do_nothing()
        .returning(Trade::as_returning())
        .reused()
        .get_result(conn)
        .await
        .optional()?)
}

/// Notes the risk hold behind a pending trade; false when the trade is no longer pending.
pub async fn set_trade_hold(conn: &mut AsyncPgConnection, id: Uuid, hold_id: Uuid) -> Result<bool, DatabaseError> {
    let updated = diesel::update(trades::table.find(id).filter(trades::state.eq(TradeState::Pending)))
        .set(trades::hold_id.eq(Some(hold_id)))
        .reused()
        .execute(conn)
        .await?;
    Ok(updated == 1)
}

/// Marks a pending trade failed with the status its caller got (code and details), so that a
/// replay answers the same; `None` when it was no longer pending.
pub async fn fail_trade_with(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    reason: &str,
    code: i32,
    details: &serde_json::Value,
) -> Result<Option<Trade>, DatabaseError> {
    fail_pending(conn, id, false, reason, code, details).await
}

/// Fails a pending trade (only while no hold is noted, when `unheld`), with its status.
async fn fail_pending(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    unheld: bool,
    reason: &str,
    code: i32,
    details: &serde_json::Value,
) -> Result<Option<Trade>, DatabaseError> {
    use diesel::IntoSql;
    let held_or_not = trades::hold_id.is_null().or((!unheld).into_sql::<diesel::sql_types::Bool>());
    let target = trades::table.find(id).filter(trades::state.eq(TradeState::Pending)).filter(held_or_not);
    Ok(diesel::update(target)
        .set((
            trades::state.eq(TradeState::Failed),
            trades::failure_reason.eq(Some(reason)),
            trades::failure_code.eq(Some(code)),
            trades::failure_details.eq(Some(details)),
        ))
        .returning(Trade::as_returning())
        .reused()
        .get_result(conn)
        .await
        .optional()?)
}

/// Marks a pending trade failed only while no hold is noted on it (a repair that must not
/// overtake a call still going on); `None` otherwise.
pub async fn fail_unheld_trade(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    reason: &str,
    code: i32,
    details: &serde_json::Value,
) -> Result<Option<Trade>, DatabaseError> {
    fail_pending(conn, id, true, reason, code, details).await
}

/// Marks a pending trade settled without a ledger transaction (a listing created or repriced:
/// no money moves); `None` when it was no longer pending.
pub async fn complete_trade(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Trade>, DatabaseError> {
    Ok(diesel::update(trades::table.find(id).filter(trades::state.eq(TradeState::Pending)))
        .set((trades::state.eq(TradeState::Settled), trades::settled_at.eq(Some(Utc::now()))))
        .returning(Trade::as_returning())
        .reused()
        .get_result(conn)
        .await
        .optional()?)
}

/// Finds a trade by id, whoever made it.
pub async fn find_trade_by_id(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Trade>, DatabaseError> {
    Ok(trades::table.find(id).select(Trade::as_select()).first(conn).await.optional()?)
}

/// A user's trades, newest first, optionally of one kind and one strategy.
pub async fn list_trades_by(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    kind: Option<TradeKind>,
    strategy_id: Option<Uuid>,
    page: PageRequest,
) -> Result<Page<Trade>, DatabaseError> {
    let mut query = trades::table
        .filter(trades::user_id.eq(user_id))
        .select(Trade::as_select())
        .order((trades::created_at.desc(), trades::id.desc()))
        .limit(page.size + 1)
        .into_boxed();
    if let Some(kind) = kind {
        query = query.filter(trades::kind.eq(kind));
    }
    if let Some(strategy) = strategy_id {
        query = query.filter(trades::strategy_id.eq(strategy));
    }
    if let Some(after) = page.after {
        query = query.filter(
            trades::created_at.lt(after.time).or(trades::created_at.eq(after.time).and(trades::id.lt(after.id))),
        );
    }
    let rows = query.load(conn).await?;
    Ok(Page::from_rows(rows, page.size, |t| Cursor { time: t.created_at, id: t.id }))
}

/// Who holds a moment, locked until the end of the transaction.
pub async fn lock_holding(conn: &mut AsyncPgConnection, moment_id: Uuid) -> Result<Option<Holding>, DatabaseError> {
    Ok(holdings::table.find(moment_id).select(Holding::as_select()).for_update().first(conn).await.optional()?)
}

/// A user's holding of a moment.
pub async fn find_holding(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    moment_id: Uuid,
) -> Result<Option<Holding>, DatabaseError> {
    Ok(holdings::table
        .find(moment_id)
        .filter(holdings::user_id.eq(user_id))
        .select(Holding::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Notes the listing a holding is offered on (or none).
pub async fn set_holding_listing(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    moment_id: Uuid,
    listing_id: Option<Uuid>,
) -> Result<bool, DatabaseError> {
    let updated = diesel::update(holdings::table.find(moment_id).filter(holdings::user_id.eq(user_id)))
        .set(holdings::listing_id.eq(listing_id))
        .reused()
        .execute(conn)
        .await?;
    Ok(updated == 1)
}

/// Every holding of a user, newest first (at most `limit`).
pub async fn all_holdings(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    limit: i64,
) -> Result<Vec<Holding>, DatabaseError> {
    Ok(holdings::table
        .filter(holdings::user_id.eq(user_id))
        .order((holdings::acquired_at.desc(), holdings::moment_id.desc()))
        .limit(limit)
        .select(Holding::as_select())
        .load(conn)
        .await?)
}

/// Keeps the market values just read as the holdings' last known values.
pub async fn set_holding_values(
    conn: &mut AsyncPgConnection,
    values: &[(Uuid, i64)],
    at: DateTime<Utc>,
) -> Result<(), DatabaseError> {
    for (moment, value) in values {
        diesel::update(holdings::table.find(*moment))
            .set((holdings::value_cents.eq(Some(*value)), holdings::valued_at.eq(Some(at))))
            .reused()
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Every moment a user holds, with the user (for checks of ownership).
pub async fn every_holding(conn: &mut AsyncPgConnection) -> Result<Vec<Holding>, DatabaseError> {
    Ok(holdings::table.select(Holding::as_select()).load(conn).await?)
}

/// What a user has spent on purchases and made on sales since `since` (all settled).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TradeTotals {
    /// Spent on purchases.
    pub spent_cents: i64,
    /// Realised on sales, after fees, over cost.
    pub realized_pnl_cents: i64,
}

/// A user's settled purchase and sale totals since `since`.
pub async fn trade_totals(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    since: DateTime<Utc>,
) -> Result<TradeTotals, DatabaseError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        spent: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        realized: i64,
    }
    let row: Row = diesel::sql_query(
        "SELECT COALESCE(sum(price_cents) FILTER (WHERE kind = 'purchase'), 0)::bigint AS spent,
                COALESCE(sum(realized_pnl_cents) FILTER (WHERE kind = 'sale'), 0)::bigint AS realized
           FROM trades WHERE user_id = $1 AND state = 'settled' AND settled_at >= $2",
    )
    .bind::<diesel::sql_types::Uuid, _>(user_id)
    .bind::<diesel::sql_types::Timestamptz, _>(since)
    .get_result(conn)
    .await?;
    Ok(TradeTotals { spent_cents: row.spent, realized_pnl_cents: row.realized })
}

/// Paper funds a user deposited before `before`.
pub async fn deposits_before(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    before: DateTime<Utc>,
) -> Result<i64, DatabaseError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
    }
    let row: Row = diesel::sql_query(
        "SELECT COALESCE(sum(e.amount_cents), 0)::bigint AS total
           FROM ledger_entries e
           JOIN ledger_transactions t ON t.id = e.transaction_id AND t.kind = 'deposit'
           JOIN ledger_accounts a ON a.id = e.account_id AND a.user_id = $1
          WHERE e.created_at < $2",
    )
    .bind::<diesel::sql_types::Uuid, _>(user_id)
    .bind::<diesel::sql_types::Timestamptz, _>(before)
    .get_result(conn)
    .await?;
    Ok(row.total)
}

/// A user's equity at a time, and what they had deposited by then.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = equity_snapshots)]
pub struct EquitySnapshot {
    /// The user.
    pub user_id: Uuid,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// Cash plus moments at market value.
    pub equity_cents: i64,
    /// Deposits so far.
    pub deposits_cents: i64,
}

/// Keeps a snapshot.
pub async fn record_snapshot(conn: &mut AsyncPgConnection, snapshot: &EquitySnapshot) -> Result<(), DatabaseError> {
    diesel::insert_into(equity_snapshots::table).values(snapshot).on_conflict_do_nothing().execute(conn).await?;
    Ok(())
}

/// The latest snapshot at or before `at`, and the user's latest one.
pub async fn snapshot_at(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<EquitySnapshot>, DatabaseError> {
    Ok(equity_snapshots::table
        .filter(equity_snapshots::user_id.eq(user_id))
        .filter(equity_snapshots::taken_at.le(at))
        .order(equity_snapshots::taken_at.desc())
        .select(EquitySnapshot::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A user's snapshots from `start` to `end` (both included), oldest first, thinned evenly to at
/// most `most` (the first and the last kept), with how many the span holds.
pub async fn snapshots_between(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    most: i64,
) -> Result<(Vec<EquitySnapshot>, i64), DatabaseError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        taken_at: DateTime<Utc>,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        equity_cents: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        deposits_cents: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
    }
    // Row n of N is kept when it starts a new one of `most` even buckets, or is the last.
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT taken_at, equity_cents, deposits_cents, total FROM (
             SELECT taken_at, equity_cents, deposits_cents,
                    row_number() OVER (ORDER BY taken_at) - 1 AS n,
                    count(*) OVER () AS total
               FROM equity_snapshots
              WHERE user_id = $1 AND taken_at >= $2 AND taken_at <= $3
         ) s
         WHERE total <= $4 OR n = total - 1 OR (n * ($4 - 1)) / (total - 1) <> ((n - 1) * ($4 - 1)) / (total - 1) OR n = 0
         ORDER BY taken_at",
    )
    .bind::<diesel::sql_types::Uuid, _>(user_id)
    .bind::<diesel::sql_types::Timestamptz, _>(start)
    .bind::<diesel::sql_types::Timestamptz, _>(end)
    .bind::<diesel::sql_types::BigInt, _>(most)
    .load(conn)
    .await?;
    let total = rows.iter().next().map_or(0, |row| row.total);
    let kept = rows
        .into_iter()
        .map(|row| EquitySnapshot {
            user_id,
            taken_at: row.taken_at,
            equity_cents: row.equity_cents,
            deposits_cents: row.deposits_cents,
        })
        .collect();
    Ok((kept, total))
}

/// What ranks a user on the leaderboards over a period.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct LeaderboardFigures {
    /// The user.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub user_id: Uuid,
    /// Spent on purchases settled in the period.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub spent_cents: i64,
    /// Realised on sales settled in the period.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub realized_cents: i64,
    /// Unrealised on moments bought in the period and still held (last known values).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub unrealized_cents: i64,
    /// Purchases in the period now worth more than they cost, plus sales at a gain.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub successful: i64,
    /// Every moment held, at last known value (cost when none).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub portfolio_cents: i64,
}

/// The leaderboard figures of every user who traded since `since` or holds moments.
pub async fn leaderboard_figures(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
) -> Result<Vec<LeaderboardFigures>, DatabaseError> {
    Ok(diesel::sql_query(
        "WITH traders AS (
             SELECT DISTINCT user_id FROM trades WHERE state = 'settled' AND settled_at >= $1
             UNION SELECT DISTINCT user_id FROM holdings)
         SELECT u.user_id,
                COALESCE((SELECT sum(price_cents) FROM trades t WHERE t.user_id = u.user_id AND t.kind = 'purchase'
                           AND t.state = 'settled' AND t.settled_at >= $1), 0)::bigint AS spent_cents,
                COALESCE((SELECT sum(realized_pnl_cents) FROM trades t WHERE t.user_id = u.user_id AND t.kind = 'sale'
                           AND t.state = 'settled' AND t.settled_at >= $1), 0)::bigint AS realized_cents,
                COALESCE((SELECT sum(COALESCE(h.value_cents, h.cost_cents) - h.cost_cents) FROM holdings h
                           WHERE h.user_id = u.user_id AND h.acquired_at >= $1), 0)::bigint AS unrealized_cents,
                ((SELECT count(*) FROM holdings h WHERE h.user_id = u.user_id AND h.acquired_at >= $1
                   AND COALESCE(h.value_cents, 0) > h.cost_cents)
                 + (SELECT count(*) FROM trades t WHERE t.user_id = u.user_id AND t.kind = 'sale'
                   AND t.state = 'settled' AND t.settled_at >= $1 AND t.realized_pnl_cents > 0))::bigint AS successful,
                COALESCE((SELECT sum(COALESCE(h.value_cents, h.cost_cents)) FROM holdings h
                           WHERE h.user_id = u.user_id), 0)::bigint AS portfolio_cents
           FROM traders u",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(since)
    .load(conn)
    .await?)
}

/// A row of a stored leaderboard.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = leaderboard_entries)]
pub struct LeaderboardRow {
    /// What it ranks by.
    pub metric: String,
    /// Over what period.
    pub period: String,
    /// From 1.
    pub rank: i32,
    /// The user (never shown).
    pub user_id: Uuid,
    /// The user's anonymous alias.
    pub alias: String,
    /// The value ranked by.
    pub value: i64,
    /// When it was computed.
    pub computed_at: DateTime<Utc>,
}

/// Replaces one leaderboard with freshly computed rows.
pub async fn replace_leaderboard(
    conn: &mut AsyncPgConnection,
    metric: &str,
    period: &str,
    rows: &[LeaderboardRow],
) -> Result<(), DatabaseError> {
    diesel::delete(
        leaderboard_entries::table
            .filter(leaderboard_entries::metric.eq(metric))
            .filter(leaderboard_entries::period.eq(period)),
    )
    .execute(conn)
    .await?;
    for chunk in rows.chunks(1000) {
        diesel::insert_into(leaderboard_entries::table).values(chunk).execute(conn).await?;
    }
    Ok(())
}

/// A page of a leaderboard, best first, from `offset`.
pub async fn leaderboard_page(
    conn: &mut AsyncPgConnection,
    metric: &str,
    period: &str,
    offset: i64,
    size: i64,
) -> Result<Vec<LeaderboardRow>, DatabaseError> {
    Ok(leaderboard_entries::table
        .filter(leaderboard_entries::metric.eq(metric))
        .filter(leaderboard_entries::period.eq(period))
        .order(leaderboard_entries::rank)
        .offset(offset)
        .limit(size)
        .select(LeaderboardRow::as_select())
        .load(conn)
        .await?)
}

/// A user's row on a leaderboard, if ranked.
pub async fn leaderboard_row(
    conn: &mut AsyncPgConnection,
    metric: &str,
    period: &str,
    user_id: Uuid,
) -> Result<Option<LeaderboardRow>, DatabaseError> {
    Ok(leaderboard_entries::table
        .filter(leaderboard_entries::metric.eq(metric))
        .filter(leaderboard_entries::period.eq(period))
        .filter(leaderboard_entries::user_id.eq(user_id))
        .select(LeaderboardRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// When a leaderboard was last computed.
pub async fn leaderboard_time(
    conn: &mut AsyncPgConnection,
    metric: &str,
    period: &str,
) -> Result<Option<DateTime<Utc>>, DatabaseError> {
    Ok(leaderboard_entries::table
        .filter(leaderboard_entries::metric.eq(metric))
        .filter(leaderboard_entries::period.eq(period))
        .select(diesel::dsl::max(leaderboard_entries::computed_at))
        .first(conn)
        .await?)
}

/// Locks a trade until the end of the transaction.
pub async fn lock_trade(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Trade>, DatabaseError> {
    Ok(trades::table.find(id).select(Trade::as_select()).for_update().first(conn).await.optional()?)
}

/// Marks a pending purchase settled by its ledger transaction, at the price actually paid.
pub async fn settle_trade_at(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    ledger_transaction_id: Uuid,
    price_cents: i64,
    fee_cents: i64,
) -> Result<Trade, DatabaseError> {
    diesel::update(trades::table.find(id).filter(trades::state.eq(TradeState::Pending)))
        .set((
            trades::state.eq(TradeState::Settled),
            trades::ledger_transaction_id.eq(Some(ledger_transaction_id)),
            trades::settled_at.eq(Some(Utc::now())),
            trades::price_cents.eq(price_cents),
            trades::fee_cents.eq(fee_cents),
        ))
        .returning(Trade::as_returning())
        .reused()
        .get_result(conn)
        .await
        .optional()?
        .ok_or(DatabaseError::NotFound("pending trade"))
}

/// Notes the listing a trade created.
pub async fn set_trade_listing(conn: &mut AsyncPgConnection, id: Uuid, listing_id: Uuid) -> Result<(), DatabaseError> {
    diesel::update(trades::table.find(id)).set(trades::listing_id.eq(Some(listing_id))).reused().execute(conn).await?;
    Ok(())
}

/// When a user's balance last changed (`None` before the first entry).
pub async fn last_entry_time(
    conn: &mut AsyncPgConnection,
    account_id: Uuid,
) -> Result<Option<DateTime<Utc>>, DatabaseError> {
    Ok(ledger_entries::table
        .filter(ledger_entries::account_id.eq(account_id))
        .select(diesel::dsl::max(ledger_entries::created_at))
        .first(conn)
        .await?)
}

/// The database's clock, now (not the transaction's start: read after a lock was waited for).
pub async fn database_now(conn: &mut AsyncPgConnection) -> Result<DateTime<Utc>, DatabaseError> {
    Ok(diesel::select(diesel::dsl::sql::<diesel::sql_types::Timestamptz>("clock_timestamp()")).get_result(conn).await?)
}

/// Every user with a cash account (for snapshots and leaderboards).
pub async fn account_holders(conn: &mut AsyncPgConnection) -> Result<Vec<(Uuid, i64)>, DatabaseError> {
    let rows: Vec<(Option<Uuid>, i64)> = ledger_accounts::table
        .filter(ledger_accounts::kind.eq(AccountKind::UserCash))
        .select((ledger_accounts::user_id, ledger_accounts::balance_cents))
        .load(conn)
        .await?;
    Ok(rows.into_iter().filter_map(|(user, balance)| user.map(|u| (u, balance))).collect())
}
