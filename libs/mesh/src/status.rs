//! gRPC statuses with rich details, built one way by every service: `google.rpc.BadRequest`
//! field violations for bad input, `ErrorInfo` with a FastBreak reason code on every error, and
//! `RetryInfo` when the caller should come back later. A service maps its own errors to these in
//! one place (its `error.rs`).

use std::collections::HashMap;
use std::time::Duration;

use fastbreak_proto::common::v1::ErrorReason;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The `ErrorInfo.domain` of every FastBreak error.
pub const ERROR_DOMAIN: &str = "fastbreak.app";

/// A status with an `ErrorInfo` carrying `reason` and `metadata`, and any further details.
pub fn with_reason(
    code: Code,
    message: impl Into<String>,
    reason: ErrorReason,
    metadata: impl IntoIterator<Item = (String, String)>,
    mut details: ErrorDetails,
) -> Status {
    details.set_error_info(reason.as_str_name(), ERROR_DOMAIN, metadata.into_iter().collect::<HashMap<_, _>>());
    Status::with_error_details(code, bounded(message.into(), MAX_MESSAGE), details)
}

/// The longest message of a status, in bytes. An answer's status travels in HTTP/2 trailers,
/// which peers bound (16 KiB here, and the message goes twice with its details): a caller's
/// huge value echoed back in full would make the answer impossible to send, and would cost the
/// connection it travels on.
pub const MAX_MESSAGE: usize = 1024;

/// The longest field name or description of one violation, in bytes.
pub const MAX_DESCRIPTION: usize = 200;

/// The most bytes of violations a status's details carry (the rest are counted).
const MAX_DETAILS: usize = 3 * 1024;

/// `text`, cut to at most `most` bytes (on a character boundary, with an ellipsis).
pub fn bounded(mut text: String, most: usize) -> String {
    if text.len() > most {
        let mut end = most.saturating_sub('…'.len_utf8());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The most violations one status reports: a request with a huge list of bad items gets the
/// first ones and a count of the rest, not a status too big to send.
pub const MAX_VIOLATIONS: usize = 100;

/// The field violations of one request, collected so that every one is reported at once.
#[derive(Debug, Default, Clone)]
pub struct Violations(Vec<FieldViolation>, usize);

impl Violations {
    /// No violation yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that `field` (a dotted path such as `strategy.rules.min_confidence`) is wrong.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        if self.0.len() < MAX_VIOLATIONS {
            let (field, description) = (field.into(), description.into());
            self.0.push(FieldViolation::new(bounded(field, MAX_DESCRIPTION), bounded(description, MAX_DESCRIPTION)));
        } else {
            self.1 += 1;
        }
    }

    /// Notes a violation unless `ok`.
    pub fn check(&mut self, ok: bool, field: impl Into<String>, description: impl Into<String>) {
        if !ok {
            self.add(field, description);
        }
    }

    /// Takes the violations of a nested part, prefixing each field with `prefix.`.
    pub fn nest(&mut self, prefix: &str, inner: Violations) {
        for violation in inner.0 {
            self.add(format!("{prefix}.{}", violation.field), violation.description);
        }
        self.1 += inner.1;
    }

    /// Parses a UUID field, noting a violation when it is not one.
    pub fn uuid(&mut self, text: &str, field: impl Into<String>) -> Option<uuid::Uuid> {
        let parsed = uuid::Uuid::parse_str(text.trim()).ok();
        self.check(parsed.is_some(), field, "must be a UUID");
        parsed
    }

    /// Takes every violation of another collection, as they are.
    pub fn nest_all(&mut self, other: Violations) {
        for violation in other.0 {
            self.add(violation.field, violation.description);
        }
        self.1 += other.1;
    }

    /// True when nothing was wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The violations so far.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|v| (v.field.as_str(), v.description.as_str()))
    }

    /// `Ok(value)` when nothing was wrong, else INVALID_ARGUMENT naming every field.
    pub fn into_result<T>(self, value: T) -> Result<T, Status> {
        if self.is_empty() { Ok(value) } else { Err(self.into_status()) }
    }

    /// INVALID_ARGUMENT with a `BadRequest` naming every field, and the fields in the message.
    /// As many as fit in a status that can be sent: the message names violations up to
    /// [`MAX_MESSAGE`] and counts the rest; the details carry them up to a few KiB.
    pub fn into_status(self) -> Status {
        let total = self.0.len() + self.1;
        let mut message = String::from("invalid request: ");
        let mut named = 0;
        for violation in &self.0 {
            let part = format!("{}{}: {}", if named > 0 { "; " } else { "" }, violation.field, violation.description);
            if message.len() + part.len() + 32 > MAX_MESSAGE {
                break;
            }
            message.push_str(&part);
            named += 1;
        }
        if total > named {
            message.push_str(&format!("; and {} more", total - named));
        }
        let mut size = 0;
        let details: Vec<FieldViolation> = self
            .0
            .into_iter()
            .take_while(|v| {
                size += v.field.len() + v.description.len() + 8;
                size <= MAX_DETAILS
            })
            .collect();
        with_reason(
            Code::InvalidArgument,
            message,
            ErrorReason::InvalidField,
            [],
            ErrorDetails::with_bad_request(details),
        )
    }
}

