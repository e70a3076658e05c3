//! Users, wallets and access tokens.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use fastbreak_db::DatabaseError;
use fastbreak_db::schema::{access_tokens, users, wallets};
use fastbreak_db::{Cursor, Page, PageRequest};

/// A user. `Debug` leaves the password hash out.
#[derive(Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// Shown name.
    pub display_name: String,
    /// Sign-in email.
    pub email: String,
    /// Salted password hash.
    pub password_hash: String,
    /// Left off leaderboards.
    pub leaderboard_opt_out: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("display_name", &self.display_name)
            .field("email", &self.email)
            .field("password_hash", &"***")
            .field("leaderboard_opt_out", &self.leaderboard_opt_out)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// A user to create. `Debug` leaves the password hash out.
#[derive(Clone, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    /// Id.
    pub id: Uuid,
    /// Shown name.
    pub display_name: &'a str,
    /// Sign-in email.
    pub email: &'a str,
    /// Salted password hash.
    pub password_hash: &'a str,
}

impl std::fmt::Debug for NewUser<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("display_name", &self.display_name)
            .field("email", &self.email)
            .field("password_hash", &"***")
            .finish()
    }
}

/// Creates a user.
pub async fn create_user(conn: &mut AsyncPgConnection, new: &NewUser<'_>) -> Result<User, DatabaseError> {
    Ok(diesel::insert_into(users::table).values(new).returning(User::as_returning()).get_result(conn).await?)
}

