//! The portfolio: cash, holdings with cost, value and gain, equity over time, returns for the
//! day, week and month against the market; paper funds and the wallet.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use fastbreak_proto::common::v1::Period;
use fastbreak_proto::marketplace::v1::{BatchGetMomentsRequest, Moment};
use fastbreak_proto::trading::v1::{
    DepositFundsRequest, EquityHistory, GetEquityHistoryRequest, GetPortfolioRequest, ListHoldingsRequest,
    ListHoldingsResponse, Portfolio,
};
use fastbreak_proto::user::v1::{
    ConnectWalletRequest, DisconnectWalletRequest, GetWalletRequest, RegisterWalletRequest, Wallet, WalletState,
};
use http::StatusCode;
use maud::{Markup, html};

use super::{App, Posted, any_signed_out, form_key, session, status_of};
use crate::backend::{Part, Problem, answer};
use crate::chart::{Series, money_over_time};
use crate::html::{csrf_field, field, money, or_problem, parse_dollars, percent, signed_money, time};
use crate::session::Visitor;

/// What the page shows, each part on its own.
struct Sections {
    portfolio: Result<Portfolio, Problem>,
    holdings: Result<ListHoldingsResponse, Problem>,
    equity: Result<EquityHistory, Problem>,
    wallet: Result<Option<Wallet>, Problem>,
    moments: HashMap<String, Moment>,
}

async fn sections(app: &App, visitor: &Visitor) -> Sections {
    let gateway = &app.gateway;
    let portfolio = async {
        let mut trading = gateway.trading()?;
        answer(Part::Trading, trading.get_portfolio(gateway.request(visitor, GetPortfolioRequest {})).await)
    };
    let holdings = async {
        let mut trading = gateway.trading()?;
        let request = ListHoldingsRequest { page_size: 100, page_token: String::new() };
        answer(Part::Trading, trading.list_holdings(gateway.request(visitor, request)).await)
    };
    let equity = async {
        let mut trading = gateway.trading()?;
        let request = GetEquityHistoryRequest { max_points: 200, ..Default::default() };
        answer(Part::Trading, trading.get_equity_history(gateway.request(visitor, request)).await)
    };
    let wallet = async {
        let mut users = gateway.users()?;
        match answer(Part::Accounts, users.get_wallet(gateway.request(visitor, GetWalletRequest {})).await) {
            Ok(wallet) => Ok(Some(wallet)),
            Err(problem) if problem.code == tonic::Code::NotFound => Ok(None),
            Err(problem) => Err(problem),
        }
    };
    // Reading the portfolio keeps a snapshot of the equity it computed: the history is asked
    // after it, so that the chart ends with the figures the summary shows.
    let portfolio_then_equity = async { (portfolio.await, equity.await) };
    let ((portfolio, equity), holdings, wallet) = tokio::join!(portfolio_then_equity, holdings, wallet);
    // The moments' names, when the marketplace answers (ids otherwise).
    let mut moments = HashMap::new();
    if let Ok(list) = &holdings
        && !list.holdings.is_empty()
        && let Ok(mut market) = gateway.market()
    {
        let request =
            BatchGetMomentsRequest { moment_ids: list.holdings.iter().map(|h| h.moment_id.clone()).collect() };
        if let Ok(found) = answer(Part::Market, market.batch_get_moments(gateway.request(visitor, request)).await) {
            moments = found.moments.into_iter().map(|m| (m.moment_id.clone(), m)).collect();
        }
    }
    Sections { portfolio, holdings, equity, wallet, moments }
}

fn period_name(period: Period) -> &'static str {
    match period {
        Period::Day => "Today",
        Period::Week => "This week",
        Period::Month => "This month",
        _ => "All time",
    }
}

