//! Reading stored runs: a set of runs with their steps and failures in three queries, whatever
//! the number of runs (no query per run).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{Array, Integer, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;
use uuid::Uuid;

use super::prepared::prepared;
use super::schema::{agent_failures, agent_runs, agent_steps};
use crate::model::output::{FailureOut, RunOut, StepOut};

/// A run row without its steps and failures.
#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = agent_runs, check_for_backend(diesel::pg::Pg))]
pub struct RunRow {
    pub run_id: Uuid,
    pub agent_id: String,
    pub agent_version: String,
    pub environment: String,
    pub status: String,
    pub started_at: OffsetDateTime,
    pub ended_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub source: String,
}

/// Attaches steps and failures to already loaded run rows, keeping the rows' order.
///
/// Each run carries at most `step_cap` steps (the first, by seq) and says so with
/// `steps_truncated`: since seq runs 0..n-1, the steps with `seq <= cap` are the first `cap` plus
/// one that tells whether there are more, read straight from the (run_id, seq) index.
pub async fn with_children(
    conn: &mut AsyncPgConnection,
    runs: Vec<RunRow>,
    step_cap: i32,
) -> QueryResult<Vec<RunOut>> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = runs.iter().map(|r| r.run_id).collect();
    let (steps, failures) = children(conn, &ids, step_cap).await?;
    Ok(assemble(runs, steps, failures, Some(step_cap)))
}

/// The steps of runs `ids`, at most `cap + 1` each, in run order and then by seq: one index
/// range scan of (run_id, seq) per run. (`run_id = ANY($1)` let the planner pick a bitmap scan of
/// them all and a sort, or a parallel plan, when it misjudged the steps per run.)
const CAPPED_STEPS: &str = "SELECT s.step_id, s.run_id, s.seq, s.step_type, s.name, s.latency_ms, \
    s.started_at, s.ended_at, s.metadata, s.created_at, s.span_id, s.parent_span_id, s.model, \
    s.input_tokens, s.output_tokens \
    FROM unnest($1::uuid[]) WITH ORDINALITY AS i (run_id, n), \
    LATERAL (SELECT * FROM agent_steps s WHERE s.run_id = i.run_id AND s.seq <= $2 ORDER BY s.seq) s \
    ORDER BY i.n, s.seq";

/// The steps (by run, seq; at most `step_cap + 1` a run) and failures of runs `ids`: two queries,
/// pipelined on the connection (both are sent before either answer is read).
async fn children(
    conn: &AsyncPgConnection,
    ids: &[Uuid],
    step_cap: i32,
) -> QueryResult<(Vec<StepOut>, Vec<FailureOut>)> {
    let steps_query = prepared(CAPPED_STEPS)
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Integer, _>(step_cap);
    let failures_query = agent_failures::table
        .filter(agent_failures::run_id.eq_any(ids))
        .order((agent_failures::created_at, agent_failures::failure_id))
        .select(FailureOut::as_select());
    let (mut c1, mut c2) = (conn, conn);
    futures_util::try_join!(
        steps_query.load::<StepOut>(&mut c1),
        failures_query.load::<FailureOut>(&mut c2)
    )
}

fn assemble(
    runs: Vec<RunRow>,
    steps: Vec<StepOut>,
    failures: Vec<FailureOut>,
    step_cap: Option<i32>,
) -> Vec<RunOut> {
    let mut steps_by_run: HashMap<Uuid, Vec<StepOut>> = HashMap::new();
    for step in steps {
        steps_by_run.entry(step.run_id).or_default().push(step);
    }
    let mut failures_by_run: HashMap<Uuid, Vec<FailureOut>> = HashMap::new();
    for failure in failures {
        failures_by_run
            .entry(failure.run_id)
            .or_default()
            .push(failure);
    }
    runs.into_iter()
        .map(|r| {
            let mut steps = steps_by_run.remove(&r.run_id).unwrap_or_default();
            let steps_truncated =
                step_cap.is_some_and(|cap| steps.last().is_some_and(|s| s.seq >= cap));
            if steps_truncated {
                steps.pop();
            }
            RunOut {
                steps,
                steps_truncated,
                failures: failures_by_run.remove(&r.run_id).unwrap_or_default(),
                run_id: r.run_id,
                agent_id: r.agent_id,
                agent_version: r.agent_version,
                environment: r.environment,
                status: r.status,
                started_at: r.started_at,
                ended_at: r.ended_at,
                created_at: r.created_at,
                source: r.source,
            }
        })
        .collect()
}

/// One stored run with all its steps and failures, or `None`: three queries, pipelined. They
/// filter by `run_id = $1` rather than `= ANY($1)`: the plan is then the (run_id, seq) index in
/// order, whatever the planner believes about steps per run (a misestimate made the array form a
/// bitmap scan and a sort).
pub async fn load_run(conn: &mut AsyncPgConnection, run_id: Uuid) -> QueryResult<Option<RunOut>> {
    let conn: &AsyncPgConnection = conn;
    let run_query = agent_runs::table
        .filter(agent_runs::run_id.eq(run_id))
        .select(RunRow::as_select());
    let steps_query = agent_steps::table
        .filter(agent_steps::run_id.eq(run_id))
        .order(agent_steps::seq)
        .select(StepOut::as_select());
    let failures_query = agent_failures::table
        .filter(agent_failures::run_id.eq(run_id))
        .order((agent_failures::created_at, agent_failures::failure_id))
        .select(FailureOut::as_select());
    let (mut c1, mut c2, mut c3) = (conn, conn, conn);
    let (rows, steps, failures) = futures_util::try_join!(
        run_query.load::<RunRow>(&mut c1),
        steps_query.load::<StepOut>(&mut c2),
        failures_query.load::<FailureOut>(&mut c3)
    )?;
    Ok(assemble(rows, steps, failures, None).into_iter().next())
}
