//! What validation may accept: the limits of `[ingest]` and the privacy mode, which the
//! ingest role takes from its configuration (docs/operations.md, Limits).

use crate::model::privacy::PrivacyMode;

/// What validation may accept.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub max_steps: usize,
    pub max_metadata_depth: usize,
    pub max_metadata_bytes: usize,
    pub max_string_chars: usize,
    pub privacy: PrivacyMode,
}
