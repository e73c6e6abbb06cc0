//! The drift routes that read (docs/drift.md): profiles, baselines, drift events, an agent's
//! timeline and the summary, with the original's parameters, defaults, bounds and shapes. The
//! routes that write (create, activate, resolve, detect) are the ingest role's.

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::QueryState;
use super::filters::{Problems, pairs};
use crate::drift::store::{self, Baseline, Drift, Filter, Profile, Summary};
use crate::error::{ApiError, Detail, ValidationErrors};
use crate::extract::path_uuid;
use crate::openapi::Unavailable;

/// Mounts the drift read routes (timeline and summary before `{drift_id}`).
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_profiles)
        .service(get_profile)
        .service(list_baselines)
        .service(get_baseline)
        .service(list_drift)
        .service(timeline)
        .service(summary)
        .service(get_drift);
}

/// Which of the shared filters a list reads.
#[derive(Clone, Copy)]
pub enum List {
    Profiles,
    Baselines,
    Drift,
}

/// The filters and page of a list route's query string (its pairs): 422 naming each bad
/// parameter. The web UI's drift pages read theirs with it too.
pub fn list_filter(pairs: &[(String, String)], list: List) -> Result<Filter, ApiError> {
    let mut p = Problems(Vec::new());
    let mut f = Filter {
        agent_id: p.text(pairs, "agent_id"),
        agent_version: p.text(pairs, "agent_version"),
        environment: p.text(pairs, "environment"),
        limit: p.int(pairs, "limit", 1, 1000).unwrap_or(100),
        offset: p.int(pairs, "offset", 0, i64::MAX).unwrap_or(0),
        ..Filter::default()
    };
    match list {
        List::Profiles => {}
        List::Baselines => {
            f.baseline_type = p.text(pairs, "baseline_type");
            f.is_active = p.boolean(pairs, "is_active");
        }
        List::Drift => {
            f.drift_type = p.text(pairs, "drift_type");
            f.severity = p.text(pairs, "severity");
            f.resolved = p.boolean(pairs, "resolved");
        }
    }
    p.or(f)
}

fn found<T: Serialize>(row: Option<T>, what: &str, id: Uuid) -> Result<HttpResponse, ApiError> {
    row.map(|r| HttpResponse::Ok().json(r))
        .ok_or_else(|| ApiError::NotFound(format!("{what} {id} not found")))
}

/// Behaviour profiles, newest first.
#[utoipa::path(
    tag = "drift",
    params(
        ("agent_id" = Option<String>, Query), ("agent_version" = Option<String>, Query),
        ("environment" = Option<String>, Query),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Default 100"),
        ("offset" = Option<i64>, Query, minimum = 0),
    ),
    responses(
        (status = 200, description = "Profiles, newest first", body = Vec<Profile>),
        (status = 422, description = "An invalid query parameter, named", body = ValidationErrors),
        Unavailable,
    )
)]
#[get("/v1/drift/profiles")]
async fn list_profiles(
    req: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let f = list_filter(&pairs(req.query_string()), List::Profiles)?;
    let rows = state
        .read(async |conn| Ok(store::profiles(conn, &f).await?))
        .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// One profile.
#[utoipa::path(
    tag = "drift",
    params(("profile_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The profile", body = Profile),
        (status = 404, description = "No such profile", body = Detail),
        (status = 422, description = "A malformed id", body = ValidationErrors),
        Unavailable,
    )
)]
#[get("/v1/drift/profiles/{profile_id}")]
async fn get_profile(
    req: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid(&req, "profile_id")?;
    let row = state
        .read(async |conn| Ok(store::profile(conn, id).await?))
        .await?;
    found(row, "Profile", id)
}

/// Baselines, newest first.
#[utoipa::path(
    tag = "drift",
    params(
        ("agent_id" = Option<String>, Query), ("agent_version" = Option<String>, Query),
        ("environment" = Option<String>, Query),
        ("baseline_type" = Option<String>, Query, description = "version, time_window or manual"),
        ("is_active" = Option<bool>, Query),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Default 100"),
        ("offset" = Option<i64>, Query, minimum = 0),
    ),
    responses(
        (status = 200, description = "Baselines, newest first", body = Vec<Baseline>),
        (status = 422, description = "An invalid query parameter, named", body = ValidationErrors),
        Unavailable,
    )
)]
#[get("/v1/drift/baselines")]
async fn list_baselines(
    req: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let f = list_filter(&pairs(req.query_string()), List::Baselines)?;
    let rows = state
        .read(async |conn| Ok(store::baselines(conn, &f).await?))
        .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// One baseline.
#[utoipa::path(
    tag = "drift",
    params(("baseline_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The baseline", body = Baseline),
        (status = 404, description = "No such baseline", body = Detail),
        (status = 422, description = "A malformed id", body = ValidationErrors),
        Unavailable,
    )
)]
#[get("/v1/drift/baselines/{baseline_id}")]
async fn get_baseline(
    req: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid(&req, "baseline_id")?;
    let row = state
        .read(async |conn| Ok(store::baseline(conn, id).await?))
        .await?;
    found(row, "Baseline", id)
}

