//! `agenttracer reprice --since …`: the stored costs of a period recomputed with the price table
//! as it is now (docs/cost.md), in bounded batches while ingest goes on.
//!
//! Runs are taken in `(started_at, run_id)` order, a batch at a time, each batch one short
//! transaction that:
//! 1. locks its runs' rows in `run_id` order, the order every writer of runs locks them in, so
//!    a concurrent write of one of them (an OTLP span adding a step, a `running` run replaced)
//!    waits for the batch or the batch for it, and no step is added between the read and the
//!    sums;
//! 2. reads their steps, prices each at its start with the book ([`super::Pricer`]; cached
//!    and reasoning tokens from the metadata, as ingest read them);
//! 3. updates the steps whose cost changed (the update trigger moves their `cost:<model>`
//!    counters in the rollups, in the same transaction) and sets each run's cost to the sum.

use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{
    Array, BigInt, Int8, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Pricer;
use crate::db::prepared::prepared;
use crate::model::cost::{PriceBook, Tokens};
use crate::model::usage_of;

/// Runs per transaction, by default.
pub const BATCH_RUNS: i64 = 500;

/// What a reprice did.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Repriced {
    pub runs: u64,
    pub steps: u64,
    /// Steps whose cost changed.
    pub steps_changed: u64,
    /// Runs whose cost changed.
    pub runs_changed: u64,
    pub batches: u64,
}

#[derive(QueryableByName)]
struct RunAt {
    #[diesel(sql_type = SqlUuid)]
    run_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    started_at: OffsetDateTime,
}

#[derive(QueryableByName)]
struct StepPrice {
    #[diesel(sql_type = SqlUuid)]
    step_id: Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    model: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    started_at: OffsetDateTime,
    #[diesel(sql_type = Nullable<Integer>)]
    input_tokens: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    output_tokens: Option<i32>,
    #[diesel(sql_type = Jsonb)]
    metadata: serde_json::Value,
    #[diesel(sql_type = Nullable<BigInt>)]
    cost_nanos: Option<i64>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Int8)]
    n: i64,
}

/// The next batch of runs that started in `[since, until)` after `after`, in order.
const NEXT_RUNS: &str = "SELECT run_id, started_at FROM agent_runs \
     WHERE started_at >= $1 AND ($2::timestamptz IS NULL OR started_at < $2) \
     AND ($3::timestamptz IS NULL OR (started_at, run_id) > ($3, $4)) \
     ORDER BY started_at, run_id LIMIT $5";

const LOCK_RUNS: &str = "SELECT count(*) AS n FROM (SELECT 1 FROM agent_runs WHERE run_id = ANY($1) ORDER BY run_id FOR UPDATE) x";

const STEPS: &str = "SELECT step_id, model::text AS model, started_at, input_tokens, output_tokens, \
     metadata, cost_nanos FROM agent_steps WHERE run_id = ANY($1)";

const SET_STEPS: &str = "UPDATE agent_steps s SET cost_nanos = u.cost_nanos \
     FROM UNNEST($1::uuid[], $2::int8[]) AS u (step_id, cost_nanos) WHERE s.step_id = u.step_id";

const SET_RUNS: &str = "WITH sums AS (SELECT r.run_id, (SELECT sum(s.cost_nanos) FROM agent_steps s \
     WHERE s.run_id = r.run_id)::int8 AS cost FROM agent_runs r WHERE r.run_id = ANY($1)) \
     UPDATE agent_runs r SET cost_nanos = sums.cost FROM sums \
     WHERE r.run_id = sums.run_id AND r.cost_nanos IS DISTINCT FROM sums.cost \
     RETURNING r.run_id";

/// Reprices the runs that started in `[since, until)` with `book`, `batch` runs per
/// transaction.
pub async fn reprice(
    conn: &mut AsyncPgConnection,
    book: &PriceBook,
    since: OffsetDateTime,
    until: Option<OffsetDateTime>,
    batch: i64,
) -> QueryResult<Repriced> {
    let mut done = Repriced::default();
    let mut after: Option<(OffsetDateTime, Uuid)> = None;
    loop {
        let runs: Vec<RunAt> = prepared(NEXT_RUNS)
            .bind::<Timestamptz, _>(since)
            .bind::<Nullable<Timestamptz>, _>(until)
            .bind::<Nullable<Timestamptz>, _>(after.map(|a| a.0))
            .bind::<SqlUuid, _>(after.map(|a| a.1).unwrap_or_default())
            .bind::<BigInt, _>(batch.max(1))
            .load(conn)
            .await?;
        let Some(last) = runs.last() else {
            return Ok(done);
        };
        after = Some((last.started_at, last.run_id));
        let ids: Vec<Uuid> = runs.iter().map(|r| r.run_id).collect();
        let one = conn
            .transaction(async |conn| reprice_runs(conn, book, &ids).await)
            .await?;
        done.runs += one.runs;
        done.steps += one.steps;
        done.steps_changed += one.steps_changed;
        done.runs_changed += one.runs_changed;
        done.batches += 1;
        tracing::info!(
            runs = done.runs,
            steps_changed = done.steps_changed,
            "reprice progress"
        );
    }
}

/// One batch: runs `ids`, in a transaction.
async fn reprice_runs(
    conn: &mut AsyncPgConnection,
    book: &PriceBook,
    ids: &[Uuid],
) -> QueryResult<Repriced> {
    // A run deleted since it was listed is simply not there.
    let Count { n: runs } = prepared(LOCK_RUNS)
        .bind::<Array<SqlUuid>, _>(ids)
        .get_result(conn)
        .await?;
    let steps: Vec<StepPrice> = prepared(STEPS)
        .bind::<Array<SqlUuid>, _>(ids)
        .load(conn)
        .await?;
    let mut pricer = Pricer::new(book);
    let (mut changed_ids, mut changed_costs) = (Vec::new(), Vec::new());
    for s in &steps {
        let usage = usage_of(&s.metadata);
        let tokens = Tokens::counted(
            s.input_tokens,
            s.output_tokens,
            usage.cached_input_tokens,
            usage.reasoning_tokens,
        );
        let cost = pricer.cost(s.model.as_deref(), s.started_at, tokens);
        if cost != s.cost_nanos {
            changed_ids.push(s.step_id);
            changed_costs.push(cost);
        }
    }
    if !changed_ids.is_empty() {
        prepared(SET_STEPS)
            .bind::<Array<SqlUuid>, _>(&changed_ids)
            .bind::<Array<Nullable<BigInt>>, _>(&changed_costs)
            .execute(conn)
            .await?;
    }
    let runs_changed = prepared(SET_RUNS)
        .bind::<Array<SqlUuid>, _>(ids)
        .execute(conn)
        .await?;
    Ok(Repriced {
        runs: runs as u64,
        steps: steps.len() as u64,
        steps_changed: changed_ids.len() as u64,
        runs_changed: runs_changed as u64,
        batches: 1,
    })
}