/// A time as the contracts carry it.
pub fn timestamp(time: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp::from(std::time::SystemTime::from(time))
}

/// A time a request gives in `field`, when it is one PostgreSQL can store (years 1970 to
/// 9999); otherwise a violation naming the field.
pub fn time_field(
    time: &prost_types::Timestamp,
    field: &str,
    violations: &mut Violations,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let parsed = u32::try_from(time.nanos).ok().and_then(|nanos| chrono::DateTime::from_timestamp(time.seconds, nanos));
    let in_range = |t: &chrono::DateTime<chrono::Utc>| (0..=253_402_300_799).contains(&t.timestamp());
    let valid = parsed.filter(in_range);
    violations.check(valid.is_some(), field, "must be a time from 1970 to 9999");
    valid
}

/// The UUID a request names in one field; INVALID_ARGUMENT naming the field when it is not one.
pub fn required_uuid(text: &str, field: &str) -> Result<uuid::Uuid, Status> {
    let mut violations = Violations::new();
    let id = violations.uuid(text, field);
    violations.into_result(())?;
    Ok(id.unwrap_or_default())
}

/// INVALID_ARGUMENT naming one field.
pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Status {
    let mut violations = Violations::new();
    violations.add(field, description);
    violations.into_status()
}

/// NOT_FOUND: the thing does not exist, or is not the caller's (the two are not told apart).
pub fn not_found(what: &str) -> Status {
    with_reason(Code::NotFound, format!("{what} not found"), ErrorReason::NotFound, [], ErrorDetails::new())
}

/// UNAUTHENTICATED with a reason for the caller.
pub fn unauthenticated(message: impl Into<String>) -> Status {
    with_reason(Code::Unauthenticated, message, ErrorReason::UnauthenticatedCaller, [], ErrorDetails::new())
}

/// FAILED_PRECONDITION with a reason code and the figures behind it.
pub fn failed_precondition(
    message: impl Into<String>,
    reason: ErrorReason,
    metadata: impl IntoIterator<Item = (String, String)>,
) -> Status {
    with_reason(Code::FailedPrecondition, message, reason, metadata, ErrorDetails::new())
}

/// ALREADY_EXISTS naming the field whose value is taken.
pub fn already_exists(field: &str, message: impl Into<String>) -> Status {
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation(field, "already taken");
    with_reason(
        Code::AlreadyExists,
        message,
        ErrorReason::InvalidField,
        [("field".to_owned(), field.to_owned())],
        details,
    )
}

/// RESOURCE_EXHAUSTED: too many requests; come back after `retry_after`.
pub fn rate_limited(message: impl Into<String>, retry_after: Duration) -> Status {
    with_reason(
        Code::ResourceExhausted,
        message,
        ErrorReason::RateLimited,
        [],
        ErrorDetails::with_retry_info(Some(retry_after)),
    )
}

