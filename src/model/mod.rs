//! The domain: runs, their ordered steps and their failures, and the decisions and quality
//! signals of a run ([`behaviour`]).
//!
//! [`input`] turns a JSON body into a validated [`NewRun`] (collecting every problem), [`privacy`]
//! keeps prompts and credentials out, and [`output`] is the stored shape every endpoint answers with.

pub mod behaviour;
pub mod cost;
mod field_error;
pub mod input;
pub mod output;
pub mod privacy;
pub mod timestamp;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

pub use field_error::{FieldError, LocItem};

/// Defines a closed set of lowercase string values stored as text (and checked by the schema).
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every accepted value, in schema order.
            pub const VALUES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

string_enum!(
    /// A run's status; all but `running` are final.
    RunStatus { Success => "success", Failure => "failure", Partial => "partial", Running => "running" }
);
string_enum!(
    /// What a step did.
    StepType { Plan => "plan", Retrieve => "retrieve", Tool => "tool", Llm => "llm", Respond => "respond", Other => "other" }
);
string_enum!(
    /// The first level of the failure taxonomy; the second (`failure_code`) is free-form.
    FailureType { Tool => "tool", Model => "model", Retrieval => "retrieval", Orchestration => "orchestration" }
);

impl RunStatus {
    /// A final run is frozen: a resend of it changes nothing.
    pub fn is_final(self) -> bool {
        self != RunStatus::Running
    }
}

/// A validated run, ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRun {
    pub run_id: Uuid,
    pub agent_id: String,
    pub agent_version: String,
    pub environment: String,
    pub status: RunStatus,
    pub started_at: OffsetDateTime,
    pub ended_at: Option<OffsetDateTime>,
    /// The conversation or session the run belongs to, and the (pseudonymous) user it served:
    /// identifiers, as the agent sent them (docs/sessions.md).
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    /// Ordered by `seq`, which runs 0..n-1.
    pub steps: Vec<NewStep>,
    pub failures: Vec<NewFailure>,
    /// In the order sent.
    pub decisions: Vec<behaviour::NewDecision>,
    pub quality_signals: Vec<behaviour::NewSignal>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewStep {
    pub step_id: Uuid,
    pub seq: i32,
    pub step_type: StepType,
    pub name: String,
    pub latency_ms: i32,
    pub started_at: OffsetDateTime,
    pub ended_at: OffsetDateTime,
    /// Always a JSON object.
    pub metadata: serde_json::Value,
    /// Taken from the metadata (see [`usage_of`]).
    pub model: Option<String>,
    pub input_tokens: Option<i32>,
    pub output_tokens: Option<i32>,
    /// Of the input tokens, those read from the provider's cache.
    pub cached_input_tokens: Option<i32>,
    /// Of the output tokens, those spent reasoning.
    pub reasoning_tokens: Option<i32>,
    /// Its cost in nano-dollars, priced at ingest ([`crate::cost::price_steps`]); none without
    /// a price.
    pub cost_nanos: Option<i64>,
}

/// A step's model and token counts, as its metadata names them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    pub model: Option<String>,
    pub input_tokens: Option<i32>,
    pub output_tokens: Option<i32>,
    pub cached_input_tokens: Option<i32>,
    pub reasoning_tokens: Option<i32>,
}

impl NewStep {
    /// The token counts the cost rule reads.
    pub fn tokens(&self) -> cost::Tokens {
        cost::Tokens::counted(
            self.input_tokens,
            self.output_tokens,
            self.cached_input_tokens,
            self.reasoning_tokens,
        )
    }
}

/// The keys of a step's cached input tokens, in the order tried: ours, the GenAI conventions'
/// (both spellings), OpenInference's. They count tokens the input count includes.
pub const CACHED_INPUT_KEYS: &[&str] = &[
    "cached_input_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
];

/// The keys of a step's reasoning tokens: ours, OpenLLMetry's, OpenInference's. They count
/// tokens the output count includes.
pub const REASONING_KEYS: &[&str] = &[
    "reasoning_tokens",
    "gen_ai.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning",
];

/// The model and token usage a step's metadata names, under the keys agents commonly use
/// (plain, OpenTelemetry GenAI, OpenAI-style, OpenInference).
pub fn usage_of(metadata: &serde_json::Value) -> Usage {
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| metadata.get(*k)?.as_str().filter(|s| !s.is_empty()))
            .map(|s| s.chars().take(255).collect::<String>())
    };
    let count = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| metadata.get(*k)?.as_i64())
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n >= 0)
    };
    Usage {
        model: text(&[
            "model",
            "gen_ai.response.model",
            "gen_ai.request.model",
            "llm.model_name",
        ]),
        input_tokens: count(&[
            "input_tokens",
            "gen_ai.usage.input_tokens",
            "prompt_tokens",
            "llm.token_count.prompt",
        ]),
        output_tokens: count(&[
            "output_tokens",
            "gen_ai.usage.output_tokens",
            "completion_tokens",
            "llm.token_count.completion",
        ]),
        cached_input_tokens: count(CACHED_INPUT_KEYS),
        reasoning_tokens: count(REASONING_KEYS),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewFailure {
    pub failure_id: Uuid,
    pub step_id: Option<Uuid>,
    pub failure_type: FailureType,
    pub failure_code: String,
    pub message: String,
    /// An object; `{}` when the client sent none.
    pub metadata: serde_json::Value,
}
