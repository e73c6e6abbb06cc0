//! `POST /v1/runs/batch`: each run is validated on its own, the valid ones are written together,
//! and the answer has one result per run, in input order.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ValidationErrors};
use crate::model::input::{RawBatch, RawRun, RawRuns, parse_run};
use crate::model::{FieldError, NewRun};
use crate::openapi::{BatchIn, Unavailable};

use super::body::{self, Refused};
use super::group::record_written;
use super::runs::{answer, record_invalid, timed};
use super::state::IngestState;
use crate::store::{self, Outcome};

/// The answer: one result per run, in input order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchOut {
    pub results: Vec<BatchResult>,
}

/// One run's result in a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    /// As sent (or generated); null when it was not a valid UUID.
    pub run_id: Option<String>,
    /// 201 stored, 200 already stored (unchanged, or a running run replaced), 422 invalid.
    pub status: u16,
    /// The problems, for a 422.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Vec<FieldError>>,
}

/// Ingest many runs; each is validated on its own and the valid ones are stored together.
#[utoipa::path(
    tag = "ingest",
    request_body(content = BatchIn, content_type = "application/json"),
    responses(
        (status = 200, description = "One result per run, in input order", body = BatchOut),
        Refused,
        (status = 422, description = "Not a batch, or more than ingest.max_batch_runs runs", body = ValidationErrors),
        Unavailable,
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
fn batch_runs(batch: RawBatch, max: usize) -> Result<Vec<RawRun>, ApiError> {
    let runs_loc = vec![Value::from("body"), Value::from("runs")];
    let problem = |kind: &str, loc: Vec<Value>, msg: String| {
        Err(ApiError::validation(vec![FieldError::new(kind, loc, msg)]))
    };
    let raw_runs = match batch {
        RawBatch::Object { runs } => match runs {
            Some(RawRuns::List(runs)) => runs,
            None | Some(RawRuns::Other(Value::Null)) => {
                return problem("missing", runs_loc, "Field required".into());
            }
            Some(RawRuns::Other(_)) => {
                return problem("list_type", runs_loc, "Input should be a valid list".into());
            }
        },
        RawBatch::Other(_) => {
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
    let (batch, _body) = body::read_json::<RawBatch>(req, payload, &state.bodies).await?;
    let raw_runs = batch_runs(batch, state.config.ingest.max_batch_runs)?;

    let mut run_ids: Vec<Option<String>> = Vec::with_capacity(raw_runs.len());
    let mut entries = Vec::with_capacity(raw_runs.len());
    let mut valid: Vec<NewRun> = Vec::new();
    let mut position: HashMap<Uuid, usize> = HashMap::new();
    let mut redacted = 0;
    for (i, raw) in raw_runs.into_iter().enumerate() {
        run_ids.push(raw.run_id().map(str::to_owned));
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
        let book = state.price_book().await?;
        crate::cost::price_steps(&book, valid.iter_mut().flat_map(|r| &mut r.steps));
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

    let results: Vec<BatchResult> = entries
        .into_iter()
        .zip(run_ids)
        .enumerate()
        .map(|(i, (entry, run_id))| {
            let (status, detail) = match entry {
                Entry::Invalid(errors) => (422, Some(errors)),
                Entry::Repeat => (200, None),
                Entry::Valid(at) => match &outcomes[at] {
                    Outcome::Created { .. } => (201, None),
                    Outcome::Replaced { .. } | Outcome::Unchanged => (200, None),
                    Outcome::Rejected(errors) => {
                        let prefix = [Value::from("body"), Value::from("runs"), Value::from(i)];
                        let errors = errors.iter().map(|e| e.clone().within(&prefix));
                        (422, Some(errors.collect()))
                    }
                },
            };
            BatchResult {
                run_id,
                status,
                detail,
            }
        })
        .collect();
    tracing::info!(runs = results.len(), stored = valid.len(), "batch ingested");
    Ok(answer(StatusCode::OK, redacted).json(BatchOut { results }))
}
