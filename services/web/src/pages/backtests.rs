//! Backtests: what the collector's strategies would have done over a seeded simulated season,
//! side by side with the baselines. A form starts one; its page follows its progress, then shows
//! each ledger's figures and the chart of equity and drawdown the agents drew (the same SVG the
//! command line writes), with the whole report as JSON to download.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use fastbreak_proto::agents::v1::{
    Backtest, BacktestLedger, BacktestState, BacktestView, CancelBacktestRequest, GetBacktestRequest,
    ListBacktestsRequest, ListBacktestsResponse, RunBacktestRequest,
};
use fastbreak_proto::strategy::v1::{ListStrategiesResponse, strategy::Parameters};
use http::StatusCode;
use maud::{Markup, html};

use super::{App, Fields, Posted, any_signed_out, done, session, status_of};
use crate::backend::{Part, Problem, answer};
use crate::html::{csrf_field, field, money, or_problem, parse_dollars, problem, time};
use crate::session::Visitor;

/// The most paper money a ledger may start with, in cents ($10,000,000), as the agents bound it.
const MAX_STARTING_CENTS: i64 = 1_000_000_000;

/// How often a running backtest's page asks again, in seconds.
const REFRESH_SECONDS: u32 = 2;

/// The form's values as sent (or its defaults).
struct Form<'a> {
    chosen: Vec<&'a str>,
    days: &'a str,
    seed: &'a str,
    hold_days: &'a str,
    starting: &'a str,
}

impl<'a> Form<'a> {
    const DEFAULT: Form<'static> = Form { chosen: Vec::new(), days: "30", seed: "7", hold_days: "7", starting: "1000" };

    fn of(fields: &'a Fields) -> Self {
        Form {
            chosen: fields.all("strategy_ids"),
            days: fields.get("days"),
            seed: fields.get("seed"),
            hold_days: fields.get("hold_days"),
            starting: fields.get("starting_balance_cents"),
        }
    }

    /// The request, or the first field the page itself finds wrong.
    fn request(&self) -> Result<RunBacktestRequest, Problem> {
        let whole = |name: &str, text: &str| -> Result<i32, Problem> {
            text.trim()
                .parse()
                .map_err(|_| Problem::field(Part::Agents, name, format!("must be a whole number, not {text:?}")))
        };
        let seed = self.seed.trim().parse().map_err(|_| {
            Problem::field(Part::Agents, "seed", format!("must be a whole number from 0, not {:?}", self.seed))
        })?;
        let starting = match parse_dollars(self.starting) {
            // The agents' bounds, in the dollars the field is in (0 would mean their default).
            Ok(Some(cents)) if !(1..=MAX_STARTING_CENTS).contains(&cents) => {
                let most = money(MAX_STARTING_CENTS);
                return Err(Problem::field(
                    Part::Agents,
                    "starting_balance_cents",
                    format!("must be more than $0.00 and at most {most}"),
                ));
            }
            Ok(Some(cents)) => cents,
            Ok(None) => return Err(Problem::field(Part::Agents, "starting_balance_cents", "is required")),
            Err(why) => return Err(Problem::field(Part::Agents, "starting_balance_cents", why)),
        };
        Ok(RunBacktestRequest {
            strategy_ids: self.chosen.iter().map(|s| (*s).to_owned()).collect(),
            seed,
            days: whole("days", self.days)?,
            starting_balance_cents: starting,
            hold_days: whole("hold_days", self.hold_days)?,
        })
    }
}

fn state_tag(state: BacktestState) -> Markup {
    match state {
        BacktestState::Running => html! { span.tag { "running" } },
        BacktestState::Succeeded => html! { strong.good { "succeeded" } },
        BacktestState::Failed => html! { strong.bad { "failed" } },
        BacktestState::Cancelled => html! { span.tag { "cancelled" } },
        BacktestState::Unspecified => html! { "unknown" },
    }
}

fn days_done(b: &Backtest) -> String {
    format!("{} of {} days", b.days_done, b.days)
}

