//! The drift routes that write (docs/drift.md), on the writer pool: create a baseline from a
//! window (the body the original UI posts), activate, deactivate and approve it, resolve a drift
//! event, and detect now. The reads are the query role's.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use diesel_async::AsyncConnection;
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::body;
use super::state::IngestState;
use crate::alerts;
use crate::drift::detect::{self, Lock, Report};
use crate::drift::profile::{self, AgentKey};
use crate::drift::store::{self, Baseline, Drift};
use crate::error::{ApiError, Detail, ValidationErrors};
use crate::extract::path_uuid;
use crate::model::FieldError;
use crate::model::input::parse_baseline;
use crate::openapi::Unavailable;

/// Mounts the drift write routes.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_baseline)
        .service(activate)
        .service(deactivate)
        .service(approve)
        .service(resolve)
        .service(detect_now);
}

/// The body of `POST /v1/drift/baselines` (what the original UI's baseline form sends).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BaselineIn {
    agent_id: String,
    agent_version: String,
    environment: String,
    /// `version`, `time_window` or `manual`.
    baseline_type: String,
    /// The profile's runs started at or after this time.
    window_start: String,
    /// … and before this one.
    window_end: String,
    /// Fewer runs in the window is a 400 (default 100).
    min_sample_size: Option<i32>,
    approved_by: Option<String>,
    /// At most 200 characters, none of the content words (docs/drift.md).
    description: Option<String>,
    /// Activate it now, deactivating the agent version's active baseline (default false).
    auto_activate: Option<bool>,
}

/// Builds the profile of the window, then the baseline of it (activated if asked), in one
/// transaction.
#[utoipa::path(
    tag = "drift",
    request_body(content = BaselineIn, content_type = "application/json"),
    responses(
        (status = 201, description = "The baseline; its profile at /v1/drift/profiles/{profile_id}", body = Baseline),
        (status = 400, description = "Fewer runs in the window than min_sample_size", body = Detail),
        (status = 422, description = "Every problem found, named", body = ValidationErrors),
        Unavailable,
    )
)]
#[post("/v1/drift/baselines")]
async fn create_baseline(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let (value, _body) = body::read_json(&req, payload, &state.bodies).await?;
    let new = parse_baseline(value, &state.rules).map_err(ApiError::validation)?;
    let key = AgentKey {
        agent_id: new.agent_id.clone(),
        agent_version: new.agent_version.clone(),
        environment: new.environment.clone(),
    };
    let window = (new.window_start, new.window_end);
    let baseline = state
        .db
        .run(async |conn| {
            let made = conn
                .transaction(async |conn| {
                    let min = i64::from(new.min_sample_size);
                    let built = profile::build(conn, &key, window, min).await?;
                    let saved = store::save_profile(conn, &key, window, &built).await?;
                    let baseline = store::insert_baseline(conn, saved.profile_id, &new).await?;
                    match new.auto_activate {
                        true => store::activate(conn, baseline.baseline_id).await,
                        false => Ok(Some(baseline)),
                    }
                })
                .await?;
            Ok(made)
        })
        .await?;
    let baseline = baseline.ok_or_else(|| ApiError::internal("the new baseline vanished"))?;
    Ok(HttpResponse::build(StatusCode::CREATED).json(baseline))
}

async fn set_active(
    req: &HttpRequest,
    state: &IngestState,
    active: bool,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid(req, "baseline_id")?;
    let row = state
        .db
        .run(async |conn| {
            let row = conn
                .transaction(async |conn| match active {
                    true => store::activate(conn, id).await,
                    false => store::set_active(conn, id, false).await,
                })
                .await?;
            Ok(row)
        })
        .await?;
    row.map(|b| HttpResponse::Ok().json(b))
        .ok_or_else(|| ApiError::NotFound(format!("Baseline {id} not found")))
}

/// Activates a baseline: the agent version's active one, if another, is deactivated with it.
#[utoipa::path(
    tag = "drift",
    params(("baseline_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "The baseline, active", body = Baseline),
        (status = 404, description = "No such baseline", body = Detail),
        (status = 422, description = "A malformed id", body = ValidationErrors),
        Unavailable,
    )
)]
#[post("/v1/drift/baselines/{baseline_id}/activate")]
async fn activate(
    req: HttpRequest,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    set_active(&req, &state, true).await
}

