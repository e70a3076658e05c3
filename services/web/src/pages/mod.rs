//! The routes, and what every page shares: the state, reading forms, answering.

mod auth;
mod backtests;
mod budget;
mod community;
mod decisions;
mod market;
mod operators;
mod portfolio;
mod strategies;

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use maud::{Markup, html};

use crate::backend::{Gateway, Problem};
use crate::session::{CookieRules, Forged, SESSION_COOKIE, Session, Visitor};
use crate::settings::Settings;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct App {
    /// The gateway.
    pub gateway: Gateway,
    /// How cookies are made.
    pub cookies: CookieRules,
    /// The settings.
    pub settings: Settings,
}

impl App {
    /// The state of the pages.
    pub fn new(gateway: fastbreak_mesh::Peer, settings: Settings) -> Self {
        Self {
            gateway: Gateway::new(gateway, settings.call_timeout),
            cookies: CookieRules { secure: settings.secure_cookies, session_seconds: settings.session_ttl.as_secs() },
            settings,
        }
    }

    /// A page, with the visitor's CSRF cookie when it is new.
    ///
    /// Pages are the visitor's own: no cache keeps them (the Back button after signing out
    /// shows nothing of the last visitor), and no other site may frame them.
    pub fn html(&self, visitor: &Visitor, status: StatusCode, markup: Markup) -> Response {
        let mut response = (status, markup).into_response();
        let headers = response.headers_mut();
        headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
        headers.insert(http::header::X_FRAME_OPTIONS, http::HeaderValue::from_static("DENY"));
        headers.insert(http::header::CONTENT_SECURITY_POLICY, http::HeaderValue::from_static("frame-ancestors 'none'"));
        self.cookies.with_csrf(visitor, response)
    }

    /// To the sign-in page, forgetting a session the gateway no longer accepts.
    pub fn signed_out(&self) -> Response {
        let mut response = Redirect::to("/sign-in?ended=1").into_response();
        self.forget(&mut response);
        response
    }

    /// Clears the visitor's session cookie and the operator credential kept beside it (the
    /// next person at the browser gets neither).
    pub fn forget(&self, response: &mut Response) {
        for cookie in [SESSION_COOKIE, crate::session::OPERATOR_COOKIE] {
            response.headers_mut().append(http::header::SET_COOKIE, self.cookies.clear(cookie));
        }
    }
}

/// Every route of the dashboard.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/portfolio") }))
        .route("/sign-in", get(auth::sign_in_page).post(auth::sign_in))
        .route("/sign-up", get(auth::sign_up_page).post(auth::sign_up))
        .route("/sign-out", post(auth::sign_out))
        .route("/portfolio", get(portfolio::page))
        .route("/portfolio/deposit", post(portfolio::deposit))
        .route("/portfolio/wallet", post(portfolio::wallet))
        .route("/decisions", get(decisions::list))
        .route("/decisions/feed", get(decisions::feed))
        .route("/decisions/{id}", get(decisions::one))
        .route("/decisions/{id}/approval", post(decisions::answer_approval))
        .route("/strategies", get(strategies::list).post(strategies::create))
        .route("/strategies/new", get(strategies::new))
        .route("/strategies/{id}", get(strategies::edit).post(strategies::update))
        .route("/strategies/{id}/state", post(strategies::change_state))
        .route("/backtests", get(backtests::list).post(backtests::run))
        .route("/backtests/{id}", get(backtests::one))
        .route("/backtests/{id}/cancel", post(backtests::cancel))
        .route("/backtests/{id}/chart.svg", get(backtests::chart))
        .route("/backtests/{id}/report.json", get(backtests::report))
        .route("/budget", get(budget::page))
        .route("/budget/propose", post(budget::propose))
        .route("/budget/confirm", post(budget::confirm))
        .route("/budget/stop", post(budget::stop))
        .route("/market", get(market::page))
        .route("/market/feed", get(market::feed))
        .route("/market/moments/{id}", get(market::moment))
        .route("/notifications", get(community::notifications).post(community::read_all))
        .route("/leaderboards", get(community::leaderboards))
        .route("/operators", get(operators::page).post(operators::credential))
        .fallback(not_found)
        .with_state(app)
}

