//! JSON-CDC, the JSON encoding of Cadence values in which an access node returns event
//! payloads (`EventEncodingVersion::JSON_CDC_V0`): every value is `{"type": T, "value": V}`;
//! an event is `{"type": "Event", "value": {"id": "A.<address>.<Contract>.<Event>",
//! "fields": [{"name": N, "value": <value>}, …]}}`. Integers are decimal strings, `UFix64` is a
//! decimal string with eight places, an `Address` is `0x` and 16 hexadecimal digits, and an
//! `Optional` holds `null` or a value.
//!
//! Only what FastBreak reads is decoded, and every mismatch is an error naming the field.

use serde_json::Value;

/// Why a payload is not the event expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CdcError {
    /// Not JSON at all.
    #[error("the payload is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not a JSON-CDC event.
    #[error("the payload is not a JSON-CDC event: {0}")]
    NotAnEvent(String),
    /// The event has no such field.
    #[error("field {0:?} is missing")]
    MissingField(String),
    /// A field holds another type, or a value its type does not allow.
    #[error("field {field:?}: {problem}")]
    BadField {
        /// The field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// A decoded event: its type id and its fields, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct CdcEvent {
    /// Such as `A.c1e4f4f4c4257510.TopShotMarketV3.MomentListed`.
    pub id: String,
    fields: Vec<(String, Value)>,
}

impl CdcEvent {
    /// Decodes an event payload.
    pub fn decode(payload: &[u8]) -> Result<Self, CdcError> {
        let value: Value = serde_json::from_slice(payload).map_err(|e| CdcError::NotJson(e.to_string()))?;
        if value["type"] != "Event" {
            return Err(CdcError::NotAnEvent(format!("its type is {}", value["type"])));
        }
        let id = value["value"]["id"].as_str().ok_or_else(|| CdcError::NotAnEvent("it has no id".to_owned()))?;
        let fields = value["value"]["fields"]
            .as_array()
            .ok_or_else(|| CdcError::NotAnEvent("it has no fields".to_owned()))?
            .iter()
            .map(|field| match (field["name"].as_str(), field.get("value")) {
                (Some(name), Some(value)) => Ok((name.to_owned(), value.clone())),
                _ => Err(CdcError::NotAnEvent(format!("a field is not a name and a value: {field}"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { id: id.to_owned(), fields })
    }

    fn field(&self, name: &str) -> Result<&Value, CdcError> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| CdcError::MissingField(name.to_owned()))
    }

    /// A `UInt64` (or a narrower unsigned integer) field.
    pub fn uint(&self, name: &str) -> Result<u64, CdcError> {
        let text = typed(self.field(name)?, name, &["UInt8", "UInt16", "UInt32", "UInt64"])?;
        text.parse().map_err(|_| bad(name, format!("{text:?} is not an unsigned integer")))
    }

    /// A `UFix64` field, in cents, exactly: a price with less than a cent in it is an error,
    /// never rounded.
    pub fn ufix64_cents(&self, name: &str) -> Result<i64, CdcError> {
        let text = typed(self.field(name)?, name, &["UFix64"])?;
        ufix64_to_cents(text).map_err(|problem| bad(name, problem))
    }

    /// A `String` field.
    pub fn string(&self, name: &str) -> Result<String, CdcError> {
        typed(self.field(name)?, name, &["String"]).map(str::to_owned)
    }

    /// An `Address?` field (an `Address` is taken too): `None` for `nil`.
    pub fn optional_address(&self, name: &str) -> Result<Option<String>, CdcError> {
        let mut value = self.field(name)?;
        if value["type"] == "Optional" {
            value = &value["value"];
            if value.is_null() {
                return Ok(None);
            }
        }
        let text = typed(value, name, &["Address"])?;
        let hex = text.strip_prefix("0x").unwrap_or("");
        if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(name, format!("{text:?} is not 0x and 16 hexadecimal digits")));
        }
        Ok(Some(format!("0x{}", hex.to_ascii_lowercase())))
    }
}

fn bad(field: &str, problem: String) -> CdcError {
    CdcError::BadField { field: field.to_owned(), problem }
}

/// The text of a value of one of `types`.
fn typed<'v>(value: &'v Value, field: &str, types: &[&str]) -> Result<&'v str, CdcError> {
    let kind = value["type"].as_str().unwrap_or("?");
    if !types.contains(&kind) {
        return Err(bad(field, format!("expected {}, found {kind}", types.join(" or "))));
    }
    value["value"]
        .as_str()
        .ok_or_else(|| bad(field, format!("a {kind} whose value is not a string: {}", value["value"])))
}

