//! A problem with a request as FastAPI reports it: one entry of a `422`'s `detail`. Validation
//! (body, query string, path) produces these; the error type (`crate::error`) answers with them.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// One problem with a request, in FastAPI's shape.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    #[serde(rename = "type")]
    pub kind: String,
    /// Where: `body`, `query` or `path`, then field names and list indexes.
    #[schema(value_type = Vec<LocItem>)]
    pub loc: Vec<Value>,
    pub msg: String,
}

/// One item of a location: a field name or a list index.
// (The schema of `FieldError::loc`'s items, which are JSON values.)
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LocItem {
    Key(String),
    Index(u64),
}

impl FieldError {
    pub fn new(kind: &str, loc: Vec<Value>, msg: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            loc,
            msg: msg.into(),
        }
    }

    /// The same problem, located under `prefix` (a run's problem within a batch, say).
    pub fn within(mut self, prefix: &[Value]) -> Self {
        self.loc.splice(0..0, prefix.iter().cloned());
        self
    }
}
