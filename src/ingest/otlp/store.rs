//! Writing mapped traces. Unlike native runs, an OTLP run is never frozen: every request that
//! brings spans of a trace merges them and recomputes the run.
//!
//! Per request, in one transaction, each statement for all its traces at once: upsert the run (the root span's fields once it has arrived,
//! provisional ones before), insert its new steps and their failures (ids derived from the span
//! ids, so a resent span changes nothing), keep the run-level failure of a root in ERROR only
//! while no step failed, renumber `seq` by start time (the unique (run_id, seq) check deferred
//! to commit), and recompute status: root ERROR → failure; else a failed step → partial; else
//! success; `running` until the root arrives or the finalizer closes the run.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{Array, Bool, Int4, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::error::is_retryable;
use crate::db::prepared::prepared;
use crate::model::RunStatus;
use crate::rollup::{self, Deltas, DeltasWritten, RunKey, SkipTriggers};
use crate::store::spans::{SpanFailure, TraceUpdate, derived_id};

/// What became of one trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceOutcome {
    /// Merged; `capped` of its spans were not, the run having reached its step cap
    /// (`ingest.max_steps_per_run`).
    Stored { capped: usize },
    /// Its trace id is the run_id of a natively ingested run: its spans are rejected.
    NativeRun,
}

#[derive(QueryableByName)]
struct Upserted {
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

/// The id of a row an `INSERT … ON CONFLICT DO NOTHING` inserted.
#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
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

static UPSERT_RUNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO agent_runs AS r \
    (run_id, agent_id, agent_version, environment, status, started_at, ended_at, source, otlp_root, otlp_root_error, last_span_at) \
    SELECT u.run_id, u.agent_id, u.agent_version, u.environment, 'running', u.started_at, u.ended_at, 'otlp', \
    u.otlp_root, u.otlp_root_error, now() FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], \
    $5::timestamptz[], $6::timestamptz[], $7::bool[], $8::bool[]) \
    AS u (run_id, agent_id, agent_version, environment, started_at, ended_at, otlp_root, otlp_root_error) \
    ON CONFLICT (run_id) DO UPDATE SET \
    agent_id = CASE WHEN EXCLUDED.otlp_root THEN EXCLUDED.agent_id ELSE r.agent_id END, \
    agent_version = CASE WHEN EXCLUDED.otlp_root THEN EXCLUDED.agent_version ELSE r.agent_version END, \
    environment = CASE WHEN EXCLUDED.otlp_root THEN EXCLUDED.environment ELSE r.environment END, \
    started_at = CASE WHEN EXCLUDED.otlp_root THEN EXCLUDED.started_at \
                      WHEN r.otlp_root THEN r.started_at ELSE least(r.started_at, EXCLUDED.started_at) END, \
    ended_at = CASE WHEN EXCLUDED.otlp_root THEN EXCLUDED.ended_at ELSE r.ended_at END, \
    otlp_root = r.otlp_root OR EXCLUDED.otlp_root, \
    otlp_root_error = CASE WHEN EXCLUDED.otlp_root THEN EXCLUDED.otlp_root_error ELSE r.otlp_root_error END, \
    last_span_at = now() \
    WHERE r.source = 'otlp' \
    RETURNING r.run_id, r.agent_id, r.agent_version, r.environment, r.status, r.started_at, r.ended_at, \
    {INSERTED} AS inserted, (SELECT count(*) FROM agent_steps s WHERE s.run_id = r.run_id)::int4 AS steps"
    )
});

const INSERT_STEPS: &str = "INSERT INTO agent_steps \
    (step_id, run_id, seq, step_type, name, latency_ms, started_at, ended_at, metadata, span_id, parent_span_id, model, input_tokens, output_tokens) \
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::text[], $5::text[], $6::int4[], $7::timestamptz[], \
    $8::timestamptz[], $9::jsonb[], $10::text[], $11::text[], $12::text[], $13::int4[], $14::int4[]) \
    ON CONFLICT (step_id) DO NOTHING RETURNING step_id AS id";

const INSERT_FAILURES: &str = "INSERT INTO agent_failures (failure_id, run_id, step_id, failure_type, failure_code, message) \
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[]) \
    ON CONFLICT (failure_id) DO NOTHING RETURNING failure_id AS id";

