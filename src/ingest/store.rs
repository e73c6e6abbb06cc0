//! The write path: validated runs into PostgreSQL, set-based.
//!
//! All runs of one call share a transaction and each statement handles every run at once
//! (`INSERT … SELECT FROM UNNEST(…)`), so a batch of 1,000 runs is a handful of statements. A
//! run's rows commit together; a resend of a final run changes nothing; a run stored as
//! `running` is replaced. When a set-based statement fails on one run's data (a `step_id` that
//! belongs to another run), the runs are written again one by one, each in its own savepoint, so
//! the others are not lost.
//!
//! A single new run — what an idle server sees, one request at a time — has a shorter way
//! ([`write_one`]): its rows and rollup deltas in one statement, committed on its own, so one
//! round trip and one WAL flush instead of a transaction's eight round trips. Anything else (a
//! known run, a run the database refuses) takes the general path above.

use std::collections::HashMap;
use std::sync::LazyLock;

use diesel::QueryableByName;
use diesel::result::{DatabaseErrorKind, Error as DieselError, QueryResult};
use diesel::sql_types::{Array, Int4, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, RunQueryDsl, TransactionManager,
};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::error::{is_data_error, is_retryable};
use crate::db::prepared::prepared;
use crate::model::input::FieldError;
use crate::model::{NewRun, RunStatus};
use crate::rollup::{self, Deltas, DeltasWritten, RunKey, SkipTriggers};

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

#[derive(QueryableByName)]
struct Written {
    #[diesel(sql_type = SqlUuid)]
    run_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    written_at: OffsetDateTime,
}

#[derive(QueryableByName)]
struct Existing {
    #[diesel(sql_type = SqlUuid)]
    run_id: Uuid,
    #[diesel(sql_type = Text)]
    status: String,
}

const INSERT_RUNS: &str = "INSERT INTO agent_runs \
    (run_id, agent_id, agent_version, environment, status, started_at, ended_at) \
    SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[]) \
    ON CONFLICT (run_id) DO NOTHING \
    RETURNING run_id, created_at, now() AS written_at";

const LOCK_EXISTING: &str = "SELECT run_id, status::text AS status FROM agent_runs WHERE run_id = ANY($1) ORDER BY run_id FOR UPDATE";

const UPDATE_RUNS: &str = "UPDATE agent_runs AS r SET \
    agent_id = u.agent_id, agent_version = u.agent_version, environment = u.environment, \
    status = u.status, started_at = u.started_at, ended_at = u.ended_at \
    FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[]) \
    AS u(run_id, agent_id, agent_version, environment, status, started_at, ended_at) \
    WHERE r.run_id = u.run_id \
    RETURNING r.run_id, r.created_at, now() AS written_at";

const INSERT_STEPS: &str = "INSERT INTO agent_steps \
    (step_id, run_id, seq, step_type, name, latency_ms, started_at, ended_at, metadata, model, input_tokens, output_tokens) \
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::text[], $5::text[], $6::int4[], \
    $7::timestamptz[], $8::timestamptz[], $9::jsonb[], $10::text[], $11::int4[], $12::int4[])";

const INSERT_FAILURES: &str = "INSERT INTO agent_failures \
    (failure_id, run_id, step_id, failure_type, failure_code, message) \
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[])";

