//! What validation may accept: the limits of `[ingest]` and the privacy mode.

use crate::config::{IngestConfig, PrivacyMode};

/// What validation may accept.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub max_steps: usize,
    pub max_metadata_depth: usize,
    pub max_metadata_bytes: usize,
    pub max_string_chars: usize,
    pub privacy: PrivacyMode,
}

impl Rules {
    pub fn new(ingest: &IngestConfig, privacy: PrivacyMode) -> Self {
        Self {
            max_steps: ingest.max_steps_per_run,
            max_metadata_depth: ingest.max_metadata_depth,
            max_metadata_bytes: ingest.max_metadata_bytes,
            max_string_chars: ingest.max_string_chars,
            privacy,
        }
    }
}

impl Default for Rules {
    /// The configuration's defaults.
    fn default() -> Self {
        Self::new(&IngestConfig::default(), PrivacyMode::default())
    }
}
