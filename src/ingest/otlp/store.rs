//! Writing mapped traces. Unlike native runs, an OTLP run is never frozen: every request that
//! brings spans of a trace merges them and recomputes the run.
//!
//! Per trace, in one transaction: upsert the run (the root span's fields once it has arrived,
//! provisional ones before), insert its new steps and their failures (ids derived from the span
//! ids, so a resent span changes nothing), keep the run-level failure of a root in ERROR only
//! while no step failed, renumber `seq` by start time (the unique (run_id, seq) check deferred
//! to commit), and recompute status: root ERROR → failure; else a failed step → partial; else
//! success; `running` until the root arrives or the finalizer closes the run.

use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{Array, Bool, Int4, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::map::{SpanFailure, TraceUpdate, derived_id};
use crate::db::prepared::prepared;
use crate::ingest::store::is_retryable;

/// What became of one trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceOutcome {
    Stored,
    /// Its trace id is the run_id of a natively ingested run: its spans are rejected.
    NativeRun,
}

#[derive(QueryableByName)]
struct Upserted {
    #[diesel(sql_type = SqlUuid)]
    #[expect(dead_code, reason = "only whether a row came back matters")]
    run_id: Uuid,
}

const UPSERT_RUN: &str = "INSERT INTO agent_runs AS r \
    (run_id, agent_id, agent_version, environment, status, started_at, ended_at, source, otlp_root, otlp_root_error, last_span_at) \
    VALUES ($1, $2, $3, $4, 'running', $5, $6, 'otlp', $7, $8, now()) \
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
    RETURNING r.run_id";

const INSERT_STEPS: &str = "INSERT INTO agent_steps \
    (step_id, run_id, seq, step_type, name, latency_ms, started_at, ended_at, metadata, span_id, parent_span_id, model, input_tokens, output_tokens) \
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::text[], $5::text[], $6::int4[], $7::timestamptz[], \
    $8::timestamptz[], $9::jsonb[], $10::text[], $11::text[], $12::text[], $13::int4[], $14::int4[]) \
    ON CONFLICT (step_id) DO NOTHING";

const INSERT_FAILURES: &str = "INSERT INTO agent_failures (failure_id, run_id, step_id, failure_type, failure_code, message) \
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[]) \
    ON CONFLICT (failure_id) DO NOTHING";

/// seq follows start time (span id breaking ties); only rows whose seq changes are written.
const RENUMBER: &str = "UPDATE agent_steps s SET seq = o.seq FROM \
    (SELECT step_id, (row_number() OVER (ORDER BY started_at, span_id, step_id) - 1)::int4 AS seq \
     FROM agent_steps WHERE run_id = $1) o \
    WHERE s.step_id = o.step_id AND s.seq <> o.seq";

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
         WHERE r.run_id = $1"
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
                let mut outcomes = vec![TraceOutcome::Stored; traces.len()];
                for &i in &order {
                    outcomes[i] = write_trace(conn, &traces[i]).await?;
                }
                Ok(outcomes)
            })
            .await;
        match result {
            Err(err) if attempt < 3 && is_retryable(&err) => continue,
            other => return other,
        }
    }
}

