//! The user service's RPCs: each converts its request into domain values, applies the rule, and
//! converts the answer back.

use crate::store::{self as users, AccessToken as TokenRow, NewUser, User as UserRow, Wallet as WalletRow};
use chrono::Utc;
use fastbreak_db::{Database, DatabaseError, PgConnection};
use fastbreak_mesh::status::{Violations, timestamp};
use fastbreak_mesh::{Context, caller, paging};
use fastbreak_proto::user::v1 as pb;
use fastbreak_proto::user::v1::user_internal_service_server::UserInternalService;
use fastbreak_proto::user::v1::user_service_server::UserService;
use futures::FutureExt;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::{self, Email, credentials};
use crate::error::UserError;
use crate::settings::Settings;

/// Both of the target's services, over one context.
#[derive(Debug, Clone)]
pub struct UserApi {
    database: Database,
    settings: std::sync::Arc<Settings>,
    /// Password hashes in progress: each takes memory and a core, so they are bounded.
    hashing: std::sync::Arc<tokio::sync::Semaphore>,
    /// The emails (lower case) with a sign-in being checked: one at a time each.
    checking: std::sync::Arc<fastbreak_mesh::bulkhead::PerKey<String>>,
}

/// How long a sign-in waits for a free hashing slot before it is told to come back.
const HASHING_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

impl UserApi {
    pub(crate) fn new(context: Context<Settings, Database>) -> Self {
        // The decoy hash is made now, so that the first unknown email is not slower to refuse.
        credentials::prepare_decoy(context.settings.password_hashing);
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self {
            database: context.database,
            settings: std::sync::Arc::new(context.settings),
            hashing: std::sync::Arc::new(tokio::sync::Semaphore::new(cores * 2)),
            checking: std::sync::Arc::new(fastbreak_mesh::bulkhead::PerKey::new(1)),
        }
    }

    /// The email's one place for a sign-in being checked; Busy while another holds it (a
    /// flood of guesses at one email takes one hashing slot, not all of them).
    fn check_one_at_a_time(&self, key: &str) -> Result<fastbreak_mesh::bulkhead::Held<String>, UserError> {
        self.checking.try_take(&key.to_owned(), 1).ok_or(UserError::Busy)
    }

    /// A slot to hash a password in; RESOURCE_EXHAUSTED when every slot stays busy.
    async fn hashing_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, UserError> {
        match tokio::time::timeout(HASHING_PATIENCE, self.hashing.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(UserError::Busy),
        }
    }
}

fn user_message(user: UserRow) -> pb::User {
    pb::User {
        user_id: user.id.to_string(),
        display_name: user.display_name,
        email: user.email,
        leaderboard_opt_out: user.leaderboard_opt_out,
        create_time: Some(timestamp(user.created_at)),
        update_time: Some(timestamp(user.updated_at)),
    }
}

fn wallet_message(wallet: WalletRow) -> pb::Wallet {
    let state = if wallet.connected { pb::WalletState::Connected } else { pb::WalletState::Disconnected };
    pb::Wallet {
        flow_address: wallet.flow_address,
        state: state as i32,
        register_time: Some(timestamp(wallet.registered_at)),
        state_change_time: Some(timestamp(wallet.state_changed_at)),
    }
}

fn token_message(token: TokenRow, secret: String) -> pb::AccessToken {
    pb::AccessToken {
        token_id: token.id.to_string(),
        secret,
        label: token.label,
        create_time: Some(timestamp(token.created_at)),
        expire_time: Some(timestamp(token.expires_at)),
        revoke_time: token.revoked_at.map(timestamp),
    }
}

fn status_message(user: UserRow, wallet: Option<WalletRow>) -> pb::UserStatus {
    pb::UserStatus {
        user_id: user.id.to_string(),
        trading_enabled: wallet.as_ref().is_some_and(|w| w.connected),
        flow_address: wallet.map(|w| w.flow_address).unwrap_or_default(),
        leaderboard_opt_out: user.leaderboard_opt_out,
    }
}

