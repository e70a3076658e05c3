//! The rules of risk, free of I/O: the default limits, the periods in a user's time zone, the
//! order limits are checked in and the figures a refusal carries, suspicious activity, and the
//! shares of a limit that raise an alert.

use crate::store::{Figures, LimitKind, LimitValues, Windows};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use fastbreak_mesh::status::Violations;

use crate::settings::Suspicion;

/// The limits of a user who never set any.
pub const DEFAULT_LIMITS: LimitValues = LimitValues {
    daily_cents: Some(50_000),
    weekly_cents: Some(200_000),
    monthly_cents: Some(500_000),
    total_cents: Some(2_000_000),
    per_moment_cents: Some(25_000),
    reserve_cents: None,
    emergency_threshold_cents: Some(30_000),
};

/// The largest amount a limit or a purchase may name: a hundred billion, far beyond any real
/// wallet, small enough that sums of them never overflow.
pub const MAX_CENTS: i64 = 10_000_000_000_000;

/// How far back a user's usual rate and size of purchases are taken from.
pub const HISTORY: Duration = Duration::days(30);

/// The window of the emergency threshold.
pub const THRESHOLD_WINDOW: Duration = Duration::hours(1);

/// The limits in force for a user, and the time zone of their periods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The amounts.
    pub values: LimitValues,
    /// The time zone.
    pub zone: Tz,
}

impl Default for Limits {
    fn default() -> Self {
        Self { values: DEFAULT_LIMITS, zone: Tz::UTC }
    }
}

impl Limits {
    /// One limit's amount.
    pub fn get(&self, kind: LimitKind) -> Option<i64> {
        value(&self.values, kind)
    }
}

/// One limit's amount in a set.
pub fn value(values: &LimitValues, kind: LimitKind) -> Option<i64> {
    match kind {
        LimitKind::Daily => values.daily_cents,
        LimitKind::Weekly => values.weekly_cents,
        LimitKind::Monthly => values.monthly_cents,
        LimitKind::Total => values.total_cents,
        LimitKind::PerMoment => values.per_moment_cents,
        LimitKind::Reserve => values.reserve_cents,
        LimitKind::EmergencyThreshold => values.emergency_threshold_cents,
    }
}

/// A time zone by its IANA name; empty means UTC.
pub fn zone(name: &str) -> Option<Tz> {
    if name.is_empty() { Some(Tz::UTC) } else { name.parse().ok() }
}

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

/// The start of the local day `date` in `zone`, in UTC (a day that begins in a daylight-saving
/// gap begins at the first local time that exists).
fn start_of(zone: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    (0..4)
        .find_map(|hours| zone.from_local_datetime(&(midnight + Duration::hours(hours))).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

/// Where the user's day, ISO week and month began at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    /// The day.
    pub day: DateTime<Utc>,
    /// The ISO week (from Monday).
    pub week: DateTime<Utc>,
    /// The month.
    pub month: DateTime<Utc>,
}

impl Periods {
    /// The periods at `now` in `zone`.
    pub fn at(now: DateTime<Utc>, zone: Tz) -> Self {
        let today = now.with_timezone(&zone).date_naive();
        let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
        let first = today.with_day(1).unwrap_or(today);
        Self { day: start_of(zone, today), week: start_of(zone, monday), month: start_of(zone, first) }
    }

    /// When the period of a limit began; `None` for limits without one.
    pub fn start(&self, kind: LimitKind) -> Option<DateTime<Utc>> {
        match kind {
            LimitKind::Daily => Some(self.day),
            LimitKind::Weekly => Some(self.week),
            LimitKind::Monthly => Some(self.month),
            _ => None,
        }
    }

    /// The windows the database sums over for a purchase at `now`.
    pub fn windows(&self, now: DateTime<Utc>, balance_time: DateTime<Utc>, suspicion: &Suspicion) -> Windows {
        Windows {
            day: self.day,
            week: self.week,
            month: self.month,
            hour: now - THRESHOLD_WINDOW,
            balance: balance_time,
            burst: now - Duration::from_std(suspicion.burst_window).unwrap_or(Duration::minutes(10)),
            history: now - HISTORY,
        }
    }
}

/// Committed spending against a limit, from the figures.
pub fn spent(figures: &Figures, kind: LimitKind) -> i64 {
    match kind {
        LimitKind::Daily => figures.spent_day,
        LimitKind::Weekly => figures.spent_week,
        LimitKind::Monthly => figures.spent_month,
        LimitKind::Total => figures.spent_total,
        LimitKind::EmergencyThreshold => figures.spent_hour,
        LimitKind::Reserve => figures.spent_since_balance,
        LimitKind::PerMoment => 0,
    }
}

/// The limits that count spending over a period, in the order they are checked.
pub const SPENDING_LIMITS: [LimitKind; 4] = [LimitKind::Daily, LimitKind::Weekly, LimitKind::Monthly, LimitKind::Total];

/// A purchase a limit refuses, with the figures behind the refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The limit.
    pub kind: LimitKind,
    /// Its amount.
    pub limit: i64,
    /// Committed in its period (for the reserve: committed since the balance was read).
    pub spent: i64,
    /// On hold.
    pub held: i64,
    /// The purchase's amount.
    pub asked: i64,
    /// The balance the caller read (reserve only).
    pub balance: Option<i64>,
}

