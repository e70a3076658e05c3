//! The rules of risk, free of I/O: the limits themselves (their defaults, periods and check, in
//! `libs/limits`, which backtests share), their validation, suspicious activity, and the shares
//! of a limit that raise an alert.

use crate::store::{Figures, LimitKind, LimitValues, Windows};
use chrono::{DateTime, Duration, Utc};
use fastbreak_mesh::status::Violations;

use crate::settings::Suspicion;

pub use fastbreak_limits::{
    DEFAULT_LIMITS, HISTORY, Limits, MAX_CENTS, Periods, Refusal, SPENDING_LIMITS, Suspicious, THRESHOLD_WINDOW, check,
    money, spent, suspicious, value, zone,
};

/// Checks a proposed set of limits, noting every problem at once under `limits.<field>`.
pub fn validate(values: &LimitValues, time_zone: &str, violations: &mut Violations) {
    let fields = [
        ("daily_cents", values.daily_cents),
        ("weekly_cents", values.weekly_cents),
        ("monthly_cents", values.monthly_cents),
        ("total_cents", values.total_cents),
        ("per_moment_cents", values.per_moment_cents),
        ("reserve_cents", values.reserve_cents),
        ("emergency_threshold_cents", values.emergency_threshold_cents),
    ];
    for (field, amount) in fields {
        if let Some(amount) = amount {
            violations.check(amount > 0, format!("limits.{field}"), format!("must be positive, got {amount}"));
            violations.check(
                amount <= MAX_CENTS,
                format!("limits.{field}"),
                format!("must be at most {MAX_CENTS}, got {amount}"),
            );
        }
    }
    let ordered = &fields[..4];
    for (i, (low_field, low)) in ordered.iter().enumerate() {
        for (high_field, high) in &ordered[i + 1..] {
            if let (Some(low), Some(high)) = (low, high)
                && low > high
            {
                violations.add(
                    format!("limits.{high_field}"),
                    format!("must not be below limits.{low_field} ({high} < {low})"),
                );
            }
        }
    }
    violations.check(
        zone(time_zone).is_some(),
        "limits.time_zone",
        format!("must be an IANA time zone such as America/New_York, got {time_zone:?}"),
    );
}

/// What a change of limits changes, limit by limit.
pub fn differences(current: &LimitValues, proposed: &LimitValues) -> Vec<(LimitKind, Option<i64>, Option<i64>)> {
    LimitKind::ALL
        .iter()
        .map(|&kind| (kind, value(current, kind), value(proposed, kind)))
        .filter(|(_, from, to)| from != to)
        .collect()
}

/// The windows the database sums over for a purchase at `now`, from the periods at `now`.
pub fn windows(periods: &Periods, now: DateTime<Utc>, balance_time: DateTime<Utc>, suspicion: &Suspicion) -> Windows {
    Windows {
        day: periods.day,
        week: periods.week,
        month: periods.month,
        hour: now - THRESHOLD_WINDOW,
        balance: balance_time,
        burst: now - Duration::from_std(suspicion.burst_window).unwrap_or(Duration::minutes(10)),
        history: now - HISTORY,
    }
}

/// A share of a limit a purchase reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    /// The limit.
    pub kind: LimitKind,
    /// The share, in percent; 100 means the limit is reached.
    pub percent: u8,
    /// Spending and holds after the purchase.
    pub used: i64,
    /// The limit.
    pub limit: i64,
    /// The key that raises the alert once per period: limit, period start, share.
    pub dedup_key: String,
}

/// The shares of each spending limit that a granted purchase of `asked` cents takes usage to
/// or past, from below (so that an alert is considered once, when the share is crossed).
pub fn crossings(
    limits: &Limits,
    figures: &Figures,
    asked: i64,
    thresholds: &[u8],
    periods: &Periods,
) -> Vec<Crossing> {
    let mut crossings = Vec::new();
    for kind in SPENDING_LIMITS {
        let Some(limit) = limits.get(kind) else { continue };
        let before = i128::from(spent(figures, kind)) + i128::from(figures.held);
        let after = before + i128::from(asked);
        let period = periods.start(kind).map_or_else(|| "ever".to_owned(), |t| t.to_rfc3339());
        for &percent in thresholds.iter().chain(&[100]) {
            let line = i128::from(limit) * i128::from(percent);
            if before * 100 < line && after * 100 >= line {
                crossings.push(Crossing {
                    kind,
                    percent,
                    used: i64::try_from(after).unwrap_or(i64::MAX),
                    limit,
                    dedup_key: format!("{kind}:{period}:{percent}"),
                });
            }
        }
    }
    crossings
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;

    fn limits(values: LimitValues) -> Limits {
        Limits { values, zone: Tz::UTC }
    }

    #[test]
    fn validation_names_every_problem() {
        let mut v = Violations::new();
        let values = LimitValues {
            daily_cents: Some(0),
            weekly_cents: Some(100),
            monthly_cents: Some(50),
            reserve_cents: Some(-1),
            ..LimitValues::default()
        };
        validate(&values, "Mars/Olympus", &mut v);
        let text = format!("{:?}", v.into_status());
        for field in ["limits.daily_cents", "limits.monthly_cents", "limits.reserve_cents", "limits.time_zone"] {
            assert!(text.contains(field), "{field} missing from {text}");
        }
    }

    #[test]
    fn shares_are_crossed_once_from_below() {
        let l = limits(LimitValues { daily_cents: Some(1_000), ..LimitValues::default() });
        let periods = Periods::at(Utc::now(), Tz::UTC);
        let f = Figures { spent_day: 700, ..Figures::default() };
        let crossed = crossings(&l, &f, 260, &[80, 95], &periods);
        assert_eq!(crossed.iter().map(|c| c.percent).collect::<Vec<_>>(), vec![80, 95]);
        let f = Figures { spent_day: 850, ..Figures::default() };
        assert_eq!(
            crossings(&l, &f, 150, &[80, 95], &periods).iter().map(|c| c.percent).collect::<Vec<_>>(),
            vec![95, 100]
        );
    }

    #[test]
    fn bursts_and_outsized_purchases_are_suspicious() {
        let s = Suspicion::default();
        assert!(suspicious(&s, &Figures { burst_holds: 10, ..Figures::default() }, 100).is_none());
        assert!(matches!(
            suspicious(&s, &Figures { burst_holds: 30, ..Figures::default() }, 100),
            Some(Suspicious::Burst { count: 31, allowed: 30 })
        ));
        let history = Figures { history_purchases: 5, history_mean_cents: 1_000, ..Figures::default() };
        assert!(suspicious(&s, &history, 10_000).is_none());
        assert!(matches!(suspicious(&s, &history, 10_001), Some(Suspicious::Size { .. })));
    }
}