fn start_form(
    visitor: &Visitor,
    strategies: &ListStrategiesResponse,
    form: &Form<'_>,
    trouble: Option<&Problem>,
) -> Markup {
    let eligible: Vec<_> =
        strategies.strategies.iter().filter(|s| !matches!(s.parameters, Some(Parameters::ArbitrageMode(_)))).collect();
    let list_complaint = trouble.and_then(|p| {
        p.fields.iter().find(|(name, _)| name.starts_with("strategy_ids")).map(|(name, why)| format!("{name} {why}"))
    });
    html! {
        @if eligible.is_empty() {
            p { "You have no strategy to backtest yet (arbitrage is not backtested). " a href="/strategies/new" { "Create one" } "." }
        } @else {
            form.stack method="post" action="/backtests" {
                (csrf_field(visitor))
                fieldset aria-describedby=[list_complaint.as_ref().map(|_| "field-strategy_ids-error")] {
                    legend { "Strategies, side by side (1 to 10)" }
                    @for s in &eligible {
                        label {
                            input type="checkbox" name="strategy_ids" value=(s.strategy_id)
                                checked[form.chosen.contains(&s.strategy_id.as_str())];
                            " " (s.display_name)
                        }
                    }
                    @if let Some(why) = &list_complaint { span.field-error id="field-strategy_ids-error" { (why) } }
                }
                (field("Simulated days", "days", "number", form.days, "1 to 120", trouble))
                (field("Season's seed", "seed", "number", form.seed, "the same seed replays the same market", trouble))
                (field("Days each moment is held before it is sold", "hold_days", "number", form.hold_days, "0 to 60; 0 holds to the end", trouble))
                (field("Paper money for each strategy, in dollars", "starting_balance_cents", "text", form.starting, "up to $10,000,000; never your own funds", trouble))
                p { button type="submit" { "Run the backtest" } }
            }
        }
    }
}

fn past(list: &ListBacktestsResponse) -> Markup {
    html! {
        @if list.backtests.is_empty() {
            p { "No backtest yet." }
        } @else {
            div.scroll { table {
                thead { tr { th { "Asked" } th { "State" } th.num { "Strategies" } th.num { "Seed" } th.num { "Days" } th.num { "Held" } } }
                tbody {
                    @for b in &list.backtests {
                        tr {
                            td { a href={"/backtests/" (b.backtest_id)} { (time(b.create_time.as_ref())) } }
                            td { (state_tag(b.state())) @if b.state() == BacktestState::Running { " " (days_done(b)) } }
                            td.num { (b.strategy_ids.len()) }
                            td.num { (b.seed) }
                            td.num { (b.days) }
                            td.num { (b.hold_days) }
                        }
                    }
                }
            } }
            @if !list.next_page_token.is_empty() { p { "Showing the newest 20 backtests." } }
        }
    }
}

async fn render_list(
    app: &App,
    visitor: &Visitor,
    form: &Form<'_>,
    trouble: Option<&Problem>,
    status: StatusCode,
) -> Response {
    if let Err(away) = session(visitor) {
        return away;
    }
    let gateway = &app.gateway;
    let strategies = gateway.own_strategies(visitor);
    let backtests = async {
        let mut client = gateway.agents()?;
        let request = ListBacktestsRequest { page_size: 20, page_token: String::new() };
        answer(Part::Agents, client.list_backtests(gateway.request(visitor, request)).await)
    };
    let (strategies, backtests) = tokio::join!(strategies, backtests);
    if any_signed_out(&[strategies.as_ref().err(), backtests.as_ref().err()]) {
        return app.signed_out();
    }
    let body = html! {
        p { "A backtest replays a seeded simulated season through the agents' own decision code: your strategies' rules, limits and protections, each on a paper ledger of its own, beside \"buy every listing under fair value\" and \"hold nothing\"." }
        @if let Some(trouble) = trouble { (problem(trouble)) }
        section aria-labelledby="start" {
            h2 #start { "Run a backtest" }
            (or_problem(&strategies, |list| start_form(visitor, list, form, trouble)))
        }
        section aria-labelledby="past" {
            h2 #past { "Your backtests" }
            (or_problem(&backtests, past))
        }
    };
    app.html(visitor, status, crate::html::page(visitor, "/backtests", "Backtests", body))
}

pub async fn list(State(app): State<App>, visitor: Visitor) -> Response {
    render_list(&app, &visitor, &Form::DEFAULT, None, StatusCode::OK).await
}

