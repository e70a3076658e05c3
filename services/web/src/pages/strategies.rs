//! Strategies: the list with each one's performance, creation from a template, editing with
//! the services' complaints beside the fields, activation and pausing.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use fastbreak_proto::common::v1::Rarity;
use fastbreak_proto::strategy::v1::strategy::Parameters;
use fastbreak_proto::strategy::v1::{
    ActivateStrategyRequest, CooldownAfterLoss, CreateStrategyRequest, DailyScan, DeleteStrategyRequest, DrawdownGuard,
    GetStrategyPerformanceRequest, GetStrategyRequest, ListStrategyTemplatesRequest, LosingStreakGuard, ManualApproval,
    PauseStrategyRequest, ResetStrategyProtectionsRequest, Stat, StatTrigger, Strategy, StrategyPerformance,
    StrategyProtections, StrategyState, StrategyTemplate, UpdateStrategyRequest,
};
use http::StatusCode;
use maud::{Markup, html};

use super::{App, Fields, Posted, any_signed_out, done, session, status_of};
use crate::backend::{Part, Problem, answer};
use crate::html::{csrf_field, dollars_value, field, money, or_problem, parse_dollars, percent, problem, words};
use crate::session::Visitor;

const RARITIES: [Rarity; 5] = [Rarity::Common, Rarity::Fandom, Rarity::Rare, Rarity::Legendary, Rarity::Ultimate];

const STATS: [Stat; 5] = [Stat::Points, Stat::Rebounds, Stat::Assists, Stat::Steals, Stat::Blocks];

/// How many statistic triggers the form offers (rows left empty are not kept).
const TRIGGER_ROWS: usize = 3;

fn kind_name(strategy: &Strategy) -> &'static str {
    match strategy.parameters {
        Some(Parameters::RookieRisers(_)) => "Rookie risers",
        Some(Parameters::PostGameSpike(_)) => "Post-game spikes",
        Some(Parameters::ArbitrageMode(_)) => "Arbitrage",
        None => "—",
    }
}

async fn performances(app: &App, visitor: &Visitor, strategies: &[Strategy]) -> Vec<Option<StrategyPerformance>> {
    let asks = strategies.iter().map(|s| async move {
        let mut client = app.gateway.strategies().ok()?;
        let request = GetStrategyPerformanceRequest { strategy_id: s.strategy_id.clone() };
        client.get_strategy_performance(app.gateway.request(visitor, request)).await.ok().map(|r| r.into_inner())
    });
    futures::future::join_all(asks).await
}

fn performance_cells(p: Option<&StrategyPerformance>) -> Markup {
    match p {
        Some(p) => html! {
            td.num { (p.purchase_count) }
            td.num { (money(p.spent_cents)) }
            td.num { (crate::html::signed_money(p.realized_pnl_cents)) }
            td.num { (percent(p.roi_bps)) }
        },
        None => html! { td colspan="4" { "performance unavailable" } },
    }
}