fn summary(portfolio: &Portfolio) -> Markup {
    html! {
        div.cards {
            div.card { div.label { "Cash" } div.value { (money(portfolio.cash_cents)) } }
            div.card { div.label { "Moments at market value" } div.value { (money(portfolio.market_value_cents)) } }
            div.card { div.label { "Cost of moments" } div.value { (money(portfolio.cost_basis_cents)) } }
            div.card { div.label { "Unrealised gain" } div.value { (signed_money(portfolio.unrealized_pnl_cents)) } }
            div.card { div.label { "Realised gain" } div.value { (signed_money(portfolio.realized_pnl_cents)) } }
            div.card { div.label { "Return on investment" } div.value { (percent(portfolio.roi_bps)) } }
        }
        @if portfolio.stale_value_count > 0 {
            p.unavailable { (portfolio.stale_value_count) " holdings are valued at their last known price (the market could not be asked), as of " (time(portfolio.oldest_value_time.as_ref())) "." }
        }
        h2 { "Returns" }
        div.scroll { table {
            thead { tr { th { "Period" } th.num { "Return" } th.num { "Return %" } th.num { "Market" } } }
            tbody {
                @for r in &portfolio.returns {
                    tr {
                        td { (period_name(r.period())) }
                        td.num { (signed_money(r.return_cents)) }
                        td.num { (percent(r.return_bps)) }
                        td.num { @match r.market_return_bps { Some(bps) => (percent(bps)), None => "no sales to compare" } }
                    }
                }
            }
        } }
        p { small { "Computed " (time(portfolio.compute_time.as_ref())) "." } }
    }
}

fn equity_chart(history: &EquityHistory) -> Markup {
    let seconds = |p: &fastbreak_proto::trading::v1::EquityPoint| p.time.as_ref().map_or(0, |t| t.seconds);
    let equity = Series {
        name: "Equity (cash and moments at market value)",
        colour: "#1d4ed8",
        points: history.points.iter().map(|p| (seconds(p), p.equity_cents)).collect(),
    };
    let deposits = Series {
        name: "Deposited",
        colour: "#6b7280",
        points: history.points.iter().map(|p| (seconds(p), p.deposits_cents)).collect(),
    };
    money_over_time("Equity over the last 30 days", &[equity, deposits])
}

fn holdings_table(list: &ListHoldingsResponse, moments: &HashMap<String, Moment>) -> Markup {
    html! {
        @if list.holdings.is_empty() {
            p { "No moments yet. Activate a strategy and the agents buy what is undervalued, within your budget." }
        } @else {
            div.scroll { table {
                thead { tr { th { "Moment" } th.num { "Cost" } th.num { "Value" } th.num { "Gain" } th { "Acquired" } } }
                tbody {
                    @for h in &list.holdings {
                        tr {
                            td {
                                a href={"/market/moments/" (h.moment_id)} {
                                    @match moments.get(&h.moment_id) {
                                        Some(m) => { (m.player_name) " · " (m.play_category) " · #" (m.serial_number) }
                                        None => { (h.moment_id) }
                                    }
                                }
                                @if h.value_stale { " " span.tag { "last known value" } }
                            }
                            td.num { (money(h.cost_cents)) }
                            td.num { (money(h.market_value_cents)) }
                            td.num { (signed_money(h.unrealized_pnl_cents)) }
                            td { (time(h.acquire_time.as_ref())) }
                        }
                    }
                }
            } }
            @if !list.next_page_token.is_empty() { p { "Showing the newest 100 holdings." } }
        }
    }
}

fn wallet_section(visitor: &Visitor, wallet: &Option<Wallet>, trouble: Option<&Problem>) -> Markup {
    html! {
        @match wallet {
            None => {
                p { "No wallet is registered: the agents buy nothing until one is. Register the Flow address you trade from." }
                form.stack method="post" action="/portfolio/wallet" {
                    (csrf_field(visitor))
                    input type="hidden" name="action" value="register";
                    (field("Flow address", "flow_address", "text", "", "0x followed by 16 hexadecimal digits", trouble))
                    p { button type="submit" { "Register wallet" } }
                }
            }
            Some(w) => {
                @let connected = w.state() == WalletState::Connected;
                p {
                    "Wallet " code { (w.flow_address) } ": "
                    @if connected { strong.good { "connected" } " — trading is on." } @else { strong.bad { "disconnected" } " — no purchase is made until you connect it." }
                }
                form.inline method="post" action="/portfolio/wallet" {
                    (csrf_field(visitor))
                    @if connected {
                        input type="hidden" name="action" value="disconnect";
                        button.secondary type="submit" { "Disconnect wallet" }
                    } @else {
                        input type="hidden" name="action" value="connect";
                        button type="submit" { "Connect wallet" }
                    }
                }
            }
        }
    }
}

