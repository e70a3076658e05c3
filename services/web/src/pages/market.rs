//! The market: the live listing stream, a search of the catalog, and a moment's page with its
//! price history chart and its valuation with the factors.

use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use fastbreak_proto::marketplace::v1::{
    GetMomentRequest, GetPriceHistoryRequest, ListListingsRequest, ListingEvent, Moment, PriceInterval,
    SearchMomentsRequest, StreamListingEventsRequest,
};
use fastbreak_proto::scouting::v1::GetMomentValuationRequest;
use futures::StreamExt as _;
use http::StatusCode;
use maud::{Markup, PreEscaped, html};

use super::{App, any_signed_out, session};
use crate::backend::{Part, answer};
use crate::chart::{Series, money_over_time};
use crate::html::{money, or_problem, percent, time, words};
use crate::session::Visitor;

#[derive(Debug, Default, serde::Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
}

fn moment_line(m: &Moment) -> Markup {
    html! {
        a href={"/market/moments/" (m.moment_id)} { (m.player_name) } " · " (m.play_category) " · "
        (words(m.rarity().as_str_name(), "RARITY_")) " #" (m.serial_number) "/" (m.edition_size)
    }
}

/// One listing event as a row of the live table.
fn event_row(event: &ListingEvent) -> Markup {
    let listing = event.listing.clone().unwrap_or_default();
    html! {
        tr {
            td { (time(event.event_time.as_ref())) }
            td { (words(event.kind().as_str_name(), "LISTING_EVENT_KIND_")) }
            td { @match &event.moment { Some(m) => (moment_line(m)), None => (listing.moment_id) } }
            td.num { (money(listing.price_cents)) }
            td { (listing.source_id) }
        }
    }
}