impl Refusal {
    /// The refusal as a sentence.
    pub fn message(&self) -> String {
        let (limit, spent, held, asked) = (money(self.limit), money(self.spent), money(self.held), money(self.asked));
        match self.kind {
            LimitKind::PerMoment => format!("{asked} is above the per-moment limit of {limit}"),
            LimitKind::Reserve => format!(
                "{asked} would leave less than the reserve of {limit} (balance {}, on hold {held}, spent since {spent})",
                money(self.balance.unwrap_or(0))
            ),
            LimitKind::EmergencyThreshold => format!(
                "{asked} would take spending within an hour past the emergency threshold of {limit} (spent {spent}, on hold {held}); the emergency stop is engaged"
            ),
            kind => format!("{asked} would exceed the {kind} limit of {limit} (spent {spent}, on hold {held})"),
        }
    }

    /// The figures, as `ErrorInfo` metadata.
    pub fn metadata(&self, kind_name: &str) -> Vec<(String, String)> {
        let mut metadata = vec![
            ("limit".to_owned(), kind_name.to_owned()),
            ("limit_cents".to_owned(), self.limit.to_string()),
            ("spent_cents".to_owned(), self.spent.to_string()),
            ("held_cents".to_owned(), self.held.to_string()),
            ("asked_cents".to_owned(), self.asked.to_string()),
        ];
        if let Some(balance) = self.balance {
            metadata.push(("balance_cents".to_owned(), balance.to_string()));
            metadata.push(("reserve_cents".to_owned(), self.limit.to_string()));
        }
        metadata
    }
}

/// Checks a purchase of `asked` cents against every limit, in a fixed order: per moment, the
/// emergency threshold, daily, weekly, monthly, total, then the reserve. Holds count as spent
/// in every period; for the reserve, open holds and spending committed since the balance was
/// read are taken off the balance, so that a stale balance never lets a purchase into it.
pub fn check(limits: &Limits, figures: &Figures, asked: i64, balance: i64) -> Result<(), Refusal> {
    let held = figures.held;
    if let Some(limit) = limits.get(LimitKind::PerMoment)
        && asked > limit
    {
        return Err(Refusal { kind: LimitKind::PerMoment, limit, spent: 0, held: 0, asked, balance: None });
    }
    let order = [LimitKind::EmergencyThreshold].into_iter().chain(SPENDING_LIMITS);
    for kind in order {
        if let Some(limit) = limits.get(kind) {
            let spent = spent(figures, kind);
            if spent.saturating_add(held).saturating_add(asked) > limit {
                return Err(Refusal { kind, limit, spent, held, asked, balance: None });
            }
        }
    }
    if let Some(reserve) = limits.get(LimitKind::Reserve) {
        let spent = figures.spent_since_balance;
        let left = balance.saturating_sub(held).saturating_sub(spent).saturating_sub(asked);
        if left < reserve {
            return Err(Refusal {
                kind: LimitKind::Reserve,
                limit: reserve,
                spent,
                held,
                asked,
                balance: Some(balance),
            });
        }
    }
    Ok(())
}

