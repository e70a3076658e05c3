//! `page_size` and `page_token` of list RPCs: sizes checked against the RPC's limits, and
//! tokens that encode where the next page starts, opaque to clients.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::status::Violations;

/// Where a page of a newest-first list starts: after the row with this time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The sort time of the last row of the previous page.
    pub time: DateTime<Utc>,
    /// The id of the last row of the previous page.
    pub id: Uuid,
}

/// A page request: how many rows, and where to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Most rows to return.
    pub size: i64,
    /// Start after this row; `None` for the first page.
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// The first page of `size` rows.
    pub fn first(size: i64) -> Self {
        Self { size, after: None }
    }
}

/// The page size a request asked for: `default` for 0, a violation outside 1..=`max`.
pub fn page_size(asked: i32, default: i64, max: i64, violations: &mut Violations) -> i64 {
    match i64::from(asked) {
        0 => default,
        size if (1..=max).contains(&size) => size,
        _ => {
            violations.add("page_size", format!("must be between 1 and {max} (0 means {default})"));
            default
        }
    }
}

/// Encodes where the next page starts.
pub fn encode_cursor(cursor: Cursor) -> String {
    let text = format!("{}|{}", cursor.time.timestamp_micros(), cursor.id.simple());
    URL_SAFE_NO_PAD.encode(text)
}

/// Decodes a page token; a violation when it is not one this service made.
pub fn decode_cursor(token: &str, violations: &mut Violations) -> Option<Cursor> {
    if token.is_empty() {
        return None;
    }
    let decoded = URL_SAFE_NO_PAD.decode(token).ok().and_then(|bytes| String::from_utf8(bytes).ok()).and_then(|text| {
        let (micros, id) = text.split_once('|')?;
        let time = DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?;
        Some(Cursor { time, id: Uuid::parse_str(id).ok()? })
    });
    if decoded.is_none() {
        violations.add("page_token", "is not a token returned by this list");
    }
    decoded
}

/// The page a list request asks for: its size and its start, every problem in `violations`.
pub fn page_request(
    page_size_asked: i32,
    page_token: &str,
    default: i64,
    max: i64,
    violations: &mut Violations,
) -> PageRequest {
    let size = page_size(page_size_asked, default, max, violations);
    PageRequest { size, after: decode_cursor(page_token, violations) }
}

/// The `next_page_token` of an answer: empty on the last page.
pub fn next_page_token(next: Option<Cursor>) -> String {
    next.map(encode_cursor).unwrap_or_default()
}

/// Encodes a position in a list ordered by a text key (such as a template id).
pub fn encode_key(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// Decodes a text-key position; a violation when it is not one this service made.
pub fn decode_key(token: &str, violations: &mut Violations) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let decoded = URL_SAFE_NO_PAD.decode(token).ok().and_then(|bytes| String::from_utf8(bytes).ok());
    if decoded.is_none() {
        violations.add("page_token", "is not a token returned by this list");
    }
    decoded
}

/// Encodes an id-ordered position (lists ordered by id alone).
pub fn encode_id(id: Uuid) -> String {
    encode_key(&id.simple().to_string())
}

/// Decodes an id-ordered position; a violation when it is not one this service made.
pub fn decode_id(token: &str, violations: &mut Violations) -> Option<Uuid> {
    let key = decode_key(token, violations)?;
    let id = Uuid::parse_str(&key).ok();
    if id.is_none() {
        violations.add("page_token", "is not a token returned by this list");
    }
    id
}

/// Encodes an offset position (lists computed per request, such as ranked ones).
pub fn encode_offset(offset: i64) -> String {
    encode_key(&offset.to_string())
}

/// Decodes an offset position: 0 for the first page; a violation when the token is not one
/// this service made (or names a negative offset).
pub fn decode_offset(token: &str, violations: &mut Violations) -> i64 {
    let Some(key) = decode_key(token, violations) else { return 0 };
    match key.parse::<i64>() {
        Ok(offset) if offset >= 0 => offset,
        _ => {
            violations.add("page_token", "is not a token returned by this list");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_foreign_ones_are_refused() {
        let cursor =
            Cursor { time: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(), id: Uuid::new_v4() };
        let mut violations = Violations::new();
        assert_eq!(decode_cursor(&encode_cursor(cursor), &mut violations), Some(cursor));
        assert_eq!(decode_cursor("", &mut violations), None);
        assert!(violations.is_empty());
        assert_eq!(decode_cursor("garbage!", &mut violations), None);
        assert_eq!(page_size(1000, 50, 100, &mut violations), 50);
        assert_eq!(violations.fields().map(|(f, _)| f).collect::<Vec<_>>(), ["page_token", "page_size"]);
        let id = Uuid::new_v4();
        assert_eq!(decode_id(&encode_id(id), &mut Violations::new()), Some(id));
    }
}

/// The property the `page_tokens` fuzz target checks, on any bytes a client could send as a
/// token: decoding never panics, and a token that decodes encodes back to one that decodes to
/// the same position.
pub fn fuzz_page_tokens(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let mut violations = Violations::new();
    if let Some(cursor) = decode_cursor(token, &mut violations) {
        let again = decode_cursor(&encode_cursor(cursor), &mut violations);
        assert_eq!(again.map(|c| (c.time, c.id)), Some((cursor.time, cursor.id)), "{token:?}");
    }
    if let Some(key) = decode_key(token, &mut violations) {
        assert_eq!(decode_key(&encode_key(&key), &mut violations).as_deref(), Some(key.as_str()), "{token:?}");
    }
    if let Some(id) = decode_id(token, &mut Violations::new()) {
        assert_eq!(decode_id(&encode_id(id), &mut violations), Some(id), "{token:?}");
    }
    let mut offsets = Violations::new();
    let offset = decode_offset(token, &mut offsets);
    assert!(offset >= 0, "{token:?}");
    if offsets.is_empty() && offset > 0 {
        assert_eq!(decode_offset(&encode_offset(offset), &mut violations), offset, "{token:?}");
    }
}
