//! The OpenAPI 3.1 documents. Each listener's document is collected by utoipa-actix-web from the
//! very `service(...)` calls that mount its routes (see `startup`), so a route cannot be served
//! undocumented; the schemas are derived on the types the routes answer with.
//!
//! This module holds what no single route owns: the base document, the answers of the API key
//! ([`SharedResponses`], added to every operation behind one) and of a database outage
//! ([`Unavailable`]), and the request body of a run ([`RunIn`]), which the routes validate from
//! raw JSON (to report every problem at once) rather than deserialize into a type.

use serde::Serialize;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, ResponseBuilder,
};
use utoipa::{IntoResponses, Modify, PartialSchema, ToSchema};

use crate::auth::OPEN_PATHS;
use crate::error::{Detail, ValidationErrors};
use crate::model::{FailureType, RunStatus, StepType};
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

/// What no route writes itself, applied once to a listener's collected document: the schemas of
/// the error bodies that shared answers ([`Unavailable`], `ingest::body::Refused`,
/// `extract::RunIdRefused`) refer to, and on every operation behind an API key (all but `auth`'s
/// open paths) the key, as `X-API-Key` or a bearer token (or none, for a listener without keys),
/// with its answers 401 (no key) and 403 (a wrong key).
pub struct SharedResponses;

impl Modify for SharedResponses {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut schemas = vec![
            (Detail::name().into_owned(), Detail::schema()),
            (
                ValidationErrors::name().into_owned(),
                ValidationErrors::schema(),
            ),
        ];
        ValidationErrors::schemas(&mut schemas);
        for (name, schema) in schemas {
            components.schemas.entry(name).or_insert(schema);
        }
        let answer = |description: &str| {
            let detail = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(Detail::name())))
                .build();
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content("application/json", detail)
                    .build(),
            )
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            if OPEN_PATHS.contains(&path.as_str()) {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                operation.security = Some(vec![
                    SecurityRequirement::default(),
                    SecurityRequirement::new("api_key", Vec::<String>::new()),
                    SecurityRequirement::new("bearer", Vec::<String>::new()),
                ]);
                let responses = &mut operation.responses.responses;
                responses.insert("401".into(), answer("No API key"));
                responses.insert("403".into(), answer("A wrong API key"));
            }
        }
    }
}

/// The answer of a route whose database is unavailable (`ApiError::Unavailable`): listed in the
/// route's `responses(...)`.
#[derive(IntoResponses)]
pub enum Unavailable {
    #[response(
        status = 503,
        description = "Database unavailable; retry after Retry-After"
    )]
    Unavailable(Detail),
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
    pub status: RunStatus,
    /// RFC 3339; without an offset it is read as UTC.
    pub started_at: String,
    pub ended_at: Option<String>,
    /// `seq` values exactly 0..n-1.
    pub steps: Option<Vec<StepIn>>,
    /// One failure (the original's field).
    pub failure: Option<FailureIn>,
    /// Several failures.
    pub failures: Option<Vec<FailureIn>>,
    /// What the agent decided (docs/behaviour.md).
    pub decisions: Option<Vec<DecisionIn>>,
    /// What the agent observed of its own quality (docs/behaviour.md).
    pub quality_signals: Option<Vec<SignalIn>>,
}

/// The decision types (docs/behaviour.md lists each one's reason codes).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionType {
    ToolSelection,
    RetrievalStrategy,
    ResponseMode,
    RetryStrategy,
    OrchestrationPath,
}

/// The quality signal types (docs/behaviour.md lists each one's codes).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignalType {
    SchemaValid,
    EmptyRetrieval,
    ToolSuccess,
    ToolFailure,
    RetryOccurred,
    LatencyThreshold,
    TokenUsage,
}

#[derive(Serialize, ToSchema)]
pub struct DecisionIn {
    pub decision_id: Option<uuid::Uuid>,
    /// A step of this run.
    pub step_id: Option<uuid::Uuid>,
    pub decision_type: DecisionType,
    #[schema(min_length = 1, max_length = 200)]
    pub selected: String,
    /// One of the codes of the decision type.
    #[schema(min_length = 1, max_length = 100)]
    pub reason_code: String,
    /// Kept as `metadata.candidates` when not empty.
    pub candidates: Option<Vec<String>>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub confidence: Option<f32>,
    /// Flat values only (strings of at most 100 characters); no content keys.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct SignalIn {
    pub signal_id: Option<uuid::Uuid>,
    /// A step of this run.
    pub step_id: Option<uuid::Uuid>,
    pub signal_type: SignalType,
    /// One of the codes of the signal type.
    #[schema(min_length = 1, max_length = 100)]
    pub signal_code: String,
    pub value: bool,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub weight: Option<f32>,
    /// Flat values only (strings of at most 100 characters); no content keys.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct StepIn {
    pub step_id: Option<uuid::Uuid>,
    #[schema(minimum = 0)]
    pub seq: i32,
    pub step_type: StepType,
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
    pub failure_type: FailureType,
    #[schema(min_length = 1, max_length = 100)]
    pub failure_code: String,
    #[schema(min_length = 1)]
    pub message: String,
    /// Ours: what else the agent knows of the failure (an object, as a step's metadata: same
    /// limits, same privacy rules); `{}` when absent.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// `POST /v1/runs/batch`.
#[derive(Serialize, ToSchema)]
pub struct BatchIn {
    pub runs: Vec<RunIn>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::behaviour::{DECISION_TYPES, SIGNAL_TYPES};

    fn names<T: Serialize>(documented: &[T]) -> Vec<String> {
        documented
            .iter()
            .map(|t| serde_json::to_value(t).unwrap_or_default().to_string())
            .collect()
    }

    fn accepted(kinds: &[(&str, &[&str])]) -> Vec<String> {
        kinds
            .iter()
            .map(|(name, _)| format!("\"{name}\""))
            .collect()
    }

    #[test]
    fn the_documented_types_are_the_accepted_ones() {
        use DecisionType as D;
        use SignalType as S;
        let decisions = [
            D::ToolSelection,
            D::RetrievalStrategy,
            D::ResponseMode,
            D::RetryStrategy,
            D::OrchestrationPath,
        ];
        assert_eq!(names(&decisions), accepted(DECISION_TYPES));
        let signals = [
            S::SchemaValid,
            S::EmptyRetrieval,
            S::ToolSuccess,
            S::ToolFailure,
            S::RetryOccurred,
            S::LatencyThreshold,
            S::TokenUsage,
        ];
        assert_eq!(names(&signals), accepted(SIGNAL_TYPES));
    }
}
