//! Sign in, sign up, sign out. A sign-in makes an access token (the session) through the
//! gateway; sign-out revokes it.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use fastbreak_proto::user::v1::{CreateAccessTokenRequest, CreateUserRequest, RevokeAccessTokenRequest};
use http::StatusCode;
use maud::{Markup, html};

use super::{App, Posted, status_of};
use crate::backend::{Part, Problem, answer};
use crate::html::{bare, csrf_field, field, problem};
use crate::session::{SESSION_COOKIE, Session, Visitor};

#[derive(Debug, serde::Deserialize)]
pub struct Ended {
    ended: Option<String>,
}

fn sign_in_form(visitor: &Visitor, email: &str, trouble: Option<&Problem>, ended: bool) -> Markup {
    html! {
        @if ended { p.notice role="status" { "Your session ended; sign in again." } }
        @if let Some(trouble) = trouble { (problem(trouble)) }
        form.stack method="post" action="/sign-in" {
            (csrf_field(visitor))
            (field("Email", "email", "email", email, "", trouble))
            (field("Password", "password", "password", "", "", trouble))
            p { button type="submit" { "Sign in" } }
        }
        p { "New here? " a href="/sign-up" { "Create an account" } "." }
    }
}

pub async fn sign_in_page(State(app): State<App>, visitor: Visitor, Query(ended): Query<Ended>) -> Response {
    if visitor.session.is_some() && ended.ended.is_none() {
        return Redirect::to("/portfolio").into_response();
    }
    app.html(&visitor, StatusCode::OK, bare("Sign in", sign_in_form(&visitor, "", None, ended.ended.is_some())))
}

/// Makes an access token for the email and password; the session cookie's answer.
async fn open_session(app: &App, visitor: &Visitor, email: &str, password: &str) -> Result<Response, Problem> {
    let mut users = app.gateway.users()?;
    let ttl = prost_types::Duration {
        seconds: i64::try_from(app.settings.session_ttl.as_secs()).unwrap_or(i64::MAX),
        nanos: 0,
    };
    let request = CreateAccessTokenRequest {
        email: email.to_owned(),
        password: password.to_owned(),
        label: "dashboard".to_owned(),
        ttl: Some(ttl),
    };
    let token = answer(Part::Accounts, users.create_access_token(app.gateway.request(visitor, request)).await)?;
    // A sign-in over a session still open ends that one: its token is revoked, not left behind.
    if visitor.session.is_some()
        && let Err(trouble) = revoke(app, visitor).await
        && !trouble.signed_out()
    {
        tracing::warn!(problem = %trouble.readable(), "the replaced session's token could not be revoked");
    }
    let session = Session { token_id: token.token_id, secret: token.secret };
    let mut response = Redirect::to("/portfolio").into_response();
    let cookie = app.cookies.set(SESSION_COOKIE, &session.cookie_value(), Some(app.cookies.session_seconds));
    response.headers_mut().append(http::header::SET_COOKIE, cookie);
    Ok(response)
}

pub async fn sign_in(State(app): State<App>, Posted { visitor, fields }: Posted) -> Response {
    let email = fields.get("email").trim().to_owned();
    match open_session(&app, &visitor, &email, fields.get("password")).await {
        Ok(response) => response,
        Err(trouble) => {
            let status = if trouble.code == tonic::Code::Unauthenticated {
                StatusCode::UNAUTHORIZED
            } else {
                status_of(&trouble)
            };
            // "Your session has ended" would be wrong here: the password was.
            let trouble = if trouble.code == tonic::Code::Unauthenticated {
                Problem { code: tonic::Code::InvalidArgument, ..trouble }
            } else {
                trouble
            };
            app.html(&visitor, status, bare("Sign in", sign_in_form(&visitor, &email, Some(&trouble), false)))
        }
    }
}

fn sign_up_form(visitor: &Visitor, name: &str, email: &str, trouble: Option<&Problem>) -> Markup {
    html! {
        @if let Some(trouble) = trouble { (problem(trouble)) }
        form.stack method="post" action="/sign-up" {
            (csrf_field(visitor))
            (field("Display name", "display_name", "text", name, "1 to 64 characters; never shown on leaderboards", trouble))
            (field("Email", "email", "email", email, "", trouble))
            (field("Password", "password", "password", "", "at least 12 characters", trouble))
            p { button type="submit" { "Create account" } }
        }
        p { "Have an account? " a href="/sign-in" { "Sign in" } "." }
    }
}

pub async fn sign_up_page(State(app): State<App>, visitor: Visitor) -> Response {
    app.html(&visitor, StatusCode::OK, bare("Create your account", sign_up_form(&visitor, "", "", None)))
}

pub async fn sign_up(State(app): State<App>, Posted { visitor, fields }: Posted) -> Response {
    let (name, email, password) =
        (fields.get("display_name").trim(), fields.get("email").trim(), fields.get("password"));
    let created = async {
        let mut users = app.gateway.users()?;
        let request =
            CreateUserRequest { display_name: name.to_owned(), email: email.to_owned(), password: password.to_owned() };
        answer(Part::Accounts, users.create_user(app.gateway.request(&visitor, request)).await)?;
        open_session(&app, &visitor, email, password).await
    }
    .await;
    match created {
        Ok(response) => response,
        Err(trouble) => app.html(
            &visitor,
            status_of(&trouble),
            bare("Create your account", sign_up_form(&visitor, name, email, Some(&trouble))),
        ),
    }
}

/// Revokes the visitor's session token (with that token itself).
async fn revoke(app: &App, visitor: &Visitor) -> Result<(), Problem> {
    let Some(session) = &visitor.session else { return Ok(()) };
    let mut users = app.gateway.users()?;
    let request = RevokeAccessTokenRequest { token_id: session.token_id.clone() };
    answer(Part::Accounts, users.revoke_access_token(app.gateway.request(visitor, request)).await).map(|_| ())
}

pub async fn sign_out(State(app): State<App>, Posted { visitor, .. }: Posted) -> Response {
    if visitor.session.is_some() {
        match revoke(&app, &visitor).await {
            // A token the gateway no longer accepts is as good as revoked.
            Ok(_) => {}
            Err(trouble) if trouble.signed_out() => {}
            Err(trouble) => {
                let page = bare(
                    "Sign out",
                    html! {
                        (problem(&trouble))
                        p { "You are still signed in: your session could not be ended. Try again." }
                        form method="post" action="/sign-out" { (csrf_field(&visitor)) button type="submit" { "Sign out" } }
                    },
                );
                return app.html(&visitor, status_of(&trouble), page);
            }
        }
    }
    let mut response = Redirect::to("/sign-in").into_response();
    app.forget(&mut response);
    response
}
