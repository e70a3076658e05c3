//! The budget: every limit with what is spent and held of it, the two-step change (propose,
//! see the differences, confirm), and the emergency stop as one button.

use axum::extract::State;
use axum::response::Response;
use fastbreak_proto::risk::v1::{
    BudgetLimitChange, BudgetLimits, CancelBudgetLimitChangeRequest, ConfirmBudgetLimitChangeRequest, EmergencyStop,
    EngageEmergencyStopRequest, GetBudgetLimitsRequest, GetEmergencyStopRequest, GetPendingBudgetLimitChangeRequest,
    GetSpendingSummaryRequest, LimitKind, LimitUsage, ProposeBudgetLimitChangeRequest, ReleaseEmergencyStopRequest,
    SpendingSummary,
};
use http::StatusCode;
use maud::{Markup, html};

use super::{App, Fields, Posted, any_signed_out, done, session, status_of};
use crate::backend::{Part, Problem, answer};
use crate::html::{csrf_field, dollars_value, field, money, or_problem, parse_dollars, problem, time};
use crate::session::Visitor;

/// The limits a form edits: (field, label, hint).
const LIMITS: [(&str, &str, &str); 7] = [
    ("daily_cents", "Daily", "most to spend in a day"),
    ("weekly_cents", "Weekly", "most to spend in a week (Monday to Sunday)"),
    ("monthly_cents", "Monthly", "most to spend in a calendar month"),
    ("total_cents", "Total", "most to spend ever"),
    ("per_moment_cents", "Per moment", "most to pay for one moment"),
    ("reserve_cents", "Reserve", "balance that must remain after any purchase"),
    (
        "emergency_threshold_cents",
        "Emergency threshold",
        "spending within an hour that engages the emergency stop by itself",
    ),
];

fn limit_name(kind: LimitKind) -> &'static str {
    match kind {
        LimitKind::Daily => "Daily",
        LimitKind::Weekly => "Weekly",
        LimitKind::Monthly => "Monthly",
        LimitKind::Total => "Total",
        LimitKind::PerMoment => "Per moment",
        LimitKind::Reserve => "Reserve",
        LimitKind::EmergencyThreshold => "Emergency threshold (last hour)",
        LimitKind::Unspecified => "—",
    }
}

fn limit_of(limits: &BudgetLimits, field: &str) -> Option<i64> {
    match field {
        "daily_cents" => limits.daily_cents,
        "weekly_cents" => limits.weekly_cents,
        "monthly_cents" => limits.monthly_cents,
        "total_cents" => limits.total_cents,
        "per_moment_cents" => limits.per_moment_cents,
        "reserve_cents" => limits.reserve_cents,
        "emergency_threshold_cents" => limits.emergency_threshold_cents,
        _ => None,
    }
}

fn usage_bar(usage: &LimitUsage) -> Markup {
    let Some(limit) = usage.limit_cents.filter(|l| *l > 0) else {
        return html! { "no limit" };
    };
    let share = |cents: i64| (cents as f64 / limit as f64 * 100.0).clamp(0.0, 100.0);
    let (spent, held) = (share(usage.spent_cents), share(usage.held_cents));
    let label = format!("{} spent and {} held of {}", money(usage.spent_cents), money(usage.held_cents), money(limit));
    html! {
        div.bar role="img" aria-label=(label) {
            div.spent style=(format!("width:{spent:.1}%")) {}
            div.held style=(format!("left:{spent:.1}%;width:{:.1}%", held.min(100.0 - spent))) {}
        }
        small { (label) }
    }
}

fn usages(summary: &SpendingSummary) -> Markup {
    html! {
        @if summary.emergency_stop_engaged { p.problem role="alert" { "The emergency stop is engaged: no purchase is made." } }
        @if summary.automation_paused { p.problem role="alert" { "Automated purchases are paused by a suspicious-activity alert until you acknowledge it." } }
        div.scroll { table {
            thead { tr { th { "Limit" } th { "Used (spent, held)" } th.num { "Remaining" } th { "Since" } } }
            tbody {
                @for u in &summary.usages {
                    tr {
                        td { (limit_name(u.kind())) }
                        td { (usage_bar(u)) }
                        td.num { @match u.remaining_cents { Some(r) => (money(r)), None => "—" } }
                        td { @if u.period_start_time.is_some() { (time(u.period_start_time.as_ref())) } }
                    }
                }
            }
        } }
        p { small { "Periods follow " (if summary.time_zone.is_empty() { "UTC" } else { summary.time_zone.as_str() }) "." } }
    }
}

