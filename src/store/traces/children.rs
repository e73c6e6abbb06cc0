//! A trace's new steps and failures, each kind inserted for all traces in one statement, a resent
//! one skipped; the run-level failure of its root.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{Array, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::prepared::prepared;
use crate::rollup::{Deltas, RunKey};
use crate::store::batch::{
    Batch, BehaviourRow, BehaviourRows, FailureRow, FailureRows, RunCostRow, RunCostRows, RunId,
    RunIds, StepRows, TableBatch, step_row,
};
use crate::store::spans::{SpanFailure, SpanStep, TraceUpdate, derived_id};

/// The id of a row an `INSERT … ON CONFLICT DO NOTHING` inserted.
#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

static INSERT_STEPS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} ON CONFLICT (step_id) DO NOTHING RETURNING step_id AS id",
        StepRows::insert(1)
    )
});

/// The decisions and signals of new steps, appended to their runs' arrays, and their cost added
/// to their runs' (one row per run).
static ADD_TO_RUNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE agent_runs AS r SET \
         decisions = CASE WHEN u.decisions IS NULL THEN r.decisions \
                          ELSE coalesce(r.decisions, '[]'::jsonb) || u.decisions END, \
         quality_signals = CASE WHEN u.quality_signals IS NULL THEN r.quality_signals \
                          ELSE coalesce(r.quality_signals, '[]'::jsonb) || u.quality_signals END, \
         cost_nanos = CASE WHEN u.cost_nanos IS NULL THEN r.cost_nanos \
                          ELSE coalesce(r.cost_nanos, 0) + u.cost_nanos END \
         FROM {} WHERE r.run_id = u.run_id",
        <(RunIds, (BehaviourRows, RunCostRows))>::unnest_as(1, "u")
    )
});

static INSERT_FAILURES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} ON CONFLICT (failure_id) DO NOTHING RETURNING failure_id AS id",
        FailureRows::insert(1)
    )
});

/// Runs `sql`, an insert of `rows` that skips a resent one and returns the ids it inserted
/// ([`Inserted`]); with no rows, sends nothing.
async fn insert_new<'a>(
    conn: &mut AsyncPgConnection,
    sql: &'static str,
    rows: impl Batch<'a>,
) -> QueryResult<HashSet<Uuid>> {
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    let inserted: Vec<Inserted> = rows.bind(prepared(sql)).load(conn).await?;
    Ok(inserted.into_iter().map(|i| i.id).collect())
}

/// A step to insert: its run, its `seq`, its span.
pub type NewStep<'a> = (Uuid, i32, &'a SpanStep);

/// A failure to insert: its id, run, step (none for a run-level failure) and what it says.
type NewFailure<'a> = (Uuid, Uuid, Option<Uuid>, &'a SpanFailure);

/// The steps and failures a request inserts under the runs it stored: each kind for all its
/// traces in one statement, a resent row skipped, and every row inserted counted in
/// [`deltas`](Inserts::deltas) under its run's key.
pub struct Inserts<'a> {
    /// The key of each stored run.
    pub keys: &'a HashMap<Uuid, RunKey<'a>>,
    pub deltas: Deltas<'a>,
}

