//! The query listener's routes: one run, its steps, its failures.

use actix_web::{HttpResponse, get, web};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::read::{self, FailureRow, StepRow};
use crate::db::schema::{agent_failures, agent_runs, agent_steps};
use crate::error::ApiError;
use crate::ingest::parse_run_id;
use crate::model::output::{FailureOut, StepOut};
use crate::state::AppState;

/// Mounts the query routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_run)
        .service(get_run_steps)
        .service(get_run_failures);
}

fn not_found(run_id: Uuid) -> ApiError {
    ApiError::NotFound(format!("Run {run_id} not found"))
}

/// One run with its steps (by seq) and failures.
#[get("/v1/runs/{run_id}")]
async fn get_run(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let run_id = parse_run_id(&path)?;
    let pool = state.db_read()?;
    let run = state
        .bounded(async {
            let mut conn = pool.get().await?;
            Ok(read::load_run(&mut conn, run_id).await?)
        })
        .await?;
    run.map(|r| HttpResponse::Ok().json(r))
        .ok_or_else(|| not_found(run_id))
}

async fn run_exists(conn: &mut diesel_async::AsyncPgConnection, run_id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        agent_runs::table.filter(agent_runs::run_id.eq(run_id)),
    ))
    .get_result(conn)
    .await
}

/// A run's steps, by seq; 404 for an unknown run.
#[get("/v1/runs/{run_id}/steps")]
async fn get_run_steps(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let run_id = parse_run_id(&path)?;
    let pool = state.db_read()?;
    let steps = state
        .bounded(async {
            let mut conn = pool.get().await?;
            if !run_exists(&mut conn, run_id).await? {
                return Ok(None);
            }
            let rows: Vec<StepRow> = agent_steps::table
                .filter(agent_steps::run_id.eq(run_id))
                .order(agent_steps::seq)
                .select(StepRow::as_select())
                .load(&mut conn)
                .await?;
            Ok(Some(
                rows.into_iter().map(StepOut::from).collect::<Vec<_>>(),
            ))
        })
        .await?;
    steps
        .map(|s| HttpResponse::Ok().json(s))
        .ok_or_else(|| not_found(run_id))
}

/// A run's failures; 404 for an unknown run.
#[get("/v1/runs/{run_id}/failures")]
async fn get_run_failures(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let run_id = parse_run_id(&path)?;
    let pool = state.db_read()?;
    let failures = state
        .bounded(async {
            let mut conn = pool.get().await?;
            if !run_exists(&mut conn, run_id).await? {
                return Ok(None);
            }
            let rows: Vec<FailureRow> = agent_failures::table
                .filter(agent_failures::run_id.eq(run_id))
                .order((agent_failures::created_at, agent_failures::failure_id))
                .select(FailureRow::as_select())
                .load(&mut conn)
                .await?;
            Ok(Some(
                rows.into_iter().map(FailureOut::from).collect::<Vec<_>>(),
            ))
        })
        .await?;
    failures
        .map(|f| HttpResponse::Ok().json(f))
        .ok_or_else(|| not_found(run_id))
}
