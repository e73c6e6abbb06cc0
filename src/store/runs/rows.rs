//! The rows of native runs as the statements bind them ([`crate::store::batch`]), and what
//! writing a run answers.

use diesel::QueryableByName;
use diesel::sql_types::{Timestamptz, Uuid as SqlUuid};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::NewRun;
use crate::model::input::FieldError;
use crate::store::batch::{
    BehaviourRow, BehaviourRows, FailureRow, FailureRows, RunCostRow, RunCostRows, RunRows,
    StepRows, run_row, step_row,
};

/// What happened to one run.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A new run: 201. `written_at` is the transaction's `now()`, the steps' `created_at`.
    Created {
        created_at: OffsetDateTime,
        written_at: OffsetDateTime,
    },
    /// A stored `running` run replaced by this payload: 200 with the new stored run.
    Replaced {
        created_at: OffsetDateTime,
        written_at: OffsetDateTime,
    },
    /// A stored final run, left unchanged: 200 with the stored run.
    Unchanged,
    /// The database refused this run's data: 422 with these errors (locations inside the run).
    Rejected(Vec<FieldError>),
}

/// A run a statement inserted or updated ([`RETURNING_WRITTEN`]).
#[derive(QueryableByName)]
pub struct Written {
    #[diesel(sql_type = SqlUuid)]
    pub run_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: OffsetDateTime,
    /// The transaction's `now()`: the steps' `created_at`.
    #[diesel(sql_type = Timestamptz)]
    pub written_at: OffsetDateTime,
}

/// What a write of runs returns for each run it wrote: [`Written`].
pub const RETURNING_WRITTEN: &str = "RETURNING run_id, created_at, now() AS written_at";

/// The rows of native runs: the run's columns and, beside them, its decisions and signals and
/// its cost.
pub type NativeRuns<'a> = (RunRows<'a>, (BehaviourRows, RunCostRows));

/// The run rows of `runs`.
pub fn run_rows<'a>(runs: &[&'a NewRun]) -> NativeRuns<'a> {
    runs.iter()
        .map(|r| {
            (
                run_row!(r, run_id: r.run_id, status: r.status, ended_at: r.ended_at),
                (
                    BehaviourRow::of(&r.decisions, &r.quality_signals),
                    RunCostRow::of(r.steps.iter().map(|s| s.cost_nanos)),
                ),
            )
        })
        .unzip()
}

/// The step rows of `runs` (a native step has no span).
pub fn step_rows<'a>(runs: &[&'a NewRun]) -> StepRows<'a> {
    with_run_id(runs, |r| &r.steps)
        .map(|(run_id, s)| {
            step_row!(s, run_id: run_id, seq: s.seq, span_id: None, parent_span_id: None)
        })
        .collect()
}

/// The failure rows of `runs`.
pub fn failure_rows<'a>(runs: &[&'a NewRun]) -> FailureRows<'a> {
    with_run_id(runs, |r| &r.failures)
        .map(|(run_id, f)| FailureRow {
            failure_id: f.failure_id,
            run_id,
            step_id: f.step_id,
            failure_type: f.failure_type.as_str(),
            failure_code: &f.failure_code,
            message: &f.message,
            metadata: &f.metadata,
        })
        .collect()
}

/// The `children` of each of `runs`, each with its run's id and its place in the run's list.
fn numbered<'a, T: 'a>(
    runs: &[&'a NewRun],
    children: impl Fn(&'a NewRun) -> &'a [T],
) -> impl Iterator<Item = (Uuid, usize, &'a T)> {
    runs.iter().flat_map(move |r| {
        children(r)
            .iter()
            .enumerate()
            .map(|(i, c)| (r.run_id, i, c))
    })
}

/// The `children` of each of `runs` (its steps or its failures), each with its run's id.
fn with_run_id<'a, T: 'a>(
    runs: &[&'a NewRun],
    children: impl Fn(&'a NewRun) -> &'a [T],
) -> impl Iterator<Item = (Uuid, &'a T)> {
    numbered(runs, children).map(|(run_id, _, c)| (run_id, c))
}
