//! The ingest listener's routes: `POST /v1/runs`, `POST /v1/runs/batch`, `DELETE /v1/runs/{id}`.

pub mod body;
pub mod group;
pub mod otlp;
pub mod retention;

use std::collections::HashMap;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, post, web};
use serde_json::{Value, json};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::db::read;
use crate::error::ApiError;
use crate::model::NewRun;
use crate::model::input::{FieldError, Parsed, json_error, parse_run};
use crate::model::output::RunOut;
use crate::openapi::{BatchIn, BatchOut, Detail, RunIn, ValidationErrors};
use crate::state::AppState;
use crate::store::{self, Outcome};

/// The header that tells how many values the privacy policy redacted.
pub const REDACTED_HEADER: &str = "X-AgentTracer-Redacted";

/// Mounts the ingest routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(post_batch)
        .service(post_run)
        .service(delete_run);
    otlp::configure(cfg);
}

/// The body as JSON, with its share of the in-flight budget: hold it while the value lives.
async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(Value, body::Body), ApiError> {
    body::require_json(req)?;
    let body = body::read_body(req, payload, &state.bodies).await?;
    let parse = |bytes: &[u8]| -> Result<Value, ApiError> {
        serde_json::from_slice(bytes).map_err(|e| ApiError::validation(vec![json_error(&e)]))
    };
    let bytes = body.bytes.clone();
    let value = body::off_loop(body.is_large(), move || parse(&bytes)).await??;
    Ok((value, body))
}

fn with_prefix(prefix: &[Value], errors: Vec<FieldError>) -> Vec<FieldError> {
    errors
        .into_iter()
        .map(|mut e| {
            e.loc.splice(0..0, prefix.iter().cloned());
            e
        })
        .collect()
}

pub(crate) fn record_written(runs: &[&NewRun], outcomes: &[Outcome]) {
    for (run, outcome) in runs.iter().zip(outcomes) {
        match outcome {
            Outcome::Created { .. } | Outcome::Replaced { .. } => {
                metrics::counter!("runs_ingested_total").increment(1);
                metrics::counter!("steps_ingested_total").increment(run.steps.len() as u64);
            }
            Outcome::Unchanged => metrics::counter!("runs_duplicate_total").increment(1),
            Outcome::Rejected(_) => {
                metrics::counter!("runs_failed_total", "reason" => "rejected").increment(1)
            }
        }
    }
}

fn record_invalid(n: usize) {
    metrics::counter!("runs_failed_total", "reason" => "invalid").increment(n as u64);
}

/// Ingest one run: 201 new, 200 for a known final run (unchanged) or a replaced `running` one.
#[utoipa::path(
    tag = "ingest",
    request_body(content = RunIn, content_type = "application/json",
        description = "One run. `Content-Encoding: gzip` is accepted; a missing Content-Type is read as JSON."),
    security((), ("api_key" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Stored; the stored run", body = RunOut,
            headers(("X-AgentTracer-Redacted" = u32, description = "Values redacted (privacy.mode = redact)"))),
        (status = 200, description = "Already stored: the stored run (unchanged if final, replaced if it was running)", body = RunOut),
        (status = 400, description = "An undecodable gzip body", body = Detail),
        (status = 401, description = "No API key", body = Detail),
        (status = 403, description = "A wrong API key", body = Detail),
        (status = 413, description = "Over server.max_body_bytes", body = Detail),
        (status = 415, description = "Not JSON", body = Detail),
        (status = 422, description = "Every problem found", body = ValidationErrors),
        (status = 503, description = "Database unavailable; retry after Retry-After", body = Detail),
    )
)]
#[post("/v1/runs")]
async fn post_run(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let result = ingest_one(&req, payload, &state).await;
    metrics::histogram!("ingest_latency_seconds", "endpoint" => "runs")
        .record(started.elapsed().as_secs_f64());
    result
}

