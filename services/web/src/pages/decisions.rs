//! The agents' decisions, buys and skips, each with its reason, rule and weighted factors; a
//! live feed of new ones (server-sent events).

use std::collections::HashMap;
use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use fastbreak_proto::agents::v1::{
    ApproveDecisionRequest, Decision, DecisionOutcome, DecisionReason, DeclineDecisionRequest, GetDecisionRequest,
    ListDecisionsRequest,
};
use fastbreak_proto::strategy::v1::Strategy;
use http::StatusCode;
use maud::{Markup, PreEscaped, html};

use super::{App, Posted, any_signed_out, done, session, status_of};
use crate::backend::{Part, Problem, answer};
use crate::html::{csrf_field, money, or_problem, percent, time, words};
use crate::session::Visitor;

/// The filters of the list and of its feed.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Filter {
    #[serde(default)]
    strategy: String,
    #[serde(default)]
    outcome: String,
    /// The feed's start: the newest decision time the page shows ("seconds.nanos").
    #[serde(default)]
    since: String,
}

impl Filter {
    fn outcome(&self) -> Result<DecisionOutcome, Problem> {
        match self.outcome.as_str() {
            "" | "any" => Ok(DecisionOutcome::Unspecified),
            "buy" => Ok(DecisionOutcome::Buy),
            "skip" => Ok(DecisionOutcome::Skip),
            "refused" => Ok(DecisionOutcome::Refused),
            "awaiting" => Ok(DecisionOutcome::AwaitingApproval),
            other => Err(Problem::field(
                Part::Agents,
                "outcome",
                format!("must be buy, skip, refused or awaiting, not {other:?}"),
            )),
        }
    }

    fn request(&self, page_size: i32) -> Result<ListDecisionsRequest, Problem> {
        Ok(ListDecisionsRequest {
            strategy_id: self.strategy.trim().to_owned(),
            outcome: self.outcome()? as i32,
            page_size,
            ..Default::default()
        })
    }

    fn query(&self) -> String {
        let encode =
            |text: &str| percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string();
        format!("strategy={}&outcome={}", encode(&self.strategy), encode(&self.outcome))
    }
}

fn outcome_tag(outcome: DecisionOutcome) -> Markup {
    let (class, text) = match outcome {
        DecisionOutcome::Buy => ("tag buy", "bought"),
        DecisionOutcome::Refused => ("tag refused", "refused"),
        DecisionOutcome::AwaitingApproval => ("tag awaiting", "awaits your approval"),
        _ => ("tag skip", "skipped"),
    };
    html! { span class=(class) { (text) } }
}

fn reason_words(reason: DecisionReason) -> String {
    words(reason.as_str_name(), "DECISION_REASON_")
}

/// One decision as a row of the list (and of the feed).
fn row(decision: &Decision, names: &HashMap<String, String>) -> Markup {
    let strategy = names.get(&decision.strategy_id).map_or(decision.strategy_id.as_str(), String::as_str);
    html! {
        tr {
            td { (time(decision.create_time.as_ref())) }
            td { (outcome_tag(decision.outcome())) }
            td { (strategy) }
            td { a href={"/market/moments/" (decision.moment_id)} { "moment" } }
            td.num { (money(decision.price_cents)) }
            td.num { (money(decision.fair_value_cents)) }
            td { (reason_words(decision.reason())) @if !decision.rule.is_empty() { " (" code { (decision.rule) } ")" } }
            td { a href={"/decisions/" (decision.decision_id)} { "Why?" } }
        }
    }
}

async fn strategy_names(app: &App, visitor: &Visitor) -> Result<Vec<Strategy>, Problem> {
    Ok(app.gateway.own_strategies(visitor).await?.strategies)
}

/// Where a feed stands: the newest decision it has shown, by time and then id (decisions
/// written together share their time). Written "seconds.nanos/id".
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Mark {
    seconds: i64,
    nanos: i32,
    id: String,
}

impl Mark {
    fn of(decision: &Decision) -> Option<Self> {
        let t = decision.create_time.as_ref()?;
        Some(Self { seconds: t.seconds, nanos: t.nanos, id: decision.decision_id.clone() })
    }

    /// Reads "seconds.nanos/id" (the id may be left out); anything else is the start.
    fn parse(text: &str) -> Self {
        let (time, id) = text.split_once('/').unwrap_or((text, ""));
        let (seconds, nanos) = time.split_once('.').unwrap_or((time, "0"));
        Self { seconds: seconds.parse().unwrap_or(0), nanos: nanos.parse().unwrap_or(0), id: id.to_owned() }
    }

