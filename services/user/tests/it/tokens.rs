use std::time::Duration;

use fastbreak_proto::user::v1::{
    AuthenticateAccessTokenRequest, CreateAccessTokenRequest, ListAccessTokensRequest, RevokeAccessTokenRequest,
};
use fastbreak_user::store::SignInPolicy;
use tonic::Code;
use tonic_types::StatusExt;

use crate::{PASSWORD, as_user, internal, spawn_app, spawn_app_with, test_settings, violated_fields};

async fn authenticate(app: &mut crate::App, secret: &str) -> Result<String, tonic::Status> {
    let request = AuthenticateAccessTokenRequest { secret: secret.to_owned() };
    Ok(app.internal.authenticate_access_token(internal(request)).await?.into_inner().user_id)
}

#[tokio::test]
async fn a_token_authenticates_its_user_until_revoked() {
    let mut app = spawn_app().await;
    let id = app.user("ada@example.com").await;
    let secret = app.sign_in("ADA@example.com", PASSWORD).await.unwrap();
    assert!(secret.starts_with("fbt_"));
    assert_eq!(authenticate(&mut app, &secret).await.unwrap(), id.to_string());

    let listed =
        app.public.list_access_tokens(as_user(ListAccessTokensRequest::default(), id)).await.unwrap().into_inner();
    assert_eq!(listed.access_tokens.len(), 1);
    let token = &listed.access_tokens[0];
    assert!(token.secret.is_empty(), "a secret is shown once only");
    assert_eq!(token.label, "laptop");
    assert!(token.expire_time.as_ref().unwrap().seconds > token.create_time.as_ref().unwrap().seconds + 29 * 86_400);

    let request = RevokeAccessTokenRequest { token_id: token.token_id.clone() };
    let revoked = app.public.revoke_access_token(as_user(request, id)).await.unwrap().into_inner();
    assert!(revoked.revoke_time.is_some());
    let refused = authenticate(&mut app, &secret).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_are_refused_alike() {
    let mut app = spawn_app().await;
    app.user("ada@example.com").await;
    let wrong = app.sign_in("ada@example.com", "not the password at all").await.unwrap_err();
    let unknown = app.sign_in("nobody@example.com", "not the password at all").await.unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!((wrong.code(), wrong.message()), (unknown.code(), unknown.message()));
    assert_eq!(wrong.get_details_error_info().unwrap().reason, unknown.get_details_error_info().unwrap().reason);
    let forged = authenticate(&mut app, "fbt_not-a-real-token").await.unwrap_err();
    assert_eq!(forged.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_slowed_down_with_a_retry_delay() {
    let settings = fastbreak_user::Settings {
        sign_in: SignInPolicy {
            free_failures: 3,
            window: chrono::Duration::minutes(15),
            first_lock: chrono::Duration::seconds(30),
            max_lock: chrono::Duration::minutes(15),
        },
        ..test_settings()
    };
    let mut app = spawn_app_with(settings).await;
    app.user("ada@example.com").await;
    for _ in 0..3 {
        let status = app.sign_in("ada@example.com", "wrong password guess").await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    // The fourth failure locks the email; from then on even the right password waits.
    app.sign_in("ada@example.com", "wrong password guess").await.unwrap_err();
    let locked = app.sign_in("ada@example.com", PASSWORD).await.unwrap_err();
    assert_eq!(locked.code(), Code::ResourceExhausted, "{locked:?}");
    let delay = locked.get_details_retry_info().unwrap().retry_delay.unwrap();
    assert!(delay > Duration::from_secs(20) && delay <= Duration::from_secs(30), "{delay:?}");
    // Another email is not affected.
    app.user("bob@example.com").await;
    app.sign_in("bob@example.com", PASSWORD).await.unwrap();
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    use fastbreak_user::store::{self as users, AccessToken};
    use futures::FutureExt;
    let mut app = spawn_app().await;
    let id = app.user("ada@example.com").await;
    let token = fastbreak_user::domain::credentials::new_token().unwrap();
    let now = chrono::Utc::now();
    let expired = AccessToken {
        id: uuid::Uuid::new_v4(),
        user_id: id,
        token_hash: token.digest.clone(),
        label: "old".into(),
        created_at: now - chrono::Duration::hours(2),
        expires_at: now - chrono::Duration::hours(1),
        revoked_at: None,
    };
    app.database
        .database()
        .read(|conn| async move { users::insert_access_token(conn, &expired).await }.boxed())
        .await
        .unwrap();
    let refused = authenticate(&mut app, &token.secret).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn token_requests_are_validated() {
    let mut app = spawn_app().await;
    let request = CreateAccessTokenRequest {
        email: "ada".into(),
        password: String::new(),
        label: "l".repeat(65),
        ttl: Some(prost_types::Duration { seconds: 10, nanos: 0 }),
    };
    let status = app.public.create_access_token(internal(request)).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["email", "password", "label", "ttl"]);
    let huge = CreateAccessTokenRequest {
        email: "ada@example.com".into(),
        password: PASSWORD.into(),
        label: String::new(),
        ttl: Some(prost_types::Duration { seconds: i64::MAX, nanos: 999_999_999 }),
    };
    let status = app.public.create_access_token(internal(huge)).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["ttl"], "an absurd lifetime is refused, not a panic");
}

#[tokio::test]
async fn one_user_can_neither_see_nor_revoke_anothers_tokens() {
    let mut app = spawn_app().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let secret = app.sign_in("ada@example.com", PASSWORD).await.unwrap();
    let adas =
        app.public.list_access_tokens(as_user(ListAccessTokensRequest::default(), ada)).await.unwrap().into_inner();
    let bobs =
        app.public.list_access_tokens(as_user(ListAccessTokensRequest::default(), bob)).await.unwrap().into_inner();
    assert!(bobs.access_tokens.is_empty());
    let request = RevokeAccessTokenRequest { token_id: adas.access_tokens[0].token_id.clone() };
    let status = app.public.revoke_access_token(as_user(request, bob)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(authenticate(&mut app, &secret).await.unwrap(), ada.to_string(), "still valid");
}

#[tokio::test]
async fn tokens_page_newest_first() {
    let mut app = spawn_app().await;
    let id = app.user("ada@example.com").await;
    for _ in 0..3 {
        app.sign_in("ada@example.com", PASSWORD).await.unwrap();
    }
    let first = app
        .public
        .list_access_tokens(as_user(ListAccessTokensRequest { page_size: 2, page_token: String::new() }, id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.access_tokens.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = app
        .public
        .list_access_tokens(as_user(ListAccessTokensRequest { page_size: 2, page_token: first.next_page_token }, id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.access_tokens.len(), 1);
    assert!(second.next_page_token.is_empty());
    let bad = app
        .public
        .list_access_tokens(as_user(ListAccessTokensRequest { page_size: 500, page_token: "nope".into() }, id))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad), ["page_size", "page_token"]);
}

/// The failed-sign-in records, by email key: (failures, locked).
async fn failure_records(database: &fastbreak_db::testing::TestDatabase) -> Vec<(String, i32, bool)> {
    use diesel::QueryDsl as _;
    use diesel_async::RunQueryDsl as _;
    use fastbreak_db::schema::sign_in_failures::dsl as f;
    use futures::FutureExt as _;
    database
        .database()
        .read(|conn| {
            async move {
                let rows: Vec<(String, i32, Option<chrono::DateTime<chrono::Utc>>)> = f::sign_in_failures
                    .select((f::email_key, f::failures, f::locked_until))
                    .order(f::email_key)
                    .load(conn)
                    .await?;
                Ok(rows.into_iter().map(|(key, failures, locked)| (key, failures, locked.is_some())).collect())
            }
            .boxed()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn failed_sign_in_records_are_forgotten_once_their_window_and_lock_are_over() {
    use fastbreak_user::store as users;
    use futures::FutureExt as _;
    // The store alone, with no service: the service's own sweeper runs on the wall clock and would
    // delete these records (dated in the past) at whatever moment it happens to wake.
    let test_database = fastbreak_db::testing::TestDatabase::create().await;
    let policy = SignInPolicy {
        free_failures: 2,
        window: chrono::Duration::minutes(15),
        first_lock: chrono::Duration::minutes(30),
        max_lock: chrono::Duration::minutes(30),
    };
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-08T06:59:00Z").unwrap().to_utc();
    let minutes = move |n: i64| start + chrono::Duration::minutes(n);
    let database = test_database.database();
    let run = |work: Box<
        dyn for<'c> FnOnce(
                &'c mut fastbreak_db::PgConnection,
            ) -> futures::future::BoxFuture<'c, Result<usize, fastbreak_db::DatabaseError>>
            + Send,
    >| {
        let database = database.clone();
        async move { database.autocommit(work).await.unwrap() }
    };
    // An invented email once, another guessed three times (locked for 30 min from minute 2).
    run(Box::new(move |conn| {
        async move {
            users::record_sign_in_failure(conn, "nobody@example.com", minutes(0), &policy).await?;
            for n in 0..3 {
                users::record_sign_in_failure(conn, "target@example.com", minutes(n), &policy).await?;
            }
            Ok(0)
        }
        .boxed()
    }))
    .await;
    let forget = |at| {
        run(Box::new(move |conn| async move { users::forget_old_sign_in_failures(conn, at, &policy).await }.boxed()))
    };
    assert_eq!(forget(minutes(14)).await, 0, "inside the window");
    assert_eq!(forget(minutes(15)).await, 1, "the invented email's window is over");
    assert_eq!(failure_records(&test_database).await, [("target@example.com".to_owned(), 3, true)]);
    assert_eq!(forget(minutes(31)).await, 0, "its lock still runs");
    assert_eq!(forget(minutes(32)).await, 1, "its lock is over");
    assert!(failure_records(&test_database).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_user_service_deletes_expired_failed_sign_in_records_by_itself() {
    let settings = fastbreak_user::Settings {
        sign_in: SignInPolicy {
            free_failures: 5,
            window: chrono::Duration::milliseconds(500),
            first_lock: chrono::Duration::seconds(1),
            max_lock: chrono::Duration::seconds(1),
        },
        failure_sweep: Duration::from_millis(100),
        ..test_settings()
    };
    let mut app = spawn_app_with(settings).await;
    for n in 0..20 {
        let refused = app.sign_in(&format!("nobody-{n}@example.com"), "a guess of a password").await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let records = failure_records(&app.database).await;
        if records.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "records left: {records:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn guesses_at_one_email_at_once_are_checked_one_at_a_time_and_only_those_checked_are_counted() {
    let settings = fastbreak_user::Settings {
        sign_in: SignInPolicy {
            free_failures: 100,
            window: chrono::Duration::minutes(15),
            first_lock: chrono::Duration::seconds(30),
            max_lock: chrono::Duration::minutes(15),
        },
        // A real hash, so that the guesses overlap.
        password_hashing: fastbreak_user::settings::PasswordCost { memory_kib: 19 * 1024, iterations: 2 },
        ..test_settings()
    };
    let app = spawn_app_with(settings).await;
    let guesses: Vec<_> = (0..12)
        .map(|_| {
            let mut public = app.public.clone();
            tokio::spawn(async move {
                let request = CreateAccessTokenRequest {
                    email: "target@example.com".into(),
                    password: "a guess of a password".into(),
                    ..Default::default()
                };
                public.create_access_token(internal(request)).await.unwrap_err()
            })
        })
        .collect();
    let mut codes = std::collections::BTreeMap::new();
    for guess in guesses {
        let status = guess.await.unwrap();
        *codes.entry(format!("{:?}", status.code())).or_insert(0) += 1;
        if status.code() == Code::ResourceExhausted {
            assert!(status.get_details_retry_info().is_some(), "{status:?}");
        }
    }
    println!("answers to 12 guesses at once: {codes:?}");
    let checked = codes.get("Unauthenticated").copied().unwrap_or(0);
    assert!(codes.get("ResourceExhausted").copied().unwrap_or(0) > 0, "some were refused unchecked: {codes:?}");
    let records = failure_records(&app.database).await;
    assert_eq!(records, [("target@example.com".to_owned(), checked, false)], "{codes:?}");
}