/// seq follows start time (span id breaking ties); only rows whose seq changes are written.
/// The new order is computed once (a materialised CTE) and its rows found by primary key: a
/// run's steps, new since the last ANALYZE, are estimated at one row, and joined by `run_id`
/// the planner nested-looped them, recomputing the window for every step (10,000 spans: 74 s).
const RENUMBER: &str = "WITH o AS MATERIALIZED \
    (SELECT step_id, (row_number() OVER (PARTITION BY run_id ORDER BY started_at, span_id, step_id) - 1)::int4 AS seq \
     FROM agent_steps WHERE run_id = ANY($1)) \
    UPDATE agent_steps s SET seq = o.seq FROM o WHERE s.step_id = o.step_id AND s.seq <> o.seq";

/// A failed step is a failure row with a step.
const FAILED_STEP: &str =
    "EXISTS (SELECT 1 FROM agent_failures f WHERE f.run_id = r.run_id AND f.step_id IS NOT NULL)";

fn recompute_sql() -> String {
    format!(
        "UPDATE agent_runs r SET \
         status = CASE WHEN r.otlp_root AND r.otlp_root_error THEN 'failure' \
                       WHEN r.otlp_root OR r.otlp_finalized THEN CASE WHEN {FAILED_STEP} THEN 'partial' ELSE 'success' END \
                       ELSE 'running' END, \
         ended_at = CASE WHEN r.otlp_root THEN r.ended_at \
                         WHEN r.otlp_finalized THEN greatest(r.started_at, (SELECT max(s.ended_at) FROM agent_steps s WHERE s.run_id = r.run_id)) \
                         ELSE NULL END \
         WHERE r.run_id = ANY($1)"
    )
}

/// Closes OTLP runs that are still `running` with no span for `after_s` seconds, from the spans
/// they have; at most `batch` per call. Returns how many it closed.
pub async fn finalize_stale(
    conn: &mut AsyncPgConnection,
    after_s: u64,
    batch: i64,
) -> QueryResult<usize> {
    let sql = format!(
        "UPDATE agent_runs r SET otlp_finalized = true, \
         status = CASE WHEN {FAILED_STEP} THEN 'partial' ELSE 'success' END, \
         ended_at = greatest(r.started_at, (SELECT max(s.ended_at) FROM agent_steps s WHERE s.run_id = r.run_id)) \
         WHERE r.run_id IN (SELECT run_id FROM agent_runs WHERE source = 'otlp' AND status = 'running' \
           AND last_span_at < now() - make_interval(secs => $1) ORDER BY last_span_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
    );
    prepared(sql)
        .bind::<diesel::sql_types::Double, _>(after_s as f64)
        .bind::<diesel::sql_types::BigInt, _>(batch)
        .execute(conn)
        .await
}

/// Writes every trace of a request in one transaction (retried on deadlock); outcomes in order.
pub async fn write_traces(
    conn: &mut AsyncPgConnection,
    traces: &[TraceUpdate],
    max_steps: usize,
) -> QueryResult<Vec<TraceOutcome>> {
    // A consistent lock order keeps concurrent exports of overlapping traces from deadlocking.
    let mut order: Vec<usize> = (0..traces.len()).collect();
    order.sort_by_key(|&i| traces[i].run_id);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = conn
            .transaction(async |conn| {
                prepared("SET CONSTRAINTS uq_agent_steps_run_id_seq DEFERRED")
                    .execute(conn)
                    .await?;
                // The rows this transaction inserts get their rollup deltas from `write_set`;
                // its updates and deletes (renumbering, recomputed status) from the triggers.
                let sorted: Vec<&TraceUpdate> = order.iter().map(|&i| &traces[i]).collect();
                let stored = rollup::without_insert_triggers(conn, async |conn, skip| {
                    write_set(conn, &sorted, max_steps, skip).await
                })
                .await?;
                Ok(traces
                    .iter()
                    .map(|t| match stored.get(&t.run_id) {
                        Some(&capped) => TraceOutcome::Stored { capped },
                        None => TraceOutcome::NativeRun,
                    })
                    .collect())
            })
            .await;
        match result {
            Err(err) if attempt < 3 && is_retryable(&err) => continue,
            other => return other,
        }
    }
}

/// A failure to insert: its id, run, step (none for a run-level failure) and what it says.
type NewFailure<'a> = (Uuid, Uuid, Option<Uuid>, &'a SpanFailure);

