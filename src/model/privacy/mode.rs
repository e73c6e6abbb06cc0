//! What the privacy policy does with a violation: `privacy.mode` in the configuration
//! (docs/operations.md, Privacy).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrivacyMode {
    /// Reject only what the original service refused too; redact every other violation.
    #[default]
    Compat,
    /// Reject every violation (422 naming the key path and the rule).
    Reject,
    /// Redact every violation and store the run.
    Redact,
    /// Store everything.
    Off,
}

impl PrivacyMode {
    /// On OTLP nothing is rejected (an exporter cannot fix one span): whether an offending
    /// attribute is redacted (`redact`, `compat`) rather than dropped (`reject`).
    pub fn redacts_attributes(self) -> bool {
        matches!(self, PrivacyMode::Redact | PrivacyMode::Compat)
    }
}
