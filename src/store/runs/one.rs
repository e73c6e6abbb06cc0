//! A single new run in one statement that commits on its own: what an idle server sees, one
//! request at a time ([`write_one`]).

use std::sync::LazyLock;

use diesel::result::QueryResult;
use diesel_async::{AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, TransactionManager};

use super::rows::{
    NativeRuns, Outcome, RETURNING_WRITTEN, Written, failure_rows, run_rows, step_rows,
};
use super::set::write_runs;
use crate::db::error::{is_data_error, is_retryable};
use crate::db::prepared::prepared;
use crate::model::NewRun;
use crate::rollup::{self, Deltas, RunKey};
use crate::store::batch::{Batch, FailureRows, StepRows, TableBatch};

/// A new run with its steps, failures and rollup deltas in one statement (its decisions and
/// signals are in its row), run outside any transaction block: PostgreSQL commits it on its
/// own (the answer arrives after the commit), so the whole write is one round trip. Only for a
/// run not yet stored: when the run_id exists the run insert does nothing and so, guarded by
/// `EXISTS (SELECT FROM run)`, does every other insert — the statement changes nothing and the
/// caller takes the general path.
///
/// The insert triggers skip these rows (their deltas are the `deltas` insert): the run insert
/// turns them off as it reads its one source row, and every other insert waits for it through
/// its guard ([`rollup::single_statement`]). The foreign keys of steps and failures are checked
/// at the end of the statement, when the run and the steps are in.
static WRITE_NEW_RUN: LazyLock<String> = LazyLock::new(|| {
    let steps = 1 + NativeRuns::width();
    let failures = steps + StepRows::width();
    let next = failures + FailureRows::width();
    let sql = format!(
        "WITH run AS ({} WHERE {{triggers_off}} ON CONFLICT (run_id) DO NOTHING {RETURNING_WRITTEN}), \
         steps AS ({} WHERE EXISTS (SELECT FROM run)), \
         failures AS ({} WHERE EXISTS (SELECT FROM run)), \
         deltas AS ({{insert_deltas}} WHERE EXISTS (SELECT FROM run)) \
         SELECT run_id, created_at, written_at FROM run",
        NativeRuns::insert(1),
        StepRows::insert(steps),
        FailureRows::insert(failures),
    );
    rollup::single_statement(&sql, next)
});

/// Writes one run: as a new run in a single statement ([`WRITE_NEW_RUN`]) when it is one, else
/// (a known run, or one whose data the database refuses) as [`write_runs`] does.
/// Must not be called inside a transaction: the single statement commits on its own.
pub async fn write_one(conn: &mut AsyncPgConnection, run: &NewRun) -> QueryResult<Outcome> {
    match write_new(conn, run).await {
        Ok(Some(created)) => return Ok(created),
        // Stored already: written by nothing; the general path replaces or leaves it.
        Ok(None) => {}
        // Nothing was written (the statement is atomic): the general path finds the cause (its
        // savepoint names the run's problem) or tries again.
        Err(err) if is_data_error(&err) || is_retryable(&err) => {}
        Err(err) => return Err(err),
    }
    let mut outcomes = write_runs(conn, &[run]).await?;
    Ok(outcomes.pop().unwrap_or(Outcome::Unchanged))
}

/// [`WRITE_NEW_RUN`] for `run`: `Some(Created)` once committed, `None` when the run_id is
/// stored already (and nothing was written).
async fn write_new(conn: &mut AsyncPgConnection, run: &NewRun) -> QueryResult<Option<Outcome>> {
    debug_assert!(
        matches!(
            AnsiTransactionManager::transaction_manager_status_mut(conn).transaction_depth(),
            Ok(None)
        ),
        "the one-statement write runs outside a transaction block"
    );
    let mut deltas = Deltas::default();
    deltas.run(RunKey::of(run), run.status, run.ended_at);
    deltas.children(run);
    let query = run_rows(&[run]).bind(prepared(WRITE_NEW_RUN.as_str()));
    let query = step_rows(&[run]).bind(query);
    let query = failure_rows(&[run]).bind(query);
    let written: Vec<Written> = deltas.bind(query).load(conn).await?;
    Ok(written.into_iter().next().map(|w| Outcome::Created {
        created_at: w.created_at,
        written_at: w.written_at,
    }))
}