fn limits_form(visitor: &Visitor, limits: &BudgetLimits, typed: Option<&Fields>, trouble: Option<&Problem>) -> Markup {
    html! {
        form.stack method="post" action="/budget/propose" novalidate {
            (csrf_field(visitor))
            @for (name, label, hint) in LIMITS {
                @let value = typed.map_or_else(|| dollars_value(limit_of(limits, name)), |t| t.get(name).to_owned());
                (field(&format!("{label}, in dollars"), name, "text", &value, &format!("{hint}; empty means none"), trouble))
            }
            @let zone = typed.map_or(limits.time_zone.clone(), |t| t.get("time_zone").to_owned());
            (field("Time zone", "time_zone", "text", &zone, "an IANA name such as America/New_York; empty means UTC", trouble))
            p { button type="submit" { "Review the change" } }
        }
    }
}

fn pending(visitor: &Visitor, change: &BudgetLimitChange) -> Markup {
    html! {
        section.card aria-labelledby="pending" {
            h2 #pending { "A change waits for your confirmation" }
            p { "Nothing changes until you confirm. It expires " (time(change.expire_time.as_ref())) "." }
            div.scroll { table {
                thead { tr { th { "Limit" } th.num { "Now" } th.num { "After" } } }
                tbody {
                    @for d in &change.differences {
                        tr {
                            td { (limit_name(d.kind())) }
                            td.num { @match d.current_cents { Some(c) => (money(c)), None => "none" } }
                            td.num { @match d.proposed_cents { Some(c) => (money(c)), None => "none" } }
                        }
                    }
                    @if !change.current_time_zone.is_empty() {
                        @let after = change.limits.as_ref().map(|l| l.time_zone.clone()).unwrap_or_default();
                        tr { td { "Time zone" } td.num { (change.current_time_zone) } td.num { (if after.is_empty() { "UTC".to_owned() } else { after }) } }
                    }
                }
            } }
            @if change.differences.is_empty() && change.current_time_zone.is_empty() { p { "It changes nothing." } }
            form.inline method="post" action="/budget/confirm" {
                (csrf_field(visitor))
                input type="hidden" name="change_id" value=(change.change_id);
                input type="hidden" name="action" value="confirm";
                button type="submit" { "Confirm the change" }
            }
            " "
            form.inline method="post" action="/budget/confirm" {
                (csrf_field(visitor))
                input type="hidden" name="change_id" value=(change.change_id);
                input type="hidden" name="action" value="cancel";
                button.secondary type="submit" { "Cancel it" }
            }
        }
    }
}

fn stop_section(visitor: &Visitor, stop: &EmergencyStop) -> Markup {
    html! {
        @if stop.engaged {
            p.problem role="alert" { "Engaged " (time(stop.engage_time.as_ref())) @if !stop.reason.is_empty() { ": " (stop.reason) } ". No purchase is made until you release it." }
            form method="post" action="/budget/stop" {
                (csrf_field(visitor))
                input type="hidden" name="action" value="release";
                button type="submit" { "Release the emergency stop" }
            }
        } @else {
            p { "Not engaged. Engaging it refuses every purchase, automated or by hand, until you release it." }
            form method="post" action="/budget/stop" {
                (csrf_field(visitor))
                input type="hidden" name="action" value="engage";
                input type="hidden" name="reason" value="Stopped from the dashboard";
                button.danger type="submit" { "Engage the emergency stop" }
            }
        }
    }
}

async fn render(
    app: &App,
    visitor: &Visitor,
    typed: Option<&Fields>,
    trouble: Option<&Problem>,
    status: StatusCode,
) -> Response {
    if let Err(away) = session(visitor) {
        return away;
    }
    let gateway = &app.gateway;
    let summary = async {
        let mut risk = gateway.risk()?;
        answer(Part::Risk, risk.get_spending_summary(gateway.request(visitor, GetSpendingSummaryRequest {})).await)
    };
    let limits = async {
        let mut risk = gateway.risk()?;
        answer(Part::Risk, risk.get_budget_limits(gateway.request(visitor, GetBudgetLimitsRequest {})).await)
    };
    let change = async {
        let mut risk = gateway.risk()?;
        let asked =
            risk.get_pending_budget_limit_change(gateway.request(visitor, GetPendingBudgetLimitChangeRequest {})).await;
        match answer(Part::Risk, asked) {
            Ok(change) => Ok(Some(change)),
            Err(problem) if problem.code == tonic::Code::NotFound => Ok(None),
            Err(problem) => Err(problem),
        }
    };
    let stop = async {
        let mut risk = gateway.risk()?;
        answer(Part::Risk, risk.get_emergency_stop(gateway.request(visitor, GetEmergencyStopRequest {})).await)
    };
    let (summary, limits, change, stop) = tokio::join!(summary, limits, change, stop);
    if any_signed_out(&[summary.as_ref().err(), limits.as_ref().err(), change.as_ref().err(), stop.as_ref().err()]) {
        return app.signed_out();
    }
    let body = html! {
        @if let Some(trouble) = trouble { (problem(trouble)) }
        section aria-labelledby="stop" {
            h2 #stop { "Emergency stop" }
            (or_problem(&stop, |stop| stop_section(visitor, stop)))
        }
        section aria-labelledby="usage" {
            h2 #usage { "Spending against your limits" }
            (or_problem(&summary, usages))
        }
        @if let Ok(Some(change)) = &change { (pending(visitor, change)) }
        @if let Err(problem) = &change { (crate::html::problem(problem)) }
        section aria-labelledby="limits" {
            h2 #limits { "Change your limits" }
            p { "A change takes effect only after you review and confirm it." }
            (or_problem(&limits, |limits| limits_form(visitor, limits, typed, trouble)))
        }
    };
    app.html(visitor, status, crate::html::page(visitor, "/budget", "Budget", body))
}

