//! The query listener's routes: runs (list, one, its steps, its failures), stats, agents,
//! sessions.
//! Every route reads through the read-only pool of its [`QueryState`].

pub mod drift;
pub mod failures;
pub mod filters;
pub mod live;
mod prices;
pub mod runs;
pub mod series;
pub mod sessions;
mod state;
pub mod stats;
pub mod stream;
pub mod summary;

use actix_web::{HttpRequest, HttpResponse, get, web};
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::db::read;
use crate::error::{ApiError, ValidationErrors};
use crate::extract::{RunId, RunIdRefused};
use crate::model::output::{FailureOut, RunOut, StepOut};
use crate::openapi::Unavailable;
use filters::{Paging, RunFilter};
pub use state::QueryState;

/// The header that carries the next page's cursor.
pub const NEXT_CURSOR_HEADER: &str = "X-Next-Cursor";
/// The header that counts the runs of a page whose steps were cut to the page's cap.
pub const STEPS_TRUNCATED_HEADER: &str = "X-AgentTracer-Steps-Truncated";

/// Mounts the query routes, with the state they run on.
pub fn configure(state: web::Data<QueryState>) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            // Before `/v1/runs/{run_id}`, which would take `stream` for a run id.
            .service(list_runs)
            .service(stream_runs)
            .service(get_run)
            .service(get_run_steps)
            .service(get_run_failures)
            .service(get_stats)
            .service(get_agents);
        sessions::configure(cfg);
        drift::configure(cfg);
        prices::configure(cfg);
    }
}

fn not_found(run_id: Uuid) -> ApiError {
    ApiError::NotFound(format!("Run {run_id} not found"))
}

/// The `next` link: this request's query with `cursor` in place of `page`.
fn next_link(req: &HttpRequest, pairs: &[(String, String)], cursor: &str) -> String {
    let mut kept: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(k, _)| k != "page" && k != "cursor")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    kept.push(("cursor", cursor));
    let query = serde_urlencoded::to_string(&kept).unwrap_or_default();
    format!("<{}?{query}>; rel=\"next\"", req.path())
}

/// Runs, newest first (`started_at desc, run_id desc`), each with its steps and failures.
#[utoipa::path(
    tag = "query",
    params(RunFilter, Paging),
    responses(
        (status = 200, description = "A page of runs, a bare JSON array. When a next page exists, \
            `X-Next-Cursor` and `Link: <…>; rel=\"next\"` say where it starts.", body = Vec<RunOut>),
        (status = 422, description = "An invalid query parameter, named", body = ValidationErrors),
        Unavailable,
    )
)]
#[get("/v1/runs")]
async fn list_runs(
    req: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let pairs = filters::pairs(req.query_string());
    let (filter, paging) = filters::parse_list(&pairs)?;
    let budget = state.budget;
    let page = state
        .read(async |conn| Ok(runs::list(conn, &filter, &paging, budget).await?))
        .await?;
    let mut res = HttpResponse::Ok();
    if let Some(next) = page.next {
        let cursor = next.encode();
        res.insert_header(("Link", next_link(&req, &pairs, &cursor)));
        res.insert_header((NEXT_CURSOR_HEADER, cursor));
    }
    let truncated = page.runs.iter().filter(|r| r.steps_truncated).count();
    if truncated > 0 {
        res.insert_header((STEPS_TRUNCATED_HEADER, truncated.to_string()));
    }
    Ok(res.json(page.runs))
}

/// Newly committed runs as server-sent events: the list's filters, one `run` event per run in
/// the list's run shape with an `id:` (send it back as `Last-Event-ID` to resume), a heartbeat
/// comment every `query.stream_heartbeat_s`. See docs/api.md.
#[utoipa::path(
    tag = "query",
    params(RunFilter, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event")),
    responses(
        (status = 200, description = "`text/event-stream` of `run` events", content_type = "text/event-stream", body = String),
        (status = 422, description = "An invalid query parameter or Last-Event-ID, named", body = ValidationErrors),
        Unavailable,
    )
)]
#[get("/v1/runs/stream")]
async fn stream_runs(
    req: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    state.ready()?;
    stream::open(&req, &state.live).await
}

/// One run with its steps (by seq) and failures.
#[utoipa::path(
    tag = "query",
    params(RunId),
    responses(
        (status = 200, description = "The run", body = RunOut),
        RunIdRefused,
        Unavailable,
    )
)]
#[get("/v1/runs/{run_id}")]
async fn get_run(
    RunId(run_id): RunId,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let run = state
        .read(async |conn| Ok(read::load_run(conn, run_id).await?))
        .await?;
    run.map(|r| HttpResponse::Ok().json(r))
        .ok_or_else(|| not_found(run_id))
}

/// Reads a list that belongs to one run: 404 when the run is unknown.
async fn rows_of_run<T: serde::Serialize>(
    run_id: Uuid,
    state: &QueryState,
    load: impl AsyncFn(&AsyncPgConnection, Uuid) -> QueryResult<Vec<T>>,
) -> Result<HttpResponse, ApiError> {
    let rows = state
        .read(async |conn| {
            if !read::run_exists(conn, run_id).await? {
                return Ok(None);
            }
            Ok(Some(load(conn, run_id).await?))
        })
        .await?;
    rows.map(|r| HttpResponse::Ok().json(r))
        .ok_or_else(|| not_found(run_id))
}

/// A run's steps, by seq.
#[utoipa::path(
    tag = "query",
    params(RunId),
    responses(
        (status = 200, description = "Every step of the run", body = Vec<StepOut>),
        RunIdRefused,
        Unavailable,
    )
)]
#[get("/v1/runs/{run_id}/steps")]
async fn get_run_steps(
    RunId(run_id): RunId,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    rows_of_run(run_id, &state, read::steps_of).await
}

/// A run's failures.
#[utoipa::path(
    tag = "query",
    params(RunId),
    responses(
        (status = 200, description = "Every failure of the run", body = Vec<FailureOut>),
        RunIdRefused,
        Unavailable,
    )
)]
#[get("/v1/runs/{run_id}/failures")]
async fn get_run_failures(
    RunId(run_id): RunId,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    rows_of_run(run_id, &state, read::failures_of).await
}

/// Failure and latency statistics of the runs the filters select (`status` is ignored).
#[utoipa::path(
    tag = "query",
    params(RunFilter),
    responses(
        (status = 200, description = "Statistics, computed in the database", body = stats::Stats),
        (status = 422, description = "An invalid query parameter, named", body = ValidationErrors),
        Unavailable,
    )
)]
#[get("/v1/stats")]
async fn get_stats(
    req: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let filter = filters::parse_filter(&filters::pairs(req.query_string()), false)?;
    let stats = state
        .read(async |conn| Ok(stats::stats(conn, &filter).await?))
        .await?;
    Ok(HttpResponse::Ok().json(stats))
}

/// One row per agent: versions, environments, run and failure counts, last run time.
#[utoipa::path(
    tag = "query",
    responses(
        (status = 200, description = "Every agent, most recently active first", body = Vec<stats::Agent>),
        Unavailable,
    )
)]
#[get("/v1/agents")]
async fn get_agents(state: web::Data<QueryState>) -> Result<HttpResponse, ApiError> {
    let agents = state
        .read(async |conn| Ok(stats::agents(conn).await?))
        .await?;
    Ok(HttpResponse::Ok().json(agents))
}
