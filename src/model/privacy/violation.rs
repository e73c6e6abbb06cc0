//! A violation of the policy: which rule, where, and what (never the value).

use serde_json::Value;

/// Which rule a violation broke; the `rule` label of `privacy_violations_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    ContentKey,
    SecretValue,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ContentKey => "content_key",
            Rule::SecretValue => "secret_value",
        }
    }
}

/// One violation: where, which rule, and a description that never includes the value.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    pub loc: Vec<Value>,
    pub rule: Rule,
    pub what: String,
}