/// Why activity looks suspicious.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspicious {
    /// Many purchases at once.
    Burst {
        /// Holds in the window, this one included.
        count: i64,
        /// The most that is not a burst.
        allowed: i64,
    },
    /// One purchase far above the usual size.
    Size {
        /// Its amount.
        amount: i64,
        /// The user's mean purchase.
        mean: i64,
    },
    /// Many refusals in a row.
    Refusals {
        /// How many.
        count: i32,
    },
}

impl Suspicious {
    /// The reason as a sentence.
    pub fn message(&self) -> String {
        match *self {
            Suspicious::Burst { count, allowed } => format!(
                "{count} purchases within the burst window, more than the {allowed} expected from your usual rate; automated purchases are paused until you acknowledge this alert"
            ),
            Suspicious::Size { amount, mean } => format!(
                "a purchase of {} is far above your usual {}; automated purchases are paused until you acknowledge this alert",
                money(amount),
                money(mean)
            ),
            Suspicious::Refusals { count } => format!(
                "{count} purchases in a row were refused; automated purchases are paused until you acknowledge this alert"
            ),
        }
    }
}

/// Whether a purchase of `amount` looks suspicious given the user's recent activity.
pub fn suspicious(s: &Suspicion, figures: &Figures, amount: i64) -> Option<Suspicious> {
    let count = figures.burst_holds + 1;
    let window = Duration::from_std(s.burst_window).unwrap_or(Duration::minutes(10));
    let history_windows = ((HISTORY - window).num_seconds() / window.num_seconds().max(1)).max(1);
    let usual = (figures.history_holds + history_windows - 1) / history_windows;
    let allowed = i64::from(s.burst_min).max(i64::from(s.burst_factor).saturating_mul(usual));
    if count > allowed {
        return Some(Suspicious::Burst { count, allowed });
    }
    let mean = figures.history_mean_cents;
    if figures.history_purchases >= i64::from(s.size_min_history)
        && mean > 0
        && amount > mean.saturating_mul(i64::from(s.size_factor))
    {
        return Some(Suspicious::Size { amount, mean });
    }
    None
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

/// Cents as an amount with two decimals.
pub use fastbreak_mesh::money::amount as money;

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(values: LimitValues) -> Limits {
        Limits { values, zone: Tz::UTC }
    }

    #[test]
    fn limits_are_checked_in_order_with_their_figures() {
        let l = limits(LimitValues {
            daily_cents: Some(1_000),
            weekly_cents: Some(2_000),
            per_moment_cents: Some(600),
            reserve_cents: Some(500),
            ..LimitValues::default()
        });
        let f = Figures { spent_day: 300, spent_week: 1_500, held: 200, ..Figures::default() };
        assert_eq!(check(&l, &f, 601, 10_000).unwrap_err().kind, LimitKind::PerMoment);
        let daily = check(&l, &f, 501, 10_000).unwrap_err();
        assert_eq!(
            (daily.kind, daily.limit, daily.spent, daily.held, daily.asked),
            (LimitKind::Daily, 1_000, 300, 200, 501)
        );
        assert_eq!(check(&l, &f, 301, 10_000).unwrap_err().kind, LimitKind::Weekly);
        assert!(check(&l, &f, 300, 10_000).is_ok());
        let reserve = check(&l, &Figures { spent_since_balance: 100, ..f }, 300, 1_099).unwrap_err();
        assert_eq!((reserve.kind, reserve.balance), (LimitKind::Reserve, Some(1_099)));
        assert!(check(&l, &f, 300, 1_000).is_ok(), "1000 - 200 held - 300 = 500 keeps the reserve");
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
    fn periods_follow_the_time_zone() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 3, 0, 0).unwrap(); // a Wednesday, 22:00 the day before in New York
        let utc = Periods::at(now, Tz::UTC);
        assert_eq!(utc.day, Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap());
        assert_eq!(utc.week, Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap());
        assert_eq!(utc.month, Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap());
        let ny = Periods::at(now, "America/New_York".parse().unwrap());
        assert_eq!(ny.day, Utc.with_ymd_and_hms(2026, 11, 24, 5, 0, 0).unwrap());
        assert_eq!(ny.month, Utc.with_ymd_and_hms(2026, 11, 1, 4, 0, 0).unwrap(), "1 November began in daylight time");
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