async fn insert_failures(
    conn: &mut AsyncPgConnection,
    run_id: Uuid,
    failures: &[(Uuid, Option<Uuid>, &SpanFailure)],
) -> QueryResult<()> {
    if failures.is_empty() {
        return Ok(());
    }
    prepared(INSERT_FAILURES)
        .bind::<Array<SqlUuid>, _>(failures.iter().map(|(id, _, _)| *id).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(vec![run_id; failures.len()])
        .bind::<Array<Nullable<SqlUuid>>, _>(
            failures
                .iter()
                .map(|(_, step, _)| *step)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            failures
                .iter()
                .map(|(_, _, f)| f.failure_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            failures
                .iter()
                .map(|(_, _, f)| f.code.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            failures
                .iter()
                .map(|(_, _, f)| f.message.as_str())
                .collect::<Vec<_>>(),
        )
        .execute(conn)
        .await
        .map(drop)
}

async fn write_trace(
    conn: &mut AsyncPgConnection,
    trace: &TraceUpdate,
) -> QueryResult<TraceOutcome> {
    let run = trace.root.as_ref().unwrap_or(&trace.fallback);
    let has_root = trace.root.is_some();
    let upserted: Vec<Upserted> = prepared(UPSERT_RUN)
        .bind::<SqlUuid, _>(trace.run_id)
        .bind::<Text, _>(&run.agent_id)
        .bind::<Text, _>(&run.agent_version)
        .bind::<Text, _>(&run.environment)
        .bind::<Timestamptz, _>(run.started_at)
        .bind::<Nullable<Timestamptz>, _>(has_root.then_some(run.ended_at))
        .bind::<Bool, _>(has_root)
        .bind::<Bool, _>(trace.root.as_ref().is_some_and(|r| r.failure.is_some()))
        .load(conn)
        .await?;
    if upserted.is_empty() {
        return Ok(TraceOutcome::NativeRun);
    }

    let steps = &trace.steps;
    if !steps.is_empty() {
        prepared(INSERT_STEPS)
            .bind::<Array<SqlUuid>, _>(steps.iter().map(|s| s.step_id).collect::<Vec<_>>())
            .bind::<Array<SqlUuid>, _>(vec![trace.run_id; steps.len()])
            // Placeholders past any existing seq; RENUMBER sets the real order below.
            .bind::<Array<Int4>, _>(
                (0..steps.len())
                    .map(|i| 1_000_000_000 + i as i32)
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                steps
                    .iter()
                    .map(|s| s.step_type.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>())
            .bind::<Array<Int4>, _>(steps.iter().map(|s| s.latency_ms).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(steps.iter().map(|s| s.started_at).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(steps.iter().map(|s| s.ended_at).collect::<Vec<_>>())
            .bind::<Array<Jsonb>, _>(steps.iter().map(|s| &s.metadata).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(
                steps
                    .iter()
                    .map(|s| Some(s.span_id.as_str()))
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Text>>, _>(
                steps
                    .iter()
                    .map(|s| s.parent_span_id.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Text>>, _>(
                steps.iter().map(|s| s.model.as_deref()).collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Int4>>, _>(
                steps.iter().map(|s| s.input_tokens).collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Int4>>, _>(
                steps.iter().map(|s| s.output_tokens).collect::<Vec<_>>(),
            )
            .execute(conn)
            .await?;
    }
    let step_failures: Vec<(Uuid, Option<Uuid>, &SpanFailure)> = steps
        .iter()
        .filter_map(|s| {
            Some((
                derived_id(s.step_id.as_bytes(), &[], "failure"),
                Some(s.step_id),
                s.failure.as_ref()?,
            ))
        })
        .collect();
    insert_failures(conn, trace.run_id, &step_failures).await?;

    // The run-level failure of a root in ERROR stands only while no step failed.
    let root_failure_id = derived_id(trace.run_id.as_bytes(), &[], "root-failure");
    if let Some(root) = &trace.root {
        prepared("DELETE FROM agent_failures WHERE failure_id = $1")
            .bind::<SqlUuid, _>(root_failure_id)
            .execute(conn)
            .await?;
        if let Some(failure) = &root.failure {
            insert_failures(conn, trace.run_id, &[(root_failure_id, None, failure)]).await?;
        }
    }
    prepared(
        "DELETE FROM agent_failures WHERE failure_id = $1 AND EXISTS \
         (SELECT 1 FROM agent_failures f WHERE f.run_id = $2 AND f.step_id IS NOT NULL)",
    )
    .bind::<SqlUuid, _>(root_failure_id)
    .bind::<SqlUuid, _>(trace.run_id)
    .execute(conn)
    .await?;

    prepared(RENUMBER)
        .bind::<SqlUuid, _>(trace.run_id)
        .execute(conn)
        .await?;
    prepared(recompute_sql())
        .bind::<SqlUuid, _>(trace.run_id)
        .execute(conn)
        .await?;
    Ok(TraceOutcome::Stored)
}
