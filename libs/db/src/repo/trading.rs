//! The double-entry ledger, trades, holdings and idempotency keys.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::error::DatabaseError;
use crate::repo::{Cursor, Page, PageRequest, text_enum};
use crate::schema::{holdings, idempotency_keys, ledger_accounts, ledger_entries, ledger_transactions, trades};

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

/// A user's cash account, opened on first use.
pub async fn user_account(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<LedgerAccount, DatabaseError> {
    diesel::insert_into(ledger_accounts::table)
        .values((
            ledger_accounts::id.eq(Uuid::new_v4()),
            ledger_accounts::kind.eq(AccountKind::UserCash),
            ledger_accounts::user_id.eq(Some(user_id)),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(ledger_accounts::table
        .filter(ledger_accounts::user_id.eq(user_id))
        .filter(ledger_accounts::kind.eq(AccountKind::UserCash))
        .select(LedgerAccount::as_select())
        .first(conn)
        .await?)
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
        ))
        .returning(LedgerTransaction::as_returning())
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
    diesel::insert_into(ledger_entries::table).values(rows).execute(conn).await?;
    Ok(transaction)
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
}

/// Records a new trade.
pub async fn insert_trade(conn: &mut AsyncPgConnection, trade: &Trade) -> Result<Trade, DatabaseError> {
    Ok(diesel::insert_into(trades::table).values(trade).returning(Trade::as_returning()).get_result(conn).await?)
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
    let mut query = trades::table
        .filter(trades::user_id.eq(user_id))
        .select(Trade::as_select())
        .order((trades::created_at.desc(), trades::id.desc()))
        .limit(page.size + 1)
        .into_boxed();
    if let Some(kind) = kind {
        query = query.filter(trades::kind.eq(kind));
    }
    if let Some(after) = page.after {
        query = query.filter(
            trades::created_at.lt(after.time).or(trades::created_at.eq(after.time).and(trades::id.lt(after.id))),
        );
    }
    let rows = query.load(conn).await?;
    Ok(Page::from_rows(rows, page.size, |t| Cursor { time: t.created_at, id: t.id }))
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
            .execute(conn)
            .await?;
    if updated == 1 { Ok(()) } else { Err(DatabaseError::NotFound("claimed idempotency key")) }
}