/// Inserts `failures` (a resent one is skipped) and counts those inserted in `deltas`.
async fn insert_failures<'a>(
    conn: &mut AsyncPgConnection,
    failures: &[NewFailure<'a>],
    keys: &HashMap<Uuid, RunKey<'a>>,
    deltas: &mut Deltas<'a>,
) -> QueryResult<()> {
    if failures.is_empty() {
        return Ok(());
    }
    let inserted: Vec<Inserted> = prepared(INSERT_FAILURES)
        .bind::<Array<SqlUuid>, _>(failures.iter().map(|f| f.0).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(failures.iter().map(|f| f.1).collect::<Vec<_>>())
        .bind::<Array<Nullable<SqlUuid>>, _>(failures.iter().map(|f| f.2).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            failures
                .iter()
                .map(|f| f.3.failure_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            failures
                .iter()
                .map(|f| f.3.code.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            failures
                .iter()
                .map(|f| f.3.message.as_str())
                .collect::<Vec<_>>(),
        )
        .load(conn)
        .await?;
    let inserted: HashSet<Uuid> = inserted.into_iter().map(|i| i.id).collect();
    for (id, run, _, failure) in failures {
        if let (true, Some(key)) = (inserted.contains(id), keys.get(run)) {
            deltas.failure(*key, failure.failure_type, &failure.code);
        }
    }
    Ok(())
}

/// Writes traces sorted by run_id; returns the run_ids stored (the others are native runs).
/// Writes the traces; answers, for each stored one, how many of its spans the step cap left out.
async fn write_set(
    conn: &mut AsyncPgConnection,
    traces: &[&TraceUpdate],
    max_steps: usize,
    skip: SkipTriggers,
) -> QueryResult<(HashMap<Uuid, usize>, DeltasWritten)> {
    let runs: Vec<(&TraceUpdate, &super::map::Root)> = traces
        .iter()
        .map(|t| (*t, t.root.as_ref().unwrap_or(&t.fallback)))
        .collect();
    let upserted: Vec<Upserted> = prepared(UPSERT_RUNS.as_str())
        .bind::<Array<SqlUuid>, _>(runs.iter().map(|(t, _)| t.run_id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            runs.iter()
                .map(|(_, r)| r.agent_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            runs.iter()
                .map(|(_, r)| r.agent_version.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            runs.iter()
                .map(|(_, r)| r.environment.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Timestamptz>, _>(runs.iter().map(|(_, r)| r.started_at).collect::<Vec<_>>())
        .bind::<Array<Nullable<Timestamptz>>, _>(
            runs.iter()
                .map(|(t, r)| t.root.is_some().then_some(r.ended_at))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Bool>, _>(
            runs.iter()
                .map(|(t, _)| t.root.is_some())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Bool>, _>(
            runs.iter()
                .map(|(t, _)| t.root.as_ref().is_some_and(|r| r.failure.is_some()))
                .collect::<Vec<_>>(),
        )
        .load(conn)
        .await?;
    // The stored runs (a native run's id is not among them) and the steps each had before.
    let existing: HashMap<Uuid, usize> = upserted
        .iter()
        .map(|u| (u.run_id, u.steps.max(0) as usize))
        .collect();
    // Room left under the step cap: a trace's spans past it are not stored.
    let room = |run: &Uuid| existing.get(run).map(|n| max_steps.saturating_sub(*n));
    let capped: HashMap<Uuid, usize> = traces
        .iter()
        .filter_map(|t| Some((t.run_id, t.steps.len().saturating_sub(room(&t.run_id)?))))
        .collect();
    let keys: HashMap<Uuid, RunKey<'_>> = upserted.iter().map(|u| (u.run_id, u.key())).collect();
    let mut deltas = Deltas::default();
    for u in upserted.iter().filter(|u| u.inserted) {
        // (Always one: the schema checks the status.)
        if let Some(status) = RunStatus::parse(&u.status) {
            deltas.run(u.key(), status, u.ended_at);
        }
    }
    let traces: Vec<&TraceUpdate> = traces
        .iter()
        .copied()
        .filter(|t| existing.contains_key(&t.run_id))
        .collect();
    if traces.is_empty() {
        let written = skip.write(conn, &deltas).await?;
        return Ok((capped, written));
    }

    // Each run's new steps in the order RENUMBER keeps (start time, span id, step id), numbered
    // after its existing steps: when they all start after those — a new run, spans arriving in
    // order — RENUMBER finds nothing to change, and its cost no longer grows with the trace.
    let mut steps: Vec<(Uuid, &super::map::SpanStep)> = Vec::new();
    let mut seqs: Vec<i32> = Vec::new();
    for t in &traces {
        let mut new: Vec<&super::map::SpanStep> =
            t.steps.iter().take(room(&t.run_id).unwrap_or(0)).collect();
        new.sort_by(|a, b| {
            (a.started_at, &a.span_id, a.step_id).cmp(&(b.started_at, &b.span_id, b.step_id))
        });
        let first = existing.get(&t.run_id).copied().unwrap_or(0);
        for (i, s) in new.into_iter().enumerate() {
            steps.push((t.run_id, s));
            seqs.push(i32::try_from(first + i).unwrap_or(i32::MAX));
        }
    }
    if !steps.is_empty() {
        let inserted: Vec<Inserted> = prepared(INSERT_STEPS)
            .bind::<Array<SqlUuid>, _>(steps.iter().map(|(_, s)| s.step_id).collect::<Vec<_>>())
            .bind::<Array<SqlUuid>, _>(steps.iter().map(|(run, _)| *run).collect::<Vec<_>>())
            // After the existing steps; RENUMBER moves them where they belong if they do not.
            .bind::<Array<Int4>, _>(&seqs)
            .bind::<Array<Text>, _>(
                steps
                    .iter()
                    .map(|(_, s)| s.step_type.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                steps
                    .iter()
                    .map(|(_, s)| s.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Int4>, _>(steps.iter().map(|(_, s)| s.latency_ms).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(
                steps.iter().map(|(_, s)| s.started_at).collect::<Vec<_>>(),
            )
            .bind::<Array<Timestamptz>, _>(
                steps.iter().map(|(_, s)| s.ended_at).collect::<Vec<_>>(),
            )
            .bind::<Array<Jsonb>, _>(steps.iter().map(|(_, s)| &s.metadata).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(
                steps
                    .iter()
                    .map(|(_, s)| Some(s.span_id.as_str()))
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Text>>, _>(
                steps
                    .iter()
                    .map(|(_, s)| s.parent_span_id.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Text>>, _>(
                steps
                    .iter()
                    .map(|(_, s)| s.model.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Int4>>, _>(
                steps
                    .iter()
                    .map(|(_, s)| s.input_tokens)
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Int4>>, _>(
                steps
                    .iter()
                    .map(|(_, s)| s.output_tokens)
                    .collect::<Vec<_>>(),
            )
            .load(conn)
            .await?;
        let inserted: HashSet<Uuid> = inserted.into_iter().map(|i| i.id).collect();
        // A step_id twice in one statement: the first is inserted, the second conflicts.
        let mut counted: HashSet<Uuid> = HashSet::with_capacity(inserted.len());
        for (run, s) in &steps {
            if inserted.contains(&s.step_id)
                && counted.insert(s.step_id)
                && let Some(key) = keys.get(run)
            {
                let tokens = (s.input_tokens, s.output_tokens);
                deltas.step(*key, s.step_type, s.latency_ms, s.model.as_deref(), tokens);
            }
        }
    }
    let step_failures: Vec<NewFailure<'_>> = steps
        .iter()
        .filter_map(|(run, s)| {
            Some((
                derived_id(s.step_id.as_bytes(), &[], "failure"),
                *run,
                Some(s.step_id),
                s.failure.as_ref()?,
            ))
        })
        .collect();
    insert_failures(conn, &step_failures, &keys, &mut deltas).await?;

    // The run-level failure of a root in ERROR stands only while no step failed.
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
        let root_failures: Vec<NewFailure<'_>> = traces
            .iter()
            .filter_map(|t| {
                let failure = t.root.as_ref()?.failure.as_ref()?;
                Some((root_failure(t), t.run_id, None, failure))
            })
            .collect();
        insert_failures(conn, &root_failures, &keys, &mut deltas).await?;
    }
    let ids: Vec<Uuid> = traces.iter().map(|t| t.run_id).collect();
    let root_ids: Vec<Uuid> = traces.iter().map(|t| root_failure(t)).collect();
    prepared(
        "DELETE FROM agent_failures a WHERE a.failure_id = ANY($1) AND EXISTS \
         (SELECT 1 FROM agent_failures f WHERE f.run_id = a.run_id AND f.step_id IS NOT NULL)",
    )
    .bind::<Array<SqlUuid>, _>(&root_ids)
    .execute(conn)
    .await?;

    let written = skip.write(conn, &deltas).await?;
    prepared(RENUMBER)
        .bind::<Array<SqlUuid>, _>(&ids)
        .execute(conn)
        .await?;
    prepared(recompute_sql())
        .bind::<Array<SqlUuid>, _>(&ids)
        .execute(conn)
        .await?;
    Ok((capped, written))
}
