//! Repositories, one module per domain. Every function takes the connection it runs on, so
//! that several of them can share one transaction ([`crate::Database::transaction`]).

pub mod agents;
pub mod market;
pub mod notifications;
pub mod outbox;
pub mod risk;
pub mod scouting;
pub mod strategies;
pub mod trading;
pub mod users;

use chrono::{DateTime, Utc};
use uuid::Uuid;

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

/// A page of rows, and where the next one starts (`None` on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Pass as `after` to get the next page.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `size + 1` rows fetched: the extra row only says there is more.
    pub(crate) fn from_rows(mut rows: Vec<T>, size: i64, cursor_of: impl Fn(&T) -> Cursor) -> Self {
        let size = usize::try_from(size.max(0)).unwrap_or(usize::MAX);
        let more = rows.len() > size;
        rows.truncate(size);
        let next = if more { rows.last().map(&cursor_of) } else { None };
        Self { items: rows, next }
    }
}

/// Defines an enum stored as `text` (with a CHECK constraint in the migrations), with its
/// diesel conversions and `as_str`/`FromStr`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as stored.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::repo::UnknownValue;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(crate::repo::UnknownValue { kind: stringify!($name), value: other.to_owned() }),
                }
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(self.as_str(), out)
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg>>::from_sql(bytes)?;
                Ok(text.parse()?)
            }
        }
    };
}
pub(crate) use text_enum;

/// A stored text that names no value of an enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {kind}")]
pub struct UnknownValue {
    /// The enum.
    pub kind: &'static str,
    /// The text found.
    pub value: String,
}

text_enum! {
    /// How rare a moment is.
    Rarity {
        /// Common.
        Common => "common",
        /// Fandom.
        Fandom => "fandom",
        /// Rare.
        Rare => "rare",
        /// Legendary.
        Legendary => "legendary",
        /// Ultimate.
        Ultimate => "ultimate",
    }
}