/// A new run with its steps, failures and rollup deltas in one statement, run outside any
/// transaction block: PostgreSQL commits it on its own (the answer arrives after the commit),
/// so the whole write is one round trip. Only for a run not yet stored: when the run_id exists
/// the run insert does nothing and so, guarded by `EXISTS (SELECT FROM run)`, does every other
/// insert — the statement changes nothing and the caller takes the general path.
///
/// The insert triggers skip these rows (their deltas are the `deltas` insert): the run insert
/// turns them off as it reads its one source row, and every other insert waits for it through
/// its guard ([`rollup::single_statement`]). The foreign keys of steps and failures are checked
/// at the end of the statement, when the run and the steps are in.
static WRITE_NEW_RUN: LazyLock<String> = LazyLock::new(|| {
    rollup::single_statement(
        "WITH run AS (\
         INSERT INTO agent_runs (run_id, agent_id, agent_version, environment, status, started_at, ended_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[]) \
         WHERE {triggers_off} \
         ON CONFLICT (run_id) DO NOTHING \
         RETURNING run_id, created_at, now() AS written_at), \
         steps AS (INSERT INTO agent_steps \
         (step_id, run_id, seq, step_type, name, latency_ms, started_at, ended_at, metadata, model, input_tokens, output_tokens) \
         SELECT * FROM UNNEST($8::uuid[], $9::uuid[], $10::int4[], $11::text[], $12::text[], $13::int4[], \
         $14::timestamptz[], $15::timestamptz[], $16::jsonb[], $17::text[], $18::int4[], $19::int4[]) \
         WHERE EXISTS (SELECT FROM run)), \
         failures AS (INSERT INTO agent_failures (failure_id, run_id, step_id, failure_type, failure_code, message) \
         SELECT * FROM UNNEST($20::uuid[], $21::uuid[], $22::uuid[], $23::text[], $24::text[], $25::text[]) \
         WHERE EXISTS (SELECT FROM run)), \
         deltas AS ({insert_deltas} WHERE EXISTS (SELECT FROM run)) \
         SELECT run_id, created_at, written_at FROM run",
        26,
    )
});

/// How many times a transaction that deadlocked or failed to serialize is tried again.
const RETRIES: usize = 3;

/// Writes runs with distinct `run_id`s in one transaction; outcomes come in input order.
/// An `Err` means nothing was written (the database is unavailable or broken).
pub async fn write_runs(
    conn: &mut AsyncPgConnection,
    runs: &[&NewRun],
) -> QueryResult<Vec<Outcome>> {
    // A consistent lock order (by run_id) keeps concurrent batches from deadlocking.
    let mut sorted: Vec<&NewRun> = runs.to_vec();
    sorted.sort_by_key(|r| r.run_id);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match conn
            .transaction(async |conn| write_or_fall_back(conn, &sorted, runs).await)
            .await
        {
            Err(err) if attempt < RETRIES && is_retryable(&err) => continue,
            result => return result,
        }
    }
}

/// The set-based write of `sorted` in a savepoint; if one run's data breaks it, each run of
/// `runs` in its own savepoint, in input order (so the first of two clashing runs wins).
async fn write_or_fall_back(
    conn: &mut AsyncPgConnection,
    sorted: &[&NewRun],
    runs: &[&NewRun],
) -> QueryResult<Vec<Outcome>> {
    let err = match conn
        .transaction(async |conn| write_set(conn, sorted).await)
        .await
    {
        Ok(outcomes) => {
            let mut by_id: HashMap<Uuid, Outcome> =
                sorted.iter().map(|r| r.run_id).zip(outcomes).collect();
            return Ok(runs
                .iter()
                .map(|r| by_id.remove(&r.run_id).unwrap_or(Outcome::Unchanged))
                .collect());
        }
        Err(err) if is_data_error(&err) => err,
        Err(err) => return Err(err),
    };
    if runs.len() == 1 {
        return Ok(vec![Outcome::Rejected(describe_data_error(&err))]);
    }
    let mut outcomes = Vec::with_capacity(runs.len());
    for run in runs {
        match conn
            .transaction(async |conn| write_set(conn, &[*run]).await)
            .await
        {
            Ok(mut one) => outcomes.push(one.pop().unwrap_or(Outcome::Unchanged)),
            Err(err) if is_data_error(&err) => {
                outcomes.push(Outcome::Rejected(describe_data_error(&err)))
            }
            Err(err) => return Err(err),
        }
    }
    Ok(outcomes)
}

fn describe_data_error(err: &DieselError) -> Vec<FieldError> {
    let (loc, msg) = match err {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some("agent_steps_pkey") =>
        {
            (
                vec![Value::from("steps")],
                "a step_id of this run already belongs to another run".to_owned(),
            )
        }
        DieselError::DatabaseError(_, info) => (
            vec![],
            match info.constraint_name() {
                Some(constraint) => format!("rejected by the database (constraint {constraint})"),
                None => format!("rejected by the database: {}", info.message()),
            },
        ),
        other => (vec![], format!("rejected by the database: {other}")),
    };
    vec![FieldError::new("value_error", loc, msg)]
}