pub async fn page(State(app): State<App>, visitor: Visitor) -> Response {
    render(&app, &visitor, None, None, StatusCode::OK).await
}

fn read_limits(fields: &Fields) -> Result<BudgetLimits, Problem> {
    let mut limits = BudgetLimits { time_zone: fields.get("time_zone").trim().to_owned(), ..Default::default() };
    let mut wrong = Vec::new();
    for (name, _, _) in LIMITS {
        let value = match parse_dollars(fields.get(name)) {
            Ok(value) => value,
            Err(why) => {
                wrong.push((name.to_owned(), why));
                None
            }
        };
        match name {
            "daily_cents" => limits.daily_cents = value,
            "weekly_cents" => limits.weekly_cents = value,
            "monthly_cents" => limits.monthly_cents = value,
            "total_cents" => limits.total_cents = value,
            "per_moment_cents" => limits.per_moment_cents = value,
            "reserve_cents" => limits.reserve_cents = value,
            _ => limits.emergency_threshold_cents = value,
        }
    }
    if wrong.is_empty() {
        return Ok(limits);
    }
    let message = wrong.iter().map(|(f, why)| format!("{f} {why}")).collect::<Vec<_>>().join("; ");
    Err(Problem { part: Part::Risk, code: tonic::Code::InvalidArgument, message, fields: wrong })
}

pub async fn propose(State(app): State<App>, Posted { visitor, fields }: Posted) -> Response {
    let result = async {
        let limits = read_limits(&fields)?;
        let mut risk = app.gateway.risk()?;
        let request = ProposeBudgetLimitChangeRequest { limits: Some(limits) };
        answer(Part::Risk, risk.propose_budget_limit_change(app.gateway.request(&visitor, request)).await)
    }
    .await;
    if let Some(response) = done(&app, &result, "/budget#pending") {
        return response;
    }
    let trouble = result.err();
    let status = trouble.as_ref().map_or(StatusCode::OK, status_of);
    render(&app, &visitor, Some(&fields), trouble.as_ref(), status).await
}

pub async fn confirm(State(app): State<App>, Posted { visitor, fields }: Posted) -> Response {
    let change_id = fields.get("change_id").to_owned();
    let result = async {
        let mut risk = app.gateway.risk()?;
        let gateway = &app.gateway;
        match fields.get("action") {
            "confirm" => {
                let request = ConfirmBudgetLimitChangeRequest { change_id };
                answer(Part::Risk, risk.confirm_budget_limit_change(gateway.request(&visitor, request)).await)
                    .map(|_| ())
            }
            "cancel" => {
                let request = CancelBudgetLimitChangeRequest { change_id };
                answer(Part::Risk, risk.cancel_budget_limit_change(gateway.request(&visitor, request)).await)
                    .map(|_| ())
            }
            other => Err(Problem::field(Part::Risk, "action", format!("must be confirm or cancel, not {other:?}"))),
        }
    }
    .await;
    if let Some(response) = done(&app, &result, "/budget") {
        return response;
    }
    let trouble = result.err();
    let status = trouble.as_ref().map_or(StatusCode::OK, status_of);
    render(&app, &visitor, None, trouble.as_ref(), status).await
}

pub async fn stop(State(app): State<App>, Posted { visitor, fields }: Posted) -> Response {
    let result = async {
        let mut risk = app.gateway.risk()?;
        let gateway = &app.gateway;
        match fields.get("action") {
            "engage" => {
                let request = EngageEmergencyStopRequest { reason: fields.get("reason").to_owned() };
                answer(Part::Risk, risk.engage_emergency_stop(gateway.request(&visitor, request)).await)
            }
            "release" => answer(
                Part::Risk,
                risk.release_emergency_stop(gateway.request(&visitor, ReleaseEmergencyStopRequest {})).await,
            ),
            other => Err(Problem::field(Part::Risk, "action", format!("must be engage or release, not {other:?}"))),
        }
    }
    .await;
    if let Some(response) = done(&app, &result, "/budget#stop") {
        return response;
    }
    let trouble = result.err();
    let status = trouble.as_ref().map_or(StatusCode::OK, status_of);
    render(&app, &visitor, None, trouble.as_ref(), status).await
}
