//! SQL text with numbered binds that diesel prepares once per connection and then only executes.
//!
//! `diesel::sql_query` marks itself unsafe to cache, so every call costs a Parse/Describe round
//! trip before the Execute. [`Prepared`] has the same shape (`prepared(sql).bind::<T, _>(v)…`) but
//! stays cacheable: diesel-async keys its statement cache by the SQL text and the bind types, so
//! each distinct statement is parsed and planned once per pooled connection.
//!
//! The SQL uses `$1`, `$2`, … in order, each once; walking the query emits the text between them
//! and each bind in its place, so the statement diesel prepares is exactly the text given.

use std::borrow::Cow;
use std::marker::PhantomData;

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::Error as DieselError;
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};

/// One bind value with its SQL type.
struct Bind<ST, T> {
    value: T,
    _type: PhantomData<fn() -> ST>,
}

impl<ST, T> QueryFragment<Pg> for Bind<ST, T>
where
    Pg: HasSqlType<ST>,
    T: ToSql<ST, Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, T>(&self.value)
    }
}

/// A statement of SQL text and its binds; see the module documentation.
#[must_use = "a query does nothing until it is run"]
pub struct Prepared<'a> {
    sql: Cow<'static, str>,
    binds: Vec<Box<dyn QueryFragment<Pg> + Send + 'a>>,
}

/// A statement to bind values to and run with `diesel_async::RunQueryDsl`.
pub fn prepared(sql: impl Into<Cow<'static, str>>) -> Prepared<'static> {
    Prepared {
        sql: sql.into(),
        binds: Vec::new(),
    }
}

impl<'a> Prepared<'a> {
    /// Binds the next placeholder (`$n` for the n-th call).
    pub fn bind<ST, T>(self, value: T) -> Prepared<'a>
    where
        Pg: HasSqlType<ST>,
        T: ToSql<ST, Pg> + Send + 'a,
        ST: 'a,
    {
        let mut binds = self.binds;
        binds.push(Box::new(Bind::<ST, T> {
            value,
            _type: PhantomData,
        }));
        Prepared {
            sql: self.sql,
            binds,
        }
    }
}

/// Splits `sql` before the placeholder `$n` (not a prefix of `$n0`…): (text before, text after).
fn split_at_placeholder(sql: &str, n: usize) -> Option<(&str, &str)> {
    let marker = format!("${n}");
    let mut from = 0;
    while let Some(found) = sql[from..].find(&marker) {
        let at = from + found;
        let end = at + marker.len();
        if !sql[end..].starts_with(|c: char| c.is_ascii_digit()) {
            return Some((&sql[..at], &sql[end..]));
        }
        from = end;
    }
    None
}

impl QueryFragment<Pg> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut rest: &str = &self.sql;
        for (i, bind) in self.binds.iter().enumerate() {
            let (before, after) = split_at_placeholder(rest, i + 1).ok_or_else(|| {
                DieselError::QueryBuilderError(
                    format!("placeholder ${} missing or out of order", i + 1).into(),
                )
            })?;
            out.push_sql(before);
            bind.walk_ast(out.reborrow())?;
            rest = after;
        }
        out.push_sql(rest);
        Ok(())
    }
}

impl QueryId for Prepared<'_> {
    type QueryId = ();
    // No static id: the statement cache keys these by their SQL text and bind types.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sql_types::{Integer, Text};

    #[test]
    fn binds_take_their_placeholders_in_order() {
        assert_eq!(
            split_at_placeholder("a = $1 AND b = $10", 1),
            Some(("a = ", " AND b = $10"))
        );
        assert_eq!(
            split_at_placeholder("a = $10 AND b = $1", 1),
            Some(("a = $10 AND b = ", ""))
        );
        assert_eq!(split_at_placeholder("a = $2", 1), None);
    }

    #[test]
    fn the_prepared_text_is_the_given_text_and_is_cacheable() {
        let query = prepared("SELECT $1::text, $2 + 1 WHERE $10 IS NULL")
            .bind::<Text, _>("x")
            .bind::<Integer, _>(1);
        // $10 has no bind: it stays as text, which PostgreSQL would then reject.
        let sql = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(
            sql.starts_with("SELECT $1::text, $2 + 1 WHERE $10 IS NULL"),
            "{sql}"
        );
        assert!(query.is_safe_to_cache_prepared(&Pg).unwrap_or(false));
    }

    #[test]
    fn a_missing_placeholder_is_an_error_not_a_wrong_statement() {
        let query = prepared("SELECT $2").bind::<Integer, _>(1);
        let mut builder = diesel::pg::PgQueryBuilder::default();
        assert!(query.to_sql(&mut builder, &Pg).is_err());
    }
}
