use fastbreak_proto::user::v1::{CreateUserRequest, GetCurrentUserRequest, UpdateUserSettingsRequest};
use tonic::Code;

use crate::{PASSWORD, as_user, internal, reason, spawn_app, violated_fields};

#[tokio::test]
async fn a_user_is_created_and_reads_themself_back() {
    let mut app = spawn_app().await;
    let id = app.user("ada@example.com").await;
    let me = app.public.get_current_user(as_user(GetCurrentUserRequest {}, id)).await.unwrap().into_inner();
    assert_eq!(
        (me.email.as_str(), me.display_name.as_str(), me.leaderboard_opt_out),
        ("ada@example.com", "Ada", false)
    );
    assert!(me.create_time.is_some());
}

#[tokio::test]
async fn every_bad_field_is_named_at_once() {
    let mut app = spawn_app().await;
    let request =
        CreateUserRequest { display_name: " ".into(), email: "not-an-email".into(), password: "short".into() };
    let status = app.public.create_user(internal(request)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["display_name", "email", "password"]);
    assert_eq!(reason(&status), "INVALID_FIELD");
}

#[tokio::test]
async fn an_email_belongs_to_one_user_whatever_its_case() {
    let mut app = spawn_app().await;
    app.user("ada@example.com").await;
    let request =
        CreateUserRequest { display_name: "Other".into(), email: "ADA@Example.COM".into(), password: PASSWORD.into() };
    let status = app.public.create_user(internal(request)).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert_eq!(violated_fields(&status), ["email"]);
}

#[tokio::test]
async fn settings_change_only_what_is_given_and_are_validated() {
    let mut app = spawn_app().await;
    let id = app.user("ada@example.com").await;
    let request = UpdateUserSettingsRequest { display_name: None, leaderboard_opt_out: Some(true) };
    let user = app.public.update_user_settings(as_user(request, id)).await.unwrap().into_inner();
    assert_eq!((user.display_name.as_str(), user.leaderboard_opt_out), ("Ada", true));
    let request = UpdateUserSettingsRequest { display_name: Some("Ada L.".into()), leaderboard_opt_out: None };
    let user = app.public.update_user_settings(as_user(request, id)).await.unwrap().into_inner();
    assert_eq!((user.display_name.as_str(), user.leaderboard_opt_out), ("Ada L.", true));
    let request = UpdateUserSettingsRequest { display_name: Some("x".repeat(65)), leaderboard_opt_out: None };
    let status = app.public.update_user_settings(as_user(request, id)).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["display_name"]);
}

#[tokio::test]
async fn public_calls_without_a_user_are_unauthenticated() {
    let mut app = spawn_app().await;
    let status = app.public.get_current_user(internal(GetCurrentUserRequest {})).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason(&status), "UNAUTHENTICATED_CALLER");
    let unknown =
        app.public.get_current_user(as_user(GetCurrentUserRequest {}, uuid::Uuid::new_v4())).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}
