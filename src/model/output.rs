//! The stored shape of a run, as `GET /v1/runs/{id}` and the ingest answers give it: the run with
//! its steps (by seq), failures, decisions and quality signals, always arrays, every `metadata`
//! an object.

use std::borrow::Cow;

use diesel::Queryable;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::pg::{Pg, PgValue};
use diesel::sql_types::Jsonb;
use serde::Serialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::NewRun;
use super::cost::Usd;

/// A stored run with its steps (by seq) and failures.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct RunOut {
    pub run_id: Uuid,
    pub agent_id: String,
    pub agent_version: String,
    pub environment: String,
    pub status: String,
    #[serde(serialize_with = "super::timestamp::rfc3339::serialize")]
    pub started_at: OffsetDateTime,
    #[serde(serialize_with = "super::timestamp::rfc3339::option::serialize")]
    pub ended_at: Option<OffsetDateTime>,
    #[serde(serialize_with = "super::timestamp::rfc3339::serialize")]
    pub created_at: OffsetDateTime,
    /// How it arrived: `native` (`/v1/runs`) or `otlp` (`/v1/traces`, gRPC).
    pub source: String,
    /// The sum of its priced steps' `cost_usd`; null when no step is priced.
    pub cost_usd: Option<Usd>,
    /// The session it belongs to and the user it served (docs/sessions.md); null when not sent.
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub steps: Vec<StepOut>,
    /// Only in list pages, only when true: this run has more steps than a list page carries
    /// (`query.list_max_steps_per_run`); `GET /v1/runs/{run_id}` has them all.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub steps_truncated: bool,
    pub failures: Vec<FailureOut>,
    /// In the order sent.
    pub decisions: Vec<DecisionOut>,
    pub quality_signals: Vec<SignalOut>,
}

/// A stored decision; loaded from the view `agent_decisions` (all but its `seq`, in the view's
/// order).
#[derive(Clone, Debug, PartialEq, Serialize, Queryable, ToSchema)]
pub struct DecisionOut {
    pub decision_id: Uuid,
    pub run_id: Uuid,
    pub step_id: Option<Uuid>,
    #[diesel(deserialize_as = String)]
    #[schema(value_type = String)]
    pub decision_type: Cow<'static, str>,
    pub selected: String,
    #[diesel(deserialize_as = String)]
    #[schema(value_type = String)]
    pub reason_code: Cow<'static, str>,
    pub confidence: Option<f32>,
    /// Always an object of flat values; `candidates`, when sent, is a list here.
    #[schema(value_type = Object)]
    pub metadata: RawJson,
    #[serde(serialize_with = "super::timestamp::rfc3339::serialize")]
    pub recorded_at: OffsetDateTime,
    #[serde(serialize_with = "super::timestamp::rfc3339::serialize")]
    pub created_at: OffsetDateTime,
}

/// A stored quality signal; loaded from the view `agent_quality_signals` (all but its `seq`).
#[derive(Clone, Debug, PartialEq, Serialize, Queryable, ToSchema)]
pub struct SignalOut {
    pub signal_id: Uuid,
    pub run_id: Uuid,
    pub step_id: Option<Uuid>,
    #[diesel(deserialize_as = String)]
    #[schema(value_type = String)]
    pub signal_type: Cow<'static, str>,
    #[diesel(deserialize_as = String)]
    #[schema(value_type = String)]
    pub signal_code: Cow<'static, str>,
    pub value: bool,
    pub weight: Option<f32>,
    #[schema(value_type = Object)]
    pub metadata: RawJson,
    #[serde(serialize_with = "super::timestamp::rfc3339::serialize")]
    pub recorded_at: OffsetDateTime,
    #[serde(serialize_with = "super::timestamp::rfc3339::serialize")]
    pub created_at: OffsetDateTime,
}

/// A stored step; loaded straight from `agent_steps`.
// Loaded by position: the fields are in the table's column order, and the reader (`db::read`)
// selects all its columns.
#[derive(Clone, Debug, PartialEq, Serialize, Queryable, ToSchema)]
pub struct StepOut {
    pub step_id: Uuid,
    pub run_id: Uuid,
    pub seq: i32,
    pub step_type: String,
    pub name: String,
    pub latency_ms: i32,
    #[serde(serialize_with = "super::timestamp::rfc3339::serialize")]
    pub started_at: OffsetDateTime,
    #[serde(serialize_with = "super::timestamp::rfc3339::serialize")]
    pub ended_at: OffsetDateTime,
    /// Always an object.
    #[schema(value_type = Object)]
    pub metadata: RawJson,
    #[serde(serialize_with = "super::timestamp::rfc3339::serialize")]
    pub created_at: OffsetDateTime,
    /// The span's id (hex) for OTLP steps.
    pub span_id: Option<String>,
    pub parent_span_id: Option<String>,
    /// The model an LLM step used, and its token usage.
    pub model: Option<String>,
    pub input_tokens: Option<i32>,
    pub output_tokens: Option<i32>,
    /// What it cost: its model's price at its start times its tokens (docs/cost.md); null
    /// without a price or token counts, never a guessed zero.
    pub cost_usd: Option<Usd>,
}

