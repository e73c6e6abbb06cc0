//! Failure analytics of a window for the UI's failures page: which agents and versions fail most
//! (from the rollups), which steps (among the latest failures), and the latest failures. (Counts
//! by type and code come from `/v1/stats`.) Each is one statement.

use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;
use uuid::Uuid;

use super::filters::{Bind, RunFilter, apply_binds};
use super::stats::{Rows, counter_rows};
use crate::db::prepared::prepared;
use crate::model::RunStatus;
use crate::rollup::Counter;

/// Rows of a "fails most" table.
const TOP: i64 = 10;
/// The latest failures the steps that fail most are counted among.
pub const STEP_SAMPLE: i64 = 1000;

#[derive(Debug, QueryableByName)]
pub struct AgentFailures {
    #[diesel(sql_type = Text)]
    pub agent_id: String,
    #[diesel(sql_type = Text)]
    pub agent_version: String,
    /// Failure records.
    #[diesel(sql_type = BigInt)]
    pub failures: i64,
    /// Its runs whose status is `failure`.
    #[diesel(sql_type = BigInt)]
    pub runs: i64,
}

#[derive(Debug, QueryableByName)]
pub struct StepFailures {
    #[diesel(sql_type = Text)]
    pub step_type: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub failures: i64,
}

#[derive(Debug, QueryableByName)]
pub struct LatestFailure {
    #[diesel(sql_type = SqlUuid)]
    pub run_id: Uuid,
    #[diesel(sql_type = Text)]
    pub agent_id: String,
    #[diesel(sql_type = Text)]
    pub agent_version: String,
    #[diesel(sql_type = Text)]
    pub failure_type: String,
    #[diesel(sql_type = Text)]
    pub failure_code: String,
    #[diesel(sql_type = Text)]
    pub message: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub step_seq: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub step_name: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub started_at: OffsetDateTime,
}

/// The failures of the runs `filter` selects: `agent_failures f JOIN agent_runs r`, then `joins`.
fn failures_of(filter: &RunFilter, binds: &mut Vec<Bind>, joins: &str) -> String {
    let conditions = filter.conditions(binds);
    format!("agent_failures f JOIN agent_runs r ON r.run_id = f.run_id {joins} WHERE {conditions}")
}

/// The agents@versions with the most failure records, and their failed runs: from the stats
/// rollups (and the rows at the window's edges), as `/v1/stats` counts them.
pub async fn by_agent(
    conn: &mut AsyncPgConnection,
    filter: &RunFilter,
) -> QueryResult<Vec<AgentFailures>> {
    let mut binds = Vec::new();
    let rows = counter_rows(
        filter,
        &mut binds,
        Rows {
            by_agent: true,
            steps: false,
        },
    );
    let (fail, failed) = (Counter::FAILURES, Counter::Runs(RunStatus::Failure).key());
    let sql = format!(
        "SELECT agent_id, agent_version, \
           coalesce(sum(n) FILTER (WHERE k LIKE '{fail}%'), 0)::bigint AS failures, \
           coalesce(sum(n) FILTER (WHERE k = '{failed}'), 0)::bigint AS runs \
         FROM ({rows}) e WHERE k LIKE '{fail}%' OR k = '{failed}' \
         GROUP BY 1, 2 HAVING sum(n) FILTER (WHERE k LIKE '{fail}%') > 0 \
         ORDER BY 3 DESC, 1, 2 LIMIT {TOP}"
    );
    apply_binds(prepared(sql), binds).load(conn).await
}

/// The steps named by the most of the window's latest [`STEP_SAMPLE`] failures (step names are
/// in no rollup: counting every failure of a long window would read them all).
pub async fn by_step(
    conn: &mut AsyncPgConnection,
    filter: &RunFilter,
) -> QueryResult<Vec<StepFailures>> {
    let mut binds = Vec::new();
    let from = failures_of(filter, &mut binds, "");
    let sql = format!(
        "WITH latest AS (SELECT f.run_id, f.step_id FROM {from} AND f.step_id IS NOT NULL \
           ORDER BY r.started_at DESC LIMIT {STEP_SAMPLE}) \
         SELECT s.step_type::text AS step_type, s.name::text AS name, count(*) AS failures \
         FROM latest l JOIN agent_steps s ON s.run_id = l.run_id AND s.step_id = l.step_id \
         GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT {TOP}"
    );
    apply_binds(prepared(sql), binds).load(conn).await
}

/// The latest failures (by their run's start), at most `limit`.
pub async fn latest(
    conn: &mut AsyncPgConnection,
    filter: &RunFilter,
    limit: i64,
) -> QueryResult<Vec<LatestFailure>> {
    let mut binds = Vec::new();
    let from = failures_of(
        filter,
        &mut binds,
        "LEFT JOIN agent_steps s ON s.run_id = f.run_id AND s.step_id = f.step_id",
    );
    binds.push(Bind::Int(limit));
    let sql = format!(
        "SELECT f.run_id, r.agent_id::text AS agent_id, r.agent_version::text AS agent_version, \
         f.failure_type::text AS failure_type, f.failure_code::text AS failure_code, f.message, \
         s.seq::bigint AS step_seq, s.name::text AS step_name, r.started_at \
         FROM {from} \
         ORDER BY r.started_at DESC, f.created_at DESC, f.failure_id LIMIT ${}",
        binds.len()
    );
    apply_binds(prepared(sql), binds).load(conn).await
}