pub async fn page(State(app): State<App>, visitor: Visitor, Query(search): Query<Search>) -> Response {
    if let Err(away) = session(&visitor) {
        return away;
    }
    let gateway = &app.gateway;
    let found = async {
        let mut market = gateway.market()?;
        let request = SearchMomentsRequest { query: search.q.trim().to_owned(), page_size: 20, ..Default::default() };
        answer(Part::Market, market.search_moments(gateway.request(&visitor, request)).await)
    };
    let found = found.await;
    if any_signed_out(&[found.as_ref().err()]) {
        return app.signed_out();
    }
    let body = html! {
        section aria-labelledby="live" {
            h2 #live { "Live listings" }
            p #market-state role="status" aria-live="polite" { "New listings, price changes and sales appear here as they happen." }
            div.scroll { table {
                thead { tr { th { "When" } th { "What" } th { "Moment" } th.num { "Price" } th { "Marketplace" } } }
                tbody #listing-rows {}
            } }
        }
        section aria-labelledby="search" {
            h2 #search { "Find moments" }
            form method="get" action="/market" {
                label for="q" { "Player, set or play " }
                input #q type="text" name="q" value=(search.q);
                " " button type="submit" { "Search" }
            }
            (or_problem(&found, |list| html! {
                @if list.moments.is_empty() { p { "No moments match." } } @else {
                    div.scroll { table {
                        thead { tr { th { "Moment" } th { "Team" } th { "Set" } th.num { "Floor" } th.num { "Last sale" } } }
                        tbody {
                            @for m in &list.moments {
                                tr {
                                    td { (moment_line(m)) }
                                    td { (m.team_code) }
                                    td { (m.set_name) }
                                    td.num { @match m.floor_price_cents { Some(c) => (money(c)), None => "not listed" } }
                                    td.num { @match m.last_sale_cents { Some(c) => (money(c)), None => "—" } }
                                }
                            }
                        }
                    } }
                }
            }))
        }
        script { (PreEscaped(r#"
(function () {
  if (!window.EventSource) return;
  var feed = new EventSource('/market/feed');
  var state = document.getElementById('market-state');
  feed.onmessage = function (e) {
    var rows = document.getElementById('listing-rows');
    rows.insertAdjacentHTML('afterbegin', e.data);
    while (rows.children.length > 50) rows.removeChild(rows.lastChild);
    state.textContent = 'Live: the latest event arrived at ' + new Date().toLocaleTimeString() + '.';
  };
  feed.addEventListener('ended', function () { feed.close(); state.textContent = 'Your session ended; sign in again.'; });
  feed.addEventListener('unavailable', function (e) { state.textContent = e.data; });
})();
"#)) }
    };
    app.html(&visitor, StatusCode::OK, crate::html::page(&visitor, "/market", "Market", body))
}

/// Listing events from now on, as server-sent events (rows of the live table), each with its
/// sequence as the event's id: a browser that reconnects sends it back (`Last-Event-ID`) and
/// goes on after it, missing nothing and given nothing twice.
pub async fn feed(State(app): State<App>, visitor: Visitor, headers: http::HeaderMap) -> Response {
    if visitor.session.is_none() {
        return (StatusCode::UNAUTHORIZED, "sign in to follow the market").into_response();
    }
    let resumed = super::last_event_id(&headers).and_then(|v| v.parse().ok());
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(64);
    tokio::spawn(async move {
        let mut after: Option<i64> = resumed;
        loop {
            let opened = async {
                let mut market = app.gateway.market()?;
                let request = StreamListingEventsRequest { after_sequence: after, ..Default::default() };
                answer(Part::Market, market.stream_listing_events(app.gateway.stream_request(&visitor, request)).await)
            }
            .await;
            match opened {
                Ok(mut stream) => {
                    while let Some(item) = stream.next().await {
                        let Ok(event) = item else { break };
                        after = Some(event.sequence);
                        let row = Event::default().id(event.sequence.to_string()).data(event_row(&event).into_string());
                        if tx.send(Ok(row)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(problem) if problem.signed_out() => {
                    let _ = tx.send(Ok(Event::default().event("ended").data("session ended"))).await;
                    return;
                }
                Err(problem) => {
                    let event = Event::default().event("unavailable").data(problem.readable());
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
            }
            // The stream ended (its lifetime, or a part went down): resume from the last seen.
            tokio::select! {
                () = tokio::time::sleep(app.settings.feed_interval) => {}
                () = tx.closed() => return,
            }
        }
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx)).keep_alive(KeepAlive::default()).into_response()
}

pub async fn moment(State(app): State<App>, visitor: Visitor, Path(id): Path<String>) -> Response {
    if let Err(away) = session(&visitor) {
        return away;
    }
    let gateway = &app.gateway;
    let moment = async {
        let mut market = gateway.market()?;
        answer(
            Part::Market,
            market.get_moment(gateway.request(&visitor, GetMomentRequest { moment_id: id.clone() })).await,
        )
    };
    let history = async {
        let mut market = gateway.market()?;
        let request =
            GetPriceHistoryRequest { moment_id: id.clone(), interval: PriceInterval::Day as i32, ..Default::default() };
        answer(Part::Market, market.get_price_history(gateway.request(&visitor, request)).await)
    };
    let listings = async {
        let mut market = gateway.market()?;
        let request = ListListingsRequest { moment_id: id.clone(), page_size: 10, ..Default::default() };
        answer(Part::Market, market.list_listings(gateway.request(&visitor, request)).await)
    };
    let valuation = async {
        let mut scouting = gateway.scouting()?;
        let request = GetMomentValuationRequest { moment_id: id.clone(), price_cents: None };
        answer(Part::Scouting, scouting.get_moment_valuation(gateway.request(&visitor, request)).await)
    };
    let (moment, history, listings, valuation) = tokio::join!(moment, history, listings, valuation);
    if any_signed_out(&[
        moment.as_ref().err(),
        history.as_ref().err(),
        listings.as_ref().err(),
        valuation.as_ref().err(),
    ]) {
        return app.signed_out();
    }
    let moment = match moment {
        Ok(m) => m,
        Err(problem) => {
            let status = if problem.unavailable() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::NOT_FOUND };
            let body = html! { (crate::html::problem(&problem)) p { a href="/market" { "Back to the market" } } };
            return app.html(&visitor, status, crate::html::page(&visitor, "/market", "Moment", body));
        }
    };
    let title = format!("{} · {}", moment.player_name, moment.play_category);
    let body = html! {
        p {
            (moment.team_code) " · " (moment.set_name) " · " (words(moment.rarity().as_str_name(), "RARITY_"))
            " · serial #" (moment.serial_number) " of " (moment.edition_size)
            " · played " (time(moment.play_time.as_ref()))
        }
        section aria-labelledby="history" {
            h2 #history { "Price history (daily closing sale, last 30 days)" }
            (or_problem(&history, |h| {
                let closes = Series {
                    name: "Closing sale",
                    colour: "#1d4ed8",
                    points: h.points.iter().map(|p| (p.start_time.as_ref().map_or(0, |t| t.seconds), p.close_cents)).collect(),
                };
                let lows = Series {
                    name: "Lowest sale",
                    colour: "#6b7280",
                    points: h.points.iter().map(|p| (p.start_time.as_ref().map_or(0, |t| t.seconds), p.low_cents)).collect(),
                };
                money_over_time("Price history", &[closes, lows])
            }))
        }
        section aria-labelledby="valuation" {
            h2 #valuation { "Valuation" }
            (or_problem(&valuation, |v| html! {
                div.cards {
                    div.card { div.label { "Fair value" } div.value { (money(v.fair_value_cents)) } }
                    div.card { div.label { "Confidence" } div.value { (format!("{:.0}%", v.confidence * 100.0)) } }
                    div.card { div.label { "Advice" } div.value { (words(v.recommendation().as_str_name(), "RECOMMENDATION_")) } }
                    div.card { div.label { "Risk" } div.value { (format!("{:.2}", v.risk_score)) } }
                }
                div.scroll { table {
                    thead { tr { th { "Factor" } th { "Weight" } th.num { "Moved the fair value by" } th { "Explanation" } } }
                    tbody {
                        @for f in &v.factors {
                            tr {
                                td { code { (f.name) } }
                                td { (format!("{:.0}%", f.weight * 100.0)) }
                                td.num { (crate::html::signed_money(f.impact_cents)) }
                                td { (f.explanation) }
                            }
                        }
                    }
                } }
                p { small { "Model " (v.model_version) ", computed " (time(v.compute_time.as_ref())) "." } }
            }))
        }
        section aria-labelledby="listings" {
            h2 #listings { "Listed now" }
            (or_problem(&listings, |l| html! {
                @if l.listings.is_empty() { p { "Not listed anywhere." } } @else {
                    div.scroll { table {
                        thead { tr { th.num { "Price" } th { "Marketplace" } th { "Listed" } } }
                        tbody { @for listing in &l.listings { tr {
                            td.num { (money(listing.price_cents)) }
                            td { (listing.source_id) }
                            td { (time(listing.create_time.as_ref())) }
                        } } }
                    } }
                }
            }))
            @if let (Ok(v), Some(floor)) = (&valuation, moment.floor_price_cents) {
                @if v.fair_value_cents > 0 {
                    p { "The floor is " (percent((v.fair_value_cents - floor) * 10_000 / v.fair_value_cents)) " under fair value." }
                }
            }
        }
    };
    app.html(&visitor, StatusCode::OK, crate::html::page(&visitor, "/market", &title, body))
}
