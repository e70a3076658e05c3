//! The user domain: validated values and the rules of credentials. No gRPC, no SQL.

pub mod credentials;

use fastbreak_mesh::status::Violations;

/// An email address as a user signs in with it (trimmed; compared without case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses an email, noting a violation of `field` when it is not one.
    pub fn parse(text: &str, field: &str, violations: &mut Violations) -> Option<Self> {
        let text = text.trim();
        let well_formed = text.len() <= 254
            && text.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !text.chars().any(|c| c.is_whitespace() || c.is_control());
        violations.check(well_formed, field, "must be an email address such as ada@example.com");
        well_formed.then(|| Self(text.to_owned()))
    }

    /// As given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key failed sign-ins are counted under: lower case.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A display name: 1 to 64 characters, trimmed, no control characters.
pub fn display_name(text: &str, field: &str, violations: &mut Violations) -> Option<String> {
    let text = text.trim();
    let length = text.chars().count();
    let ok = (1..=64).contains(&length) && !text.chars().any(char::is_control);
    violations.check(ok, field, "must be 1 to 64 characters, without control characters");
    ok.then(|| text.to_owned())
}

/// The shortest password accepted.
pub const MIN_PASSWORD_LENGTH: usize = 12;
/// The longest password accepted (hashing cost is bounded).
pub const MAX_PASSWORD_LENGTH: usize = 1024;

/// A new password: 12 to 1024 characters.
pub fn new_password(text: &str, field: &str, violations: &mut Violations) -> bool {
    let length = text.chars().count();
    let ok = (MIN_PASSWORD_LENGTH..=MAX_PASSWORD_LENGTH).contains(&length);
    violations.check(ok, field, format!("must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"));
    ok
}

/// A Flow address: `0x` and 16 hexadecimal digits, normalised to lower case.
pub fn flow_address(text: &str, field: &str, violations: &mut Violations) -> Option<String> {
    let text = text.trim();
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"));
    let ok = digits.is_some_and(|d| d.len() == 16 && d.chars().all(|c| c.is_ascii_hexdigit()));
    violations.check(ok, field, "must be 0x followed by 16 hexadecimal digits, such as 0x1d7e57aa55817448");
    ok.then(|| text.to_ascii_lowercase())
}

/// An access token's label: up to 64 characters.
pub fn token_label(text: &str, field: &str, violations: &mut Violations) -> String {
    let text = text.trim();
    violations.check(
        text.chars().count() <= 64 && !text.chars().any(char::is_control),
        field,
        "must be at most 64 characters, without control characters",
    );
    text.to_owned()
}

/// The shortest and longest lives of an access token, and the default.
pub const MIN_TOKEN_TTL: chrono::Duration = chrono::Duration::minutes(1);
/// The longest life of an access token.
pub const MAX_TOKEN_TTL: chrono::Duration = chrono::Duration::days(90);
/// The life of a token when none is asked.
pub const DEFAULT_TOKEN_TTL: chrono::Duration = chrono::Duration::days(30);

/// How long a new token lives: `None` means the default; outside 1 minute to 90 days is a
/// violation.
pub fn token_ttl(seconds: Option<(i64, i32)>, field: &str, violations: &mut Violations) -> chrono::Duration {
    let Some((seconds, nanos)) = seconds else { return DEFAULT_TOKEN_TTL };
    // Bounds first: a duration built from an unchecked number of seconds can overflow.
    let in_range = (0..=MAX_TOKEN_TTL.num_seconds()).contains(&seconds) && (0..1_000_000_000).contains(&nanos);
    let ttl = in_range.then(|| chrono::Duration::seconds(seconds) + chrono::Duration::nanoseconds(i64::from(nanos)));
    let ttl = ttl.filter(|ttl| (MIN_TOKEN_TTL..=MAX_TOKEN_TTL).contains(ttl));
    violations.check(ttl.is_some(), field, "must be between 1 minute and 90 days");
    ttl.unwrap_or(DEFAULT_TOKEN_TTL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_keyed_without_case() {
        let mut v = Violations::new();
        let email = Email::parse(" Ada@Example.com ", "email", &mut v).unwrap();
        assert_eq!((email.as_str(), email.key().as_str()), ("Ada@Example.com", "ada@example.com"));
        for bad in ["", "ada", "ada@", "@example.com", "ada@example", "a b@example.com", "a@b@c.com", "ada@.com"] {
            let mut v = Violations::new();
            assert!(Email::parse(bad, "email", &mut v).is_none(), "{bad:?}");
            assert_eq!(v.fields().next().unwrap().0, "email");
        }
        assert!(v.is_empty());
    }

    #[test]
    fn flow_addresses_are_normalised_to_lower_case() {
        let mut v = Violations::new();
        assert_eq!(flow_address("0X1D7E57AA55817448", "flow_address", &mut v).as_deref(), Some("0x1d7e57aa55817448"));
        for bad in ["1d7e57aa55817448", "0x1d7e57aa5581744", "0x1d7e57aa558174489", "0x1d7e57aa5581744g", ""] {
            assert!(flow_address(bad, "flow_address", &mut v).is_none(), "{bad:?}");
        }
        assert_eq!(v.fields().count(), 5);
    }

    #[test]
    fn names_passwords_labels_and_ttls_have_bounds() {
        let mut v = Violations::new();
        assert!(display_name(&"x".repeat(64), "display_name", &mut v).is_some());
        assert!(display_name(&"x".repeat(65), "display_name", &mut v).is_none());
        assert!(display_name("  ", "display_name", &mut v).is_none());
        assert!(new_password("correct horse", "password", &mut v));
        assert!(!new_password("short", "password", &mut v));
        assert_eq!(token_ttl(None, "ttl", &mut v), DEFAULT_TOKEN_TTL);
        assert_eq!(token_ttl(Some((59, 0)), "ttl", &mut v), DEFAULT_TOKEN_TTL);
        assert_eq!(token_ttl(Some((3600, 0)), "ttl", &mut v), chrono::Duration::hours(1));
        for extreme in [(i64::MAX, 999_999_999), (i64::MIN, -1), (7_776_000, 1), (60, -5)] {
            assert_eq!(token_ttl(Some(extreme), "ttl", &mut v), DEFAULT_TOKEN_TTL, "{extreme:?}");
        }
        assert_eq!(v.fields().count(), 8);
    }
}
