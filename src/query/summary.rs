//! A page of runs as a table shows them: each run's row with a summary of its steps (how many,
//! their tokens) and its first failure, without loading the steps themselves. Three statements a
//! page: the runs (the list's own statement and order), the step summaries, the first failures.

use std::collections::HashMap;

use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::filters::{Cursor, Paging, RunFilter, apply_binds};
use super::runs::{list_sql, split_next};
use crate::db::prepared::prepared;
use crate::db::read::RunRow;

/// One run as a table row.
pub struct RunSummary {
    pub run: RunRow,
    pub steps: i64,
    /// Input plus output tokens of its steps.
    pub tokens: i64,
    /// `type/code` of its first failure.
    pub first_failure: Option<String>,
}

pub struct SummaryPage {
    pub runs: Vec<RunSummary>,
    pub next: Option<Cursor>,
}

#[derive(QueryableByName)]
struct StepsRow {
    #[diesel(sql_type = SqlUuid)]
    run_id: Uuid,
    #[diesel(sql_type = BigInt)]
    steps: i64,
    #[diesel(sql_type = BigInt)]
    tokens: i64,
}

#[derive(QueryableByName)]
struct FailureRow {
    #[diesel(sql_type = SqlUuid)]
    run_id: Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    failure: Option<String>,
}

/// A page of the runs `filter` selects, in the list's order, summarised.
pub async fn page(
    conn: &mut AsyncPgConnection,
    filter: &RunFilter,
    paging: &Paging,
) -> QueryResult<SummaryPage> {
    let (sql, binds) = list_sql(filter, paging);
    let mut rows: Vec<RunRow> = apply_binds(prepared(sql), binds).load(conn).await?;
    let next = split_next(&mut rows, paging.page_size);
    let runs = summarise(conn, rows).await?;
    Ok(SummaryPage { runs, next })
}

/// Summaries of loaded run rows, in their order: one lateral aggregate per run over its steps
/// (the (run_id, seq) index), and the first failure of each.
pub async fn summarise(
    conn: &mut AsyncPgConnection,
    rows: Vec<RunRow>,
) -> QueryResult<Vec<RunSummary>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.run_id).collect();
    let steps: Vec<StepsRow> = prepared(
        "SELECT u.id AS run_id, s.steps, s.tokens FROM unnest($1::uuid[]) u (id) \
         CROSS JOIN LATERAL (SELECT count(*) AS steps, \
             coalesce(sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)), 0)::bigint AS tokens \
             FROM agent_steps WHERE run_id = u.id) s",
    )
    .bind::<Array<SqlUuid>, _>(&ids)
    .load(conn)
    .await?;
    let failures: Vec<FailureRow> = prepared(
        "SELECT u.id AS run_id, f.failure FROM unnest($1::uuid[]) u (id) \
         CROSS JOIN LATERAL (SELECT failure_type || '/' || failure_code AS failure \
             FROM agent_failures WHERE run_id = u.id ORDER BY created_at, failure_id LIMIT 1) f",
    )
    .bind::<Array<SqlUuid>, _>(&ids)
    .load(conn)
    .await?;
    let steps: HashMap<Uuid, StepsRow> = steps.into_iter().map(|s| (s.run_id, s)).collect();
    let mut failures: HashMap<Uuid, Option<String>> = failures
        .into_iter()
        .map(|f| (f.run_id, f.failure))
        .collect();
    Ok(rows
        .into_iter()
        .map(|run| {
            let s = steps.get(&run.run_id);
            RunSummary {
                steps: s.map_or(0, |s| s.steps),
                tokens: s.map_or(0, |s| s.tokens),
                first_failure: failures.remove(&run.run_id).flatten(),
                run,
            }
        })
        .collect())
}