async fn not_found(visitor: Visitor) -> Response {
    let page = crate::html::page(
        &visitor,
        "",
        "Not found",
        html! { p { "There is no page here. " a href="/portfolio" { "Go to your portfolio" } "." } },
    );
    (StatusCode::NOT_FOUND, page).into_response()
}

/// The answer to a forged form: 403 with a page that says what to do.
pub fn refuse_forged(forged: &Forged) -> Response {
    let why = match forged {
        Forged::OtherOrigin(origin) => format!("This form was sent from another site ({origin}); it was not acted on."),
        Forged::TokenMismatch => {
            "This form's security token did not match (it may have come from another site, or from an old page); it was not acted on. Reload the page and try again.".to_owned()
        }
    };
    let page = crate::html::bare(
        "Refused",
        maud::html! { p.problem role="alert" { (why) } p { a href="/" { "Back to the dashboard" } } },
    );
    (StatusCode::FORBIDDEN, page).into_response()
}

/// A posted form's fields, in order (repeated names kept).
#[derive(Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Reads a form body; a body that is not a form is read as an empty form (and so refused as
    /// forged, having no CSRF field).
    pub fn read(form: Result<axum::Form<Vec<(String, String)>>, FormRejection>) -> Self {
        form.map(|axum::Form(pairs)| Self(pairs)).unwrap_or_default()
    }

    /// The first value of a field, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str())
    }

    /// Every value of a field.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }

    /// Checks the form came from the dashboard's own pages; the refusal otherwise.
    pub fn check(&self, visitor: &Visitor, headers: &HeaderMap) -> Result<(), Response> {
        let field = self.0.iter().find(|(n, _)| n == "csrf").map(|(_, v)| v.as_str());
        visitor.check_form(headers, field).map_err(|forged| refuse_forged(&forged))
    }
}

/// A posted form that came from the dashboard's own pages, with its visitor: a forged one is
/// answered with the refusal before the handler runs.
#[derive(Debug)]
pub struct Posted {
    /// Who sent it.
    pub visitor: Visitor,
    /// Its fields.
    pub fields: Fields,
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Posted {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let Ok(visitor) = <Visitor as axum::extract::FromRequestParts<S>>::from_request_parts(&mut parts, state).await;
        let headers = parts.headers.clone();
        let form =
            axum::Form::<Vec<(String, String)>>::from_request(axum::extract::Request::from_parts(parts, body), state)
                .await;
        let fields = Fields::read(form);
        fields.check(&visitor, &headers)?;
        Ok(Self { visitor, fields })
    }
}

/// Where a live feed's browser last was, when it reconnects: the id of the last server-sent
/// event it received (`Last-Event-ID`), which each feed writes as it likes.
pub fn last_event_id(headers: &http::HeaderMap) -> Option<&str> {
    headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::trim)
}

/// The visitor's session, or the way to the sign-in page.
pub fn session(visitor: &Visitor) -> Result<&Session, Response> {
    visitor.session.as_ref().ok_or_else(|| Redirect::to("/sign-in").into_response())
}

/// A form's answer when it worked: back to `path`; when the gateway no longer accepts the
/// session: its end; otherwise `None`, for the page to show again with the problem.
pub fn done<T>(app: &App, result: &Result<T, Problem>, path: &str) -> Option<Response> {
    match result {
        Ok(_) => Some(Redirect::to(path).into_response()),
        Err(problem) if problem.signed_out() => Some(app.signed_out()),
        Err(_) => None,
    }
}

/// The status a page answers with when its form failed.
pub fn status_of(problem: &Problem) -> StatusCode {
    if problem.unavailable() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::UNPROCESSABLE_ENTITY }
}

/// True when any of the sections' problems says the session has ended.
pub fn any_signed_out(problems: &[Option<&Problem>]) -> bool {
    problems.iter().flatten().any(|p| p.signed_out())
}

/// A random idempotency key for a form (so that a form sent twice acts once).
pub fn form_key() -> String {
    uuid::Uuid::new_v4().to_string()
}
