//! A page of runs: one query for the runs (keyset or offset, in `started_at desc, run_id desc`
//! order), then their steps and failures in one query each — three statements per page, however
//! many runs it holds.

use diesel::result::QueryResult;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::filters::{Bind, Cursor, Paging, Position, RunFilter, apply_binds};
use crate::db::prepared::prepared;
use crate::db::read::{self, PageBudget, RUN_COLUMNS, RunRow};
use crate::model::output::RunOut;

pub struct Page {
    pub runs: Vec<RunOut>,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
}

/// The statement of a page's runs with its binds (one row more than the page: whether
/// another follows). LIMIT and OFFSET are binds, so that every page of one filter shape shares
/// one prepared statement.
pub(crate) fn list_sql(filter: &RunFilter, paging: &Paging) -> (String, Vec<Bind>) {
    let mut binds = Vec::new();
    let mut conditions = filter.conditions(&mut binds);
    let offset = match paging.position {
        Position::Page(page) => (page - 1).saturating_mul(paging.page_size),
        Position::After(cursor) => {
            binds.push(Bind::Time(cursor.started_at));
            binds.push(Bind::Uuid(cursor.run_id));
            let n = binds.len();
            conditions.push_str(&format!(
                " AND (r.started_at, r.run_id) < (${}, ${n})",
                n - 1
            ));
            0
        }
    };
    binds.push(Bind::Int(paging.page_size + 1));
    binds.push(Bind::Int(offset));
    let n = binds.len();
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM agent_runs r WHERE {conditions} ORDER BY r.started_at DESC, r.run_id DESC LIMIT ${} OFFSET ${n}",
        n - 1
    );
    (sql, binds)
}

/// Cuts the one row more than a page [`list_sql`] reads; where the next page starts, if it does.
pub(crate) fn split_next(rows: &mut Vec<RunRow>, page_size: i64) -> Option<Cursor> {
    if rows.len() as i64 <= page_size {
        return None;
    }
    rows.truncate(page_size as usize);
    rows.last().map(|r| Cursor {
        started_at: r.started_at,
        run_id: r.run_id,
    })
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &RunFilter,
    paging: &Paging,
    budget: PageBudget,
) -> QueryResult<Page> {
    let (sql, binds) = list_sql(filter, paging);
    let mut rows: Vec<RunRow> = apply_binds(prepared(sql), binds).load(conn).await?;
    let next = split_next(&mut rows, paging.page_size);
    let runs = read::with_children(conn, rows, budget).await?;
    Ok(Page { runs, next })
}
