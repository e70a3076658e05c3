//! The marketplace's rules for what a request may ask, pure and unit-tested here: prices, Flow
//! addresses, rarities and lists of ids, each problem a field violation.

use fastbreak_db::Rarity;
use fastbreak_mesh::status::Violations;
use uuid::Uuid;

/// Most moments one call may name.
pub(crate) const MAX_IDS: usize = 1_000;

pub(crate) fn rarity_from_pb(value: i32, violations: &mut Violations) -> Option<Rarity> {
    use fastbreak_proto::common::v1::Rarity as R;
    match R::try_from(value) {
        Ok(R::Unspecified) => None,
        Ok(R::Common) => Some(Rarity::Common),
        Ok(R::Fandom) => Some(Rarity::Fandom),
        Ok(R::Rare) => Some(Rarity::Rare),
        Ok(R::Legendary) => Some(Rarity::Legendary),
        Ok(R::Ultimate) => Some(Rarity::Ultimate),
        Err(_) => {
            violations.add("rarity", format!("unknown rarity {value}"));
            None
        }
    }
}

pub(crate) fn uuids(texts: &[String], field: &str, violations: &mut Violations) -> Vec<Uuid> {
    violations.check(texts.len() <= MAX_IDS, field, format!("at most {MAX_IDS} ids"));
    texts.iter().enumerate().filter_map(|(i, t)| violations.uuid(t, format!("{field}[{i}]"))).collect()
}

/// The largest price a listing may ask: a hundred billion, far beyond any moment, small enough
/// that sums and spreads of prices never overflow.
pub(crate) const MAX_CENTS: i64 = 10_000_000_000_000;

pub(crate) fn price(value: i64, field: &str, violations: &mut Violations) {
    violations.check((1..=MAX_CENTS).contains(&value), field, format!("must be from 1 to {MAX_CENTS}, got {value}"));
}

pub(crate) fn address(value: &str, field: &str, violations: &mut Violations) {
    let ok = value.len() == 18
        && value.starts_with("0x")
        && value[2..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    violations.check(ok, field, "must be a Flow address: 0x and 16 lower-case hex digits");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(check: impl FnOnce(&mut Violations)) -> Option<String> {
        let mut violations = Violations::new();
        check(&mut violations);
        violations.into_result(()).err().map(|status| status.message().to_owned())
    }

    #[test]
    fn prices_addresses_rarities_and_ids_are_checked_naming_the_field() {
        assert_eq!(problems(|v| price(1, "price_cents", v)), None);
        assert!(problems(|v| price(0, "price_cents", v)).unwrap().contains("price_cents"));
        assert!(problems(|v| price(MAX_CENTS + 1, "price_cents", v)).is_some());
        assert_eq!(problems(|v| address("0x0123456789abcdef", "seller_address", v)), None);
        for bad in ["0x0123456789ABCDEF", "0123456789abcdef00", "0x0123", "0x0123456789abcdeg"] {
            assert!(problems(|v| address(bad, "seller_address", v)).unwrap().contains("Flow address"), "{bad}");
        }
        let mut v = Violations::new();
        assert_eq!(rarity_from_pb(3, &mut v), Some(Rarity::Rare));
        assert_eq!(rarity_from_pb(0, &mut v), None);
        assert!(v.into_result(()).is_ok(), "unspecified is no rarity, not a mistake");
        assert!(
            problems(|v| {
                rarity_from_pb(99, v);
            })
            .unwrap()
            .contains("unknown rarity 99")
        );
        let many = vec![Uuid::nil().to_string(); MAX_IDS + 1];
        assert!(
            problems(|v| {
                uuids(&many, "moment_ids", v);
            })
            .unwrap()
            .contains("at most")
        );
        assert!(
            problems(|v| {
                uuids(&["nope".to_owned()], "moment_ids", v);
            })
            .unwrap()
            .contains("moment_ids[0]")
        );
    }
}