/// Drift events, newest first.
#[utoipa::path(
    tag = "drift",
    params(
        ("agent_id" = Option<String>, Query), ("agent_version" = Option<String>, Query),
        ("environment" = Option<String>, Query),
        ("drift_type" = Option<String>, Query, description = "decision, signal or latency"),
        ("severity" = Option<String>, Query, description = "low, medium or high"),
        ("resolved" = Option<bool>, Query, description = "true: resolved events only; false: open ones"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Default 100"),
        ("offset" = Option<i64>, Query, minimum = 0),
    ),
    responses(
        (status = 200, description = "Drift events, newest first", body = Vec<Drift>),
        (status = 422, description = "An invalid query parameter, named", body = ValidationErrors),
        Unavailable,
    )
)]
#[get("/v1/drift")]
async fn list_drift(
    req: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let f = list_filter(&pairs(req.query_string()), List::Drift)?;
    let rows = state
        .read(async |conn| Ok(store::drifts(conn, &f).await?))
        .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// A point of an agent's drift timeline: one drift event.
#[derive(Serialize, ToSchema)]
pub struct TimelinePoint {
    /// The event's `detected_at`.
    pub timestamp: String,
    pub metric: String,
    /// The event's `observed_value`.
    pub value: f64,
    pub drift_detected: bool,
    pub drift_id: Uuid,
}

/// An agent's drift events as a timeline.
#[derive(Serialize, ToSchema)]
pub struct Timeline {
    pub agent_id: String,
    /// The parameter, or `all`.
    pub agent_version: String,
    /// The parameter, or `all`.
    pub environment: String,
    pub timeline: Vec<TimelinePoint>,
}

/// An agent's drift events, oldest first.
#[utoipa::path(
    tag = "drift",
    params(
        ("agent_id" = String, Query), ("agent_version" = Option<String>, Query),
        ("environment" = Option<String>, Query),
        ("start_date" = Option<String>, Query, description = "detected_at at or after (ISO 8601)"),
        ("end_date" = Option<String>, Query, description = "detected_at at or before (ISO 8601)"),
    ),
    responses(
        (status = 200, description = "The timeline", body = Timeline),
        (status = 422, description = "agent_id missing, or an invalid parameter, named", body = ValidationErrors),
        Unavailable,
    )
)]
#[get("/v1/drift/timeline")]
async fn timeline(
    req: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let pairs = pairs(req.query_string());
    let mut p = Problems(Vec::new());
    let agent_id = p.text(&pairs, "agent_id");
    if agent_id.is_none() && p.0.is_empty() {
        p.add("agent_id", "missing", "Field required");
    }
    let f = Filter {
        agent_id,
        agent_version: p.text(&pairs, "agent_version"),
        environment: p.text(&pairs, "environment"),
        ..Filter::default()
    };
    let bounds = (p.time(&pairs, "start_date"), p.time(&pairs, "end_date"));
    let f = p.or(f)?;
    let rows = state
        .read(async |conn| Ok(store::timeline(conn, &f, bounds).await?))
        .await?;
    let all = |v: Option<String>| v.unwrap_or_else(|| "all".into());
    Ok(HttpResponse::Ok().json(Timeline {
        agent_id: f.agent_id.clone().unwrap_or_default(),
        agent_version: all(f.agent_version),
        environment: all(f.environment),
        timeline: rows
            .into_iter()
            .map(|d| TimelinePoint {
                timestamp: crate::drift::iso::text(&d.detected_at),
                metric: d.metric,
                value: d.observed_value,
                drift_detected: true,
                drift_id: d.drift_id,
            })
            .collect(),
    }))
}

/// Drift events of the last `days` days, counted.
#[utoipa::path(
    tag = "drift",
    params(
        ("environment" = Option<String>, Query),
        ("days" = Option<i64>, Query, minimum = 1, maximum = 365, description = "Default 7"),
    ),
    responses(
        (status = 200, description = "Counts of the period", body = Summary),
        (status = 422, description = "An invalid query parameter, named", body = ValidationErrors),
        Unavailable,
    )
)]
#[get("/v1/drift/summary")]
async fn summary(req: HttpRequest, state: web::Data<QueryState>) -> Result<HttpResponse, ApiError> {
    let pairs = pairs(req.query_string());
    let mut p = Problems(Vec::new());
    let environment = p.text(&pairs, "environment");
    let days = p.int(&pairs, "days", 1, 365).unwrap_or(7);
    p.or(())?;
    let since = OffsetDateTime::now_utc() - time::Duration::days(days);
    let counts = state
        .read(async |conn| Ok(store::summary(conn, environment.as_deref(), since).await?))
        .await?;
    Ok(HttpResponse::Ok().json(counts))
}

/// One drift event.
#[utoipa::path(
    tag = "drift",
    params(("drift_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The drift event", body = Drift),
        (status = 404, description = "No such drift event", body = Detail),
        (status = 422, description = "A malformed id", body = ValidationErrors),
        Unavailable,
    )
)]
#[get("/v1/drift/{drift_id}")]
async fn get_drift(
    req: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid(&req, "drift_id")?;
    let row = state
        .read(async |conn| Ok(store::drift(conn, id).await?))
        .await?;
    found(row, "Drift", id)
}
