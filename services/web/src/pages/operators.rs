//! For operators: the health of every endpoint, as the gateway's checks see it. The operator
//! credential is given once on this page and kept in a cookie of its own.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use fastbreak_proto::gateway::v1::{GetSystemHealthRequest, ServingStatus, SystemHealth};
use http::StatusCode;
use maud::{Markup, html};

use super::{App, Posted, status_of};
use crate::backend::{Part, Problem, answer};
use crate::html::{csrf_field, field, page as frame, problem, time};
use crate::session::{OPERATOR_COOKIE, Visitor, encode_operator};

fn status_text(status: ServingStatus) -> Markup {
    match status {
        ServingStatus::Serving => html! { strong.good { "serving" } },
        ServingStatus::NotServing => html! { strong.bad { "not serving" } },
        ServingStatus::Unreachable => html! { strong.bad { "unreachable" } },
        ServingStatus::Unspecified => html! { "not checked yet" },
    }
}

fn health_table(health: &SystemHealth) -> Markup {
    html! {
        p { "The system is " (status_text(health.status())) " (checked " (time(health.check_time.as_ref())) ")." }
        div.scroll { table {
            thead { tr { th { "Service" } th { "Endpoint" } th { "Status" } th { "Version" } th.num { "Up for" } th { "Dependencies" } th { "Detail" } } }
            tbody {
                @for service in &health.services {
                    @for (i, e) in service.endpoints.iter().enumerate() {
                        tr {
                            td { @if i == 0 { strong { (service.service) } " " (status_text(service.status())) } }
                            td { code { (e.address) } }
                            td { (status_text(e.status())) }
                            td { (e.version) }
                            td.num { @if e.uptime_seconds > 0 { (format!("{}h {:02}m", e.uptime_seconds / 3600, e.uptime_seconds % 3600 / 60)) } }
                            td { @for d in &e.dependencies { (d.name) ": " (d.state) br; } }
                            td { (e.detail) }
                        }
                    }
                }
            }
        } }
    }
}

fn credential_form(visitor: &Visitor, trouble: Option<&Problem>) -> Markup {
    html! {
        p { "The system's health is for operators: give the operator credential (the gateway's FASTBREAK_OPERATOR_TOKEN)." }
        form.stack method="post" action="/operators" {
            (csrf_field(visitor))
            input type="hidden" name="action" value="remember";
            (field("Operator credential", "credential", "password", "", "", trouble))
            p { button type="submit" { "Show the system's health" } }
        }
    }
}

async fn health(app: &App, visitor: &Visitor, credential: &str) -> Result<SystemHealth, Problem> {
    let mut client = app.gateway.health()?;
    let request = app.gateway.operator_request(visitor, credential, GetSystemHealthRequest {});
    answer(Part::Health, client.get_system_health(request).await)
}

pub async fn page(State(app): State<App>, visitor: Visitor) -> Response {
    let Some(credential) = visitor.operator.clone() else {
        return app.html(
            &visitor,
            StatusCode::OK,
            frame(&visitor, "/operators", "Operators", credential_form(&visitor, None)),
        );
    };
    let body = match health(&app, &visitor, &credential).await {
        Ok(health) => html! {
            (health_table(&health))
            form method="post" action="/operators" {
                (csrf_field(&visitor))
                input type="hidden" name="action" value="forget";
                button.secondary type="submit" { "Forget the operator credential" }
            }
        },
        Err(trouble) if matches!(trouble.code, tonic::Code::Unauthenticated | tonic::Code::PermissionDenied) => {
            let trouble = Problem { code: tonic::Code::PermissionDenied, ..trouble };
            credential_form(&visitor, Some(&trouble))
        }
        Err(trouble) => problem(&trouble),
    };
    app.html(&visitor, StatusCode::OK, frame(&visitor, "/operators", "Operators", body))
}

pub async fn credential(State(app): State<App>, Posted { visitor, fields }: Posted) -> Response {
    if fields.get("action") == "forget" {
        let mut response = Redirect::to("/operators").into_response();
        response.headers_mut().append(http::header::SET_COOKIE, app.cookies.clear(OPERATOR_COOKIE));
        return response;
    }
    let given = fields.get("credential").trim().to_owned();
    let checked = if given.is_empty() || given.len() > 512 || given.parse::<http::HeaderValue>().is_err() {
        Err(Problem::field(Part::Health, "credential", "must be the operator credential"))
    } else {
        health(&app, &visitor, &given).await
    };
    match checked {
        Ok(_) => {
            let mut response = Redirect::to("/operators").into_response();
            response
                .headers_mut()
                .append(http::header::SET_COOKIE, app.cookies.set(OPERATOR_COOKIE, &encode_operator(&given), None));
            response
        }
        Err(trouble) => {
            let trouble = if matches!(trouble.code, tonic::Code::Unauthenticated | tonic::Code::PermissionDenied) {
                Problem::field(Part::Health, "credential", "is not the operator credential")
            } else {
                trouble
            };
            let status = status_of(&trouble);
            app.html(
                &visitor,
                status,
                frame(&visitor, "/operators", "Operators", credential_form(&visitor, Some(&trouble))),
            )
        }
    }
}
