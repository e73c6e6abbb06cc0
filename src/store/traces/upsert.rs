//! The run of each trace, inserted or merged into the stored one, and the room left under the
//! step cap for its new steps.

use std::collections::HashMap;
use std::sync::LazyLock;

use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{Bool, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;
use uuid::Uuid;

use super::children::NewStep;
use crate::db::prepared::prepared;
use crate::model::RunStatus;
use crate::rollup::{Deltas, RunKey};
use crate::store::batch::{Batch, RootRow, RootRows, RunRows, run_row};
use crate::store::spans::{SpanStep, TraceUpdate};

/// A run [`UPSERT_RUNS`] stored, as it is now.
#[derive(QueryableByName)]
pub struct Upserted {
    #[diesel(sql_type = SqlUuid)]
    run_id: Uuid,
    #[diesel(sql_type = Text)]
    agent_id: String,
    #[diesel(sql_type = Text)]
    agent_version: String,
    #[diesel(sql_type = Text)]
    environment: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Timestamptz)]
    started_at: OffsetDateTime,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    ended_at: Option<OffsetDateTime>,
    /// Inserted by this statement rather than updated ([`INSERTED`]): only then is the run's
    /// own delta this writer's to count.
    #[diesel(sql_type = Bool)]
    inserted: bool,
    /// Steps the run had before this statement.
    #[diesel(sql_type = Int4)]
    steps: i32,
}

impl Upserted {
    fn key(&self) -> RunKey<'_> {
        RunKey {
            agent_id: &self.agent_id,
            agent_version: &self.agent_version,
            environment: &self.environment,
            started_at: self.started_at,
        }
    }
}

/// Whether [`UPSERT_RUNS`] inserted the row it returns (rather than updated it), by the one
/// sign PostgreSQL leaves: the version the `DO UPDATE` arm writes carries the transaction's id
/// as its `xmax` (the arm locks the row first), a freshly inserted one none. An implementation
/// detail, but the only honest one in one statement: a CTE that tries `INSERT … ON CONFLICT DO
/// NOTHING RETURNING` and then `UPDATE`s the rest is not the same under concurrency: its UPDATE
/// reads the statement's snapshot, so a run another export inserted and committed while this
/// one waited on the conflict would be neither inserted nor updated (and its trace answered as
/// a native run's); only `ON CONFLICT DO UPDATE` updates a row its snapshot cannot see. A
/// wrong answer here miscounts the run in the stats, which the OTLP rollup tests check against
/// a rebuild from the rows.
const INSERTED: &str = "(r.xmax = 0)";

/// The rows of [`UPSERT_RUNS`]: each trace's run, and its root.
type TraceRuns<'a> = (RunRows<'a>, RootRows);

/// The run of each trace: inserted `running`, or merged into the stored OTLP run (a native
/// run's row is left alone, and not returned). The session and user are the root span's when
/// it names them, else the first ones any span of the trace named (docs/sessions.md).
static UPSERT_RUNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO agent_runs AS r ({}, source, last_span_at) \
    SELECT u.*, 'otlp', now() FROM {} \
    ON CONFLICT (run_id) DO UPDATE SET \
    agent_id = CASE WHEN EXCLUDED.otlp_root THEN EXCLUDED.agent_id ELSE r.agent_id END, \
    agent_version = CASE WHEN EXCLUDED.otlp_root THEN EXCLUDED.agent_version ELSE r.agent_version END, \
    environment = CASE WHEN EXCLUDED.otlp_root THEN EXCLUDED.environment ELSE r.environment END, \
    started_at = CASE WHEN EXCLUDED.otlp_root THEN EXCLUDED.started_at \
                      WHEN r.otlp_root THEN r.started_at ELSE least(r.started_at, EXCLUDED.started_at) END, \
    ended_at = CASE WHEN EXCLUDED.otlp_root THEN EXCLUDED.ended_at ELSE r.ended_at END, \
    session_id = CASE WHEN EXCLUDED.otlp_root AND EXCLUDED.session_id IS NOT NULL THEN EXCLUDED.session_id \
                      ELSE coalesce(r.session_id, EXCLUDED.session_id) END, \
    user_id = CASE WHEN EXCLUDED.otlp_root AND EXCLUDED.user_id IS NOT NULL THEN EXCLUDED.user_id \
                   ELSE coalesce(r.user_id, EXCLUDED.user_id) END, \
    otlp_root = r.otlp_root OR EXCLUDED.otlp_root, \
    otlp_root_error = CASE WHEN EXCLUDED.otlp_root THEN EXCLUDED.otlp_root_error ELSE r.otlp_root_error END, \
    last_span_at = now() \
    WHERE r.source = 'otlp' \
    RETURNING r.run_id, r.agent_id, r.agent_version, r.environment, r.status, r.started_at, r.ended_at, \
    {INSERTED} AS inserted, (SELECT count(*) FROM agent_steps s WHERE s.run_id = r.run_id)::int4 AS steps",
        TraceRuns::names(),
        TraceRuns::unnest_as(1, "u"),
    )
});