fn to_std(duration: chrono::Duration) -> std::time::Duration {
    duration.to_std().unwrap_or_default()
}

impl UserApi {
    async fn read<T: Send>(
        &self,
        work: impl for<'c> FnOnce(&'c mut PgConnection) -> futures::future::BoxFuture<'c, Result<T, DatabaseError>> + Send,
    ) -> Result<T, UserError> {
        Ok(self.database.read(work).await?)
    }

    /// A write of one statement, committed on its own.
    async fn autocommit<T: Send>(
        &self,
        work: impl for<'c> FnOnce(&'c mut PgConnection) -> futures::future::BoxFuture<'c, Result<T, DatabaseError>> + Send,
    ) -> Result<T, UserError> {
        Ok(self.database.autocommit(work).await?)
    }
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Result<Response<pb::User>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let display_name = domain::display_name(&request.display_name, "display_name", &mut violations);
        let email = Email::parse(&request.email, "email", &mut violations);
        domain::new_password(&request.password, "password", &mut violations);
        let (display_name, email) = violations.into_result((display_name, email))?;
        let (display_name, email) = (display_name.unwrap_or_default(), email.expect("checked"));

        let cost = self.settings.password_hashing;
        let password = request.password;
        let _slot = self.hashing_slot().await?;
        let hash = tokio::task::spawn_blocking(move || credentials::hash_password(&password, cost))
            .await
            .map_err(UserError::from)?
            .map_err(UserError::from)?;
        let id = Uuid::new_v4();
        let created = self
            .read(|conn| {
                async move {
                    users::create_user(
                        conn,
                        &NewUser { id, display_name: &display_name, email: email.as_str(), password_hash: &hash },
                    )
                    .await
                }
                .boxed()
            })
            .await;
        match created {
            Ok(user) => {
                tracing::info!(user_id = %user.id, "user created");
                Ok(Response::new(user_message(user)))
            }
            Err(UserError::Database(DatabaseError::UniqueViolation { constraint }))
                if constraint == "users_email_unique" =>
            {
                Err(UserError::EmailTaken.into())
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn get_current_user(
        &self,
        request: Request<pb::GetCurrentUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let user_id = caller::user_id(&request)?;
        let user = self.read(|conn| users::find_user(conn, user_id).boxed()).await?;
        user.map(|u| Response::new(user_message(u))).ok_or_else(|| fastbreak_mesh::status::not_found("user"))
    }

    async fn update_user_settings(
        &self,
        request: Request<pb::UpdateUserSettingsRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let user_id = caller::user_id(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let display_name = request
            .display_name
            .as_deref()
            .and_then(|name| domain::display_name(name, "display_name", &mut violations));
        violations.into_result(())?;
        let opt_out = request.leaderboard_opt_out;
        let user = self
            .read(|conn| {
                async move { users::update_user_settings(conn, user_id, display_name.as_deref(), opt_out).await }
                    .boxed()
            })
            .await?;
        Ok(Response::new(user_message(user)))
    }

    async fn register_wallet(
        &self,
        request: Request<pb::RegisterWalletRequest>,
    ) -> Result<Response<pb::Wallet>, Status> {
        let user_id = caller::user_id(&request)?;
        let mut violations = Violations::new();
        let address = domain::flow_address(&request.get_ref().flow_address, "flow_address", &mut violations);
        let address = violations.into_result(address)?.unwrap_or_default();
        let registered =
            self.autocommit(|conn| async move { users::register_wallet(conn, user_id, &address).await }.boxed()).await;
        match registered {
            Ok(wallet) => Ok(Response::new(wallet_message(wallet))),
            Err(UserError::Database(DatabaseError::UniqueViolation { constraint }))
                if constraint == "wallets_flow_address_unique" =>
            {
                Err(UserError::WalletTaken.into())
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn get_wallet(&self, request: Request<pb::GetWalletRequest>) -> Result<Response<pb::Wallet>, Status> {
        let user_id = caller::user_id(&request)?;
        let wallet = self.read(|conn| users::find_wallet(conn, user_id).boxed()).await?;
        wallet.map(|w| Response::new(wallet_message(w))).ok_or_else(|| fastbreak_mesh::status::not_found("wallet"))
    }

    async fn connect_wallet(&self, request: Request<pb::ConnectWalletRequest>) -> Result<Response<pb::Wallet>, Status> {
        let user_id = caller::user_id(&request)?;
        let wallet = self.autocommit(|conn| users::set_wallet_connected(conn, user_id, true).boxed()).await?;
        tracing::info!(%user_id, "wallet connected");
        Ok(Response::new(wallet_message(wallet)))
    }

    async fn disconnect_wallet(
        &self,
        request: Request<pb::DisconnectWalletRequest>,
    ) -> Result<Response<pb::Wallet>, Status> {
        let user_id = caller::user_id(&request)?;
        let wallet = self.autocommit(|conn| users::set_wallet_connected(conn, user_id, false).boxed()).await?;
        tracing::info!(%user_id, "wallet disconnected; trading is off");
        Ok(Response::new(wallet_message(wallet)))
    }

    async fn create_access_token(
        &self,
        request: Request<pb::CreateAccessTokenRequest>,
    ) -> Result<Response<pb::AccessToken>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let email = Email::parse(&request.email, "email", &mut violations);
        violations.check(!request.password.is_empty(), "password", "is required");
        violations.check(request.password.chars().count() <= domain::MAX_PASSWORD_LENGTH, "password", "is too long");
        let label = domain::token_label(&request.label, "label", &mut violations);
        let ttl = domain::token_ttl(request.ttl.map(|d| (d.seconds, d.nanos)), "ttl", &mut violations);
        let email = violations.into_result(email)?.expect("checked");
        Ok(Response::new(self.sign_in(email, request.password, label, ttl).await?))
    }

    async fn list_access_tokens(
        &self,
        request: Request<pb::ListAccessTokensRequest>,
    ) -> Result<Response<pb::ListAccessTokensResponse>, Status> {
        let user_id = caller::user_id(&request)?;
        let mut violations = Violations::new();
        let page =
            paging::page_request(request.get_ref().page_size, &request.get_ref().page_token, 50, 100, &mut violations);
        violations.into_result(())?;
        let page = self.read(|conn| users::list_access_tokens(conn, user_id, page).boxed()).await?;
        Ok(Response::new(pb::ListAccessTokensResponse {
            access_tokens: page.items.into_iter().map(|t| token_message(t, String::new())).collect(),
            next_page_token: paging::next_page_token(page.next),
        }))
    }

    async fn revoke_access_token(
        &self,
        request: Request<pb::RevokeAccessTokenRequest>,
    ) -> Result<Response<pb::AccessToken>, Status> {
        let user_id = caller::user_id(&request)?;
        let token_id = fastbreak_mesh::status::required_uuid(&request.get_ref().token_id, "token_id")?;
        let token = self.autocommit(|conn| users::revoke_access_token(conn, user_id, token_id).boxed()).await?;
        tracing::info!(%user_id, %token_id, "access token revoked");
        Ok(Response::new(token_message(token, String::new())))
    }
}

impl UserApi {
    /// Checks an email and password and issues a token; failed sign-ins for one email are
    /// slowed down, and an unknown email is refused exactly like a wrong password.
    async fn sign_in(
        &self,
        email: Email,
        password: String,
        label: String,
        ttl: chrono::Duration,
    ) -> Result<pb::AccessToken, UserError> {
        let key = email.key();
        // One attempt per email at a time, and a hashing slot, before anything is written: an
        // attempt refused as busy is not checked, so it is not counted either.
        let _checking = self.check_one_at_a_time(&key)?;
        let _slot = self.hashing_slot().await?;
        let now = Utc::now();
        // The attempt is counted before the password is checked, in one transaction with the
        // lock check; a success clears the count.
        let policy = self.settings.sign_in;
        let locked = self
            .database
            .transaction(|conn| {
                let key = key.clone();
                async move {
                    if let Some(until) = users::sign_in_locked_until(conn, &key, now).await? {
                        return Ok(Some(until));
                    }
                    users::record_sign_in_failure(conn, &key, now, &policy).await
                }
                .boxed()
            })
            .await?;
        if let Some(until) = locked {
            tracing::warn!(email_key = %key, until = %until, "sign-ins locked after repeated failures");
            return Err(UserError::SignInLocked(to_std(until - now)));
        }
        let user = {
            let email = email.as_str().to_owned();
            self.read(|conn| async move { users::find_user_by_email(conn, &email).await }.boxed()).await?
        };
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let cost = self.settings.password_hashing;
        let matches =
            tokio::task::spawn_blocking(move || credentials::verify_password(&password, stored.as_deref(), cost))
                .await?;
        let Some(user) = user.filter(|_| matches) else {
            return Err(UserError::WrongCredentials);
        };
        let token = credentials::new_token()?;
        let row = TokenRow {
            id: Uuid::new_v4(),
            user_id: user.id,
            token_hash: token.digest.clone(),
            label,
            created_at: now,
            expires_at: now + ttl,
            revoked_at: None,
        };
        let stored = self
            .database
            .transaction(|conn| {
                let (key, row) = (key.clone(), row.clone());
                async move {
                    users::clear_sign_in_failures(conn, &key).await?;
                    users::insert_access_token(conn, &row).await
                }
                .boxed()
            })
            .await?;
        tracing::info!(user_id = %user.id, token_id = %stored.id, "access token issued");
        Ok(token_message(stored, token.secret))
    }
}

#[tonic::async_trait]
impl UserInternalService for UserApi {
    async fn authenticate_access_token(
        &self,
        request: Request<pb::AuthenticateAccessTokenRequest>,
    ) -> Result<Response<pb::AuthenticateAccessTokenResponse>, Status> {
        let secret = request.into_inner().secret;
        let mut violations = Violations::new();
        violations.check(!secret.is_empty() && secret.len() <= 256, "secret", "must be an access token");
        violations.into_result(())?;
        let digest = credentials::token_digest(&secret);
        let token =
            self.read(|conn| async move { users::find_valid_token(conn, &digest, Utc::now()).await }.boxed()).await?;
        let token = token.ok_or(UserError::TokenRefused)?;
        Ok(Response::new(pb::AuthenticateAccessTokenResponse {
            user_id: token.user_id.to_string(),
            token_id: token.id.to_string(),
            expire_time: Some(timestamp(token.expires_at)),
        }))
    }

    async fn get_user_status(
        &self,
        request: Request<pb::GetUserStatusRequest>,
    ) -> Result<Response<pb::UserStatus>, Status> {
        let user_id = fastbreak_mesh::status::required_uuid(&request.get_ref().user_id, "user_id")?;
        let mut found =
            self.read(|conn| async move { users::find_users_with_wallets(conn, &[user_id]).await }.boxed()).await?;
        let (user, wallet) = found.pop().ok_or_else(|| fastbreak_mesh::status::not_found("user"))?;
        Ok(Response::new(status_message(user, wallet)))
    }

    async fn batch_get_user_status(
        &self,
        request: Request<pb::BatchGetUserStatusRequest>,
    ) -> Result<Response<pb::BatchGetUserStatusResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        violations.check((1..=1000).contains(&request.user_ids.len()), "user_ids", "must hold 1 to 1000 ids");
        let ids: Vec<Uuid> = request
            .user_ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| violations.uuid(id, format!("user_ids[{i}]")))
            .collect();
        violations.into_result(())?;
        let asked = ids.clone();
        let found = self.read(|conn| async move { users::find_users_with_wallets(conn, &ids).await }.boxed()).await?;
        let mut by_id: std::collections::HashMap<Uuid, pb::UserStatus> =
            found.into_iter().map(|(user, wallet)| (user.id, status_message(user, wallet))).collect();
        let statuses = asked.iter().filter_map(|id| by_id.remove(id)).collect();
        Ok(Response::new(pb::BatchGetUserStatusResponse { statuses }))
    }
}
