//! The spending limits of a user, free of I/O: the limits and their defaults, the periods they
//! count over in the user's time zone, and the check of a purchase against them in a fixed
//! order with the figures a refusal carries, and the rules by which activity looks suspicious
//! (a burst, a purchase far above the usual size, refusals in a row). The risk service checks
//! every live purchase with it; a backtest checks its paper purchases with the same rules.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use fastbreak_db::schema::budget_limits;
use fastbreak_db::text_enum;
use fastbreak_proto::common::v1::ErrorReason;
use fastbreak_proto::risk::v1 as pb;

pub use fastbreak_mesh::money::amount as money;

text_enum! {
    /// One of a user's limits.
    LimitKind {
        /// Per day.
        Daily => "daily",
        /// Per ISO week.
        Weekly => "weekly",
        /// Per month.
        Monthly => "monthly",
        /// Ever.
        Total => "total",
        /// Per moment.
        PerMoment => "per_moment",
        /// The balance to keep.
        Reserve => "reserve",
        /// Spending within an hour.
        EmergencyThreshold => "emergency_threshold",
    }
}

/// The six limits, in cents; `None` means no such limit.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Queryable, Selectable, Insertable, serde::Serialize, serde::Deserialize,
)]
#[diesel(table_name = budget_limits)]
pub struct LimitValues {
    /// Per calendar day.
    pub daily_cents: Option<i64>,
    /// Per ISO week.
    pub weekly_cents: Option<i64>,
    /// Per calendar month.
    pub monthly_cents: Option<i64>,
    /// Ever.
    pub total_cents: Option<i64>,
    /// Per moment.
    pub per_moment_cents: Option<i64>,
    /// Balance to keep.
    pub reserve_cents: Option<i64>,
    /// Spending within an hour past which the emergency stop engages.
    pub emergency_threshold_cents: Option<i64>,
}

/// What a user spent, holds and usually does, read in one statement (one snapshot, so a hold
/// committed meanwhile is counted once: as held or as spent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, QueryableByName)]
pub struct Figures {
    /// Committed since the start of the day.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub spent_day: i64,
    /// Committed since the start of the week.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub spent_week: i64,
    /// Committed since the start of the month.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub spent_month: i64,
    /// Committed ever.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub spent_total: i64,
    /// Committed within the last hour.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub spent_hour: i64,
    /// Committed since the balance was read.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub spent_since_balance: i64,
    /// Purchases committed within the history.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub history_purchases: i64,
    /// Their mean amount.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub history_mean_cents: i64,
    /// On hold now.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub held: i64,
    /// Holds placed within the burst window.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub burst_holds: i64,
    /// Holds placed within the history, before the burst window.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub history_holds: i64,
}

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

/// The window of the emergency threshold.
pub const THRESHOLD_WINDOW: Duration = Duration::hours(1);

/// A limit as the contract names it.
pub fn limit_kind_to_pb(kind: LimitKind) -> pb::LimitKind {
    match kind {
        LimitKind::Daily => pb::LimitKind::Daily,
        LimitKind::Weekly => pb::LimitKind::Weekly,
        LimitKind::Monthly => pb::LimitKind::Monthly,
        LimitKind::Total => pb::LimitKind::Total,
        LimitKind::PerMoment => pb::LimitKind::PerMoment,
        LimitKind::Reserve => pb::LimitKind::Reserve,
        LimitKind::EmergencyThreshold => pb::LimitKind::EmergencyThreshold,
    }
}

/// The amounts of a set of limits as the contract gives them.
pub fn limits_from_pb(limits: &pb::BudgetLimits) -> LimitValues {
    LimitValues {
        daily_cents: limits.daily_cents,
        weekly_cents: limits.weekly_cents,
        monthly_cents: limits.monthly_cents,
        total_cents: limits.total_cents,
        per_moment_cents: limits.per_moment_cents,
        reserve_cents: limits.reserve_cents,
        emergency_threshold_cents: limits.emergency_threshold_cents,
    }
}

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
    /// The limits the contract gives (`GetBudgetLimits`); a time zone that names none counts
    /// as UTC, as risk counts it.
    pub fn from_pb(limits: &pb::BudgetLimits) -> Self {
        Self { values: limits_from_pb(limits), zone: zone(&limits.time_zone).unwrap_or(Tz::UTC) }
    }

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

/// The start of the local day `date` in `zone`, in UTC (a day that begins in a daylight-saving
/// gap begins at the first local time that exists).
pub fn start_of(zone: Tz, date: NaiveDate) -> DateTime<Utc> {
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

    /// The refusal as the caller of a purchase meets it: FAILED_PRECONDITION with the limit's
    /// figures. Passing the emergency threshold engages the emergency stop: that is its reason.
    pub fn status(&self) -> tonic::Status {
        let reason = if self.kind == LimitKind::EmergencyThreshold {
            ErrorReason::EmergencyStopEngaged
        } else {
            ErrorReason::LimitExceeded
        };
        let kind = limit_kind_to_pb(self.kind);
        fastbreak_mesh::status::failed_precondition(self.message(), reason, self.metadata(kind.as_str_name()))
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

// Suspicious activity: what pauses a user's automated purchases until the user acknowledges
// it (risk), or for the rest of a replay (a backtest, where nobody acknowledges).

/// How far back a user's usual rate and size of purchases are taken from.
pub const HISTORY: Duration = Duration::days(30);

/// When activity counts as suspicious (automated purchases pause until the user acknowledges
/// the alert).
#[derive(Debug, Clone, PartialEq)]
pub struct Suspicion {
    /// The window a burst is counted in.
    pub burst_window: std::time::Duration,
    /// Holds within the window that are a burst whatever the usual rate.
    pub burst_min: u32,
    /// A burst is also this many times the usual number of holds per window (over the last
    /// 30 days), when that is more than `burst_min`.
    pub burst_factor: u32,
    /// A purchase this many times the user's mean purchase (over the last 30 days) is
    /// suspicious ...
    pub size_factor: u32,
    /// ... once the user made at least this many purchases in that time.
    pub size_min_history: u32,
    /// Refusals in a row that pause automated purchases.
    pub refusals_in_a_row: u32,
}

impl Default for Suspicion {
    fn default() -> Self {
        Self {
            burst_window: std::time::Duration::from_secs(600),
            burst_min: 30,
            burst_factor: 5,
            size_factor: 10,
            size_min_history: 5,
            refusals_in_a_row: 10,
        }
    }
}

impl Suspicion {
    /// The rules as the contract carries them.
    pub fn to_pb(&self) -> fastbreak_proto::risk::v1::SuspicionRules {
        fastbreak_proto::risk::v1::SuspicionRules {
            burst_window: prost_types::Duration::try_from(self.burst_window).ok(),
            burst_min: self.burst_min,
            burst_factor: self.burst_factor,
            size_factor: self.size_factor,
            size_min_history: self.size_min_history,
            refusals_in_a_row: self.refusals_in_a_row,
        }
    }

    /// The rules a peer sent; a burst window missing or negative is the default one.
    pub fn from_pb(rules: &fastbreak_proto::risk::v1::SuspicionRules) -> Self {
        let burst_window = rules
            .burst_window
            .and_then(|d| std::time::Duration::try_from(d).ok())
            .unwrap_or_else(|| Self::default().burst_window);
        Self {
            burst_window,
            burst_min: rules.burst_min,
            burst_factor: rules.burst_factor,
            size_factor: rules.size_factor,
            size_min_history: rules.size_min_history,
            refusals_in_a_row: rules.refusals_in_a_row,
        }
    }
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
}