/// Upserts the run of each trace ([`UPSERT_RUNS`]): from its root span once that has arrived,
/// else from the provisional fields.
pub async fn upsert_runs(
    conn: &mut AsyncPgConnection,
    traces: &[&TraceUpdate],
) -> QueryResult<Vec<Upserted>> {
    let rows: TraceRuns = traces
        .iter()
        .map(|t| {
            let run = t.root.as_ref().unwrap_or(&t.fallback);
            let ended_at = t.root.as_ref().map(|root| root.ended_at);
            let root = RootRow {
                otlp_root: t.root.is_some(),
                otlp_root_error: t.root.as_ref().is_some_and(|r| r.failure.is_some()),
            };
            let status = RunStatus::Running;
            (
                run_row!(run, run_id: t.run_id, status: status, ended_at: ended_at),
                root,
            )
        })
        .unzip();
    rows.bind(prepared(UPSERT_RUNS.as_str())).load(conn).await
}

/// Counts the runs [`UPSERT_RUNS`] inserted (not those it merged into) in `deltas`.
pub fn count_inserted<'u>(upserted: &'u [Upserted], deltas: &mut Deltas<'u>) {
    for u in upserted.iter().filter(|u| u.inserted) {
        // (Always one: the schema checks the status.)
        if let Some(status) = RunStatus::parse(&u.status) {
            deltas.run(u.key(), status, u.ended_at);
        }
    }
}

/// The runs [`UPSERT_RUNS`] stored (a native run's id is not among them).
pub struct Stored<'u> {
    /// The steps each had before this request.
    steps: HashMap<Uuid, usize>,
    /// Each one's key for the deltas of the rows inserted under it.
    pub keys: HashMap<Uuid, RunKey<'u>>,
    max_steps: usize,
}

impl<'u> Stored<'u> {
    pub fn of(upserted: &'u [Upserted], max_steps: usize) -> Self {
        Stored {
            steps: upserted
                .iter()
                .map(|u| (u.run_id, u.steps.max(0) as usize))
                .collect(),
            keys: upserted.iter().map(|u| (u.run_id, u.key())).collect(),
            max_steps,
        }
    }

    /// Whether the run `run` was stored (rather than left alone, a native run).
    pub fn contains(&self, run: &Uuid) -> bool {
        self.steps.contains_key(run)
    }

    /// Room left under the step cap: a trace's spans past it are not stored.
    fn room(&self, run: &Uuid) -> Option<usize> {
        let steps = self.steps.get(run)?;
        Some(self.max_steps.saturating_sub(*steps))
    }

    /// For each stored trace, how many of its spans the step cap leaves out.
    pub fn capped(&self, traces: &[&TraceUpdate]) -> HashMap<Uuid, usize> {
        traces
            .iter()
            .filter_map(|t| {
                Some((
                    t.run_id,
                    t.steps.len().saturating_sub(self.room(&t.run_id)?),
                ))
            })
            .collect()
    }

    /// Each run's new steps in the order RENUMBER keeps (start time, span id, step id),
    /// numbered after its existing steps: when they all start after those — a new run, spans
    /// arriving in order — RENUMBER finds nothing to change, and its cost no longer grows with
    /// the trace. When they do not, RENUMBER moves them where they belong.
    pub fn new_steps<'a>(&self, traces: &[&'a TraceUpdate]) -> Vec<NewStep<'a>> {
        let mut steps = Vec::new();
        for t in traces {
            let mut new: Vec<&SpanStep> = t
                .steps
                .iter()
                .take(self.room(&t.run_id).unwrap_or(0))
                .collect();
            new.sort_by(|a, b| {
                (a.started_at, &a.span_id, a.step_id).cmp(&(b.started_at, &b.span_id, b.step_id))
            });
            let first = self.steps.get(&t.run_id).copied().unwrap_or(0);
            for (i, s) in new.into_iter().enumerate() {
                steps.push((t.run_id, i32::try_from(first + i).unwrap_or(i32::MAX), s));
            }
        }
        steps
    }
}
