//! A problem with a request as FastAPI reports it, one entry of a `422`'s `detail`.

use serde::Serialize;
use serde_json::Value;

/// One problem with a request, in FastAPI's shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldError {
    #[serde(rename = "type")]
    pub kind: String,
    pub loc: Vec<Value>,
    pub msg: String,
}

impl FieldError {
    pub fn new(kind: &str, loc: Vec<Value>, msg: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            loc,
            msg: msg.into(),
        }
    }
}

/// The error for a body that is not JSON at all.
pub fn json_error(err: &serde_json::Error) -> FieldError {
    FieldError::new(
        "json_invalid",
        vec![Value::from("body"), Value::from(err.column())],
        format!("JSON decode error: {err}"),
    )
}