async fn render_list(app: &App, visitor: &Visitor, trouble: Option<&Problem>, status: StatusCode) -> Response {
    if let Err(away) = session(visitor) {
        return away;
    }
    let gateway = &app.gateway;
    let strategies = gateway.own_strategies(visitor);
    let templates = async {
        let mut client = gateway.strategies()?;
        let request = ListStrategyTemplatesRequest { page_size: 100, ..Default::default() };
        answer(Part::Strategies, client.list_strategy_templates(gateway.request(visitor, request)).await)
    };
    let (strategies, templates) = tokio::join!(strategies, templates);
    if any_signed_out(&[strategies.as_ref().err(), templates.as_ref().err()]) {
        return app.signed_out();
    }
    let performance = match &strategies {
        Ok(list) => performances(app, visitor, &list.strategies).await,
        Err(_) => Vec::new(),
    };
    let body = html! {
        @if let Some(trouble) = trouble { (problem(trouble)) }
        section aria-labelledby="yours" {
            h2 #yours { "Your strategies" }
            (or_problem(&strategies, |list| html! {
                @if list.strategies.is_empty() {
                    p { "No strategies yet: start from a template below." }
                } @else {
                    div.scroll { table {
                        thead { tr {
                            th { "Name" } th { "Kind" } th { "State" } th { "Rules" }
                            th.num { "Bought" } th.num { "Spent" } th.num { "Realised" } th.num { "ROI" } th { "" }
                        } }
                        tbody {
                            @for (i, s) in list.strategies.iter().enumerate() {
                                @let active = s.state() == StrategyState::Active;
                                tr {
                                    td { a href={"/strategies/" (s.strategy_id)} { (s.display_name) } }
                                    td { (kind_name(s)) }
                                    td { @if active { strong.good { "active" } } @else { "paused" } }
                                    td { @if let Some(r) = &s.rules {
                                        "confidence ≥ " (format!("{:.2}", r.min_confidence))
                                        ", discount ≥ " (percent(i64::from(r.min_discount_bps)))
                                        ", at most " (money(r.max_price_cents)) ", " (r.max_purchases_per_day) " a day"
                                    } }
                                    (performance_cells(performance.get(i).and_then(Option::as_ref)))
                                    td {
                                        form.inline method="post" action={"/strategies/" (s.strategy_id) "/state"} {
                                            (csrf_field(visitor))
                                            @if active {
                                                input type="hidden" name="action" value="pause";
                                                button.secondary type="submit" aria-label={"Pause " (s.display_name)} { "Pause" }
                                            } @else {
                                                input type="hidden" name="action" value="activate";
                                                button type="submit" aria-label={"Activate " (s.display_name)} { "Activate" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    } }
                }
            }))
        }
        section aria-labelledby="templates" {
            h2 #templates { "Start from a template" }
            (or_problem(&templates, |list| html! {
                div.cards {
                    @for t in &list.templates {
                        div.card {
                            div.value { (t.display_name) }
                            p { (t.description) }
                            a href={"/strategies/new?template=" (t.template_id)} aria-label={"Use the template " (t.display_name)} { "Use this template" }
                        }
                    }
                }
            }))
        }
    };
    app.html(visitor, status, crate::html::page(visitor, "/strategies", "Strategies", body))
}

pub async fn list(State(app): State<App>, visitor: Visitor) -> Response {
    render_list(&app, &visitor, None, StatusCode::OK).await
}

/// The form's values: from a strategy, or as the visitor typed them.
fn form(
    visitor: &Visitor,
    action: &str,
    strategy: &Strategy,
    typed: Option<&Fields>,
    trouble: Option<&Problem>,
    submit: &str,
) -> Markup {
    let rules = strategy.rules.unwrap_or_default();
    let value = |name: &str, from_strategy: String| typed.map_or(from_strategy, |t| t.get(name).to_owned());
    let rarity_checked = |rarity: Rarity, chosen: &[i32]| match typed {
        Some(t) => t.all("rarities").contains(&rarity.as_str_name()),
        None => chosen.contains(&(rarity as i32)),
    };
    html! {
        @if let Some(trouble) = trouble { (problem(trouble)) }
        form.stack method="post" action=(action) novalidate {
            (csrf_field(visitor))
            input type="hidden" name="template_id" value=(strategy.template_id);
            (field("Name", "display_name", "text", &value("display_name", strategy.display_name.clone()), "1 to 80 characters", trouble))
            (field("Priority", "priority", "number", &value("priority", strategy.priority.to_string()), "1 to 100; higher is served first when strategies compete for one budget", trouble))
            @let scan = strategy.daily_scan.clone().unwrap_or_default();
            fieldset {
                legend { "Daily scan" }
                (field("Time of day", "time_of_day", "text", &value("time_of_day", scan.time_of_day), "HH:MM on a 24-hour clock: the agents look over the whole market once a day then; empty means no daily scan", trouble))
                (field("Time zone of the scan", "time_zone", "text", &value("time_zone", scan.time_zone), "an IANA name such as America/New_York; empty means UTC", trouble))
            }
            fieldset {
                legend { "Rules" }
                (field("Least confidence", "min_confidence", "number", &value("min_confidence", rules.min_confidence.to_string()), "0 to 1: how sure the model must be", trouble))
                (field("Least discount to fair value, in basis points", "min_discount_bps", "number", &value("min_discount_bps", rules.min_discount_bps.to_string()), "100 = 1%", trouble))
                (field("Most to pay for one moment, in dollars", "max_price_cents", "text", &value("max_price_cents", dollars_value(Some(rules.max_price_cents))), "", trouble))
                (field("Most purchases a day", "max_purchases_per_day", "number", &value("max_purchases_per_day", rules.max_purchases_per_day.to_string()), "1 to 1000", trouble))
            }
            @match &strategy.parameters {
                Some(Parameters::RookieRisers(p)) => fieldset {
                    legend { "Rookie risers" }
                    (field("Most seasons played", "max_seasons_played", "number", &value("max_seasons_played", p.max_seasons_played.to_string()), "1 to 3", trouble))
                    (field("Least rise in recent scoring, in percent", "min_performance_rise_percent", "number", &value("min_performance_rise_percent", p.min_performance_rise_percent.to_string()), "0 to 500", trouble))
                    (rarity_boxes(&p.rarities, &rarity_checked, trouble))
                    (field("Teams", "team_codes", "text", &value("team_codes", p.team_codes.join(", ")), "three-letter codes separated by commas; empty means every team", trouble))
                },
                Some(Parameters::PostGameSpike(p)) => fieldset {
                    legend { "Post-game spikes" }
                    (field("Least game score", "min_game_score", "number", &value("min_game_score", p.min_game_score.to_string()), "points + rebounds + assists + steals + blocks, 1 to 200", trouble))
                    (field("Buying window after the game, in minutes", "buy_window_minutes", "number", &value("buy_window_minutes", p.buy_window_minutes.to_string()), "1 to 4320", trouble))
                    (rarity_boxes(&p.rarities, &rarity_checked, trouble))
                    (field("Players", "player_ids", "text", &value("player_ids", p.player_ids.join(", ")), "player ids separated by commas; empty means every player", trouble))
                    (trigger_rows(&p.stat_triggers, typed, trouble))
                },
                Some(Parameters::ArbitrageMode(p)) => fieldset {
                    legend { "Arbitrage" }
                    (field("Least spread after fees, in basis points", "min_spread_bps", "number", &value("min_spread_bps", p.min_spread_bps.to_string()), "1 to 10000", trouble))
                    (field("Buy on", "buy_source_ids", "text", &value("buy_source_ids", p.buy_source_ids.join(", ")), "marketplace ids separated by commas; empty means every marketplace", trouble))
                    (field("Relist on", "relist_source_ids", "text", &value("relist_source_ids", p.relist_source_ids.join(", ")), "marketplace ids separated by commas; empty means every marketplace", trouble))
                    label for="field-auto_relist" {
                        input id="field-auto_relist" type="checkbox" name="auto_relist" value="on"
                            checked[typed.map_or(p.auto_relist, |t| t.get("auto_relist") == "on")];
                        " Relist automatically after buying"
                    }
                },
                None => p { "This strategy has no parameters." },
            }
            (protections_fields(strategy, typed, trouble))
            p { button type="submit" { (submit) } }
        }
    }
}

/// What a protection's field shows: the typed value, else the strategy's (empty when unset).
fn shown(typed: Option<&Fields>, name: &str, from_strategy: Option<String>) -> String {
    typed.map_or(from_strategy.unwrap_or_default(), |t| t.get(name).to_owned())
}

/// The protections: each optional, empty fields meaning none.
fn protections_fields(strategy: &Strategy, typed: Option<&Fields>, trouble: Option<&Problem>) -> Markup {
    let p = strategy.protections.clone().unwrap_or_default();
    let arbitrage = matches!(strategy.parameters, Some(Parameters::ArbitrageMode(_)));
    let (cooldown, streak, drawdown) = (p.cooldown_after_loss, p.losing_streak, p.drawdown);
    let per_player =
        typed.map_or(cooldown.is_some_and(|c| c.per_player), |t| t.get("cooldown_after_loss.per_player") == "on");
    let daily = (p.max_daily_loss_cents > 0).then(|| dollars_value(Some(p.max_daily_loss_cents)));
    html! {
        fieldset {
            legend { "Protections (empty fields mean none)" }
            p.hint { "A protection that trips pauses only this strategy: its purchases are skipped, saying why, and you are told. It lifts by itself when its time runs out, or when you reset the protections." }
            (field("Cooldown after a loss, in minutes", "cooldown_after_loss.minutes", "number", &shown(typed, "cooldown_after_loss.minutes", cooldown.map(|c| c.minutes.to_string())), "1 to 10080: no purchase for this long after a sale at a loss", trouble))
            label for="field-cooldown_after_loss.per_player" {
                input id="field-cooldown_after_loss.per_player" type="checkbox" name="cooldown_after_loss.per_player" value="on" checked[per_player];
                " Only for the losing moment's player"
            }
            (field("Losing sales that pause it", "losing_streak.losing_trades", "number", &shown(typed, "losing_streak.losing_trades", streak.map(|g| g.losing_trades.to_string())), "1 to 100", trouble))
            (field("…within minutes", "losing_streak.window_minutes", "number", &shown(typed, "losing_streak.window_minutes", streak.map(|g| g.window_minutes.to_string())), "1 to 43200", trouble))
            (field("…pausing it for minutes", "losing_streak.pause_minutes", "number", &shown(typed, "losing_streak.pause_minutes", streak.map(|g| g.pause_minutes.to_string())), "1 to 43200", trouble))
            (field("Most drawdown, in basis points of the daily budget", "drawdown.max_drawdown_bps", "number", &shown(typed, "drawdown.max_drawdown_bps", drawdown.map(|g| g.max_drawdown_bps.to_string())), "1 to 10000; the budget is the most price times the most purchases a day", trouble))
            (field("…over minutes", "drawdown.window_minutes", "number", &shown(typed, "drawdown.window_minutes", drawdown.map(|g| g.window_minutes.to_string())), "1 to 43200", trouble))
            (field("…pausing it for minutes", "drawdown.pause_minutes", "number", &shown(typed, "drawdown.pause_minutes", drawdown.map(|g| g.pause_minutes.to_string())), "1 to 43200", trouble))
            (field("Most loss in a day, in dollars", "max_daily_loss_cents", "text", &shown(typed, "max_daily_loss_cents", daily), "net of gains, per UTC day", trouble))
            @if !arbitrage {
                (field("Never buy these players", "blocked_player_ids", "text", &shown(typed, "blocked_player_ids", Some(p.blocked_player_ids.join(", "))), "player ids separated by commas", trouble))
                (field("Never buy these sets", "blocked_set_names", "text", &shown(typed, "blocked_set_names", Some(p.blocked_set_names.join(", "))), "set names separated by commas", trouble))
                (field("Wait for my approval, in minutes", "manual_approval.expire_after_minutes", "number", &shown(typed, "manual_approval.expire_after_minutes", p.manual_approval.map(|m| m.expire_after_minutes.to_string())), "1 to 1440: each purchase waits this long for your approval, then expires; empty buys without asking", trouble))
            }
        }
    }
}

/// A field's comma-separated values, trimmed, the empty ones left out.
fn comma_list(fields: &Fields, name: &str) -> Vec<String> {
    fields.get(name).split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The typed protections over the strategy's; values that are not numbers, named.
fn apply_protections(fields: &Fields, strategy: &mut Strategy, wrong: &mut Vec<(String, String)>) {
    let mut int = |name: &str| -> Option<i32> {
        let text = fields.get(name).trim();
        if text.is_empty() {
            return None;
        }
        Some(text.parse::<i32>().unwrap_or_else(|_| {
            wrong.push((name.to_owned(), format!("must be a whole number, not {text:?}")));
            0
        }))
    };
    let cooldown = int("cooldown_after_loss.minutes");
    let streak =
        [int("losing_streak.losing_trades"), int("losing_streak.window_minutes"), int("losing_streak.pause_minutes")];
    let drawdown = [int("drawdown.max_drawdown_bps"), int("drawdown.window_minutes"), int("drawdown.pause_minutes")];
    let approval = int("manual_approval.expire_after_minutes");
    // A group with any value is set; its empty values are then zero, which the service names.
    let group =
        |values: [Option<i32>; 3]| values.iter().any(Option::is_some).then(|| values.map(Option::unwrap_or_default));
    let mut p = strategy.protections.clone().unwrap_or_default();
    p.cooldown_after_loss = cooldown
        .map(|minutes| CooldownAfterLoss { minutes, per_player: fields.get("cooldown_after_loss.per_player") == "on" });
    p.losing_streak = group(streak).map(|[losing_trades, window_minutes, pause_minutes]| LosingStreakGuard {
        losing_trades,
        window_minutes,
        pause_minutes,
    });
    p.drawdown = group(drawdown).map(|[max_drawdown_bps, window_minutes, pause_minutes]| DrawdownGuard {
        max_drawdown_bps,
        window_minutes,
        pause_minutes,
    });
    p.max_daily_loss_cents = match parse_dollars(fields.get("max_daily_loss_cents")) {
        Ok(cents) => cents.unwrap_or_default(),
        Err(why) => {
            wrong.push(("max_daily_loss_cents".to_owned(), why));
            0
        }
    };
    if !matches!(strategy.parameters, Some(Parameters::ArbitrageMode(_))) {
        p.blocked_player_ids = comma_list(fields, "blocked_player_ids");
        p.blocked_set_names = comma_list(fields, "blocked_set_names");
        p.manual_approval = approval.map(|expire_after_minutes| ManualApproval { expire_after_minutes });
    }
    strategy.protections = (p != StrategyProtections::default()).then_some(p);
}

fn rarity_boxes(chosen: &[i32], checked: &dyn Fn(Rarity, &[i32]) -> bool, trouble: Option<&Problem>) -> Markup {
    html! {
        fieldset {
            legend { "Rarities (none ticked means all)" }
            @for rarity in RARITIES {
                @let id = format!("rarity-{}", rarity.as_str_name());
                label for=(id) style="display:inline; font-weight:400; margin-right:1rem" {
                    input id=(id) type="checkbox" name="rarities" value=(rarity.as_str_name()) checked[checked(rarity, chosen)];
                    " " (words(rarity.as_str_name(), "RARITY_"))
                }
            }
            @if let Some(why) = trouble.and_then(|t| t.about("rarities")) { span.field-error { "rarities " (why) } }
        }
    }
}

/// The statistic triggers: a row each (a statistic and its least value), empty rows to add more.
fn trigger_rows(triggers: &[StatTrigger], typed: Option<&Fields>, trouble: Option<&Problem>) -> Markup {
    // Rows are shown (and named in complaints) in the order of the filled ones, the page's and
    // the service's alike: a typed form comes back with its empty rows last.
    let (stats, least): (Vec<String>, Vec<String>) = match typed {
        Some(t) => filled_rows(t).into_iter().map(|(s, l)| (s.to_owned(), l.to_owned())).unzip(),
        None => triggers.iter().map(|t| (t.stat().as_str_name().to_owned(), t.at_least.to_string())).unzip(),
    };
    html! {
        fieldset {
            legend { "Statistic triggers (all must hold; none means the game score alone)" }
            @for i in 0..TRIGGER_ROWS.max(stats.len()) {
                @let chosen = stats.get(i).map_or("", String::as_str);
                @let (stat_id, least_id) = (format!("field-stat-{i}"), format!("field-at_least-{i}"));
                @let why = trouble.and_then(|t| t.about(&format!("stat[{i}]")).or_else(|| t.about(&format!("at_least[{i}]"))));
                div.trigger {
                    label for=(stat_id) { "Statistic " (i + 1) }
                    select id=(stat_id) name="stat" {
                        option value="" { "none" }
                        @for stat in STATS {
                            option value=(stat.as_str_name()) selected[chosen == stat.as_str_name()] { (words(stat.as_str_name(), "STAT_")) }
                        }
                    }
                    " "
                    label for=(least_id) { "at least" }
                    input id=(least_id) name="at_least" type="number" step="any" value=(least.get(i).map_or("", String::as_str))
                        aria-invalid=[why.map(|_| "true")];
                    @if let Some(why) = why { span.field-error { "trigger " (i + 1) " " (why) } }
                }
            }
        }
    }
}

/// The typed values over `strategy`; the fields that are not numbers, named.
fn apply(fields: &Fields, strategy: &mut Strategy) -> Result<(), Problem> {
    let mut wrong: Vec<(String, String)> = Vec::new();
    let mut int = |name: &str| -> i32 {
        let text = fields.get(name).trim();
        text.parse::<i32>().unwrap_or_else(|_| {
            wrong.push((name.to_owned(), format!("must be a whole number, not {text:?}")));
            0
        })
    };
    strategy.display_name = fields.get("display_name").trim().to_owned();
    strategy.priority = int("priority");
    let mut rules = strategy.rules.unwrap_or_default();
    rules.min_discount_bps = int("min_discount_bps");
    rules.max_purchases_per_day = int("max_purchases_per_day");
    let (mut seasons, mut score, mut window, mut spread) = (0, 0, 0, 0);
    match &strategy.parameters {
        Some(Parameters::RookieRisers(_)) => seasons = int("max_seasons_played"),
        Some(Parameters::PostGameSpike(_)) => {
            score = int("min_game_score");
            window = int("buy_window_minutes");
        }
        Some(Parameters::ArbitrageMode(_)) => spread = int("min_spread_bps"),
        None => {}
    }
    let mut real = |name: &str| -> f64 {
        let text = fields.get(name).trim();
        text.parse::<f64>().ok().filter(|n| n.is_finite()).unwrap_or_else(|| {
            wrong.push((name.to_owned(), format!("must be a number, not {text:?}")));
            0.0
        })
    };
    rules.min_confidence = real("min_confidence");
    let rise =
        matches!(strategy.parameters, Some(Parameters::RookieRisers(_))).then(|| real("min_performance_rise_percent"));
    match parse_dollars(fields.get("max_price_cents")) {
        Ok(Some(cents)) => rules.max_price_cents = cents,
        Ok(None) => wrong.push(("max_price_cents".to_owned(), "is required".to_owned())),
        Err(why) => wrong.push(("max_price_cents".to_owned(), why)),
    }
    strategy.rules = Some(rules);
    let (time_of_day, time_zone) = (fields.get("time_of_day").trim(), fields.get("time_zone").trim());
    strategy.daily_scan = (!time_of_day.is_empty() || !time_zone.is_empty())
        .then(|| DailyScan { time_of_day: time_of_day.to_owned(), time_zone: time_zone.to_owned() });
    let rarities: Vec<i32> =
        fields.all("rarities").iter().filter_map(|name| Rarity::from_str_name(name)).map(|r| r as i32).collect();
    let list = |name: &str| comma_list(fields, name);
    match &mut strategy.parameters {
        Some(Parameters::RookieRisers(p)) => {
            p.max_seasons_played = seasons;
            p.min_performance_rise_percent = rise.unwrap_or_default();
            p.rarities = rarities;
            p.team_codes = list("team_codes").into_iter().map(|code| code.to_ascii_uppercase()).collect();
        }
        Some(Parameters::PostGameSpike(p)) => {
            p.min_game_score = score;
            p.buy_window_minutes = window;
            p.rarities = rarities;
            p.player_ids = list("player_ids");
            p.stat_triggers = triggers(fields, &mut wrong);
        }
        Some(Parameters::ArbitrageMode(p)) => {
            p.min_spread_bps = spread;
            p.buy_source_ids = list("buy_source_ids");
            p.relist_source_ids = list("relist_source_ids");
            p.auto_relist = fields.get("auto_relist") == "on";
        }
        None => {}
    }
    apply_protections(fields, strategy, &mut wrong);
    if wrong.is_empty() {
        return Ok(());
    }
    let message = wrong.iter().map(|(f, why)| format!("{f} {why}")).collect::<Vec<_>>().join("; ");
    Err(Problem { part: Part::Strategies, code: tonic::Code::InvalidArgument, message, fields: wrong })
}

/// The trigger rows with anything in them, in order: (statistic, least value), trimmed.
fn filled_rows(fields: &Fields) -> Vec<(&str, &str)> {
    let (stats, least) = (fields.all("stat"), fields.all("at_least"));
    (0..stats.len().max(least.len()))
        .map(|i| (stats.get(i).map_or("", |s| s.trim()), least.get(i).map_or("", |s| s.trim())))
        .filter(|(stat, at_least)| !stat.is_empty() || !at_least.is_empty())
        .collect()
}

/// The filled rows of statistic triggers; a row with a value but no statistic (or the other
/// way round, or a value that is not a number) is named by its row.
fn triggers(fields: &Fields, wrong: &mut Vec<(String, String)>) -> Vec<StatTrigger> {
    let mut found = Vec::new();
    for (i, (stat, at_least)) in filled_rows(fields).into_iter().enumerate() {
        match (Stat::from_str_name(stat), at_least) {
            (None, _) if stat.is_empty() => {
                wrong.push((format!("stat[{i}]"), "is needed for a least value".to_owned()))
            }
            (None, _) => wrong.push((format!("stat[{i}]"), format!("is not a statistic: {stat:?}"))),
            (Some(_), "") => wrong.push((format!("at_least[{i}]"), "is needed for a statistic".to_owned())),
            (Some(stat), text) => match text.parse::<i32>() {
                Ok(at_least) => found.push(StatTrigger { stat: stat as i32, at_least }),
                Err(_) => wrong.push((format!("at_least[{i}]"), format!("must be a whole number, not {text:?}"))),
            },
        }
    }
    found
}

#[derive(Debug, serde::Deserialize)]
pub struct TemplateQuery {
    #[serde(default)]
    template: String,
}

async fn template(app: &App, visitor: &Visitor, id: &str) -> Result<StrategyTemplate, Problem> {
    let mut client = app.gateway.strategies()?;
    let request = ListStrategyTemplatesRequest { page_size: 100, ..Default::default() };
    let list = answer(Part::Strategies, client.list_strategy_templates(app.gateway.request(visitor, request)).await)?;
    list.templates
        .into_iter()
        .find(|t| t.template_id == id)
        .ok_or_else(|| Problem::field(Part::Strategies, "template_id", format!("names no template: {id:?}")))
}

fn new_page(
    app: &App,
    visitor: &Visitor,
    t: &StrategyTemplate,
    typed: Option<&Fields>,
    trouble: Option<&Problem>,
) -> Response {
    let mut strategy = t.strategy.clone().unwrap_or_default();
    strategy.template_id = t.template_id.clone();
    let body = html! {
        p { (t.description) }
        (form(visitor, "/strategies", &strategy, typed, trouble, "Create strategy (paused)"))
        p { "A new strategy starts paused: activate it from the list when it looks right." }
    };
    let status = trouble.map_or(StatusCode::OK, status_of);
    app.html(
        visitor,
        status,
        crate::html::page(visitor, "/strategies", &format!("New strategy: {}", t.display_name), body),
    )
}

pub async fn new(State(app): State<App>, visitor: Visitor, Query(query): Query<TemplateQuery>) -> Response {
    if let Err(away) = session(&visitor) {
        return away;
    }
    match template(&app, &visitor, &query.template).await {
        Ok(t) => new_page(&app, &visitor, &t, None, None),
        Err(trouble) if trouble.signed_out() => app.signed_out(),
        Err(trouble) => render_list(&app, &visitor, Some(&trouble), StatusCode::NOT_FOUND).await,
    }
}

pub async fn create(State(app): State<App>, Posted { visitor, fields }: Posted) -> Response {
    let t = match template(&app, &visitor, fields.get("template_id")).await {
        Ok(t) => t,
        Err(trouble) if trouble.signed_out() => return app.signed_out(),
        Err(trouble) => return render_list(&app, &visitor, Some(&trouble), status_of(&trouble)).await,
    };
    let mut strategy = t.strategy.clone().unwrap_or_default();
    strategy.template_id = t.template_id.clone();
    let result = async {
        apply(&fields, &mut strategy)?;
        let mut client = app.gateway.strategies()?;
        let request = CreateStrategyRequest { strategy: Some(strategy), validate_only: false };
        answer(Part::Strategies, client.create_strategy(app.gateway.request(&visitor, request)).await)
    }
    .await;
    if let Some(response) = done(&app, &result, "/strategies") {
        return response;
    }
    let trouble = result.err();
    new_page(&app, &visitor, &t, Some(&fields), trouble.as_ref())
}

async fn strategy(app: &App, visitor: &Visitor, id: &str) -> Result<Strategy, Problem> {
    let mut client = app.gateway.strategies()?;
    let request = GetStrategyRequest { strategy_id: id.to_owned() };
    answer(Part::Strategies, client.get_strategy(app.gateway.request(visitor, request)).await)
}

async fn edit_page(
    app: &App,
    visitor: &Visitor,
    s: &Strategy,
    typed: Option<&Fields>,
    trouble: Option<&Problem>,
) -> Response {
    let performance = performances(app, visitor, std::slice::from_ref(s)).await.pop().flatten();
    let active = s.state() == StrategyState::Active;
    let body = html! {
        p { (kind_name(s)) ", " @if active { strong.good { "active" } } @else { "paused" } "." }
        h2 { "Performance" }
        div.scroll { table {
            thead { tr { th.num { "Bought" } th.num { "Spent" } th.num { "Realised" } th.num { "ROI" } } }
            tbody { tr { (performance_cells(performance.as_ref())) } }
        } }
        h2 { "Settings" }
        (form(visitor, &format!("/strategies/{}", s.strategy_id), s, typed, trouble, "Save changes"))
        h2 { "State" }
        form.inline method="post" action={"/strategies/" (s.strategy_id) "/state"} {
            (csrf_field(visitor))
            @if active {
                input type="hidden" name="action" value="pause";
                button.secondary type="submit" { "Pause" }
            } @else {
                input type="hidden" name="action" value="activate";
                button type="submit" { "Activate" }
            }
        }
        " "
        form.inline method="post" action={"/strategies/" (s.strategy_id) "/state"} {
            (csrf_field(visitor))
            input type="hidden" name="action" value="delete";
            button.danger type="submit" { "Delete" }
        }
        @if s.protections.is_some() {
            h2 { "Protections" }
            p { "A protection that tripped lifts by itself when its time runs out. Resetting lifts every one now: the losses so far no longer count towards them."
                @if let Some(at) = &s.protections_reset_time { " Last reset " (crate::html::time(Some(at))) "." } }
            form.inline method="post" action={"/strategies/" (s.strategy_id) "/state"} {
                (csrf_field(visitor))
                input type="hidden" name="action" value="reset_protections";
                button.secondary type="submit" { "Reset the protections" }
            }
        }
        p { a href={"/decisions?strategy=" (s.strategy_id)} { "This strategy's decisions" } }
    };
    let status = trouble.map_or(StatusCode::OK, status_of);
    app.html(visitor, status, crate::html::page(visitor, "/strategies", &s.display_name, body))
}

pub async fn edit(State(app): State<App>, visitor: Visitor, Path(id): Path<String>) -> Response {
    if let Err(away) = session(&visitor) {
        return away;
    }
    match strategy(&app, &visitor, &id).await {
        Ok(s) => edit_page(&app, &visitor, &s, None, None).await,
        Err(trouble) if trouble.signed_out() => app.signed_out(),
        Err(trouble) => {
            let status = if trouble.unavailable() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::NOT_FOUND };
            render_list(&app, &visitor, Some(&trouble), status).await
        }
    }
}

pub async fn update(State(app): State<App>, Path(id): Path<String>, Posted { visitor, fields }: Posted) -> Response {
    let current = match strategy(&app, &visitor, &id).await {
        Ok(s) => s,
        Err(trouble) if trouble.signed_out() => return app.signed_out(),
        Err(trouble) => return render_list(&app, &visitor, Some(&trouble), status_of(&trouble)).await,
    };
    let mut changed = current.clone();
    let result = async {
        apply(&fields, &mut changed)?;
        let kind = match changed.parameters {
            Some(Parameters::RookieRisers(_)) => "rookie_risers",
            Some(Parameters::PostGameSpike(_)) => "post_game_spike",
            Some(Parameters::ArbitrageMode(_)) => "arbitrage_mode",
            None => "rules",
        };
        let mask = prost_types::FieldMask {
            paths: ["display_name", "priority", "daily_scan", "rules", "protections", kind]
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
        };
        let mut client = app.gateway.strategies()?;
        let request =
            UpdateStrategyRequest { strategy: Some(changed.clone()), update_mask: Some(mask), validate_only: false };
        answer(Part::Strategies, client.update_strategy(app.gateway.request(&visitor, request)).await)
    }
    .await;
    if let Some(response) = done(&app, &result, &format!("/strategies/{id}")) {
        return response;
    }
    let trouble = result.err();
    edit_page(&app, &visitor, &current, Some(&fields), trouble.as_ref()).await
}

pub async fn change_state(
    State(app): State<App>,
    Path(id): Path<String>,
    Posted { visitor, fields }: Posted,
) -> Response {
    let result = async {
        let mut client = app.gateway.strategies()?;
        let gateway = &app.gateway;
        match fields.get("action") {
            "activate" => {
                let request = ActivateStrategyRequest { strategy_id: id.clone() };
                answer(Part::Strategies, client.activate_strategy(gateway.request(&visitor, request)).await).map(|_| ())
            }
            "pause" => {
                let request = PauseStrategyRequest { strategy_id: id.clone() };
                answer(Part::Strategies, client.pause_strategy(gateway.request(&visitor, request)).await).map(|_| ())
            }
            "delete" => {
                let request = DeleteStrategyRequest { strategy_id: id.clone() };
                answer(Part::Strategies, client.delete_strategy(gateway.request(&visitor, request)).await).map(|_| ())
            }
            "reset_protections" => {
                let request = ResetStrategyProtectionsRequest { strategy_id: id.clone() };
                answer(Part::Strategies, client.reset_strategy_protections(gateway.request(&visitor, request)).await)
                    .map(|_| ())
            }
            other => Err(Problem::field(
                Part::Strategies,
                "action",
                format!("must be activate, pause, delete or reset_protections, not {other:?}"),
            )),
        }
    }
    .await;
    match result {
        // A reset is made from the strategy's own page, and shown there.
        Ok(()) if fields.get("action") == "reset_protections" => {
            Redirect::to(&format!("/strategies/{id}")).into_response()
        }
        Ok(()) => Redirect::to("/strategies").into_response(),
        Err(trouble) if trouble.signed_out() => app.signed_out(),
        Err(trouble) => render_list(&app, &visitor, Some(&trouble), status_of(&trouble)).await,
    }
}