/// Deactivates a baseline: detection no longer compares against it.
#[utoipa::path(
    tag = "drift",
    params(("baseline_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "The baseline, inactive", body = Baseline),
        (status = 404, description = "No such baseline", body = Detail),
        (status = 422, description = "A malformed id", body = ValidationErrors),
        Unavailable,
    )
)]
#[post("/v1/drift/baselines/{baseline_id}/deactivate")]
async fn deactivate(
    req: HttpRequest,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    set_active(&req, &state, false).await
}

/// The body of an approval.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ApprovalIn {
    approved_by: String,
}

/// Records who approved a baseline (once: a baseline is immutable but for its activation and
/// a first approval).
#[utoipa::path(
    tag = "drift",
    params(("baseline_id" = uuid::Uuid, Path)),
    request_body(content = ApprovalIn, content_type = "application/json"),
    responses(
        (status = 200, description = "The baseline, approved", body = Baseline),
        (status = 400, description = "Already approved", body = Detail),
        (status = 404, description = "No such baseline", body = Detail),
        (status = 422, description = "A malformed id or body, named", body = ValidationErrors),
        Unavailable,
    )
)]
#[post("/v1/drift/baselines/{baseline_id}/approve")]
async fn approve(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid(&req, "baseline_id")?;
    let (value, _body) = body::read_json(&req, payload, &state.bodies).await?;
    let approved_by = approver(&value)?;
    let row = state
        .db
        .run(async |conn| Ok(store::approve(conn, id, &approved_by).await?))
        .await?;
    row.map(|b| HttpResponse::Ok().json(b))
        .ok_or_else(|| ApiError::NotFound(format!("Baseline {id} not found")))
}

/// `approved_by`: a string of 1 to 255 characters without control characters.
fn approver(value: &Value) -> Result<String, ApiError> {
    let refuse = |kind: &str, msg: &str| {
        ApiError::validation(vec![FieldError::new(
            kind,
            vec![Value::from("body"), Value::from("approved_by")],
            msg,
        )])
    };
    match value.get("approved_by") {
        None | Some(Value::Null) => Err(refuse("missing", "Field required")),
        Some(Value::String(s)) if s.is_empty() || s.chars().count() > 255 => Err(refuse(
            "string_too_long",
            "String should have 1 to 255 characters",
        )),
        Some(Value::String(s)) if s.chars().any(char::is_control) => Err(refuse(
            "string_control_character",
            "String should not contain control characters (newlines, tabs, escapes)",
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(refuse("string_type", "Input should be a valid string")),
    }
}

/// Resolves a drift event now.
#[utoipa::path(
    tag = "drift",
    params(("drift_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "The drift event, resolved", body = Drift),
        (status = 400, description = "Already resolved", body = Detail),
        (status = 404, description = "No such drift event", body = Detail),
        (status = 422, description = "A malformed id", body = ValidationErrors),
        Unavailable,
    )
)]
#[post("/v1/drift/{drift_id}/resolve")]
async fn resolve(
    req: HttpRequest,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid(&req, "drift_id")?;
    let row = state
        .db
        .run(async |conn| Ok(store::resolve(conn, id).await?))
        .await?;
    row.map(|d| HttpResponse::Ok().json(d))
        .ok_or_else(|| ApiError::NotFound(format!("Drift {id} not found")))
}

/// Compares every active baseline with the last `drift.window_s` now (waiting for a pass another
/// process is running), as the schedule does.
#[utoipa::path(
    tag = "drift",
    responses(
        (status = 200, description = "What the pass did", body = Report),
        Unavailable,
    )
)]
#[post("/v1/drift/detect")]
async fn detect_now(state: web::Data<IngestState>) -> Result<HttpResponse, ApiError> {
    let (cfg, channels) = (&state.config.drift, alerts::channels(&state.config.alerts));
    let now = OffsetDateTime::now_utc();
    let report = state
        .db
        .run(async |conn| Ok(detect::detect_all(conn, cfg, &channels, now, Lock::Wait).await?))
        .await?;
    let report = report.ok_or_else(|| ApiError::internal("the detection lock was not taken"))?;
    Ok(HttpResponse::Ok().json(report))
}