/// The run columns of `runs`, as arrays for UNNEST.
macro_rules! bind_run_columns {
    ($query:expr, $runs:expr) => {{
        let runs = $runs;
        $query
            .bind::<Array<SqlUuid>, _>(runs.iter().map(|r| r.run_id).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(runs.iter().map(|r| r.agent_id.as_str()).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(
                runs.iter()
                    .map(|r| r.agent_version.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                runs.iter()
                    .map(|r| r.environment.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(runs.iter().map(|r| r.status.as_str()).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(runs.iter().map(|r| r.started_at).collect::<Vec<_>>())
            .bind::<Array<Nullable<Timestamptz>>, _>(
                runs.iter().map(|r| r.ended_at).collect::<Vec<_>>(),
            )
    }};
}

/// One transaction's work for runs sorted by `run_id` with distinct ids. Its inserts add their
/// own rollup deltas; deletes and updates (of a replaced run) go through the triggers.
async fn write_set(conn: &mut AsyncPgConnection, runs: &[&NewRun]) -> QueryResult<Vec<Outcome>> {
    rollup::without_insert_triggers(conn, async |conn, skip| {
        write_counted(conn, runs, skip).await
    })
    .await
}

/// [`write_set`] with the insert triggers off: the deltas of its inserts are `skip`'s to write.
async fn write_counted(
    conn: &mut AsyncPgConnection,
    runs: &[&NewRun],
    skip: SkipTriggers,
) -> QueryResult<(Vec<Outcome>, DeltasWritten)> {
    let inserted: Vec<Written> = bind_run_columns!(prepared(INSERT_RUNS), runs)
        .load(conn)
        .await?;
    let mut outcomes: HashMap<Uuid, Outcome> = inserted
        .into_iter()
        .map(|w| {
            (
                w.run_id,
                Outcome::Created {
                    created_at: w.created_at,
                    written_at: w.written_at,
                },
            )
        })
        .collect();

    let known: Vec<Uuid> = runs
        .iter()
        .map(|r| r.run_id)
        .filter(|id| !outcomes.contains_key(id))
        .collect();
    let mut replace: Vec<&NewRun> = Vec::new();
    if !known.is_empty() {
        let existing: Vec<Existing> = prepared(LOCK_EXISTING)
            .bind::<Array<SqlUuid>, _>(&known)
            .load(conn)
            .await?;
        let running: Vec<Uuid> = existing
            .iter()
            .filter(|e| RunStatus::parse(&e.status).is_some_and(|s| !s.is_final()))
            .map(|e| e.run_id)
            .collect();
        for e in &existing {
            outcomes.entry(e.run_id).or_insert(Outcome::Unchanged);
        }
        replace = runs
            .iter()
            .copied()
            .filter(|r| running.contains(&r.run_id))
            .collect();
    }
    if !replace.is_empty() {
        let ids: Vec<Uuid> = replace.iter().map(|r| r.run_id).collect();
        prepared("DELETE FROM agent_failures WHERE run_id = ANY($1)")
            .bind::<Array<SqlUuid>, _>(&ids)
            .execute(conn)
            .await?;
        prepared("DELETE FROM agent_steps WHERE run_id = ANY($1)")
            .bind::<Array<SqlUuid>, _>(&ids)
            .execute(conn)
            .await?;
        let updated: Vec<Written> = bind_run_columns!(prepared(UPDATE_RUNS), &replace)
            .load(conn)
            .await?;
        for w in updated {
            outcomes.insert(
                w.run_id,
                Outcome::Replaced {
                    created_at: w.created_at,
                    written_at: w.written_at,
                },
            );
        }
    }

    let fresh: Vec<&NewRun> = runs
        .iter()
        .copied()
        .filter(|r| {
            matches!(
                outcomes.get(&r.run_id),
                Some(Outcome::Created { .. } | Outcome::Replaced { .. })
            )
        })
        .collect();
    insert_children(conn, &fresh).await?;
    let mut deltas = Deltas::default();
    for run in &fresh {
        if matches!(outcomes.get(&run.run_id), Some(Outcome::Created { .. })) {
            deltas.run(RunKey::of(run), run.status, run.ended_at);
        }
        deltas.children(run);
    }
    let written = skip.write(conn, &deltas).await?;

    let outcomes = runs
        .iter()
        .map(|r| {
            // Present in neither the insert nor the lock: deleted by another request meanwhile.
            outcomes.remove(&r.run_id).ok_or(DieselError::DatabaseError(
                DatabaseErrorKind::SerializationFailure,
                Box::new(format!("run {} was deleted while being written", r.run_id)),
            ))
        })
        .collect::<QueryResult<_>>()?;
    Ok((outcomes, written))
}

/// The steps of `runs` with their run's id.
fn run_steps<'a>(runs: &[&'a NewRun]) -> Vec<(Uuid, &'a crate::model::NewStep)> {
    runs.iter()
        .flat_map(|r| r.steps.iter().map(move |s| (r.run_id, s)))
        .collect()
}

/// The failures of `runs` with their run's id.
fn run_failures<'a>(runs: &[&'a NewRun]) -> Vec<(Uuid, &'a crate::model::NewFailure)> {
    runs.iter()
        .flat_map(|r| r.failures.iter().map(move |f| (r.run_id, f)))
        .collect()
}

/// The step columns of `(run_id, step)` pairs, as arrays for UNNEST.
macro_rules! bind_step_columns {
    ($query:expr, $steps:expr) => {{
        let steps = $steps;
        $query
            .bind::<Array<SqlUuid>, _>(steps.iter().map(|(_, s)| s.step_id).collect::<Vec<_>>())
            .bind::<Array<SqlUuid>, _>(steps.iter().map(|(run_id, _)| *run_id).collect::<Vec<_>>())
            .bind::<Array<Int4>, _>(steps.iter().map(|(_, s)| s.seq).collect::<Vec<_>>())
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
    }};
}

/// The failure columns of `(run_id, failure)` pairs, as arrays for UNNEST.
macro_rules! bind_failure_columns {
    ($query:expr, $failures:expr) => {{
        let failures = $failures;
        $query
            .bind::<Array<SqlUuid>, _>(
                failures
                    .iter()
                    .map(|(_, f)| f.failure_id)
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<SqlUuid>, _>(
                failures
                    .iter()
                    .map(|(run_id, _)| *run_id)
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<SqlUuid>>, _>(
                failures.iter().map(|(_, f)| f.step_id).collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                failures
                    .iter()
                    .map(|(_, f)| f.failure_type.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                failures
                    .iter()
                    .map(|(_, f)| f.failure_code.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                failures
                    .iter()
                    .map(|(_, f)| f.message.as_str())
                    .collect::<Vec<_>>(),
            )
    }};
}

async fn insert_children(conn: &mut AsyncPgConnection, runs: &[&NewRun]) -> QueryResult<()> {
    let steps = run_steps(runs);
    if !steps.is_empty() {
        bind_step_columns!(prepared(INSERT_STEPS), &steps)
            .execute(conn)
            .await?;
    }
    let failures = run_failures(runs);
    if !failures.is_empty() {
        bind_failure_columns!(prepared(INSERT_FAILURES), &failures)
            .execute(conn)
            .await?;
    }
    Ok(())
}

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
    let query = bind_run_columns!(prepared(WRITE_NEW_RUN.as_str()), [run]);
    let query = bind_step_columns!(query, run_steps(&[run]));
    let query = bind_failure_columns!(query, run_failures(&[run]));
    let written: Vec<Written> = deltas.bind(query).load(conn).await?;
    Ok(written.into_iter().next().map(|w| Outcome::Created {
        created_at: w.created_at,
        written_at: w.written_at,
    }))
}

/// Erases a run with its steps and failures; `false` when there was no such run.
pub async fn delete_run(conn: &mut AsyncPgConnection, run_id: Uuid) -> QueryResult<bool> {
    let deleted = prepared("DELETE FROM agent_runs WHERE run_id = $1")
        .bind::<SqlUuid, _>(run_id)
        .execute(conn)
        .await?;
    Ok(deleted > 0)
}

/// Deletes at most `batch` runs that started before `cutoff`; returns how many it deleted.
pub async fn purge_before(
    conn: &mut AsyncPgConnection,
    cutoff: OffsetDateTime,
    batch: u32,
) -> QueryResult<usize> {
    prepared(
        "DELETE FROM agent_runs WHERE run_id IN \
         (SELECT run_id FROM agent_runs WHERE started_at < $1 ORDER BY started_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<Timestamptz, _>(cutoff)
    .bind::<diesel::sql_types::BigInt, _>(i64::from(batch))
    .execute(conn)
    .await
}
