//! Charts drawn on the server as SVG: a line over time, with its range and its ends labelled.

use maud::{Markup, html};

/// One series: points of (seconds since the epoch, cents), in time order.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    /// What it is, for the legend.
    pub name: &'a str,
    /// Its colour.
    pub colour: &'a str,
    /// Its points.
    pub points: Vec<(i64, i64)>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 30.0;

/// A line chart of money over time, described for screen readers by `title`; an empty chart
/// says there is nothing to draw yet.
pub fn money_over_time(title: &str, series: &[Series<'_>]) -> Markup {
    let all: Vec<(i64, i64)> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
    if all.is_empty() {
        return html! { p { "Nothing to draw yet: " (title) " appears once there is data." } };
    }
    let (x_min, x_max) = (all.iter().map(|p| p.0).min().unwrap_or(0), all.iter().map(|p| p.0).max().unwrap_or(0));
    let (mut y_min, mut y_max) =
        (all.iter().map(|p| p.1).min().unwrap_or(0), all.iter().map(|p| p.1).max().unwrap_or(0));
    if y_min == y_max {
        y_min -= 100;
        y_max += 100;
    }
    let x_span = (x_max - x_min).max(1) as f64;
    let y_span = (y_max - y_min) as f64;
    let x = |t: i64| LEFT + (t - x_min) as f64 / x_span * (WIDTH - LEFT - RIGHT);
    let y = |c: i64| TOP + (1.0 - (c - y_min) as f64 / y_span) * (HEIGHT - TOP - BOTTOM);
    let day = |t: i64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0)
            .map(|d| d.format("%b %d %H:%M").to_string())
            .unwrap_or_default()
    };
    // What a screen reader says of it: each line's first and last value.
    let ends: Vec<String> = series
        .iter()
        .filter_map(|s| {
            let (first, last) = (s.points.first()?, s.points.last()?);
            Some(format!("{} from {} to {}", s.name, crate::html::money(first.1), crate::html::money(last.1)))
        })
        .collect();
    let description = format!("{title}: {}", ends.join("; "));
    html! {
        figure.chart {
            svg role="img" aria-label=(description) viewBox={"0 0 " (WIDTH) " " (HEIGHT)} width="100%" preserveAspectRatio="xMidYMid meet" {
                title { (description) }
                line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(HEIGHT - BOTTOM) stroke="#6b7280" {}
                line x1=(LEFT) y1=(HEIGHT - BOTTOM) x2=(WIDTH - RIGHT) y2=(HEIGHT - BOTTOM) stroke="#6b7280" {}
                text x=(LEFT - 6.0) y=(TOP + 10.0) text-anchor="end" { (crate::html::money(y_max)) }
                text x=(LEFT - 6.0) y=(HEIGHT - BOTTOM) text-anchor="end" { (crate::html::money(y_min)) }
                text x=(LEFT) y=(HEIGHT - 8.0) { (day(x_min)) }
                text x=(WIDTH - RIGHT) y=(HEIGHT - 8.0) text-anchor="end" { (day(x_max)) }
                @for s in series {
                    @let path = s.points.iter().map(|(t, c)| format!("{:.1},{:.1}", x(*t), y(*c))).collect::<Vec<_>>().join(" ");
                    @if s.points.len() == 1 {
                        circle cx=(x(s.points[0].0)) cy=(y(s.points[0].1)) r="3" fill=(s.colour) {}
                    } @else {
                        polyline points=(path) fill="none" stroke=(s.colour) stroke-width="2" {}
                    }
                }
            }
            figcaption {
                @for s in series {
                    span style={"color:" (s.colour)} { "■ " } (s.name) " "
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_spans_the_plot_and_an_empty_chart_says_so() {
        let series =
            [Series { name: "Equity", colour: "#1d4ed8", points: vec![(0, 1_000), (3_600, 2_000), (7_200, 1_500)] }];
        let svg = money_over_time("Equity over time", &series).into_string();
        assert!(svg.contains(r#"points="70.0,190.0 350.0,10.0 630.0,100.0""#), "{svg}");
        assert!(svg.contains("$20.00") && svg.contains("$10.00"), "{svg}");
        assert!(svg.contains(r#"aria-label="Equity over time: Equity from $10.00 to $15.00""#), "{svg}");
        let empty = money_over_time("Equity over time", &[]).into_string();
        assert!(empty.contains("Nothing to draw yet"), "{empty}");
    }
}
