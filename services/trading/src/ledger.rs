//! The ledger behind the trait a chain adapter would implement: deposits and purchase
//! settlements as balanced transfers, each with a transaction hash. The paper ledger posts
//! double-entry transactions in PostgreSQL on the caller's connection, so that a settlement's
//! transfer, trade, holding and outbox rows commit together.

use crate::store::{self as trading, AccountKind, LedgerTransaction, LedgerTransactionKind};
use fastbreak_db::{DatabaseError, PgConnection};
use futures::FutureExt;
use futures::future::BoxFuture;
use uuid::Uuid;

/// Who is paid in a purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seller {
    /// A FastBreak user (their cash account).
    User(Uuid),
    /// Someone outside FastBreak (the market).
    Market,
}

/// A purchase's transfer: the buyer pays the price, the seller gets it less the fee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The id of the transfer (the trade's id: a repeat is refused by the ledger).
    pub id: Uuid,
    /// The buyer.
    pub buyer: Uuid,
    /// The seller.
    pub seller: Seller,
    /// The price, in cents.
    pub price_cents: i64,
    /// The marketplace fee taken from the seller's proceeds, in cents.
    pub fee_cents: i64,
    /// What it was for.
    pub description: String,
}

/// Where money moves.
pub trait Ledger: Send + Sync + std::fmt::Debug {
    /// Credits a user with paper funds.
    fn deposit<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        id: Uuid,
        user: Uuid,
        amount_cents: i64,
    ) -> BoxFuture<'c, Result<LedgerTransaction, DatabaseError>>;

    /// Settles a purchase.
    fn transfer<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        transfer: &'c Transfer,
    ) -> BoxFuture<'c, Result<LedgerTransaction, DatabaseError>>;
}

/// The double-entry ledger in PostgreSQL (paper trading).
#[derive(Debug, Clone, Copy, Default)]
pub struct PaperLedger;

impl Ledger for PaperLedger {
    fn deposit<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        id: Uuid,
        user: Uuid,
        amount_cents: i64,
    ) -> BoxFuture<'c, Result<LedgerTransaction, DatabaseError>> {
        async move {
            let account = trading::user_account(conn, user).await?;
            let funding = system(AccountKind::Funding)?;
            trading::post_transaction(
                conn,
                id,
                LedgerTransactionKind::Deposit,
                &format!("paper funds of {amount_cents} cents"),
                &[(funding, -amount_cents), (account.id, amount_cents)],
            )
            .await
        }
        .boxed()
    }

    fn transfer<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        transfer: &'c Transfer,
    ) -> BoxFuture<'c, Result<LedgerTransaction, DatabaseError>> {
        async move {
            let buyer = trading::user_account(conn, transfer.buyer).await?;
            let seller = match transfer.seller {
                Seller::User(user) => trading::user_account(conn, user).await?.id,
                Seller::Market => system(AccountKind::Market)?,
            };
            let mut entries = vec![(buyer.id, -transfer.price_cents)];
            let proceeds = transfer.price_cents - transfer.fee_cents;
            if proceeds != 0 {
                entries.push((seller, proceeds));
            }
            if transfer.fee_cents != 0 {
                entries.push((system(AccountKind::Fees)?, transfer.fee_cents));
            }
            trading::post_transaction(
                conn,
                transfer.id,
                LedgerTransactionKind::Purchase,
                &transfer.description,
                &entries,
            )
            .await
        }
        .boxed()
    }
}

/// A system account's id, which the schema fixes (no read).
fn system(kind: AccountKind) -> Result<Uuid, DatabaseError> {
    trading::system_account_id(kind).ok_or(DatabaseError::NotFound("system account"))
}
