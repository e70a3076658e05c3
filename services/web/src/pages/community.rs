//! Notifications, and the leaderboards with the visitor's own row highlighted.

use axum::extract::{Query, State};
use axum::response::Response;
use fastbreak_proto::common::v1::Period;
use fastbreak_proto::notification::v1::{ListNotificationsRequest, MarkAllNotificationsReadRequest, Priority};
use fastbreak_proto::trading::v1::{GetLeaderboardRequest, LeaderboardEntry, LeaderboardMetric};
use http::StatusCode;
use maud::{Markup, html};

use super::{App, Posted, any_signed_out, done, session, status_of};
use crate::backend::{Part, Problem, answer};
use crate::html::{csrf_field, money, or_problem, percent, problem, time, words};
use crate::session::Visitor;

async fn render_notifications(app: &App, visitor: &Visitor, trouble: Option<&Problem>, status: StatusCode) -> Response {
    if let Err(away) = session(visitor) {
        return away;
    }
    let list = async {
        let mut notifications = app.gateway.notifications()?;
        let request = ListNotificationsRequest { page_size: 50, ..Default::default() };
        answer(Part::Notifications, notifications.list_notifications(app.gateway.request(visitor, request)).await)
    }
    .await;
    if any_signed_out(&[list.as_ref().err()]) {
        return app.signed_out();
    }
    let body = html! {
        @if let Some(trouble) = trouble { (problem(trouble)) }
        (or_problem(&list, |list| html! {
            p { (list.unread_count) " unread." }
            @if list.unread_count > 0 {
                form method="post" action="/notifications" {
                    (csrf_field(visitor))
                    button.secondary type="submit" { "Mark all read" }
                }
            }
            @if list.notifications.is_empty() { p { "Nothing yet: purchases, limits and alerts are told here." } } @else {
                div.scroll { table {
                    thead { tr { th { "When" } th { "Priority" } th { "About" } th { "Message" } } }
                    tbody {
                        @for n in &list.notifications {
                            tr style=[n.read_time.is_none().then_some("font-weight:600")] {
                                td { (time(n.create_time.as_ref())) @if n.read_time.is_none() { " " span.tag { "unread" } } }
                                td { @if n.priority() >= Priority::High { strong.bad { (words(n.priority().as_str_name(), "PRIORITY_")) } } @else { (words(n.priority().as_str_name(), "PRIORITY_")) } }
                                td { (words(n.category().as_str_name(), "NOTIFICATION_CATEGORY_")) }
                                td { strong { (n.title) } br; (n.body) }
                            }
                        }
                    }
                } }
            }
        }))
    };
    app.html(visitor, status, crate::html::page(visitor, "/notifications", "Notifications", body))
}

pub async fn notifications(State(app): State<App>, visitor: Visitor) -> Response {
    render_notifications(&app, &visitor, None, StatusCode::OK).await
}

pub async fn read_all(State(app): State<App>, Posted { visitor, .. }: Posted) -> Response {
    let result = async {
        let mut notifications = app.gateway.notifications()?;
        let request = app.gateway.request(&visitor, MarkAllNotificationsReadRequest {});
        answer(Part::Notifications, notifications.mark_all_notifications_read(request).await)
    }
    .await;
    if let Some(response) = done(&app, &result, "/notifications") {
        return response;
    }
    let trouble = result.err();
    let status = trouble.as_ref().map_or(StatusCode::OK, status_of);
    render_notifications(&app, &visitor, trouble.as_ref(), status).await
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct Board {
    #[serde(default)]
    metric: String,
    #[serde(default)]
    period: String,
}

const METRICS: [(&str, LeaderboardMetric, &str); 4] = [
    ("roi", LeaderboardMetric::Roi, "Return on investment"),
    ("profit", LeaderboardMetric::Profit, "Profit"),
    ("value", LeaderboardMetric::PortfolioValue, "Portfolio value"),
    ("trades", LeaderboardMetric::SuccessfulTrades, "Successful trades"),
];
const PERIODS: [(&str, Period, &str); 4] = [
    ("day", Period::Day, "Today"),
    ("week", Period::Week, "This week"),
    ("month", Period::Month, "This month"),
    ("all", Period::AllTime, "All time"),
];

fn value_of(metric: LeaderboardMetric, value: i64) -> String {
    match metric {
        LeaderboardMetric::Roi => percent(value),
        LeaderboardMetric::SuccessfulTrades => value.to_string(),
        _ => money(value),
    }
}

fn entry_row(metric: LeaderboardMetric, e: &LeaderboardEntry) -> Markup {
    html! {
        tr class=[e.is_caller.then_some("you")] {
            td.num { (e.rank) }
            td { (e.alias) @if e.is_caller { " (you)" } }
            td.num { (value_of(metric, e.value)) }
        }
    }
}

pub async fn leaderboards(State(app): State<App>, visitor: Visitor, Query(board): Query<Board>) -> Response {
    if let Err(away) = session(&visitor) {
        return away;
    }
    let (metric_key, metric, metric_name) =
        METRICS.iter().copied().find(|(key, _, _)| *key == board.metric).unwrap_or(METRICS[0]);
    let (period_key, period, period_name) =
        PERIODS.iter().copied().find(|(key, _, _)| *key == board.period).unwrap_or(PERIODS[1]);
    let found = async {
        let mut trading = app.gateway.trading()?;
        let request = GetLeaderboardRequest {
            metric: metric as i32,
            period: period as i32,
            page_size: 50,
            page_token: String::new(),
        };
        answer(Part::Trading, trading.get_leaderboard(app.gateway.request(&visitor, request)).await)
    }
    .await;
    if any_signed_out(&[found.as_ref().err()]) {
        return app.signed_out();
    }
    let body = html! {
        form method="get" action="/leaderboards" {
            label for="metric" { "Ranked by " }
            select #metric name="metric" {
                @for (key, _, name) in METRICS { option value=(key) selected[key == metric_key] { (name) } }
            }
            " "
            label for="period" { "over " }
            select #period name="period" {
                @for (key, _, name) in PERIODS { option value=(key) selected[key == period_key] { (name) } }
            }
            " " button type="submit" { "Show" }
        }
        h2 { (metric_name) ", " (period_name.to_lowercase()) }
        (or_problem(&found, |board| html! {
            @if board.entries.is_empty() { p { "Nobody is ranked yet." } } @else {
                div.scroll { table {
                    thead { tr { th.num { "Rank" } th { "Collector" } th.num { (metric_name) } } }
                    tbody { @for e in &board.entries { (entry_row(metric, e)) } }
                } }
            }
            @match &board.caller_entry {
                Some(you) if !board.entries.iter().any(|e| e.is_caller) => {
                    p { "Your place:" }
                    table { tbody { (entry_row(metric, you)) } }
                }
                Some(_) => {}
                None => p { "You are not ranked here (no trades in the period, or you chose to be left off leaderboards)." },
            }
            p { small { "Anonymised; computed " (time(board.compute_time.as_ref())) "." } }
        }))
    };
    app.html(&visitor, StatusCode::OK, crate::html::page(&visitor, "/leaderboards", "Leaderboards", body))
}