/// A `UFix64` as JSON-CDC writes it (digits, a point, eight digits) in cents, exactly.
pub fn ufix64_to_cents(text: &str) -> Result<i64, String> {
    let (whole, fraction) = text.split_once('.').ok_or_else(|| format!("{text:?} has no decimal point"))?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.len() != 8 || !digits(fraction) {
        return Err(format!("{text:?} is not a UFix64 (digits, a point, eight digits)"));
    }
    if fraction[2..].bytes().any(|b| b != b'0') {
        return Err(format!("{text:?} is not a whole number of cents"));
    }
    let dollars: i64 = whole.parse().map_err(|_| format!("{text:?} is too large"))?;
    let cents: i64 = fraction[..2].parse().map_err(|_| format!("{text:?} is not a UFix64"))?;
    dollars.checked_mul(100).and_then(|d| d.checked_add(cents)).ok_or_else(|| format!("{text:?} is too large"))
}

/// Writes values the way an access node does (for fakes and tests).
pub mod encode {
    use serde_json::{Value, json};

    /// A `UInt64`.
    pub fn uint64(n: u64) -> Value {
        json!({"type": "UInt64", "value": n.to_string()})
    }

    /// A `UInt32`.
    pub fn uint32(n: u32) -> Value {
        json!({"type": "UInt32", "value": n.to_string()})
    }

    /// A `UFix64` of a number of cents.
    pub fn ufix64_cents(cents: u64) -> Value {
        json!({"type": "UFix64", "value": format!("{}.{:02}000000", cents / 100, cents % 100)})
    }

    /// A `String`.
    pub fn string(text: &str) -> Value {
        json!({"type": "String", "value": text})
    }

    /// An `Address?`.
    pub fn optional_address(address: Option<&str>) -> Value {
        match address {
            Some(a) => json!({"type": "Optional", "value": {"type": "Address", "value": a}}),
            None => json!({"type": "Optional", "value": null}),
        }
    }

    /// An event with its fields, as payload bytes.
    pub fn event(id: &str, fields: &[(&str, Value)]) -> Vec<u8> {
        let fields: Vec<Value> = fields.iter().map(|(name, value)| json!({"name": name, "value": value})).collect();
        json!({"type": "Event", "value": {"id": id, "fields": fields}}).to_string().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ufix64_becomes_cents_exactly_or_is_refused() {
        assert_eq!(ufix64_to_cents("166.00000000"), Ok(16_600));
        assert_eq!(ufix64_to_cents("0.53000000"), Ok(53));
        assert_eq!(ufix64_to_cents("230023.00000000"), Ok(23_002_300));
        assert_eq!(
            ufix64_to_cents("184467440737.09551615").unwrap_err(),
            "\"184467440737.09551615\" is not a whole number of cents"
        );
        assert!(ufix64_to_cents("1.5").unwrap_err().contains("eight digits"));
        assert!(ufix64_to_cents("-1.00000000").unwrap_err().contains("not a UFix64"));
        assert!(ufix64_to_cents("12").unwrap_err().contains("no decimal point"));
        assert!(ufix64_to_cents("99999999999999999999.00000000").unwrap_err().contains("too large"));
    }

    #[test]
    fn an_event_is_read_field_by_field_and_every_mismatch_is_named() {
        let payload = encode::event(
            "A.c1e4f4f4c4257510.TopShotMarketV3.MomentListed",
            &[
                ("id", encode::uint64(45_064_996)),
                ("price", encode::ufix64_cents(1_250)),
                ("seller", encode::optional_address(Some("0x0B2A3299CC857E29"))),
            ],
        );
        let event = CdcEvent::decode(&payload).unwrap();
        assert_eq!(event.id, "A.c1e4f4f4c4257510.TopShotMarketV3.MomentListed");
        assert_eq!(event.uint("id"), Ok(45_064_996));
        assert_eq!(event.ufix64_cents("price"), Ok(1_250));
        assert_eq!(event.optional_address("seller"), Ok(Some("0x0b2a3299cc857e29".to_owned())));
        assert_eq!(event.uint("buyer"), Err(CdcError::MissingField("buyer".to_owned())));
        assert_eq!(
            event.uint("price"),
            Err(CdcError::BadField {
                field: "price".to_owned(),
                problem: "expected UInt8 or UInt16 or UInt32 or UInt64, found UFix64".to_owned()
            })
        );
        let nil = CdcEvent::decode(&encode::event("E", &[("seller", encode::optional_address(None))])).unwrap();
        assert_eq!(nil.optional_address("seller"), Ok(None));
        let short =
            CdcEvent::decode(&encode::event("E", &[("seller", encode::optional_address(Some("0x12")))])).unwrap();
        assert!(matches!(short.optional_address("seller"), Err(CdcError::BadField { .. })));
        assert!(matches!(CdcEvent::decode(b"{\"type\":\"Struct\"}"), Err(CdcError::NotAnEvent(_))));
        assert!(matches!(CdcEvent::decode(b"not json"), Err(CdcError::NotJson(_))));
    }
}