async fn ingest_one(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let (value, body) = read_json(req, payload, state)
        .await
        .inspect_err(|_| record_invalid(1))?;
    let rules = state.rules();
    let validate = move || parse_run(value, vec![Value::from("body")], &rules);
    // Validation (privacy included) of a large run, off the worker's event loop.
    let parsed = body::off_loop(body.is_large(), validate).await?;
    drop(body);
    let Parsed { run, redacted } = parsed.map_err(|errors| {
        record_invalid(1);
        ApiError::validation(errors)
    })?;
    let group = state
        .group
        .as_ref()
        .ok_or_else(|| ApiError::internal("this role has no writer pool"))?;
    let (run, outcome) = state.bounded(group.write(run)).await?;
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
            .write(async |conn| Ok(read::load_run(conn, run.run_id).await?))
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
            return Err(ApiError::validation(with_prefix(
                &[Value::from("body")],
                errors,
            )));
        }
    };
    tracing::info!(run_id = %run.run_id, agent_id = %run.agent_id, status = status.as_u16(), steps = run.steps.len(), "run ingested");
    let mut res = HttpResponse::build(status);
    if redacted > 0 {
        res.insert_header((REDACTED_HEADER, redacted.to_string()));
    }
    Ok(res.json(body))
}

/// Ingest many runs; each is validated on its own and the valid ones are stored together.
#[utoipa::path(
    tag = "ingest",
    request_body(content = BatchIn, content_type = "application/json"),
    security((), ("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "One result per run, in input order", body = BatchOut),
        (status = 400, description = "An undecodable gzip body", body = Detail),
        (status = 401, description = "No API key", body = Detail),
        (status = 403, description = "A wrong API key", body = Detail),
        (status = 413, description = "Over server.max_body_bytes", body = Detail),
        (status = 415, description = "Not JSON", body = Detail),
        (status = 422, description = "Not a batch, or more than ingest.max_batch_runs runs", body = ValidationErrors),
        (status = 503, description = "Database unavailable; retry after Retry-After", body = Detail),
    )
)]
#[post("/v1/runs/batch")]
async fn post_batch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let result = ingest_batch(&req, payload, &state).await;
    metrics::histogram!("ingest_latency_seconds", "endpoint" => "batch")
        .record(started.elapsed().as_secs_f64());
    result
}

/// One entry of a batch: where it stands and what became of it.
enum Entry {
    Invalid(Vec<FieldError>),
    /// Valid; index into the runs to write.
    Valid(usize),
    /// The same run_id as an earlier entry of this batch: answered as a resend.
    Repeat,
}