impl<'a> Inserts<'a> {
    /// Inserts `steps` and then the failures of those that failed (ids derived from the
    /// steps').
    pub async fn steps(
        &mut self,
        conn: &mut AsyncPgConnection,
        steps: &[NewStep<'a>],
    ) -> QueryResult<()> {
        let rows: StepRows = steps
            .iter()
            .map(|&(run_id, seq, s)| {
                let (span_id, parent) = (Some(s.span_id.as_str()), s.parent_span_id.as_deref());
                step_row!(s, run_id: run_id, seq: seq, span_id: span_id, parent_span_id: parent)
            })
            .collect();
        let inserted = insert_new(conn, &INSERT_STEPS, rows).await?;
        // A step_id twice in one statement: the first is inserted, the second conflicts.
        let mut counted: HashSet<Uuid> = HashSet::with_capacity(inserted.len());
        let mut new: Vec<NewStep<'a>> = Vec::with_capacity(inserted.len());
        for &(run, seq, s) in steps {
            if !(inserted.contains(&s.step_id) && counted.insert(s.step_id)) {
                continue;
            }
            new.push((run, seq, s));
            if let Some(key) = self.keys.get(&run) {
                let tokens = (s.input_tokens, s.output_tokens);
                let model = s.model.as_deref();
                let cost = s.cost_nanos;
                self.deltas
                    .step(*key, s.step_type, s.latency_ms, model, tokens, cost);
            }
        }
        let failures: Vec<NewFailure<'a>> = steps
            .iter()
            .filter_map(|&(run, _, s)| {
                let id = derived_id(s.step_id.as_bytes(), &[], "failure");
                Some((id, run, Some(s.step_id), s.failure.as_ref()?))
            })
            .collect();
        self.failures(conn, &failures).await?;
        add_to_runs(conn, &new).await
    }

    async fn failures(
        &mut self,
        conn: &mut AsyncPgConnection,
        failures: &[NewFailure<'a>],
    ) -> QueryResult<()> {
        let inserted = insert_new(conn, &INSERT_FAILURES, failure_rows(failures)).await?;
        for (id, run, _, failure) in failures {
            if let (true, Some(key)) = (inserted.contains(id), self.keys.get(run)) {
                self.deltas
                    .failure(*key, failure.failure_type, &failure.code);
            }
        }
        Ok(())
    }

    /// The run-level failure of a root in ERROR: each request that brings the root replaces it
    /// (the root's latest word), and it stands only while no step of the run failed.
    pub async fn root_failures(
        &mut self,
        conn: &mut AsyncPgConnection,
        traces: &[&'a TraceUpdate],
    ) -> QueryResult<()> {
        let root_failure = |t: &TraceUpdate| derived_id(t.run_id.as_bytes(), &[], "root-failure");
        let with_root: Vec<Uuid> = traces
            .iter()
            .filter(|t| t.root.is_some())
            .map(|t| root_failure(t))
            .collect();
        if !with_root.is_empty() {
            prepared("DELETE FROM agent_failures WHERE failure_id = ANY($1)")
                .bind::<Array<SqlUuid>, _>(&with_root)
                .execute(conn)
                .await?;
            let root_failures: Vec<NewFailure<'a>> = traces
                .iter()
                .filter_map(|t| {
                    let failure = t.root.as_ref()?.failure.as_ref()?;
                    Some((root_failure(t), t.run_id, None, failure))
                })
                .collect();
            self.failures(conn, &root_failures).await?;
        }
        let root_ids: Vec<Uuid> = traces.iter().map(|t| root_failure(t)).collect();
        prepared(
            "DELETE FROM agent_failures a WHERE a.failure_id = ANY($1) AND EXISTS \
             (SELECT 1 FROM agent_failures f WHERE f.run_id = a.run_id AND f.step_id IS NOT NULL)",
        )
        .bind::<Array<SqlUuid>, _>(&root_ids)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// The decisions and signals of new `steps` (from their spans' events; a resent span's step is
/// not new, and its items are stored already), appended to their runs' arrays in the steps'
/// order, and the new steps' cost added to their runs'.
async fn add_to_runs(conn: &mut AsyncPgConnection, steps: &[NewStep<'_>]) -> QueryResult<()> {
    // By run_id, the order every other writer of run rows locks them in.
    let mut by_run: BTreeMap<Uuid, Vec<&SpanStep>> = BTreeMap::new();
    for &(run_id, _, s) in steps {
        if !s.decisions.is_empty() || !s.signals.is_empty() || s.cost_nanos.is_some() {
            by_run.entry(run_id).or_default().push(s);
        }
    }
    if by_run.is_empty() {
        return Ok(());
    }
    let rows: (RunIds, (BehaviourRows, RunCostRows)) = by_run
        .into_iter()
        .map(|(run_id, spans)| {
            let behaviour = BehaviourRow::of(
                spans.iter().flat_map(|s| &s.decisions),
                spans.iter().flat_map(|s| &s.signals),
            );
            let cost = RunCostRow::of(spans.iter().map(|s| s.cost_nanos));
            (RunId { run_id }, (behaviour, cost))
        })
        .unzip();
    rows.bind(prepared(ADD_TO_RUNS.as_str()))
        .execute(conn)
        .await?;
    Ok(())
}

fn failure_rows<'a>(failures: &[NewFailure<'a>]) -> FailureRows<'a> {
    failures
        .iter()
        .map(|&(failure_id, run_id, step_id, f)| FailureRow {
            failure_id,
            run_id,
            step_id,
            failure_type: f.failure_type.as_str(),
            failure_code: &f.code,
            metadata: &f.metadata,
            message: &f.message,
        })
        .collect()
}