/// A `jsonb` value as PostgreSQL's own text, passed through to answers without being parsed
/// into a tree and written out again (a list page carries hundreds of step metadata objects).
#[derive(Clone, Debug, FromSqlRow)]
#[diesel(sql_type = Jsonb)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    pub fn from_value(value: &serde_json::Value) -> Self {
        RawJson(serde_json::value::to_raw_value(value).unwrap_or_else(|_| Self::empty()))
    }

    fn empty() -> Box<RawValue> {
        RawValue::from_string("{}".into()).unwrap_or_else(|_| unreachable!("{{}} is JSON"))
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for RawJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl FromSql<Jsonb, Pg> for RawJson {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        // The binary jsonb format is a version byte (1) and the value's text.
        let bytes = value.as_bytes();
        match bytes.split_first() {
            Some((1, text)) => Ok(RawJson(RawValue::from_string(
                std::str::from_utf8(text)?.to_owned(),
            )?)),
            _ => Err("unsupported jsonb format version".into()),
        }
    }
}

/// A stored failure; loaded straight from `agent_failures`.
// Loaded by position, as `StepOut` is.
#[derive(Clone, Debug, PartialEq, Serialize, Queryable, ToSchema)]
pub struct FailureOut {
    pub failure_id: Uuid,
    pub run_id: Uuid,
    pub step_id: Option<Uuid>,
    pub failure_type: String,
    pub failure_code: String,
    pub message: String,
    #[serde(serialize_with = "super::timestamp::rfc3339::serialize")]
    pub created_at: OffsetDateTime,
    /// Ours: what the client sent beside the code (an object; `{}` when nothing). An OTLP
    /// failure keeps the `error.type`, `exception.type` or HTTP status it was given, as sent.
    #[schema(value_type = Object)]
    pub metadata: RawJson,
}

impl RunOut {
    /// The stored form of a run just written: the run row's `created_at`, and `written_at` (the
    /// transaction's `now()`) for its steps and failures, exactly as a later read returns them.
    pub fn from_new(run: &NewRun, created_at: OffsetDateTime, written_at: OffsetDateTime) -> Self {
        RunOut {
            run_id: run.run_id,
            agent_id: run.agent_id.clone(),
            agent_version: run.agent_version.clone(),
            environment: run.environment.clone(),
            status: run.status.as_str().into(),
            started_at: run.started_at,
            ended_at: run.ended_at,
            created_at,
            source: "native".into(),
            cost_usd: super::cost::total(run.steps.iter().map(|s| s.cost_nanos)).map(Usd),
            session_id: run.session_id.clone(),
            user_id: run.user_id.clone(),
            steps_truncated: false,
            steps: run
                .steps
                .iter()
                .map(|s| StepOut {
                    step_id: s.step_id,
                    run_id: run.run_id,
                    seq: s.seq,
                    step_type: s.step_type.as_str().into(),
                    name: s.name.clone(),
                    latency_ms: s.latency_ms,
                    started_at: s.started_at,
                    ended_at: s.ended_at,
                    metadata: RawJson::from_value(&s.metadata),
                    created_at: written_at,
                    span_id: None,
                    parent_span_id: None,
                    model: s.model.clone(),
                    input_tokens: s.input_tokens,
                    output_tokens: s.output_tokens,
                    cost_usd: s.cost_nanos.map(Usd),
                })
                .collect(),
            failures: run
                .failures
                .iter()
                .map(|f| FailureOut {
                    failure_id: f.failure_id,
                    run_id: run.run_id,
                    step_id: f.step_id,
                    failure_type: f.failure_type.as_str().into(),
                    failure_code: f.failure_code.clone(),
                    message: f.message.clone(),
                    created_at: written_at,
                    metadata: RawJson::from_value(&f.metadata),
                })
                .collect(),
            decisions: run
                .decisions
                .iter()
                .map(|d| DecisionOut {
                    decision_id: d.decision_id,
                    run_id: run.run_id,
                    step_id: d.step_id,
                    decision_type: d.decision_type.into(),
                    selected: d.selected.clone(),
                    reason_code: d.reason_code.into(),
                    confidence: d.confidence,
                    metadata: RawJson::from_value(&d.metadata),
                    recorded_at: written_at,
                    created_at: written_at,
                })
                .collect(),
            quality_signals: run
                .quality_signals
                .iter()
                .map(|q| SignalOut {
                    signal_id: q.signal_id,
                    run_id: run.run_id,
                    step_id: q.step_id,
                    signal_type: q.signal_type.into(),
                    signal_code: q.signal_code.into(),
                    value: q.value,
                    weight: q.weight,
                    metadata: RawJson::from_value(&q.metadata),
                    recorded_at: written_at,
                    created_at: written_at,
                })
                .collect(),
        }
    }
}