async fn ingest_batch(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let (value, _body) = read_json(req, payload, state).await?;
    let max = state.config.ingest.max_batch_runs;
    let runs_loc = vec![Value::from("body"), Value::from("runs")];
    let raw_runs = match value {
        Value::Object(mut obj) => match obj.remove("runs") {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => {
                return Err(ApiError::validation(vec![FieldError::new(
                    "missing",
                    runs_loc,
                    "Field required",
                )]));
            }
            Some(_) => {
                return Err(ApiError::validation(vec![FieldError::new(
                    "list_type",
                    runs_loc,
                    "Input should be a valid list",
                )]));
            }
        },
        _ => {
            return Err(ApiError::validation(vec![FieldError::new(
                "model_attributes_type",
                vec![Value::from("body")],
                "Input should be a valid dictionary or object to extract fields from",
            )]));
        }
    };
    if raw_runs.len() > max {
        return Err(ApiError::validation(vec![FieldError::new(
            "too_long",
            runs_loc,
            format!(
                "List should have at most {max} items (ingest.max_batch_runs), not {}",
                raw_runs.len()
            ),
        )]));
    }

    let rules = state.rules();
    let mut run_ids: Vec<Option<String>> = Vec::with_capacity(raw_runs.len());
    let mut entries = Vec::with_capacity(raw_runs.len());
    let mut valid: Vec<NewRun> = Vec::new();
    let mut position: HashMap<Uuid, usize> = HashMap::new();
    let mut redacted = 0;
    for (i, raw) in raw_runs.into_iter().enumerate() {
        run_ids.push(raw.get("run_id").and_then(Value::as_str).map(str::to_owned));
        let loc = vec![Value::from("body"), Value::from("runs"), Value::from(i)];
        match parse_run(raw, loc, &rules) {
            Err(errors) => entries.push(Entry::Invalid(errors)),
            Ok(parsed) => {
                redacted += parsed.redacted;
                run_ids[i] = Some(parsed.run.run_id.to_string());
                match position.get(&parsed.run.run_id) {
                    // A repeat of a run still `running` replaces it, as a later send would.
                    Some(&at) => {
                        if !valid[at].status.is_final() {
                            valid[at] = parsed.run;
                        }
                        entries.push(Entry::Repeat);
                    }
                    None => {
                        position.insert(parsed.run.run_id, valid.len());
                        entries.push(Entry::Valid(valid.len()));
                        valid.push(parsed.run);
                    }
                }
            }
        }
    }
    record_invalid(
        entries
            .iter()
            .filter(|e| matches!(e, Entry::Invalid(_)))
            .count(),
    );

    let outcomes = if valid.is_empty() {
        Vec::new()
    } else {
        let refs: Vec<&NewRun> = valid.iter().collect();
        state
            .write(async |conn| {
                let outcomes = store::write_runs(conn, &refs).await?;
                record_written(&refs, &outcomes);
                Ok::<_, ApiError>(outcomes)
            })
            .await?
    };
    let repeats = entries
        .iter()
        .filter(|e| matches!(e, Entry::Repeat))
        .count();
    metrics::counter!("runs_duplicate_total").increment(repeats as u64);

    let results: Vec<Value> = entries
        .into_iter()
        .zip(run_ids)
        .enumerate()
        .map(|(i, (entry, run_id))| match entry {
            Entry::Invalid(errors) => json!({"run_id": run_id, "status": 422, "detail": errors}),
            Entry::Repeat => json!({"run_id": run_id, "status": 200}),
            Entry::Valid(at) => match &outcomes[at] {
                Outcome::Created { .. } => json!({"run_id": run_id, "status": 201}),
                Outcome::Replaced { .. } | Outcome::Unchanged => json!({"run_id": run_id, "status": 200}),
                Outcome::Rejected(errors) => {
                    let prefix = [Value::from("body"), Value::from("runs"), Value::from(i)];
                    json!({"run_id": run_id, "status": 422, "detail": with_prefix(&prefix, errors.clone())})
                }
            },
        })
        .collect();
    tracing::info!(runs = results.len(), stored = valid.len(), "batch ingested");
    let mut res = HttpResponse::Ok();
    if redacted > 0 {
        res.insert_header((REDACTED_HEADER, redacted.to_string()));
    }
    Ok(res.json(json!({ "results": results })))
}

/// Parses a `{run_id}` path segment; a malformed one is 422 naming it.
pub fn parse_run_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::validation(vec![FieldError::new(
            "uuid_parsing",
            vec![Value::from("path"), Value::from("run_id")],
            "Input should be a valid UUID",
        )])
    })
}

/// Erase a run with its steps and failures: 204, or 404 when unknown.
#[utoipa::path(
    tag = "ingest",
    params(("run_id" = Uuid, Path, description = "The run's id")),
    security((), ("api_key" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Erased"),
        (status = 401, description = "No API key", body = Detail),
        (status = 403, description = "A wrong API key", body = Detail),
        (status = 404, description = "No such run", body = Detail),
        (status = 422, description = "A malformed run id", body = ValidationErrors),
        (status = 503, description = "Database unavailable; retry after Retry-After", body = Detail),
    )
)]
#[delete("/v1/runs/{run_id}")]
async fn delete_run(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let run_id = parse_run_id(&path)?;
    let deleted = state
        .write(async |conn| Ok::<_, ApiError>(store::delete_run(conn, run_id).await?))
        .await?;
    if deleted {
        tracing::info!(run_id = %run_id, "run deleted");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound(format!("Run {run_id} not found")))
    }
}
