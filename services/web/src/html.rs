//! The frame every page shares, and how figures are written: money in dollars, shares in
//! percent, times in UTC.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::backend::Problem;
use crate::session::Visitor;

/// The style sheet: readable on a phone's width, with contrast of at least 4.5:1 everywhere.
const STYLE: &str = r#"
:root { --ink:#111827; --muted:#374151; --line:#d1d5db; --bg:#ffffff; --soft:#f3f4f6; --brand:#1d4ed8;
        --good:#065f46; --bad:#991b1b; --warn:#92400e; }
* { box-sizing: border-box; }
body { margin:0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink); background:var(--bg); }
a { color: var(--brand); }
a:focus, button:focus, input:focus, select:focus { outline: 3px solid #f59e0b; outline-offset: 2px; }
header { background:#0f172a; color:#fff; padding: .5rem 1rem; display:flex; flex-wrap:wrap; gap:.5rem 1rem; align-items:center; }
header a { color:#fff; text-decoration:none; padding:.25rem .4rem; border-radius:4px; }
header a[aria-current="page"] { background:#1e3a8a; }
header .brand { font-weight:700; margin-right:1rem; }
header form { margin-left:auto; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
section { margin-bottom: 1.5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align:left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); }
td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
.cards { display:grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap:.75rem; }
.card { border:1px solid var(--line); border-radius:6px; padding:.6rem .8rem; }
.card .label { color:var(--muted); font-size:.85rem; }
.card .value { font-size:1.25rem; font-weight:600; }
.good { color: var(--good); } .bad { color: var(--bad); }
.problem { border-left: 4px solid var(--bad); background:#fef2f2; padding:.5rem .75rem; color: var(--bad); }
.notice { border-left: 4px solid var(--good); background:#ecfdf5; padding:.5rem .75rem; color: var(--good); }
.unavailable { border: 1px dashed var(--warn); background:#fffbeb; color: var(--warn); padding:.75rem; border-radius:6px; }
form.stack label { display:block; margin-top:.6rem; font-weight:600; }
form.stack .hint { display:block; font-weight:400; color:var(--muted); font-size:.85rem; }
input, select, textarea { font: inherit; padding:.35rem .5rem; border:1px solid #6b7280; border-radius:4px; max-width:100%; }
input[type=text], input[type=email], input[type=password], input[type=number], select { width: 22rem; }
.field-error { color: var(--bad); display:block; font-size:.9rem; }
button { font: inherit; padding:.4rem .9rem; border-radius:4px; border:1px solid #1e3a8a; background: var(--brand); color:#fff; cursor:pointer; }
button.secondary { background:#fff; color: var(--brand); }
button.danger { background: var(--bad); border-color:#7f1d1d; }
.inline { display:inline; }
.bar { background: var(--soft); border:1px solid var(--line); border-radius:4px; height: 1.1rem; width: 100%; min-width: 8rem; position:relative; overflow:hidden; }
.bar .spent { background:#1d4ed8; height:100%; position:absolute; left:0; top:0; }
.bar .held { background:#93c5fd; height:100%; position:absolute; top:0; }
tr.you { background:#fef9c3; font-weight:600; }
.tag { display:inline-block; padding:0 .4rem; border-radius:4px; font-size:.85rem; border:1px solid var(--line); }
.tag.buy { background:#d1fae5; color:#065f46; } .tag.skip { background:#f3f4f6; color:#374151; } .tag.refused { background:#fee2e2; color:#991b1b; } .tag.awaiting { background:#fef3c7; color:#78350f; }
.weight { background:#1d4ed8; height:.6rem; display:inline-block; vertical-align:middle; }
svg text { font-size: 11px; fill: #374151; }
figure.chart { margin: 0; overflow-x: auto; }
figure.chart svg { min-width: 36rem; }
.skip-link { position:absolute; left:-100rem; top:.5rem; background:#fff; color:var(--brand); padding:.4rem .6rem; border-radius:4px; }
.skip-link:focus { left:.5rem; z-index:10; }
:focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
@media (max-width: 40rem) { input[type=text], input[type=email], input[type=password], input[type=number], select { width: 100%; } header form { margin-left:0; } }
"#;

/// The dashboard's sections, for the navigation.
pub const SECTIONS: [(&str, &str); 9] = [
    ("/portfolio", "Portfolio"),
    ("/decisions", "Decisions"),
    ("/strategies", "Strategies"),
    ("/backtests", "Backtests"),
    ("/budget", "Budget"),
    ("/market", "Market"),
    ("/notifications", "Notifications"),
    ("/leaderboards", "Leaderboards"),
    ("/operators", "Operators"),
];

/// A whole page for a signed-in visitor: the navigation, `title` and `body`.
pub fn page(visitor: &Visitor, current: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · FastBreak" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                a.skip-link href="#main" { "Skip to the content" }
                header {
                    a.brand href="/portfolio" { "FastBreak" }
                    nav aria-label="Sections" {
                        @for (href, name) in SECTIONS {
                            a href=(href) aria-current=[(href == current).then_some("page")] { (name) }
                            " "
                        }
                    }
                    @if visitor.session.is_some() {
                        form.inline method="post" action="/sign-out" {
                            (csrf_field(visitor))
                            button.secondary type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page without the navigation (sign-in, sign-up, refusals).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · FastBreak" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                a.skip-link href="#main" { "Skip to the content" }
                header { a.brand href="/portfolio" { "FastBreak" } }
                main id="main" { h1 { (title) } (body) }
            }
        }
    }
}

/// The hidden field every form carries.
pub fn csrf_field(visitor: &Visitor) -> Markup {
    html! { input type="hidden" name="csrf" value=(visitor.csrf); }
}

/// A problem, as a page shows it.
pub fn problem(problem: &Problem) -> Markup {
    if problem.unavailable() {
        html! { div.unavailable role="status" { (problem.readable()) } }
    } else {
        html! { p.problem role="alert" { (problem.readable()) } }
    }
}

/// A section's content, or what stands in for it when its part failed.
pub fn or_problem<T>(result: &Result<T, Problem>, show: impl FnOnce(&T) -> Markup) -> Markup {
    match result {
        Ok(value) => show(value),
        Err(error) => problem(error),
    }
}

/// A labelled text input with its hint and the service's complaint about it, if any.
pub fn field(label: &str, name: &str, kind: &str, value: &str, hint: &str, complaint: Option<&Problem>) -> Markup {
    let why = complaint.and_then(|p| p.about(name));
    let id = format!("field-{name}");
    let error_id = format!("{id}-error");
    html! {
        label for=(id) {
            (label)
            @if !hint.is_empty() { span.hint { (hint) } }
        }
        input id=(id) name=(name) value=(value) type=(kind) step=[(kind == "number").then_some("any")]
            aria-invalid=[why.map(|_| "true")] aria-describedby=[why.map(|_| error_id.as_str())];
        @if let Some(why) = why { span.field-error id=(error_id) { (name) " " (why) } }
    }
}

/// Cents as dollars: "$1,234.56", "-$3.00".
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let dollars = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, digit) in dollars.chars().enumerate() {
        if i > 0 && (dollars.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{sign}${grouped}.{:02}", abs % 100)
}

/// Cents as a form's dollar value: "12.50"; empty for none.
pub fn dollars_value(cents: Option<i64>) -> String {
    cents.map(|c| format!("{}.{:02}", c / 100, (c % 100).abs())).unwrap_or_default()
}

/// A form's dollar amount as cents: "12", "12.5", "12.50", "$1,200"; empty is none.
pub fn parse_dollars(text: &str) -> Result<Option<i64>, String> {
    let cleaned: String = text.trim().trim_start_matches('$').chars().filter(|c| *c != ',').collect();
    if cleaned.is_empty() {
        return Ok(None);
    }
    let (whole, fraction) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 2 {
        return Err(format!("must be an amount in dollars such as 12.50, not {text:?}"));
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| "is too large".to_owned())? };
    let cents: i64 = format!("{fraction:0<2}").parse().unwrap_or(0);
    whole.checked_mul(100).and_then(|w| w.checked_add(cents)).map(Some).ok_or_else(|| "is too large".to_owned())
}

/// Money with its sign coloured: gains green, losses red.
pub fn signed_money(cents: i64) -> Markup {
    let class = if cents > 0 {
        "good"
    } else if cents < 0 {
        "bad"
    } else {
        ""
    };
    let text = if cents > 0 { format!("+{}", money(cents)) } else { money(cents) };
    html! { span class=(class) { (text) } }
}

/// Basis points as a percent: "12.34%".
pub fn percent(bps: i64) -> String {
    let sign = if bps < 0 { "-" } else { "" };
    let abs = bps.unsigned_abs();
    format!("{sign}{}.{:02}%", abs / 100, abs % 100)
}

/// A protobuf time, in UTC to the minute.
pub fn time(at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

/// An enum value's name without its prefix, in words: "RARITY_LEGENDARY" → "legendary".
pub fn words(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_ascii_lowercase().replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_as_dollars() {
        assert_eq!(money(123_456), "$1,234.56");
        assert_eq!(money(-300), "-$3.00");
        assert_eq!(money(5), "$0.05");
        assert_eq!(money(100_000_000), "$1,000,000.00");
        assert_eq!(percent(1234), "12.34%");
        assert_eq!(percent(-5), "-0.05%");
    }

    #[test]
    fn dollars_in_forms_become_cents_or_say_what_is_wrong() {
        assert_eq!(parse_dollars("12"), Ok(Some(1_200)));
        assert_eq!(parse_dollars(" $1,200.5 "), Ok(Some(120_050)));
        assert_eq!(parse_dollars(".25"), Ok(Some(25)));
        assert_eq!(parse_dollars(""), Ok(None));
        assert!(parse_dollars("12.345").is_err());
        assert!(parse_dollars("-4").is_err());
        assert!(parse_dollars("ten").unwrap_err().contains("dollars"));
        assert!(parse_dollars("99999999999999999999").is_err());
        assert_eq!(dollars_value(Some(120_050)), "1200.50");
    }

    #[test]
    fn text_from_services_is_escaped() {
        let markup = html! { p { ("<script>alert(1)</script>") } }.into_string();
        assert_eq!(markup, "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>");
    }
}
