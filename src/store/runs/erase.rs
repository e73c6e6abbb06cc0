//! Erasing runs with their steps and failures: one by request, old ones for retention.

use diesel::result::QueryResult;
use diesel::sql_types::{Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::prepared::prepared;

/// Erases a run with its steps and failures; `false` when there was no such run.
pub async fn delete_run(conn: &mut AsyncPgConnection, run_id: Uuid) -> QueryResult<bool> {
    let deleted = prepared("DELETE FROM agent_runs WHERE run_id = $1")
        .bind::<SqlUuid, _>(run_id)
        .execute(conn)
        .await?;
    Ok(deleted > 0)
}

/// Deletes at most `batch` runs that started before `cutoff`; returns how many it deleted.
pub async fn purge_before(
    conn: &mut AsyncPgConnection,
    cutoff: OffsetDateTime,
    batch: u32,
) -> QueryResult<usize> {
    prepared(
        "DELETE FROM agent_runs WHERE run_id IN \
         (SELECT run_id FROM agent_runs WHERE started_at < $1 ORDER BY started_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<Timestamptz, _>(cutoff)
    .bind::<diesel::sql_types::BigInt, _>(i64::from(batch))
    .execute(conn)
    .await
}
