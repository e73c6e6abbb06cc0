//! `GET /v1/stats` and `GET /v1/agents`, computed in PostgreSQL (aggregates over the filtered
//! runs; nothing is loaded row by row into the server).

use std::collections::BTreeMap;

use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{Array, BigInt, Double, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::filters::{RunFilter, apply_binds};
use crate::db::prepared::prepared;
use crate::model::RunStatus;

/// Percentiles of a distribution, in milliseconds; null when there is no data.
#[derive(Debug, Default, PartialEq, Serialize, ToSchema, QueryableByName)]
pub struct Percentiles {
    #[diesel(sql_type = Nullable<Double>)]
    pub p50: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub p95: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub p99: Option<f64>,
}

/// Failure and latency statistics of the runs a filter selects.
#[derive(Debug, PartialEq, Serialize, ToSchema)]
pub struct Stats {
    pub total_runs: i64,
    /// Failure records (a run may have several).
    pub total_failures: i64,
    /// Percent of final runs (success, failure, partial) that are success or partial; 0.0 when none.
    pub success_rate: f64,
    /// Mean step latency; 0.0 when there are no steps.
    pub avg_latency_ms: f64,
    /// `"type/code": count` of failure records.
    pub failure_breakdown: BTreeMap<String, i64>,
    /// `step_type: count` of steps.
    pub step_type_breakdown: BTreeMap<String, i64>,
    /// `status: count` of runs, every status present.
    pub status_breakdown: BTreeMap<String, i64>,
    /// Run duration (`ended_at - started_at`) of runs that have ended.
    pub run_duration_ms: Percentiles,
    pub step_latency_ms: Percentiles,
    /// Per model: the steps that named it and their token usage.
    pub tokens_by_model: BTreeMap<String, ModelUsage>,
}

/// Token usage of the steps of one model.
#[derive(Debug, PartialEq, Serialize, ToSchema, QueryableByName)]
pub struct ModelUsage {
    #[diesel(sql_type = BigInt)]
    pub steps: i64,
    #[diesel(sql_type = BigInt)]
    pub input_tokens: i64,
    #[diesel(sql_type = BigInt)]
    pub output_tokens: i64,
}

#[derive(QueryableByName)]
struct ModelRow {
    #[diesel(sql_type = Text)]
    model: String,
    #[diesel(embed)]
    usage: ModelUsage,
}

#[derive(QueryableByName)]
struct RunAggregate {
    #[diesel(sql_type = BigInt)]
    success: i64,
    #[diesel(sql_type = BigInt)]
    failure: i64,
    #[diesel(sql_type = BigInt)]
    partial: i64,
    #[diesel(sql_type = BigInt)]
    running: i64,
    #[diesel(embed)]
    durations: Percentiles,
}

#[derive(QueryableByName)]
struct StepAggregate {
    /// NULL on the grand-total row.
    #[diesel(sql_type = Nullable<Text>)]
    step_type: Option<String>,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Nullable<Double>)]
    avg_ms: Option<f64>,
    #[diesel(embed)]
    latencies: Percentiles,
}