/// Whether a peer's error status is its answer about the request — the call reached a server
/// that decided (the request is wrong, not allowed, or at odds with the state) — as opposed to
/// the call not getting through (unreachable, overloaded, out of time, failed inside). The one
/// rule every caller follows: an answer passes through as the caller's own and is never
/// retried; anything else may be retried when the call is safe to repeat, and is reported as
/// the peer being unavailable.
pub fn is_answer(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
    )
}

/// UNAVAILABLE: a dependency of this call (a peer service, the database) cannot be reached.
/// The metadata names it, so that callers do not blame this server for it.
pub fn dependency_unavailable(service: &str, retry_after: Duration) -> Status {
    with_reason(
        Code::Unavailable,
        format!("{service} is unavailable; try again later"),
        ErrorReason::DependencyUnavailable,
        [("service".to_owned(), service.to_owned())],
        ErrorDetails::with_retry_info(Some(retry_after)),
    )
}

/// INTERNAL for a fault of this server: the whole cause chain is logged, the caller is told
/// nothing of it.
pub fn internal(error: &(dyn std::error::Error + 'static)) -> Status {
    tracing::error!(error = %crate::health::error_chain(error), "internal error");
    Status::internal("internal error; it has been logged")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_violation_is_in_the_details_and_the_message() {
        let mut violations = Violations::new();
        violations.check(false, "email", "must contain @");
        violations.check(true, "display_name", "never shown");
        let mut inner = Violations::new();
        inner.add("min_confidence", "must be between 0 and 1");
        violations.nest("rules", inner);
        let status = violations.into_result(()).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let fields: Vec<String> =
            status.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["email", "rules.min_confidence"]);
        assert_eq!(status.get_details_error_info().unwrap().reason, "INVALID_FIELD");
        assert!(status.message().contains("rules.min_confidence: must be between 0 and 1"), "{status:?}");
    }

    #[test]
    fn a_flood_of_bad_items_is_reported_in_bounded_space() {
        let mut violations = Violations::new();
        for i in 0..100_000 {
            violations.add(format!("user_ids[{i}]"), "must be a UUID");
        }
        let status = violations.into_status();
        let shown = status.get_details_bad_request().unwrap().field_violations.len();
        assert!((50..=MAX_VIOLATIONS).contains(&shown), "{shown}");
        assert!(status.message().ends_with(" more"), "{}", &status.message()[status.message().len() - 40..]);
        assert!(status.message().len() <= MAX_MESSAGE, "{}", status.message().len());
        let mut trailers = http::HeaderMap::new();
        status.add_header(&mut trailers).unwrap();
        let bytes: usize = trailers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
        assert!(bytes < 8 * 1024, "the status takes {bytes} bytes of trailers");
    }

    #[test]
    fn a_huge_value_echoed_back_is_cut_to_a_sendable_size() {
        let huge = "x".repeat(20_000);
        let mut violations = Violations::new();
        violations.add("limits.time_zone", format!("must be an IANA time zone, got {huge:?}"));
        let status = violations.into_status();
        let mut trailers = http::HeaderMap::new();
        status.add_header(&mut trailers).unwrap();
        let bytes: usize = trailers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
        assert!(bytes < 4 * 1024, "the status takes {bytes} bytes of trailers");
        assert!(
            status.message().contains("limits.time_zone: must be an IANA time zone, got \"xxx"),
            "{}",
            status.message()
        );
        let big = with_reason(Code::NotFound, huge, ErrorReason::NotFound, [], ErrorDetails::new());
        assert!(big.message().len() <= MAX_MESSAGE && big.message().ends_with('…'));
        assert_eq!(bounded("ééé".to_owned(), 4), "…", "cut on a character boundary");
    }

    #[test]
    fn rate_limits_say_when_to_retry() {
        let status = rate_limited("slow down", Duration::from_secs(3));
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.get_details_retry_info().unwrap().retry_delay, Some(Duration::from_secs(3)));
        assert_eq!(status.get_details_error_info().unwrap().reason, "RATE_LIMITED");
    }
}
