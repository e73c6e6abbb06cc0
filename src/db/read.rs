//! Reading stored runs: a set of runs with their steps, failures, decisions and quality signals
//! in five pipelined queries, whatever the number of runs (no query per run).

use std::collections::HashMap;

use diesel::deserialize::{self, QueryableByName};
use diesel::dsl::SqlTypeOf;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::row::NamedRow;
use diesel::sql_types::{Array, BigInt, Integer, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;
use uuid::Uuid;

use super::prepared::prepared;
use super::schema::{
    agent_decisions, agent_failures, agent_quality_signals, agent_runs, agent_steps,
};
use crate::model::cost::Usd;
use crate::model::output::{DecisionOut, FailureOut, RunOut, SignalOut, StepOut};

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
    pub cost_nanos: Option<i64>,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
}

/// The columns of a [`RunRow`] of `agent_runs r`, for statements in SQL text.
pub const RUN_COLUMNS: &str = "r.run_id, r.agent_id, r.agent_version, r.environment, r.status, \
     r.started_at, r.ended_at, r.created_at, r.source, r.cost_nanos, r.session_id, r.user_id";

/// A step of a statement in SQL text (`CAPPED_STEPS`), its columns named as in `agent_steps`.
impl QueryableByName<Pg> for StepOut {
    fn build<'a>(row: &impl NamedRow<'a, Pg>) -> deserialize::Result<Self> {
        macro_rules! step {
            ($($column:ident),+; $($field:ident = $named:ident),+) => {
                StepOut {
                    $($column: NamedRow::get::<SqlTypeOf<agent_steps::$column>, _>(row, stringify!($column))?,)+
                    $($field: NamedRow::get::<SqlTypeOf<agent_steps::$named>, _>(row, stringify!($named))?,)+
                }
            };
        }
        Ok(step!(
            step_id,
            run_id,
            seq,
            step_type,
            name,
            latency_ms,
            started_at,
            ended_at,
            metadata,
            created_at,
            span_id,
            parent_span_id,
            model,
            input_tokens,
            output_tokens;
            cost_usd = cost_nanos
        ))
    }
}

/// Whether run `run_id` is stored.
pub async fn run_exists(mut conn: &AsyncPgConnection, run_id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        agent_runs::table.filter(agent_runs::run_id.eq(run_id)),
    ))
    .get_result(&mut conn)
    .await
}

/// The steps of a run, by seq (a [`StepOut`] is all of `agent_steps`' columns, in order).
pub async fn steps_of(mut conn: &AsyncPgConnection, run_id: Uuid) -> QueryResult<Vec<StepOut>> {
    agent_steps::table
        .filter(agent_steps::run_id.eq(run_id))
        .order(agent_steps::seq)
        .load(&mut conn)
        .await
}

/// The failures of a run, oldest first.
pub async fn failures_of(
    mut conn: &AsyncPgConnection,
    run_id: Uuid,
) -> QueryResult<Vec<FailureOut>> {
    agent_failures::table
        .filter(agent_failures::run_id.eq(run_id))
        .order((agent_failures::created_at, agent_failures::failure_id))
        .load(&mut conn)
        .await
}

/// The columns `$column`s of `$table`, as a selection.
macro_rules! columns {
    ($table:ident: $($column:ident),+) => {
        ($($table::$column),+)
    };
}

/// The decisions and quality signals of runs `ids`, each in its run's order (`seq`, its place
/// in the run's array): two queries of the views over the runs' arrays, pipelined.
async fn behaviour_of(
    conn: &AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<(Vec<DecisionOut>, Vec<SignalOut>)> {
    let decisions = agent_decisions::table
        .filter(agent_decisions::run_id.eq_any(ids))
        .order((
            agent_decisions::run_id,
            agent_decisions::seq,
            agent_decisions::decision_id,
        ))
        .select(
            columns!(agent_decisions: decision_id, run_id, step_id, decision_type, selected,
            reason_code, confidence, metadata, recorded_at, created_at),
        );
    let signals = agent_quality_signals::table
        .filter(agent_quality_signals::run_id.eq_any(ids))
        .order((
            agent_quality_signals::run_id,
            agent_quality_signals::seq,
            agent_quality_signals::signal_id,
        ))
        .select(
            columns!(agent_quality_signals: signal_id, run_id, step_id, signal_type,
            signal_code, value, weight, metadata, recorded_at, created_at),
        );
    let (mut c1, mut c2) = (conn, conn);
    futures_util::try_join!(
        decisions.load::<DecisionOut>(&mut c1),
        signals.load::<SignalOut>(&mut c2)
    )
}

/// What a list page may carry: steps per run, and bytes of step data in all.
#[derive(Clone, Copy, Debug)]
pub struct PageBudget {
    pub steps_per_run: i32,
    pub step_bytes: i64,
}

/// Attaches steps and failures to already loaded run rows, keeping the rows' order.
///
/// Each run carries at most `budget.steps_per_run` steps (the first, by seq), and the page at
/// most `budget.step_bytes` of step data; a run cut by either says so with `steps_truncated`.
pub async fn with_children(
    conn: &mut AsyncPgConnection,
    runs: Vec<RunRow>,
    budget: PageBudget,
) -> QueryResult<Vec<RunOut>> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = runs.iter().map(|r| r.run_id).collect();
    let ((steps, failures), behaviour) =
        futures_util::try_join!(children(conn, &ids, budget), behaviour_of(conn, &ids))?;
    Ok(assemble(
        runs,
        Children {
            steps,
            failures,
            behaviour,
        },
        Some(budget.steps_per_run),
    ))
}

