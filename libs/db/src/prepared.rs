//! Statements kept prepared on their connection, found again by their SQL text.
//!
//! Diesel prepares again, on every call, each statement whose SQL may take another shape from
//! one call to the next: every `UPDATE`, an insert of a row with optional columns, an upsert,
//! and every `sql_query`. On PostgreSQL that costs a round trip of its own (parse and describe)
//! before the one that runs it, and the server parses and plans the statement each time. A
//! purchase made about seventeen such statements.
//!
//! Diesel is careful because it would otherwise keep one prepared statement for every shape a
//! statement ever took. [`Reused`] tells it that the statement's SQL takes a few shapes at
//! most: the connection then keeps one prepared statement per SQL text (with its parameters'
//! types), exactly as it keeps every plain select. Mark only statements whose SQL is one text,
//! or one of a few (never a list of values of any length, nor a batch of any number of rows).

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

/// A statement prepared once per connection and SQL text (see the [module](self)).
#[derive(Debug, Clone, Copy)]
pub struct Reused<Q>(Q);

/// Marks a statement [`Reused`]: `diesel::update(…).set(…).reused().execute(conn)`.
pub trait Reuse: Sized {
    /// This statement, prepared once per connection and SQL text.
    fn reused(self) -> Reused<Self> {
        Reused(self)
    }
}

impl<Q: QueryFragment<Pg>> Reuse for Q {}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Reused<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    /// Kept by its SQL text: the text is the whole statement, so what is found under it is
    /// exactly the statement to run.
    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

/// No identity of its own: the connection keys it by its SQL text.
impl<Q> QueryId for Reused<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Reused<Q> {
    type SqlType = Q::SqlType;
}
