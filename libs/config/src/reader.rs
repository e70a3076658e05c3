//! Reading variables, collecting every problem.

use std::collections::BTreeMap;
use std::fmt;

use crate::values::Secret;

/// One variable that is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The variable.
    pub variable: String,
    /// What is wrong, without the value of a secret.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

/// Every problem found, as one message that names each variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in the order they were found.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem(s)):", self.problems.len())?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

/// Reads typed values out of a set of environment variables and keeps every problem for the
/// end. Build it from the process environment, or from a map in tests.
#[derive(Debug)]
pub struct Reader {
    /// `FASTBREAK_*` variables, keyed without the prefix, lowercased (as envy maps them).
    fastbreak: BTreeMap<String, String>,
    /// Every variable, as given.
    all: BTreeMap<String, String>,
    problems: Vec<Problem>,
}

impl Reader {
    /// A reader over the given variables.
    pub fn new<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let all: BTreeMap<String, String> = vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        // envy picks the FASTBREAK_ variables and names them as serde fields.
        let fastbreak =
            envy::prefixed("FASTBREAK_").from_iter::<_, BTreeMap<String, String>>(all.clone()).unwrap_or_default();
        Self { fastbreak, all, problems: Vec::new() }
    }

    /// A reader over this process's environment (variables that are not valid UTF-8 are
    /// reported as problems when read).
    pub fn from_process_env() -> Self {
        Self::new(std::env::vars_os().filter_map(|(k, v)| {
            Some((k.into_string().ok()?, v.into_string().unwrap_or_else(|_| "\u{FFFD}".to_owned())))
        }))
    }

    fn raw(&self, variable: &str) -> Option<&str> {
        let value = match variable.strip_prefix("FASTBREAK_") {
            Some(rest) => self.fastbreak.get(&rest.to_lowercase()),
            None => self.all.get(variable),
        };
        value.map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    /// Notes a problem with a variable.
    pub fn problem(&mut self, variable: &str, message: impl Into<String>) {
        self.problems.push(Problem { variable: variable.to_owned(), message: message.into() });
    }

    /// True when the variable is set (and not blank).
    pub fn is_set(&self, variable: &str) -> bool {
        self.raw(variable).is_some()
    }

    /// An optional variable: `None` when unset; a problem (naming `expected` and the value)
    /// when `parse` refuses it.
    pub fn optional<T>(&mut self, variable: &str, expected: &str, parse: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        let value = self.raw(variable)?.to_owned();
        let parsed = parse(value.trim());
        if parsed.is_none() {
            self.problem(variable, format!("expected {expected}, got '{value}'"));
        }
        parsed
    }

    /// An optional duration (`500ms`, `5s`, `2m`) within `range`; a problem naming `expected`
    /// otherwise.
    pub fn optional_duration(
        &mut self,
        variable: &str,
        expected: &str,
        range: std::ops::RangeInclusive<std::time::Duration>,
    ) -> Option<std::time::Duration> {
        self.optional(variable, expected, |v| crate::values::parse_duration(v).filter(|d| range.contains(d)))
    }

    /// Sets `target` to an optional duration within `range` when the variable is given (see
    /// [`Reader::optional_duration`]); leaves it as it is otherwise.
    pub fn set_duration(
        &mut self,
        variable: &str,
        expected: &str,
        range: std::ops::RangeInclusive<std::time::Duration>,
        target: &mut std::time::Duration,
    ) {
        if let Some(duration) = self.optional_duration(variable, expected, range) {
            *target = duration;
        }
    }

    /// An optional switch: `on` or `off`.
    pub fn optional_switch(&mut self, variable: &str) -> Option<bool> {
        self.optional(variable, "'on' or 'off'", |v| match v {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        })
    }

    /// A required variable: a problem when it is unset or `parse` refuses it.
    pub fn required<T>(&mut self, variable: &str, expected: &str, parse: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        if self.raw(variable).is_none() {
            self.problem(variable, format!("missing; expected {expected}"));
            return None;
        }
        self.optional(variable, expected, parse)
    }

    /// A secret variable: like [`Reader::required`] (or optional when `required` is false), but
    /// a value that `check` refuses is never shown.
    pub fn secret(
        &mut self,
        variable: &str,
        expected: &str,
        required: bool,
        check: impl FnOnce(&str) -> bool,
    ) -> Option<Secret<String>> {
        let Some(value) = self.raw(variable).map(str::to_owned) else {
            if required {
                self.problem(variable, format!("missing; expected {expected}"));
            }
            return None;
        };
        if check(&value) {
            Some(Secret::new(value))
        } else {
            self.problem(variable, format!("expected {expected} (value not shown)"));
            None
        }
    }

    /// The problems so far.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Ends reading: `Ok` when nothing was wrong, else every problem at once.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() { Ok(()) } else { Err(ConfigError { problems: self.problems }) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Endpoints;

    #[test]
    fn every_problem_is_reported_at_once_naming_each_variable() {
        let mut reader =
            Reader::new([("FASTBREAK_RISK_ENDPOINTS", "risk:50054"), ("FASTBREAK_INTERNAL_TOKEN", "short")]);
        let _ = reader.required("DATABASE_URL", "a postgres:// URL", |v| Some(v.to_owned()));
        let _ = reader.required("FASTBREAK_USER_ENDPOINTS", Endpoints::EXPECTED, Endpoints::parse);
        let _ = reader.required("FASTBREAK_RISK_ENDPOINTS", Endpoints::EXPECTED, Endpoints::parse);
        let _ = reader.secret("FASTBREAK_INTERNAL_TOKEN", "at least 32 characters", true, |v| v.len() >= 32);
        let error = reader.finish().unwrap_err();
        let text = error.to_string();
        assert_eq!(error.problems.len(), 4, "{text}");
        assert!(text.contains("DATABASE_URL: missing"), "{text}");
        assert!(text.contains("FASTBREAK_USER_ENDPOINTS: missing"), "{text}");
        assert!(
            text.contains(
                "FASTBREAK_RISK_ENDPOINTS: expected a comma-separated list of http:// URLs (https is not supported: the mesh speaks plaintext gRPC inside its network), got 'risk:50054'"
            ),
            "{text}"
        );
        assert!(text.contains("FASTBREAK_INTERNAL_TOKEN: expected at least 32 characters (value not shown)"), "{text}");
        assert!(!text.contains("short"), "a secret's value is never shown: {text}");
    }

    #[test]
    fn blank_variables_count_as_unset_and_names_are_case_insensitive_after_the_prefix() {
        let mut reader = Reader::new([("FASTBREAK_LOG_FORMAT", "  "), ("FASTBREAK_Drain_Timeout", "5s")]);
        assert!(!reader.is_set("FASTBREAK_LOG_FORMAT"));
        assert_eq!(
            reader.optional("FASTBREAK_DRAIN_TIMEOUT", "a duration", |v| Some(v.to_owned())),
            Some("5s".to_owned())
        );
        assert!(reader.finish().is_ok());
    }
}
