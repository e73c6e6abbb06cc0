//! `POST /v1/runs/batch`: each run is validated on its own, the valid ones are written together,
//! and the answer has one result per run, in input order.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::ApiError;
use crate::model::input::parse_run;
use crate::model::{FieldError, NewRun};
use crate::openapi::{BatchIn, BatchOut, Detail, ValidationErrors};

use super::body;
use super::group::record_written;
use super::runs::{answer, record_invalid, timed};
use super::state::IngestState;
use super::store::{self, Outcome};

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
pub(super) async fn post_batch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    timed("batch", ingest_batch(&req, payload, &state)).await
}

/// One entry of a batch: where it stands and what became of it.
enum Entry {
    Invalid(Vec<FieldError>),
    /// Valid; index into the runs to write.
    Valid(usize),
    /// The same run_id as an earlier entry of this batch: answered as a resend.
    Repeat,
}

/// The runs of a batch body, or the one problem that makes it no batch.
fn batch_runs(value: Value, max: usize) -> Result<Vec<Value>, ApiError> {
    let runs_loc = vec![Value::from("body"), Value::from("runs")];
    let problem = |kind: &str, loc: Vec<Value>, msg: String| {
        Err(ApiError::validation(vec![FieldError::new(kind, loc, msg)]))
    };
    let raw_runs = match value {
        Value::Object(mut obj) => match obj.remove("runs") {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => {
                return problem("missing", runs_loc, "Field required".into());
            }
            Some(_) => {
                return problem("list_type", runs_loc, "Input should be a valid list".into());
            }
        },
        _ => {
            return problem(
                "model_attributes_type",
                vec![Value::from("body")],
                "Input should be a valid dictionary or object to extract fields from".into(),
            );
        }
    };
    if raw_runs.len() > max {
        return problem(
            "too_long",
            runs_loc,
            format!(
                "List should have at most {max} items (ingest.max_batch_runs), not {}",
                raw_runs.len()
            ),
        );
    }
    Ok(raw_runs)
}

async fn ingest_batch(
    req: &HttpRequest,
    payload: web::Payload,
    state: &IngestState,
) -> Result<HttpResponse, ApiError> {
    let (value, _body) = body::read_json(req, payload, &state.bodies).await?;
    let raw_runs = batch_runs(value, state.config.ingest.max_batch_runs)?;

    let mut run_ids: Vec<Option<String>> = Vec::with_capacity(raw_runs.len());
    let mut entries = Vec::with_capacity(raw_runs.len());
    let mut valid: Vec<NewRun> = Vec::new();
    let mut position: HashMap<Uuid, usize> = HashMap::new();
    let mut redacted = 0;
    for (i, raw) in raw_runs.into_iter().enumerate() {
        run_ids.push(raw.get("run_id").and_then(Value::as_str).map(str::to_owned));
        let loc = vec![Value::from("body"), Value::from("runs"), Value::from(i)];
        match parse_run(raw, loc, &state.rules) {
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
            .db
            .run(async |conn| {
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
                Outcome::Replaced { .. } | Outcome::Unchanged => {
                    json!({"run_id": run_id, "status": 200})
                }
                Outcome::Rejected(errors) => {
                    let prefix = [Value::from("body"), Value::from("runs"), Value::from(i)];
                    let errors: Vec<FieldError> =
                        errors.iter().map(|e| e.clone().within(&prefix)).collect();
                    json!({"run_id": run_id, "status": 422, "detail": errors})
                }
            },
        })
        .collect();
    tracing::info!(runs = results.len(), stored = valid.len(), "batch ingested");
    Ok(answer(StatusCode::OK, redacted).json(json!({ "results": results })))
}