/// The steps of runs `ids`, in run order and then by seq, within the page's budget: one index
/// range scan of (run_id, seq) per run, at most `cap + 1` steps each (since seq runs 0..n-1, the
/// steps with `seq <= cap` are the first `cap` plus one that tells whether there are more).
/// (`run_id = ANY($1)` let the planner pick a bitmap scan of them all and a sort, or a parallel
/// plan, when it misjudged the steps per run.)
///
/// The byte budget: a running sum of each step's size (its metadata as JSON text, plus 256) in
/// page order; the steps past the budget are not sent, but the first of each run that the budget cut
/// is, with its seq set to the cap and no metadata — the marker [`assemble`] reads as
/// "truncated", exactly as it reads the cap's extra step.
const CAPPED_STEPS: &str = "WITH p AS (SELECT $1::uuid[] AS ids, $2::int4 AS cap, $3::int8 AS budget) \
    SELECT y.step_id, y.run_id, CASE WHEN y.over THEN p.cap ELSE y.seq END AS seq, y.step_type, \
    y.name, y.latency_ms, y.started_at, y.ended_at, \
    CASE WHEN y.over THEN '{}'::jsonb ELSE y.metadata END AS metadata, \
    y.created_at, y.span_id, y.parent_span_id, y.model, y.input_tokens, y.output_tokens, y.cost_nanos \
    FROM p, (SELECT x.*, row_number() OVER (PARTITION BY x.n, x.over ORDER BY x.seq) AS k FROM \
      (SELECT s.*, i.n, sum(octet_length(s.metadata::text) + 256) OVER (ORDER BY i.n, s.seq) > p.budget AS over \
       FROM p, unnest(p.ids) WITH ORDINALITY AS i (run_id, n), \
       LATERAL (SELECT * FROM agent_steps s WHERE s.run_id = i.run_id AND s.seq <= p.cap ORDER BY s.seq) s) x) y \
    WHERE NOT y.over OR y.k = 1 \
    ORDER BY y.n, y.seq";

/// The steps (by run, seq; within `budget`) and failures of runs `ids`: two queries, pipelined
/// on the connection (both are sent before either answer is read).
async fn children(
    conn: &AsyncPgConnection,
    ids: &[Uuid],
    budget: PageBudget,
) -> QueryResult<(Vec<StepOut>, Vec<FailureOut>)> {
    let steps_query = prepared(CAPPED_STEPS)
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Integer, _>(budget.steps_per_run)
        .bind::<BigInt, _>(budget.step_bytes);
    let failures_query = agent_failures::table
        .filter(agent_failures::run_id.eq_any(ids))
        .order((agent_failures::created_at, agent_failures::failure_id));
    let (mut c1, mut c2) = (conn, conn);
    futures_util::try_join!(
        steps_query.load::<StepOut>(&mut c1),
        failures_query.load::<FailureOut>(&mut c2)
    )
}

/// The children of a set of runs, as read.
struct Children {
    steps: Vec<StepOut>,
    failures: Vec<FailureOut>,
    behaviour: (Vec<DecisionOut>, Vec<SignalOut>),
}

/// `rows` grouped by their run, each group in the rows' order.
fn by_run<T>(rows: Vec<T>, run_id: fn(&T) -> Uuid) -> HashMap<Uuid, Vec<T>> {
    let mut grouped: HashMap<Uuid, Vec<T>> = HashMap::new();
    for row in rows {
        grouped.entry(run_id(&row)).or_default().push(row);
    }
    grouped
}

fn assemble(runs: Vec<RunRow>, children: Children, step_cap: Option<i32>) -> Vec<RunOut> {
    let mut steps_by_run = by_run(children.steps, |s| s.run_id);
    let mut failures_by_run = by_run(children.failures, |f| f.run_id);
    let mut decisions_by_run = by_run(children.behaviour.0, |d| d.run_id);
    let mut signals_by_run = by_run(children.behaviour.1, |q| q.run_id);
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
                decisions: decisions_by_run.remove(&r.run_id).unwrap_or_default(),
                quality_signals: signals_by_run.remove(&r.run_id).unwrap_or_default(),
                run_id: r.run_id,
                agent_id: r.agent_id,
                agent_version: r.agent_version,
                environment: r.environment,
                status: r.status,
                started_at: r.started_at,
                ended_at: r.ended_at,
                created_at: r.created_at,
                source: r.source,
                cost_usd: r.cost_nanos.map(Usd),
                session_id: r.session_id,
                user_id: r.user_id,
            }
        })
        .collect()
}

/// One stored run with all its children, or `None`: five queries, pipelined. They
/// filter by `run_id = $1` rather than `= ANY($1)`: the plan is then the (run_id, seq) index in
/// order, whatever the planner believes about steps per run (a misestimate made the array form a
/// bitmap scan and a sort).
pub async fn load_run(conn: &mut AsyncPgConnection, run_id: Uuid) -> QueryResult<Option<RunOut>> {
    let mut conn: &AsyncPgConnection = conn;
    let run_query = agent_runs::table
        .filter(agent_runs::run_id.eq(run_id))
        .select(RunRow::as_select());
    let ids = [run_id];
    let (rows, steps, failures, behaviour) = futures_util::try_join!(
        run_query.load::<RunRow>(&mut conn),
        steps_of(conn, run_id),
        failures_of(conn, run_id),
        behaviour_of(conn, &ids)
    )?;
    let children = Children {
        steps,
        failures,
        behaviour,
    };
    Ok(assemble(rows, children, None).into_iter().next())
}
