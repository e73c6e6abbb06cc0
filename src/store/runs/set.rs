//! Runs written set-based in one transaction, with a fallback run by run in savepoints
//! ([`write_runs`]).

use std::collections::HashMap;
use std::sync::LazyLock;

use diesel::QueryableByName;
use diesel::result::{DatabaseErrorKind, Error as DieselError, QueryResult};
use diesel::sql_types::{Array, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use super::rows::{
    NativeRuns, Outcome, RETURNING_WRITTEN, Written, failure_rows, run_rows, step_rows,
};
use crate::db::error::is_data_error;
use crate::db::prepared::prepared;
use crate::model::input::FieldError;
use crate::model::{NewRun, RunStatus};
use crate::rollup::{self, Deltas, DeltasWritten, RunKey, SkipTriggers};
use crate::store::batch::{Batch, FailureRows, StepRows, TableBatch};
use crate::store::retry;

#[derive(QueryableByName)]
struct Existing {
    #[diesel(sql_type = SqlUuid)]
    run_id: Uuid,
    #[diesel(sql_type = Text)]
    status: String,
}

static INSERT_RUNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} ON CONFLICT (run_id) DO NOTHING {RETURNING_WRITTEN}",
        NativeRuns::insert(1)
    )
});

const LOCK_EXISTING: &str = "SELECT run_id, status::text AS status FROM agent_runs WHERE run_id = ANY($1) ORDER BY run_id FOR UPDATE";

/// Every column of a stored run set from the rows (its decisions and signals too), found by
/// `run_id`.
static UPDATE_RUNS: LazyLock<String> = LazyLock::new(|| {
    let set: Vec<String> = NativeRuns::columns()
        .iter()
        .filter(|(name, _)| *name != "run_id")
        .map(|(name, _)| format!("{name} = u.{name}"))
        .collect();
    format!(
        "UPDATE agent_runs AS r SET {} FROM {} WHERE r.run_id = u.run_id \
         RETURNING r.run_id, r.created_at, now() AS written_at",
        set.join(", "),
        NativeRuns::unnest_as(1, "u")
    )
});

static INSERT_STEPS: LazyLock<String> = LazyLock::new(|| StepRows::insert(1));

static INSERT_FAILURES: LazyLock<String> = LazyLock::new(|| FailureRows::insert(1));

/// A replaced run's children (its decisions and signals are in its row, which the update sets).
const DELETE_CHILDREN: [&str; 2] = [
    "DELETE FROM agent_failures WHERE run_id = ANY($1)",
    "DELETE FROM agent_steps WHERE run_id = ANY($1)",
];

/// Writes runs with distinct `run_id`s in one transaction; outcomes come in input order.
/// An `Err` means nothing was written (the database is unavailable or broken).
pub async fn write_runs(
    conn: &mut AsyncPgConnection,
    runs: &[&NewRun],
) -> QueryResult<Vec<Outcome>> {
    // A consistent lock order (by run_id) keeps concurrent batches from deadlocking.
    let mut sorted: Vec<&NewRun> = runs.to_vec();
    sorted.sort_by_key(|r| r.run_id);
    retry::on_conflict!(
        conn.transaction(async |conn| write_or_fall_back(conn, &sorted, runs).await)
            .await
    )
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
    let inserted: Vec<Written> = run_rows(runs)
        .bind(prepared(INSERT_RUNS.as_str()))
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
        for sql in DELETE_CHILDREN {
            prepared(sql)
                .bind::<Array<SqlUuid>, _>(&ids)
                .execute(conn)
                .await?;
        }
        let updated: Vec<Written> = run_rows(&replace)
            .bind(prepared(UPDATE_RUNS.as_str()))
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

async fn insert_children(conn: &mut AsyncPgConnection, runs: &[&NewRun]) -> QueryResult<()> {
    insert(conn, &INSERT_STEPS, step_rows(runs)).await?;
    insert(conn, &INSERT_FAILURES, failure_rows(runs)).await
}

/// Runs the insert `sql` of `rows`; with no rows, sends nothing (no round trip for nothing).
async fn insert<'a>(
    conn: &mut AsyncPgConnection,
    sql: &'static str,
    rows: impl Batch<'a>,
) -> QueryResult<()> {
    if !rows.is_empty() {
        rows.bind(prepared(sql)).execute(conn).await?;
    }
    Ok(())
}
