//! The OpenAPI 3.1 documents. Each listener's document is collected by utoipa-actix-web from the
//! very `service(...)` calls that mount its routes (see `startup`), so a route cannot be served
//! undocumented. This module holds the base document and the schemas of bodies that the handlers
//! read or write by hand (requests are validated from raw JSON to report every problem at once).

use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};
use utoipa::{IntoParams, ToSchema};

use crate::role::Listener;

/// The base document of a listener: title, version, and the two ways to send an API key.
pub fn base(listener: Listener) -> OpenApi {
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(format!("AgentTracer {}", listener.service_name()))
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Self-hosted observability for AI agents. See docs/api.md in the repository for the rules behind each answer."))
                .build(),
        )
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "api_key",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
    );
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    doc
}

/// Every error but validation: Phase 1's `{"detail": msg}` and the later original's
/// `{"error": msg, "status_code": n, "path": p}` in one object.
#[derive(Serialize, ToSchema)]
pub struct Detail {
    pub detail: String,
    /// The same message as `detail`.
    pub error: String,
    /// The HTTP status code.
    pub status_code: u16,
    /// The request's path.
    pub path: String,
}

/// One item of a location: a field name or a list index.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LocItem {
    Key(String),
    Index(u64),
}

/// One problem with a request.
#[derive(Serialize, ToSchema)]
pub struct FieldProblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub loc: Vec<LocItem>,
    pub msg: String,
}

/// 422: every problem found.
#[derive(Serialize, ToSchema)]
pub struct ValidationErrors {
    pub detail: Vec<FieldProblem>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatusDoc {
    Success,
    Failure,
    Partial,
    Running,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepTypeDoc {
    Plan,
    Retrieve,
    Tool,
    Llm,
    Respond,
    Other,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailureTypeDoc {
    Tool,
    Model,
    Retrieval,
    Orchestration,
}

/// A run as an agent sends it (`POST /v1/runs`). Unknown fields are ignored.
#[derive(Serialize, ToSchema)]
pub struct RunIn {
    /// Generated when absent.
    pub run_id: Option<uuid::Uuid>,
    #[schema(min_length = 1, max_length = 255)]
    pub agent_id: String,
    #[schema(min_length = 1, max_length = 100)]
    pub agent_version: String,
    /// Default `production`.
    #[schema(max_length = 50)]
    pub environment: Option<String>,
    pub status: RunStatusDoc,
    /// RFC 3339; without an offset it is read as UTC.
    pub started_at: String,
    pub ended_at: Option<String>,
    /// `seq` values exactly 0..n-1.
    pub steps: Option<Vec<StepIn>>,
    /// One failure (the original's field).
    pub failure: Option<FailureIn>,
    /// Several failures.
    pub failures: Option<Vec<FailureIn>>,
}

#[derive(Serialize, ToSchema)]
pub struct StepIn {
    pub step_id: Option<uuid::Uuid>,
    #[schema(minimum = 0)]
    pub seq: i32,
    pub step_type: StepTypeDoc,
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    #[schema(minimum = 0)]
    pub latency_ms: i32,
    pub started_at: String,
    pub ended_at: String,
    /// Metadata only: content keys and credentials are refused (or redacted).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct FailureIn {
    /// A step of this run.
    pub step_id: Option<uuid::Uuid>,
    pub failure_type: FailureTypeDoc,
    #[schema(min_length = 1, max_length = 100)]
    pub failure_code: String,
    #[schema(min_length = 1)]
    pub message: String,
}

/// `POST /v1/runs/batch`.
#[derive(Serialize, ToSchema)]
pub struct BatchIn {
    pub runs: Vec<RunIn>,
}

/// One run's result in a batch.
#[derive(Serialize, ToSchema)]
pub struct BatchResult {
    /// As sent (or generated); null when it was not a valid UUID.
    pub run_id: Option<String>,
    /// 201 stored, 200 already stored (unchanged, or a running run replaced), 422 invalid.
    pub status: u16,
    /// The problems, for a 422.
    pub detail: Option<Vec<FieldProblem>>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchOut {
    pub results: Vec<BatchResult>,
}

/// `GET /health`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub service: String,
    pub version: String,
}

/// `GET /livez`.
#[derive(Serialize, ToSchema)]
pub struct Alive {
    pub status: String,
    pub service: String,
}

/// The filters of `GET /v1/runs` (and, but `status`, of `GET /v1/stats`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunFilters {
    pub agent_id: Option<String>,
    pub agent_version: Option<String>,
    #[param(inline)]
    pub status: Option<RunStatusDoc>,
    pub environment: Option<String>,
    /// Runs that started at or after this time (RFC 3339).
    pub start_time: Option<String>,
    /// Runs that started at or before this time (RFC 3339).
    pub end_time: Option<String>,
    /// Runs with a failure of this type.
    #[param(inline)]
    pub failure_type: Option<FailureTypeDoc>,
    /// Runs with a failure of this code.
    pub failure_code: Option<String>,
}

/// Paging of `GET /v1/runs`: `page`/`page_size` as the original, or `cursor` for deep pages.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<i64>,
    /// The `X-Next-Cursor` of the previous page.
    pub cursor: Option<String>,
}