pub async fn run(State(app): State<App>, Posted { visitor, fields }: Posted) -> Response {
    let form = Form::of(&fields);
    let result = async {
        let request = form.request()?;
        let mut agents = app.gateway.agents()?;
        answer(Part::Agents, agents.run_backtest(app.gateway.request(&visitor, request)).await)
    }
    .await;
    match result {
        Ok(backtest) => Redirect::to(&format!("/backtests/{}", backtest.backtest_id)).into_response(),
        Err(problem) if problem.signed_out() => app.signed_out(),
        Err(problem) => render_list(&app, &visitor, &form, Some(&problem), status_of(&problem)).await,
    }
}

/// One of the visitor's backtests, as much of it as `view` asks, or the page that says why not.
async fn backtest(app: &App, visitor: &Visitor, id: String, view: BacktestView) -> Result<Backtest, Response> {
    session(visitor)?;
    let found = async {
        let mut agents = app.gateway.agents()?;
        answer(
            Part::Agents,
            agents
                .get_backtest(app.gateway.request(visitor, GetBacktestRequest { backtest_id: id, view: view.into() }))
                .await,
        )
    }
    .await;
    found.map_err(|trouble| {
        if trouble.signed_out() {
            return app.signed_out();
        }
        let status = if matches!(trouble.code, tonic::Code::NotFound | tonic::Code::InvalidArgument) {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let body = html! { (problem(&trouble)) p { a href="/backtests" { "All backtests" } } };
        app.html(visitor, status, crate::html::page(visitor, "/backtests", "Backtest", body))
    })
}

fn ledgers(b: &Backtest) -> Markup {
    let rows = b.strategies.iter().map(|l| (l, false)).chain(b.baselines.iter().map(|l| (l, true)));
    let share = |x: f64| format!("{:.2}%", x * 100.0);
    html! {
        div.scroll { table {
            thead { tr {
                th { "Ledger" } th.num { "Profit" } th.num { "ROI" } th.num { "Realised" } th.num { "Win rate" }
                th.num { "Max drawdown" } th.num { "Bought" } th.num { "Sold" } th.num { "Awaiting approval" } th.num { "Decisions" } th.num { "Equity at the end" }
            } }
            tbody {
                @for (l, baseline) in rows {
                    tr {
                        td { (l.display_name) @if baseline { " " span.tag { "baseline" } } }
                        td.num { (crate::html::signed_money(l.profit_cents)) }
                        td.num { (share(l.roi)) }
                        td.num { (crate::html::signed_money(l.realised_profit_cents)) }
                        td.num { (share(l.win_rate)) }
                        td.num { (share(l.max_drawdown)) " (" (money(l.max_drawdown_cents)) ")" }
                        td.num { (l.purchases) }
                        td.num { (l.closed_trades) }
                        td.num { (l.awaiting_approval) }
                        td.num { (l.decisions) }
                        td.num { (money(l.final_equity_cents)) }
                    }
                }
            }
        } }
    }
}

/// What the chart shows, for a reader who cannot see it.
fn chart_description(b: &Backtest) -> String {
    let ends: Vec<String> = b
        .strategies
        .iter()
        .chain(&b.baselines)
        .map(|l: &BacktestLedger| {
            format!(
                "{} ends at {} with a largest drawdown of {:.2}%",
                l.display_name,
                money(l.final_equity_cents),
                l.max_drawdown * 100.0
            )
        })
        .collect();
    format!("Equity and drawdown over {} simulated days: {}", b.days, ends.join("; "))
}

pub async fn one(State(app): State<App>, visitor: Visitor, Path(id): Path<String>) -> Response {
    render_one(&app, &visitor, id, None).await
}

/// Cancels a running backtest, then shows it again.
pub async fn cancel(State(app): State<App>, Path(id): Path<String>, Posted { visitor, .. }: Posted) -> Response {
    let result = async {
        let mut agents = app.gateway.agents()?;
        let request = CancelBacktestRequest { backtest_id: id.clone() };
        answer(Part::Agents, agents.cancel_backtest(app.gateway.request(&visitor, request)).await)
    }
    .await;
    if let Some(response) = done(&app, &result, &format!("/backtests/{id}")) {
        return response;
    }
    render_one(&app, &visitor, id, result.err().as_ref()).await
}

/// One backtest's page, with what went wrong with a form sent from it, if anything did.
async fn render_one(app: &App, visitor: &Visitor, id: String, trouble: Option<&Problem>) -> Response {
    // The page shows the figures and links the chart and the report: it reads neither.
    let b = match backtest(app, visitor, id, BacktestView::Basic).await {
        Ok(b) => b,
        Err(page) => return page,
    };
    let running = b.state() == BacktestState::Running;
    let body = html! {
        @if let Some(trouble) = trouble { (problem(trouble)) }
        p {
            (state_tag(b.state())) " — " (days_done(&b)) " of the season with seed " (b.seed)
            ", each strategy starting with " (money(b.starting_balance_cents)) " of paper money"
            @if b.hold_days > 0 { ", each moment held " (b.hold_days) " days" } @else { ", every moment held to the end" }
            ". Asked " (time(b.create_time.as_ref()))
            @if b.end_time.is_some() { ", finished " (time(b.end_time.as_ref())) }
            "."
        }
        @if running {
            progress max=(b.days) value=(b.days_done) aria-label="Simulated days replayed" { (days_done(&b)) }
            p { "This page refreshes every " (REFRESH_SECONDS) " seconds until the backtest is done." }
            form method="post" action={"/backtests/" (b.backtest_id) "/cancel"} {
                (csrf_field(visitor))
                button.secondary type="submit" { "Cancel the backtest" }
            }
        }
        @if b.state() == BacktestState::Cancelled {
            p { "It was " (b.failure_reason) ", after " (days_done(&b)) "; it has no report." }
        }
        @if b.state() == BacktestState::Failed {
            p.problem role="alert" { "It failed: " (b.failure_reason) }
        }
        @if b.state() == BacktestState::Succeeded {
            section aria-labelledby="figures" {
                h2 #figures { "Figures" }
                @if !b.budget_limits.is_empty() { p { "Every ledger was held to your budget limits: " (b.budget_limits) "." } }
                (ledgers(&b))
            }
            section aria-labelledby="chart" {
                h2 #chart { "Equity and drawdown" }
                figure.chart {
                    img src={"/backtests/" (b.backtest_id) "/chart.svg"} alt=(chart_description(&b)) width="100%";
                }
                p {
                    a href={"/backtests/" (b.backtest_id) "/chart.svg"} download={"backtest-" (b.backtest_id) ".svg"} { "Download the chart (SVG)" }
                    " · "
                    a href={"/backtests/" (b.backtest_id) "/report.json"} download={"backtest-" (b.backtest_id) ".json"} { "Download the whole report (JSON): every trade with its reasons and valuation factors, best and worst calls, skips by reason" }
                }
            }
        }
        p { a href="/backtests" { "All backtests" } }
    };
    let status = trouble.map_or(StatusCode::OK, status_of);
    let mut response = app.html(visitor, status, crate::html::page(visitor, "/backtests", "Backtest", body));
    if running {
        // Asked again while it runs (the dashboard needs no script for it).
        response.headers_mut().insert("refresh", http::HeaderValue::from(REFRESH_SECONDS));
    }
    response
}

/// A succeeded backtest's document: `pick` of it, read in `view`, sent as `content_type`, or 404.
async fn document(
    app: &App,
    visitor: &Visitor,
    id: String,
    content_type: &'static str,
    (view, pick): (BacktestView, fn(Backtest) -> String),
) -> Response {
    let b = match backtest(app, visitor, id, view).await {
        Ok(b) => b,
        Err(page) => return page,
    };
    if b.state() != BacktestState::Succeeded {
        let body = html! { p { "The backtest has not succeeded (yet): it has no report." } p { a href="/backtests" { "All backtests" } } };
        return app.html(visitor, StatusCode::NOT_FOUND, crate::html::page(visitor, "/backtests", "Backtest", body));
    }
    let mut response = (StatusCode::OK, pick(b)).into_response();
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    headers.insert(http::header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    // The document runs nothing, even opened on its own.
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox",
        ),
    );
    response
}

pub async fn chart(State(app): State<App>, visitor: Visitor, Path(id): Path<String>) -> Response {
    document(&app, &visitor, id, "image/svg+xml", (BacktestView::Chart, |b| b.chart_svg)).await
}

pub async fn report(State(app): State<App>, visitor: Visitor, Path(id): Path<String>) -> Response {
    document(&app, &visitor, id, "application/json", (BacktestView::Report, |b| b.report_json)).await
}
