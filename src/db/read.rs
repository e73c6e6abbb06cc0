//! Reading stored runs: a set of runs with their steps and failures in three queries, whatever
//! the number of runs (no query per run).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;
use uuid::Uuid;

use super::schema::{agent_failures, agent_runs, agent_steps};
use crate::model::output::{FailureOut, RunOut, StepOut};

#[derive(Queryable, Selectable)]
#[diesel(table_name = agent_runs, check_for_backend(diesel::pg::Pg))]
pub struct RunRow {
    pub run_id: Uuid,
    pub agent_id: String,
    pub agent_version: String,
    pub environment: String,
    pub status: String,
    pub started_at: OffsetDateTime,
    pub ended_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = agent_steps, check_for_backend(diesel::pg::Pg))]
pub struct StepRow {
    pub step_id: Uuid,
    pub run_id: Uuid,
    pub seq: i32,
    pub step_type: String,
    pub name: String,
    pub latency_ms: i32,
    pub started_at: OffsetDateTime,
    pub ended_at: OffsetDateTime,
    pub metadata: serde_json::Value,
    pub created_at: OffsetDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = agent_failures, check_for_backend(diesel::pg::Pg))]
pub struct FailureRow {
    pub failure_id: Uuid,
    pub run_id: Uuid,
    pub step_id: Option<Uuid>,
    pub failure_type: String,
    pub failure_code: String,
    pub message: String,
    pub created_at: OffsetDateTime,
}

impl From<StepRow> for StepOut {
    fn from(r: StepRow) -> Self {
        StepOut {
            step_id: r.step_id,
            run_id: r.run_id,
            seq: r.seq,
            step_type: r.step_type,
            name: r.name,
            latency_ms: r.latency_ms,
            started_at: r.started_at,
            ended_at: r.ended_at,
            metadata: r.metadata,
            created_at: r.created_at,
        }
    }
}

impl From<FailureRow> for FailureOut {
    fn from(r: FailureRow) -> Self {
        FailureOut {
            failure_id: r.failure_id,
            run_id: r.run_id,
            step_id: r.step_id,
            failure_type: r.failure_type,
            failure_code: r.failure_code,
            message: r.message,
            created_at: r.created_at,
        }
    }
}

/// Attaches steps and failures to already loaded run rows, keeping the rows' order.
pub async fn with_children(
    conn: &mut AsyncPgConnection,
    runs: Vec<RunRow>,
) -> QueryResult<Vec<RunOut>> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = runs.iter().map(|r| r.run_id).collect();
    let steps: Vec<StepRow> = agent_steps::table
        .filter(agent_steps::run_id.eq_any(&ids))
        .order((agent_steps::run_id, agent_steps::seq))
        .select(StepRow::as_select())
        .load(conn)
        .await?;
    let failures: Vec<FailureRow> = agent_failures::table
        .filter(agent_failures::run_id.eq_any(&ids))
        .order((agent_failures::created_at, agent_failures::failure_id))
        .select(FailureRow::as_select())
        .load(conn)
        .await?;
    let mut steps_by_run: HashMap<Uuid, Vec<StepOut>> = HashMap::new();
    for step in steps {
        steps_by_run
            .entry(step.run_id)
            .or_default()
            .push(step.into());
    }
    let mut failures_by_run: HashMap<Uuid, Vec<FailureOut>> = HashMap::new();
    for failure in failures {
        failures_by_run
            .entry(failure.run_id)
            .or_default()
            .push(failure.into());
    }
    Ok(runs
        .into_iter()
        .map(|r| RunOut {
            steps: steps_by_run.remove(&r.run_id).unwrap_or_default(),
            failures: failures_by_run.remove(&r.run_id).unwrap_or_default(),
            run_id: r.run_id,
            agent_id: r.agent_id,
            agent_version: r.agent_version,
            environment: r.environment,
            status: r.status,
            started_at: r.started_at,
            ended_at: r.ended_at,
            created_at: r.created_at,
        })
        .collect())
}

/// One stored run with its steps and failures, or `None`.
pub async fn load_run(conn: &mut AsyncPgConnection, run_id: Uuid) -> QueryResult<Option<RunOut>> {
    let rows: Vec<RunRow> = agent_runs::table
        .filter(agent_runs::run_id.eq(run_id))
        .select(RunRow::as_select())
        .load(conn)
        .await?;
    Ok(with_children(conn, rows).await?.into_iter().next())
}