async fn render(app: &App, visitor: &Visitor, trouble: Option<&Problem>, status: StatusCode) -> Response {
    if let Err(away) = session(visitor) {
        return away;
    }
    let s = sections(app, visitor).await;
    if any_signed_out(&[s.portfolio.as_ref().err(), s.holdings.as_ref().err(), s.wallet.as_ref().err()]) {
        return app.signed_out();
    }
    let body = html! {
        @if let Some(trouble) = trouble { (crate::html::problem(trouble)) }
        section aria-labelledby="summary" {
            h2 #summary { "Summary" }
            (or_problem(&s.portfolio, summary))
        }
        section aria-labelledby="equity" {
            h2 #equity { "Equity over time" }
            (or_problem(&s.equity, equity_chart))
        }
        section aria-labelledby="holdings" {
            h2 #holdings { "Holdings" }
            (or_problem(&s.holdings, |list| holdings_table(list, &s.moments)))
        }
        section aria-labelledby="funds" {
            h2 #funds { "Paper funds" }
            @if s.portfolio.is_ok() {
                form.stack method="post" action="/portfolio/deposit" {
                    (csrf_field(visitor))
                    input type="hidden" name="key" value=(form_key());
                    (field("Amount to deposit, in dollars", "amount_cents", "text", "", "from $0.01 to $1,000,000", trouble))
                    p { button type="submit" { "Deposit" } }
                }
            } @else {
                p.unavailable { "Deposits need trading, which is unavailable right now." }
            }
        }
        section aria-labelledby="wallet" {
            h2 #wallet { "Wallet" }
            (or_problem(&s.wallet, |wallet| wallet_section(visitor, wallet, trouble)))
        }
    };
    app.html(visitor, status, crate::html::page(visitor, "/portfolio", "Portfolio", body))
}

pub async fn page(State(app): State<App>, visitor: Visitor) -> Response {
    render(&app, &visitor, None, StatusCode::OK).await
}

pub async fn deposit(State(app): State<App>, Posted { visitor, fields }: Posted) -> Response {
    let result = async {
        let amount = match parse_dollars(fields.get("amount_cents")) {
            Ok(Some(cents)) => cents,
            Ok(None) => return Err(Problem::field(Part::Trading, "amount_cents", "is required")),
            Err(why) => return Err(Problem::field(Part::Trading, "amount_cents", why)),
        };
        let mut trading = app.gateway.trading()?;
        let request = DepositFundsRequest { amount_cents: amount, idempotency_key: fields.get("key").to_owned() };
        answer(Part::Trading, trading.deposit_funds(app.gateway.request(&visitor, request)).await)
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/portfolio#funds").into_response(),
        Err(problem) if problem.signed_out() => app.signed_out(),
        Err(problem) => render(&app, &visitor, Some(&problem), status_of(&problem)).await,
    }
}

pub async fn wallet(State(app): State<App>, Posted { visitor, fields }: Posted) -> Response {
    let result = async {
        let mut users = app.gateway.users()?;
        let gateway = &app.gateway;
        match fields.get("action") {
            "register" => {
                let request = RegisterWalletRequest { flow_address: fields.get("flow_address").trim().to_owned() };
                answer(Part::Accounts, users.register_wallet(gateway.request(&visitor, request)).await)
            }
            "connect" => {
                answer(Part::Accounts, users.connect_wallet(gateway.request(&visitor, ConnectWalletRequest {})).await)
            }
            "disconnect" => answer(
                Part::Accounts,
                users.disconnect_wallet(gateway.request(&visitor, DisconnectWalletRequest {})).await,
            ),
            other => Err(Problem::field(
                Part::Accounts,
                "action",
                format!("must be register, connect or disconnect, not {other:?}"),
            )),
        }
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/portfolio#wallet").into_response(),
        Err(problem) if problem.signed_out() => app.signed_out(),
        Err(problem) => render(&app, &visitor, Some(&problem), status_of(&problem)).await,
    }
}
