//! The write path: validated runs into PostgreSQL, set-based.
//!
//! All runs of one call share a transaction and each statement handles every run at once
//! (`INSERT … SELECT FROM UNNEST(…)`), so a batch of 1,000 runs is a handful of statements. A
//! run's rows commit together; a resend of a final run changes nothing; a run stored as
//! `running` is replaced. When a set-based statement fails on one run's data (a `step_id` that
//! belongs to another run), the runs are written again one by one, each in its own savepoint, so
//! the others are not lost.

use std::collections::HashMap;

use diesel::QueryableByName;
use diesel::result::{DatabaseErrorKind, Error as DieselError, QueryResult};
use diesel::sql_types::{Array, Int4, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::prepared::prepared;
use crate::error::is_transient;
use crate::ingest::rollup::{self, Deltas, RunKey};
use crate::model::input::FieldError;
use crate::model::{NewRun, RunStatus};

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

pub(crate) fn is_retryable(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
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

/// Errors caused by one run's data rather than by the database's state.
fn is_data_error(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::UniqueViolation
            | DatabaseErrorKind::ForeignKeyViolation
            | DatabaseErrorKind::CheckViolation
            | DatabaseErrorKind::NotNullViolation => true,
            DatabaseErrorKind::Unknown => {
                let msg = info.message();
                !is_transient(err)
                    && (msg.contains("value too long")
                        || msg.contains("out of range")
                        || msg.contains("invalid input")
                        || msg.contains("Unicode")
                        || msg.contains("invalid byte sequence"))
            }
            _ => false,
        },
        _ => false,
    }
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

/// One transaction's work for runs sorted by `run_id` with distinct ids.
async fn write_set(conn: &mut AsyncPgConnection, runs: &[&NewRun]) -> QueryResult<Vec<Outcome>> {
    // This transaction's inserts add their own rollup deltas (below): the insert triggers skip
    // them. Deletes and updates (of a replaced run) still go through the triggers.
    prepared(rollup::SKIP_INSERT_TRIGGERS).execute(conn).await?;
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
            deltas.run(RunKey::of(run), run.status.as_str(), run.ended_at);
        }
        deltas.children(run);
    }
    deltas.insert(conn).await?;

    runs.iter()
        .map(|r| {
            // Present in neither the insert nor the lock: deleted by another request meanwhile.
            outcomes.remove(&r.run_id).ok_or(DieselError::DatabaseError(
                DatabaseErrorKind::SerializationFailure,
                Box::new(format!("run {} was deleted while being written", r.run_id)),
            ))
        })
        .collect()
}

async fn insert_children(conn: &mut AsyncPgConnection, runs: &[&NewRun]) -> QueryResult<()> {
    let steps: Vec<(Uuid, &crate::model::NewStep)> = runs
        .iter()
        .flat_map(|r| r.steps.iter().map(move |s| (r.run_id, s)))
        .collect();
    if !steps.is_empty() {
        prepared(INSERT_STEPS)
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
            .execute(conn)
            .await?;
    }
    let failures: Vec<(Uuid, &crate::model::NewFailure)> = runs
        .iter()
        .flat_map(|r| r.failures.iter().map(move |f| (r.run_id, f)))
        .collect();
    if !failures.is_empty() {
        prepared(INSERT_FAILURES)
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
            .execute(conn)
            .await?;
    }
    Ok(())
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
