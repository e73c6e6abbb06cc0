//! An OTLP run's order and status, derived from its rows: after each request, and when it fell
//! silent (the finalizer).

use std::sync::LazyLock;

use diesel::result::QueryResult;
use diesel::sql_types::{Array, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::prepared::prepared;

/// seq follows start time (span id breaking ties); only rows whose seq changes are written.
/// The new order is computed once (a materialised CTE) and its rows found by primary key: a
/// run's steps, new since the last ANALYZE, are estimated at one row, and joined by `run_id`
/// the planner nested-looped them, recomputing the window for every step (10,000 spans: 74 s).
/// The rows updated are bounded by `run_id` too: estimated at many rows a run (statistics taken
/// while the table held a few long traces, or stale while it grows), the join hashed a
/// sequential scan of all of `agent_steps` on every request (OTLP at 1,200 spans/s).
const RENUMBER: &str = "WITH o AS MATERIALIZED \
    (SELECT step_id, (row_number() OVER (PARTITION BY run_id ORDER BY started_at, span_id, step_id) - 1)::int4 AS seq \
     FROM agent_steps WHERE run_id = ANY($1)) \
    UPDATE agent_steps s SET seq = o.seq FROM o \
    WHERE s.run_id = ANY($1) AND s.step_id = o.step_id AND s.seq <> o.seq";

/// A failed step is a failure row with a step.
const FAILED_STEP: &str =
    "EXISTS (SELECT 1 FROM agent_failures f WHERE f.run_id = r.run_id AND f.step_id IS NOT NULL)";

/// Each run's status and end from its root and its steps (the module documentation of
/// [`super`]).
static RECOMPUTE: LazyLock<String> = LazyLock::new(|| {
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
});

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

/// Renumbers the steps of the runs `ids` ([`RENUMBER`]) and recomputes their status and end
/// ([`RECOMPUTE`]).
///
/// Renumbering is planned without nested loops. Whatever the estimates — a new run's steps at
/// one row, or the generic plan a prepared statement settles on — a nested loop of the new
/// order against `agent_steps` by `run_id` visits every step of the run once per step: a
/// 10,000-span trace took over the 5 s statement timeout in a release build, a 503 its exporter
/// would retry forever. A hash join is linear in the run's steps.
pub async fn renumber_and_recompute(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<()> {
    prepared("SET LOCAL enable_nestloop = off")
        .execute(conn)
        .await?;
    prepared(RENUMBER)
        .bind::<Array<SqlUuid>, _>(ids)
        .execute(conn)
        .await?;
    prepared("RESET enable_nestloop").execute(conn).await?;
    prepared(RECOMPUTE.as_str())
        .bind::<Array<SqlUuid>, _>(ids)
        .execute(conn)
        .await?;
    Ok(())
}