#[derive(QueryableByName)]
struct FailureCount {
    #[diesel(sql_type = Text)]
    failure_type: String,
    #[diesel(sql_type = Text)]
    failure_code: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

const PERCENTILES: &str = "percentile_cont(0.5) WITHIN GROUP (ORDER BY {x}) AS p50, \
     percentile_cont(0.95) WITHIN GROUP (ORDER BY {x}) AS p95, \
     percentile_cont(0.99) WITHIN GROUP (ORDER BY {x}) AS p99";

fn percentiles_of(expr: &str) -> String {
    PERCENTILES.replace("{x}", expr)
}

pub async fn stats(conn: &mut AsyncPgConnection, filter: &RunFilter) -> QueryResult<Stats> {
    let mut binds = Vec::new();
    let conditions = filter.conditions(&mut binds);
    let runs_sql = format!(
        "SELECT count(*) FILTER (WHERE r.status = 'success') AS success, \
         count(*) FILTER (WHERE r.status = 'failure') AS failure, \
         count(*) FILTER (WHERE r.status = 'partial') AS partial, \
         count(*) FILTER (WHERE r.status = 'running') AS running, {} \
         FROM agent_runs r WHERE {conditions}",
        percentiles_of("(extract(epoch FROM r.ended_at - r.started_at) * 1000)::float8")
    );
    let runs: RunAggregate = apply_binds(prepared(runs_sql), binds)
        .get_result(conn)
        .await?;

    let mut binds = Vec::new();
    let conditions = filter.conditions(&mut binds);
    let steps_sql = format!(
        "SELECT s.step_type::text AS step_type, count(*) AS n, avg(s.latency_ms)::float8 AS avg_ms, {} \
         FROM agent_steps s JOIN agent_runs r ON r.run_id = s.run_id WHERE {conditions} \
         GROUP BY GROUPING SETS ((s.step_type), ())",
        percentiles_of("s.latency_ms::float8")
    );
    let steps: Vec<StepAggregate> = apply_binds(prepared(steps_sql), binds).load(conn).await?;

    let mut binds = Vec::new();
    let conditions = filter.conditions(&mut binds);
    let failures_sql = format!(
        "SELECT f.failure_type::text AS failure_type, f.failure_code::text AS failure_code, count(*) AS n \
         FROM agent_failures f JOIN agent_runs r ON r.run_id = f.run_id WHERE {conditions} GROUP BY 1, 2"
    );
    let failures: Vec<FailureCount> = apply_binds(prepared(failures_sql), binds)
        .load(conn)
        .await?;

    let mut binds = Vec::new();
    let conditions = filter.conditions(&mut binds);
    let models_sql = format!(
        "SELECT s.model::text AS model, count(*) AS steps, coalesce(sum(s.input_tokens), 0)::bigint AS input_tokens, \
         coalesce(sum(s.output_tokens), 0)::bigint AS output_tokens \
         FROM agent_steps s JOIN agent_runs r ON r.run_id = s.run_id WHERE {conditions} AND s.model IS NOT NULL GROUP BY s.model"
    );
    let models: Vec<ModelRow> = apply_binds(prepared(models_sql), binds).load(conn).await?;

    let finals = runs.success + runs.failure + runs.partial;
    let success_rate = match finals {
        0 => 0.0,
        n => ((runs.success + runs.partial) as f64 * 100.0 / n as f64 * 100.0).round() / 100.0,
    };
    let step_type_breakdown = steps
        .iter()
        .filter_map(|s| Some((s.step_type.clone()?, s.n)))
        .collect();
    let total = steps.into_iter().find(|s| s.step_type.is_none());
    Ok(Stats {
        total_runs: runs.success + runs.failure + runs.partial + runs.running,
        total_failures: failures.iter().map(|f| f.n).sum(),
        success_rate,
        avg_latency_ms: total.as_ref().and_then(|t| t.avg_ms).unwrap_or(0.0),
        failure_breakdown: failures
            .iter()
            .map(|f| (format!("{}/{}", f.failure_type, f.failure_code), f.n))
            .collect(),
        step_type_breakdown,
        status_breakdown: RunStatus::VALUES
            .iter()
            .zip([runs.success, runs.failure, runs.partial, runs.running])
            .map(|(status, n)| ((*status).to_owned(), n))
            .collect(),
        run_duration_ms: runs.durations,
        step_latency_ms: total.map(|t| t.latencies).unwrap_or_default(),
        tokens_by_model: models.into_iter().map(|m| (m.model, m.usage)).collect(),
    })
}

/// One agent: what versions and environments it ran in, how much, how often it failed.
#[derive(Debug, PartialEq, Serialize, ToSchema, QueryableByName)]
pub struct Agent {
    #[diesel(sql_type = Text)]
    pub agent_id: String,
    #[diesel(sql_type = Array<Text>)]
    pub versions: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    pub environments: Vec<String>,
    #[diesel(sql_type = BigInt)]
    pub run_count: i64,
    /// Runs whose status is `failure`.
    #[diesel(sql_type = BigInt)]
    pub failed_run_count: i64,
    /// Failure records across its runs.
    #[diesel(sql_type = BigInt)]
    pub failure_count: i64,
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub last_run_at: OffsetDateTime,
}

/// Every agent, most recently active first.
pub async fn agents(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Agent>> {
    prepared(
        "SELECT r.agent_id::text AS agent_id, \
         array_agg(DISTINCT r.agent_version::text) AS versions, \
         array_agg(DISTINCT r.environment::text) AS environments, \
         count(*) AS run_count, \
         count(*) FILTER (WHERE r.status = 'failure') AS failed_run_count, \
         coalesce(sum(fc.n), 0)::bigint AS failure_count, \
         max(r.started_at) AS last_run_at \
         FROM agent_runs r \
         LEFT JOIN (SELECT run_id, count(*) AS n FROM agent_failures GROUP BY run_id) fc ON fc.run_id = r.run_id \
         GROUP BY r.agent_id ORDER BY last_run_at DESC, agent_id",
    )
    .load(conn)
    .await
}
