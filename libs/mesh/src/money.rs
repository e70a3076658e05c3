//! Money in words: every amount a service writes for people (reasons, notifications, limits)
//! is formatted here, with one rule for negative amounts.

/// Cents as an amount with two decimals: `1234` is `12.34`, `-5` is `-0.05`.
pub fn amount(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

/// Cents as dollars: `1234` is `$12.34`, `-5` is `-$0.05`.
pub fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}${}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_keep_their_sign_in_front_whatever_their_size() {
        assert_eq!(amount(0), "0.00");
        assert_eq!(amount(1_234), "12.34");
        assert_eq!(amount(-5), "-0.05");
        assert_eq!(amount(-150), "-1.50");
        assert_eq!(amount(i64::MIN), "-92233720368547758.08");
        assert_eq!(dollars(1_234), "$12.34");
        assert_eq!(dollars(-5), "-$0.05");
        assert_eq!(dollars(-150), "-$1.50");
        assert_eq!(dollars(7), "$0.07");
    }
}
