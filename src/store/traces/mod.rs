//! Writing mapped traces. Unlike native runs, an OTLP run is never frozen: every request that
//! brings spans of a trace merges them and recomputes the run.
//!
//! Per request, in one transaction, each statement for all its traces at once (`write_set`):
//! upsert the run (the root span's fields once it has arrived, provisional ones before), insert
//! its new steps and their failures (ids derived from the span ids, so a resent span changes
//! nothing), keep the run-level failure of a root in ERROR only while no step failed, renumber
//! `seq` by start time (the unique (run_id, seq) check deferred to commit), and recompute
//! status: root ERROR → failure; else a failed step → partial; else success; `running` until
//! the root arrives or the finalizer closes the run.

mod children;
mod status;
mod upsert;

use std::collections::HashMap;

use diesel::result::QueryResult;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::prepared::prepared;
use crate::rollup::{self, Deltas, DeltasWritten, SkipTriggers};
use crate::store::retry;
use crate::store::spans::TraceUpdate;
use children::Inserts;
pub use status::finalize_stale;
use upsert::{Stored, count_inserted, upsert_runs};

/// What became of one trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceOutcome {
    /// Merged; `capped` of its spans were not, the run having reached its step cap
    /// (`ingest.max_steps_per_run`).
    Stored { capped: usize },
    /// Its trace id is the run_id of a natively ingested run: its spans are rejected.
    NativeRun,
}

/// Writes every trace of a request in one transaction (retried on deadlock); outcomes in order.
pub async fn write_traces(
    conn: &mut AsyncPgConnection,
    traces: &[TraceUpdate],
    max_steps: usize,
) -> QueryResult<Vec<TraceOutcome>> {
    // A consistent lock order keeps concurrent exports of overlapping traces from deadlocking.
    let mut sorted: Vec<&TraceUpdate> = traces.iter().collect();
    sorted.sort_by_key(|t| t.run_id);
    let stored = retry::on_conflict!(
        conn.transaction(async |conn| {
            prepared("SET CONSTRAINTS uq_agent_steps_run_id_seq DEFERRED")
                .execute(conn)
                .await?;
            // The rows this transaction inserts get their rollup deltas from `write_set`;
            // its updates and deletes (renumbering, recomputed status) from the triggers.
            rollup::without_insert_triggers(conn, async |conn, skip| {
                write_set(conn, &sorted, max_steps, skip).await
            })
            .await
        })
        .await
    )?;
    Ok(traces
        .iter()
        .map(|t| match stored.get(&t.run_id) {
            Some(&capped) => TraceOutcome::Stored { capped },
            None => TraceOutcome::NativeRun,
        })
        .collect())
}

/// Writes traces sorted by run_id; answers, for each stored one, how many of its spans the step
/// cap left out (a trace not answered is a native run's). Each step is one statement for all the
/// traces, in the order of the module documentation.
async fn write_set(
    conn: &mut AsyncPgConnection,
    traces: &[&TraceUpdate],
    max_steps: usize,
    skip: SkipTriggers,
) -> QueryResult<(HashMap<Uuid, usize>, DeltasWritten)> {
    let upserted = upsert_runs(conn, traces).await?;
    let stored = Stored::of(&upserted, max_steps);
    let capped = stored.capped(traces);
    let mut deltas = Deltas::default();
    count_inserted(&upserted, &mut deltas);
    let traces: Vec<&TraceUpdate> = traces
        .iter()
        .copied()
        .filter(|t| stored.contains(&t.run_id))
        .collect();
    if traces.is_empty() {
        let written = skip.write(conn, &deltas).await?;
        return Ok((capped, written));
    }

    let mut inserts = Inserts {
        keys: &stored.keys,
        deltas,
    };
    inserts.steps(conn, &stored.new_steps(&traces)).await?;
    inserts.root_failures(conn, &traces).await?;
    let written = skip.write(conn, &inserts.deltas).await?;

    let ids: Vec<Uuid> = traces.iter().map(|t| t.run_id).collect();
    status::renumber_and_recompute(conn, &ids).await?;
    Ok((capped, written))
}