/// Finds a user by id.
pub async fn find_user(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<User>, DatabaseError> {
    Ok(users::table.find(id).select(User::as_select()).first(conn).await.optional()?)
}

/// Finds a user by email, ignoring case.
pub async fn find_user_by_email(conn: &mut AsyncPgConnection, email: &str) -> Result<Option<User>, DatabaseError> {
    Ok(users::table
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = lower(")
                .bind::<diesel::sql_types::Text, _>(email)
                .sql(")"),
        )
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Changes a user's settings; `None` leaves a setting as it is.
pub async fn update_user_settings(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    display_name: Option<&str>,
    leaderboard_opt_out: Option<bool>,
) -> Result<User, DatabaseError> {
    let current = find_user(conn, id).await?.ok_or(DatabaseError::NotFound("user"))?;
    Ok(diesel::update(users::table.find(id))
        .set((
            users::display_name.eq(display_name.unwrap_or(&current.display_name)),
            users::leaderboard_opt_out.eq(leaderboard_opt_out.unwrap_or(current.leaderboard_opt_out)),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await?)
}

/// A user's Flow wallet.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = wallets)]
pub struct Wallet {
    /// The owner.
    pub user_id: Uuid,
    /// `0x` and 16 lowercase hex digits.
    pub flow_address: String,
    /// Trading is on.
    pub connected: bool,
    /// Registered.
    pub registered_at: DateTime<Utc>,
    /// Last connected or disconnected.
    pub state_changed_at: DateTime<Utc>,
}

/// Registers (or replaces) a user's wallet; it starts connected.
pub async fn register_wallet(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    flow_address: &str,
) -> Result<Wallet, DatabaseError> {
    Ok(diesel::insert_into(wallets::table)
        .values((wallets::user_id.eq(user_id), wallets::flow_address.eq(flow_address), wallets::connected.eq(true)))
        .on_conflict(wallets::user_id)
        .do_update()
        .set((
            wallets::flow_address.eq(flow_address),
            wallets::connected.eq(true),
            wallets::registered_at.eq(diesel::dsl::now),
            wallets::state_changed_at.eq(diesel::dsl::now),
        ))
        .returning(Wallet::as_returning())
        .get_result(conn)
        .await?)
}

/// Finds a user's wallet.
pub async fn find_wallet(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<Option<Wallet>, DatabaseError> {
    Ok(wallets::table.find(user_id).select(Wallet::as_select()).first(conn).await.optional()?)
}

/// Finds the wallet with a Flow address.
pub async fn find_wallet_by_address(
    conn: &mut AsyncPgConnection,
    flow_address: &str,
) -> Result<Option<Wallet>, DatabaseError> {
    Ok(wallets::table
        .filter(wallets::flow_address.eq(flow_address))
        .select(Wallet::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Connects or disconnects a user's wallet.
pub async fn set_wallet_connected(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    connected: bool,
) -> Result<Wallet, DatabaseError> {
    diesel::update(wallets::table.find(user_id))
        .set((wallets::connected.eq(connected), wallets::state_changed_at.eq(diesel::dsl::now)))
        .returning(Wallet::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or(DatabaseError::NotFound("wallet"))
}

/// An access token (its secret is never stored, only its hash; `Debug` leaves the hash out).
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = access_tokens)]
pub struct AccessToken {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Hash of the secret.
    pub token_hash: String,
    /// The user's label.
    pub label: String,
    /// Issued.
    pub created_at: DateTime<Utc>,
    /// Stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// Revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("token_hash", &"***")
            .field("label", &self.label)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

/// Stores a new access token.
pub async fn insert_access_token(
    conn: &mut AsyncPgConnection,
    token: &AccessToken,
) -> Result<AccessToken, DatabaseError> {
    Ok(diesel::insert_into(access_tokens::table)
        .values(token)
        .returning(AccessToken::as_returning())
        .get_result(conn)
        .await?)
}

/// Finds the token with this hash if it is valid at `now` (not expired, not revoked).
pub async fn find_valid_token(
    conn: &mut AsyncPgConnection,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<AccessToken>, DatabaseError> {
    Ok(access_tokens::table
        .filter(access_tokens::token_hash.eq(token_hash))
        .filter(access_tokens::revoked_at.is_null())
        .filter(access_tokens::expires_at.gt(now))
        .select(AccessToken::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Revokes one of a user's tokens (revoking twice keeps the first time).
pub async fn revoke_access_token(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    token_id: Uuid,
) -> Result<AccessToken, DatabaseError> {
    diesel::update(access_tokens::table.find(token_id).filter(access_tokens::user_id.eq(user_id)))
        .set(access_tokens::revoked_at.eq(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        >("COALESCE(revoked_at, now())")))
        .returning(AccessToken::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or(DatabaseError::NotFound("access token"))
}

/// Lists a user's tokens, newest first.
pub async fn list_access_tokens(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    page: PageRequest,
) -> Result<Page<AccessToken>, DatabaseError> {
    let mut query = access_tokens::table
        .filter(access_tokens::user_id.eq(user_id))
        .select(AccessToken::as_select())
        .order((access_tokens::created_at.desc(), access_tokens::id.desc()))
        .limit(page.size + 1)
        .into_boxed();
    if let Some(after) = page.after {
        query = query.filter(
            access_tokens::created_at
                .lt(after.time)
                .or(access_tokens::created_at.eq(after.time).and(access_tokens::id.lt(after.id))),
        );
    }
    let rows = query.load(conn).await?;
    Ok(Page::from_rows(rows, page.size, |t| Cursor { time: t.created_at, id: t.id }))
}

/// The users among `ids` that exist, each with its wallet if one is registered.
pub async fn find_users_with_wallets(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> Result<Vec<(User, Option<Wallet>)>, DatabaseError> {
    Ok(users::table
        .left_join(wallets::table)
        .filter(users::id.eq_any(ids))
        .select((User::as_select(), Option::<Wallet>::as_select()))
        .load(conn)
        .await?)
}

/// How failed sign-ins for one email are slowed down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInPolicy {
    /// Failures allowed in one window before the email is locked.
    pub free_failures: i32,
    /// How long a window of failures lasts, counted from its first failure.
    pub window: chrono::Duration,
    /// The first lock; each failure after it doubles the lock.
    pub first_lock: chrono::Duration,
    /// The longest lock.
    pub max_lock: chrono::Duration,
}

/// When sign-ins for this email (lower case) are allowed again, if they are locked at `now`.
pub async fn sign_in_locked_until(
    conn: &mut AsyncPgConnection,
    email_key: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DatabaseError> {
    use fastbreak_db::schema::sign_in_failures::dsl as f;
    let locked: Option<Option<DateTime<Utc>>> =
        f::sign_in_failures.find(email_key).select(f::locked_until).first(conn).await.optional()?;
    Ok(locked.flatten().filter(|until| *until > now))
}

/// Counts a failed sign-in for this email (lower case); returns when sign-ins are allowed again
/// if this failure locked it.
pub async fn record_sign_in_failure(
    conn: &mut AsyncPgConnection,
    email_key: &str,
    now: DateTime<Utc>,
    policy: &SignInPolicy,
) -> Result<Option<DateTime<Utc>>, DatabaseError> {
    use fastbreak_db::schema::sign_in_failures::dsl as f;
    let current: Option<(i32, DateTime<Utc>)> = f::sign_in_failures
        .find(email_key)
        .select((f::failures, f::window_started_at))
        .for_update()
        .first(conn)
        .await
        .optional()?;
    let (failures, window_started_at) = match current {
        Some((failures, started)) if now - started < policy.window => (failures + 1, started),
        _ => (1, now),
    };
    let over = failures - policy.free_failures;
    let locked_until = (over > 0).then(|| {
        let doublings = u32::try_from(over - 1).unwrap_or(0).min(20);
        let lock = policy.first_lock * 2_i32.pow(doublings);
        now + lock.min(policy.max_lock)
    });
    diesel::insert_into(f::sign_in_failures)
        .values((
            f::email_key.eq(email_key),
            f::failures.eq(failures),
            f::window_started_at.eq(window_started_at),
            f::locked_until.eq(locked_until),
        ))
        .on_conflict(f::email_key)
        .do_update()
        .set((f::failures.eq(failures), f::window_started_at.eq(window_started_at), f::locked_until.eq(locked_until)))
        .execute(conn)
        .await?;
    Ok(locked_until)
}

/// Deletes the failed-sign-in records that no longer count at `now`: their window is over and
/// no lock of theirs is still running. Returns how many were deleted.
pub async fn forget_old_sign_in_failures(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    policy: &SignInPolicy,
) -> Result<usize, DatabaseError> {
    use fastbreak_db::schema::sign_in_failures::dsl as f;
    Ok(diesel::delete(
        f::sign_in_failures
            .filter(f::window_started_at.le(now - policy.window))
            .filter(f::locked_until.is_null().or(f::locked_until.le(now))),
    )
    .execute(conn)
    .await?)
}

/// Forgets the failed sign-ins of this email (lower case), after a successful one.
pub async fn clear_sign_in_failures(conn: &mut AsyncPgConnection, email_key: &str) -> Result<(), DatabaseError> {
    use fastbreak_db::schema::sign_in_failures::dsl as f;
    diesel::delete(f::sign_in_failures.find(email_key)).execute(conn).await?;
    Ok(())
}

/// Finds one of a user's tokens by id.
pub async fn find_access_token(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    token_id: Uuid,
) -> Result<Option<AccessToken>, DatabaseError> {
    Ok(access_tokens::table
        .find(token_id)
        .filter(access_tokens::user_id.eq(user_id))
        .select(AccessToken::as_select())
        .first(conn)
        .await
        .optional()?)
}