    fn text(&self) -> String {
        format!("{}.{:09}/{}", self.seconds, self.nanos, self.id)
    }
}

fn since_of(decisions: &[Decision]) -> String {
    decisions.iter().filter_map(Mark::of).max().unwrap_or_default().text()
}

pub async fn list(State(app): State<App>, visitor: Visitor, Query(filter): Query<Filter>) -> Response {
    if let Err(away) = session(&visitor) {
        return away;
    }
    let decisions = async {
        let request = filter.request(50)?;
        let mut agents = app.gateway.agents()?;
        answer(Part::Agents, agents.list_decisions(app.gateway.request(&visitor, request)).await)
    };
    let (decisions, strategies) = tokio::join!(decisions, strategy_names(&app, &visitor));
    if any_signed_out(&[decisions.as_ref().err(), strategies.as_ref().err()]) {
        return app.signed_out();
    }
    let names: HashMap<String, String> = strategies
        .as_ref()
        .map(|list| list.iter().map(|s| (s.strategy_id.clone(), s.display_name.clone())).collect())
        .unwrap_or_default();
    let since = decisions.as_ref().map(|d| since_of(&d.decisions)).unwrap_or_default();
    let since = percent_encoding::utf8_percent_encode(&since, percent_encoding::NON_ALPHANUMERIC).to_string();
    let feed = format!("/decisions/feed?{}&since={since}", filter.query());
    let body = html! {
        form method="get" action="/decisions" {
            label for="filter-strategy" { "Strategy " }
            select id="filter-strategy" name="strategy" {
                option value="" { "any" }
                @if let Ok(list) = &strategies {
                    @for s in list {
                        option value=(s.strategy_id) selected[s.strategy_id == filter.strategy] { (s.display_name) }
                    }
                }
            }
            " "
            label for="filter-outcome" { "Outcome " }
            select id="filter-outcome" name="outcome" {
                @for (value, name) in [("", "any"), ("buy", "bought"), ("skip", "skipped"), ("refused", "refused"), ("awaiting", "awaiting approval")] {
                    option value=(value) selected[value == filter.outcome] { (name) }
                }
            }
            " "
            button type="submit" { "Filter" }
        }
        @if let Err(problem) = &strategies { (crate::html::problem(problem)) }
        p #feed-state role="status" aria-live="polite" { "New decisions appear at the top as the agents make them." }
        (or_problem(&decisions, |list| html! {
            div.scroll { table {
                thead { tr { th { "When" } th { "Outcome" } th { "Strategy" } th { "Moment" } th.num { "Price" } th.num { "Fair value" } th { "Reason (rule)" } th { "" } } }
                tbody #decision-rows {
                    @for d in &list.decisions { (row(d, &names)) }
                }
            } }
            @if list.decisions.is_empty() { p #no-decisions { "No decisions yet. Once a strategy is active, the agents decide on every listing it matches." } }
        }))
        script {
            (PreEscaped(format!(r#"
(function () {{
  if (!window.EventSource) return;
  var feed = new EventSource({feed:?});
  var state = document.getElementById('feed-state');
  feed.onmessage = function (e) {{
    var rows = document.getElementById('decision-rows');
    if (!rows) return;
    rows.insertAdjacentHTML('afterbegin', e.data);
    var empty = document.getElementById('no-decisions');
    if (empty) empty.remove();
    state.textContent = 'Live: the newest decision arrived at ' + new Date().toLocaleTimeString() + '.';
  }};
  feed.addEventListener('ended', function () {{ feed.close(); state.textContent = 'Your session ended; sign in again to follow new decisions.'; }});
  feed.onerror = function () {{ state.textContent = 'The live feed is reconnecting…'; }};
}})();
"#)))
        }
    };
    app.html(&visitor, StatusCode::OK, crate::html::page(&visitor, "/decisions", "Decisions", body))
}

/// New decisions as server-sent events, each one row of the list's table with its mark as the
/// event's id (a browser that reconnects sends it back as `Last-Event-ID` and goes on from
/// there, so nothing is sent twice); an `ended` event when the session is no longer accepted.
pub async fn feed(
    State(app): State<App>,
    visitor: Visitor,
    headers: http::HeaderMap,
    Query(filter): Query<Filter>,
) -> Response {
    if visitor.session.is_none() {
        return (StatusCode::UNAUTHORIZED, "sign in to follow decisions").into_response();
    }
    let request = match filter.request(50) {
        Ok(request) => request,
        Err(problem) => return (StatusCode::BAD_REQUEST, problem.readable()).into_response(),
    };
    let resumed = super::last_event_id(&headers);
    let mut since = Mark::parse(resumed.unwrap_or(&filter.since));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(16);
    let every = app.settings.feed_interval;
    tokio::spawn(async move {
        let mut names: HashMap<String, String> = HashMap::new();
        loop {
            let found = async {
                let mut agents = app.gateway.agents()?;
                answer(Part::Agents, agents.list_decisions(app.gateway.request(&visitor, request.clone())).await)
            }
            .await;
            match found {
                Ok(list) => {
                    // Strictly after what the page (or the feed) already shows, oldest first.
                    let mut fresh: Vec<(Mark, &Decision)> = list
                        .decisions
                        .iter()
                        .filter_map(|d| Mark::of(d).map(|mark| (mark, d)))
                        .filter(|(mark, _)| *mark > since)
                        .collect();
                    fresh.sort_by(|a, b| a.0.cmp(&b.0));
                    if fresh.iter().any(|(_, d)| !names.contains_key(&d.strategy_id))
                        && let Ok(list) = strategy_names(&app, &visitor).await
                    {
                        names = list.into_iter().map(|s| (s.strategy_id, s.display_name)).collect();
                    }
                    for (mark, decision) in fresh {
                        let event = Event::default().id(mark.text()).data(row(decision, &names).into_string());
                        since = mark;
                        if tx.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(problem) if problem.signed_out() => {
                    let _ = tx.send(Ok(Event::default().event("ended").data("session ended"))).await;
                    return;
                }
                // A part that is down now may answer at the next poll.
                Err(_) => {}
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = tx.closed() => return,
            }
        }
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx)).keep_alive(KeepAlive::default()).into_response()
}

pub async fn one(State(app): State<App>, visitor: Visitor, Path(id): Path<String>) -> Response {
    if let Err(away) = session(&visitor) {
        return away;
    }
    render_one(&app, &visitor, id, None).await
}

/// Approves or declines a purchase that waits for approval, then shows the decision again.
pub async fn answer_approval(
    State(app): State<App>,
    Path(id): Path<String>,
    Posted { visitor, fields }: Posted,
) -> Response {
    let result = async {
        let mut agents = app.gateway.agents()?;
        let gateway = &app.gateway;
        match fields.get("action") {
            "approve" => {
                let request = ApproveDecisionRequest { decision_id: id.clone() };
                answer(Part::Agents, agents.approve_decision(gateway.request(&visitor, request)).await)
            }
            "decline" => {
                let request = DeclineDecisionRequest { decision_id: id.clone() };
                answer(Part::Agents, agents.decline_decision(gateway.request(&visitor, request)).await)
            }
            other => Err(Problem::field(Part::Agents, "action", format!("must be approve or decline, not {other:?}"))),
        }
    }
    .await;
    if let Some(response) = done(&app, &result, &format!("/decisions/{id}")) {
        return response;
    }
    render_one(&app, &visitor, id, result.err().as_ref()).await
}

/// One decision's page, with what went wrong with a form sent from it, if anything did.
async fn render_one(app: &App, visitor: &Visitor, id: String, trouble: Option<&Problem>) -> Response {
    let visitor = visitor.clone();
    let decision = async {
        let mut agents = app.gateway.agents()?;
        answer(
            Part::Agents,
            agents.get_decision(app.gateway.request(&visitor, GetDecisionRequest { decision_id: id })).await,
        )
    }
    .await;
    let decision = match decision {
        Ok(decision) => decision,
        Err(problem) if problem.signed_out() => return app.signed_out(),
        Err(problem) => {
            let status = if problem.code == tonic::Code::NotFound || problem.code == tonic::Code::InvalidArgument {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let body = html! { (crate::html::problem(&problem)) p { a href="/decisions" { "All decisions" } } };
            return app.html(&visitor, status, crate::html::page(&visitor, "/decisions", "Decision", body));
        }
    };
    let discount = (decision.fair_value_cents > 0)
        .then(|| (decision.fair_value_cents - decision.price_cents) * 10_000 / decision.fair_value_cents);
    let awaiting = decision.outcome() == DecisionOutcome::AwaitingApproval;
    let body = html! {
        @if let Some(trouble) = trouble { (crate::html::problem(trouble)) }
        p { (outcome_tag(decision.outcome())) " " strong { (reason_words(decision.reason())) }
            @if !decision.rule.is_empty() { ", decided by the rule " code { (decision.rule) } } "." }
        @if awaiting {
            section aria-labelledby="approval" {
                h2 #approval { "Your approval" }
                p { "The strategy chose to buy this moment for " (money(decision.price_cents)) ". It waits for your answer until "
                    (time(decision.approval_expire_time.as_ref())) "; without one, it expires and nothing is bought." }
                form.inline method="post" action={"/decisions/" (decision.decision_id) "/approval"} {
                    (csrf_field(&visitor))
                    input type="hidden" name="action" value="approve";
                    button type="submit" { "Approve and buy for " (money(decision.price_cents)) }
                }
                " "
                form.inline method="post" action={"/decisions/" (decision.decision_id) "/approval"} {
                    (csrf_field(&visitor))
                    input type="hidden" name="action" value="decline";
                    button.secondary type="submit" { "Decline" }
                }
            }
        }
        div.cards {
            div.card { div.label { "Price" } div.value { (money(decision.price_cents)) } }
            div.card { div.label { "Fair value" } div.value { (money(decision.fair_value_cents)) } }
            div.card { div.label { "Discount" } div.value { @match discount { Some(d) => (percent(d)), None => "—" } } }
            div.card { div.label { "Confidence" } div.value { (format!("{:.0}%", decision.confidence * 100.0)) } }
        }
        @if decision.data_incomplete { p.unavailable { "Some data this decision wanted was missing; the reasons say what." } }
        h2 { "Why" }
        @if decision.reasons.is_empty() { p { "No reasons were recorded." } } @else {
            ul { @for reason in &decision.reasons { li { (reason) } } }
        }
        h2 { "Weighted factors" }
        @if decision.factors.is_empty() {
            p { "Factors are kept for purchases, refusals and near misses; this decision was a plain skip." }
        } @else {
            div.scroll { table {
                thead { tr { th { "Factor" } th { "Weight" } th.num { "Moved the fair value by" } th { "Explanation" } } }
                tbody {
                    @for f in &decision.factors {
                        tr {
                            td { code { (f.name) } }
                            td { span.weight style={"width:" (format!("{:.1}", f.weight * 8.0)) "rem"} aria-hidden="true" {} " " (format!("{:.0}%", f.weight * 100.0)) }
                            td.num { (crate::html::signed_money(f.impact_cents)) }
                            td { (f.explanation) }
                        }
                    }
                }
            } }
        }
        h2 { "Details" }
        ul {
            li { "Moment: " a href={"/market/moments/" (decision.moment_id)} { (decision.moment_id) } }
            li { "Listing: " code { (decision.listing_id) } }
            @if !decision.trade_id.is_empty() { li { "Trade: " code { (decision.trade_id) } } }
            @if !decision.valuation_id.is_empty() { li { "Valuation: " code { (decision.valuation_id) } } }
            li { "Decided " (time(decision.create_time.as_ref())) }
        }
        p { a href="/decisions" { "All decisions" } }
    };
    let status = trouble.map_or(StatusCode::OK, status_of);
    app.html(&visitor, status, crate::html::page(&visitor, "/decisions", "Decision", body))
}

#[cfg(test)]
mod tests {
    use super::Mark;

    #[test]
    fn a_feed_mark_orders_by_time_then_id_and_reads_back_what_it_writes() {
        let mark = Mark { seconds: 1_700_000_000, nanos: 120_000, id: "b".to_owned() };
        assert_eq!(mark.text(), "1700000000.000120000/b");
        assert_eq!(Mark::parse(&mark.text()), mark);
        // Decisions written together share their time: the id tells them apart.
        let tie = Mark { id: "c".to_owned(), ..mark.clone() };
        assert!(tie > mark && Mark { nanos: 120_001, id: "a".to_owned(), ..mark.clone() } > tie);
        // An old page's mark (no id) and nonsense read as marks, never as errors.
        assert_eq!(Mark::parse("1700000000.000120000"), Mark { id: String::new(), ..mark.clone() });
        assert_eq!(Mark::parse("not a mark"), Mark::default());
    }
}
