//! Pages of newest-first lists: where a page starts, what it asks for, what it holds.

pub use fastbreak_mesh::paging::{Cursor, PageRequest};

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
    pub fn from_rows(mut rows: Vec<T>, size: i64, cursor_of: impl Fn(&T) -> Cursor) -> Self {
        let size = usize::try_from(size.max(0)).unwrap_or(usize::MAX);
        let more = rows.len() > size;
        rows.truncate(size);
        let next = if more { rows.last().map(&cursor_of) } else { None };
        Self { items: rows, next }
    }
}
