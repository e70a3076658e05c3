//! Idempotency keys: one rule for every service, checked once where a request comes in. A key
//! is taken exactly as given (never trimmed, so that two keys that differ are never one), and
//! must be 1 to 128 characters, none of them control characters, with no space at either end.

use crate::status::Violations;

/// The most characters a key may have.
pub const MAX_CHARS: usize = 128;

/// A key that makes a request safe to repeat: the same key, the same effect, once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key in `text`; a violation of `field` when it breaks the rule.
    pub fn parse(text: &str, field: &str, violations: &mut Violations) -> Option<Self> {
        match problem(text) {
            None => Some(Self(text.to_owned())),
            Some(problem) => {
                violations.add(field, problem);
                None
            }
        }
    }

    /// Like [`IdempotencyKey::parse`], for a field that may be left empty (no key: the request
    /// is not deduplicated).
    pub fn parse_optional(text: &str, field: &str, violations: &mut Violations) -> Option<Self> {
        if text.is_empty() { None } else { Self::parse(text, field, violations) }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key, as a string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is wrong with a key, if anything.
fn problem(text: &str) -> Option<String> {
    let chars = text.chars().count();
    if chars == 0 {
        Some(format!("required: 1 to {MAX_CHARS} characters"))
    } else if chars > MAX_CHARS {
        Some(format!("must be 1 to {MAX_CHARS} characters, got {chars}"))
    } else if text.chars().any(char::is_control) {
        Some("must not contain control characters".to_owned())
    } else if text.trim() != text {
        Some("must not begin or end with a space".to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<String, String> {
        let mut violations = Violations::new();
        match IdempotencyKey::parse(text, "idempotency_key", &mut violations) {
            Some(key) => Ok(key.into_string()),
            None => Err(violations.into_status().message().to_owned()),
        }
    }

    #[test]
    fn a_key_is_taken_as_given_or_refused_naming_what_is_wrong() {
        assert_eq!(check("order-1").unwrap(), "order-1");
        assert_eq!(check(&"k".repeat(MAX_CHARS)).unwrap().len(), MAX_CHARS);
        assert!(check("").unwrap_err().contains("required"));
        assert!(check(&"k".repeat(MAX_CHARS + 1)).unwrap_err().contains("got 129"));
        assert!(check("k\u{0}").unwrap_err().contains("control characters"));
        assert!(check("k\n").unwrap_err().contains("control characters"));
        // "k" and "k " are two keys to a caller: neither is quietly made the other.
        assert!(check("k ").unwrap_err().contains("space"));
        assert!(check(" k").unwrap_err().contains("space"));
        assert_eq!(check("a key with spaces inside").unwrap(), "a key with spaces inside");
    }

    #[test]
    fn an_optional_key_may_be_left_empty() {
        let mut violations = Violations::new();
        assert_eq!(IdempotencyKey::parse_optional("", "idempotency_key", &mut violations), None);
        assert!(violations.into_result(()).is_ok());
        let mut violations = Violations::new();
        assert_eq!(IdempotencyKey::parse_optional("k ", "idempotency_key", &mut violations), None);
        assert!(violations.into_result(()).is_err());
    }
}
