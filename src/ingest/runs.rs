//! `POST /v1/runs` (one run, through the group commit) and `DELETE /v1/runs/{run_id}`, and what
//! the batch route shares with them: the redaction header, the counters, the latency histogram.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, delete, post, web};
use serde_json::Value;

use crate::db::read;
use crate::error::{ApiError, ValidationErrors};
use crate::extract::{RunId, RunIdRefused};
use crate::model::input::{Parsed, RawRun, parse_run};
use crate::model::output::RunOut;
use crate::openapi::{RunIn, Unavailable};

use super::body::{self, Refused};
use super::state::IngestState;
use crate::store::{self, Outcome};

/// The header that tells how many values the privacy policy redacted.
pub const REDACTED_HEADER: &str = "X-AgentTracer-Redacted";

/// An answer of `status`, telling how many values were redacted when any were.
pub(super) fn answer(status: StatusCode, redacted: u32) -> HttpResponseBuilder {
    let mut res = HttpResponse::build(status);
    if redacted > 0 {
        res.insert_header((REDACTED_HEADER, redacted.to_string()));
    }
    res
}

/// Runs `work`, recording its time in `ingest_latency_seconds` under `endpoint`.
pub(super) async fn timed<T>(endpoint: &'static str, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let result = work.await;
    metrics::histogram!("ingest_latency_seconds", "endpoint" => endpoint)
        .record(started.elapsed().as_secs_f64());
    result
}

/// Counts `n` runs refused as invalid.
pub(super) fn record_invalid(n: usize) {
    metrics::counter!("runs_failed_total", "reason" => "invalid").increment(n as u64);
}

/// Ingest one run: 201 new, 200 for a known final run (unchanged) or a replaced `running` one.
#[utoipa::path(
    tag = "ingest",
    request_body(content = RunIn, content_type = "application/json",
        description = "One run. `Content-Encoding: gzip` is accepted; a missing Content-Type is read as JSON."),
    responses(
        (status = 201, description = "Stored; the stored run", body = RunOut,
            headers(("X-AgentTracer-Redacted" = u32, description = "Values redacted (privacy.mode = redact)"))),
        (status = 200, description = "Already stored: the stored run (unchanged if final, replaced if it was running)", body = RunOut),
        Refused,
        (status = 422, description = "Every problem found", body = ValidationErrors),
        Unavailable,
    )
)]
#[post("/v1/runs")]
pub(super) async fn post_run(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    timed("runs", ingest_one(&req, payload, &state)).await
}

async fn ingest_one(
    req: &HttpRequest,
    payload: web::Payload,
    state: &IngestState,
) -> Result<HttpResponse, ApiError> {
    let (value, body) = body::read_json::<RawRun>(req, payload, &state.bodies)
        .await
        .inspect_err(|_| record_invalid(1))?;
    let rules = state.rules;
    let validate = move || parse_run(value, vec![Value::from("body")], &rules);
    // Validation (privacy included) of a large run, off the worker's event loop.
    let parsed = body::off_loop(body.is_large(), validate).await?;
    drop(body);
    let Parsed { mut run, redacted } = parsed.map_err(|errors| {
        record_invalid(1);
        ApiError::validation(errors)
    })?;
    let book = state.price_book().await?;
    crate::cost::price_steps(&book, &mut run.steps);
    let (run, outcome) = state.db.bounded(state.group.write(run)).await?;
    let (status, body) = match outcome {
        Outcome::Created {
            created_at,
            written_at,
        } => (
            StatusCode::CREATED,
            RunOut::from_new(&run, created_at, written_at),
        ),
        Outcome::Replaced {
            created_at,
            written_at,
        } => (
            StatusCode::OK,
            RunOut::from_new(&run, created_at, written_at),
        ),
        Outcome::Unchanged => match state
            .db
            .run(async |conn| Ok(read::load_run(conn, run.run_id).await?))
            .await?
        {
            Some(stored) => (StatusCode::OK, stored),
            None => {
                return Err(ApiError::Unavailable(
                    "Run was deleted while being written, retry".into(),
                ));
            }
        },
        Outcome::Rejected(errors) => {
            let body = [Value::from("body")];
            return Err(ApiError::validation(
                errors.into_iter().map(|e| e.within(&body)).collect(),
            ));
        }
    };
    tracing::info!(run_id = %run.run_id, agent_id = %run.agent_id, status = status.as_u16(), steps = run.steps.len(), "run ingested");
    Ok(answer(status, redacted).json(body))
}

/// Erase a run with its steps and failures: 204, or 404 when unknown.
#[utoipa::path(
    tag = "ingest",
    params(RunId),
    responses(
        (status = 204, description = "Erased"),
        RunIdRefused,
        Unavailable,
    )
)]
#[delete("/v1/runs/{run_id}")]
pub(super) async fn delete_run(
    RunId(run_id): RunId,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let deleted = state
        .db
        .run(async |conn| Ok::<_, ApiError>(store::delete_run(conn, run_id).await?))
        .await?;
    if deleted {
        tracing::info!(run_id = %run_id, "run deleted");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound(format!("Run {run_id} not found")))
    }
}
