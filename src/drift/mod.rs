//! Behaviour profiles, baselines and drift (docs/drift.md, DESIGN §12).
//!
//! - [`profile`]: an agent version's behaviour over a window, from one aggregate statement:
//!   decision and signal counts and shares, run-duration statistics.
//! - [`compare`]: what moved between two profiles, by the original's thresholds, with a
//!   chi-square on real counts.
//! - [`store`]: the rows of `behavior_profiles`, `behavior_baselines` and `behavior_drift`.
//! - [`detect`]: every active baseline against the window that just ended, under an advisory
//!   lock, on a schedule in the ingest role and from `agenttracer drift detect`.
//! - [`mix`]: an agent's decision and signal counts over a window and in time bins of it, for
//!   the web UI.
//!
//! The original's `behavior_*` columns are naive timestamps in UTC, and its answers print them
//! without an offset ([`naive`]).

pub mod compare;
pub mod detect;
pub mod mix;
pub mod profile;
pub mod store;

use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Why a drift operation did not happen; each is a 4xx of its route.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    /// Fewer runs in the window than asked for (the original's `InsufficientDataError`).
    #[error("Insufficient data: {found} runs found, minimum {required} required")]
    InsufficientData { found: i64, required: i64 },
    #[error("{0}")]
    NotFound(String),
    /// The change was made before (a second resolve or approval): 400, as the original's.
    #[error("{0}")]
    AlreadyDone(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// A UTC time as the naive timestamp the `behavior_*` tables hold.
pub fn naive(t: OffsetDateTime) -> PrimitiveDateTime {
    let utc = t.to_offset(UtcOffset::UTC);
    PrimitiveDateTime::new(utc.date(), utc.time())
}

/// Naive timestamps printed as Python's `isoformat()` prints them: no offset, microseconds only
/// when there are any.
pub mod iso {
    use serde::Serializer;
    use time::PrimitiveDateTime;
    use time::macros::format_description;

    pub fn text(t: &PrimitiveDateTime) -> String {
        let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
        let base = t.format(&seconds).unwrap_or_default();
        match t.microsecond() {
            0 => base,
            us => format!("{base}.{us:06}"),
        }
    }

    pub fn serialize<S: Serializer>(t: &PrimitiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&text(t))
    }

    pub mod option {
        use serde::Serializer;
        use time::PrimitiveDateTime;

        pub fn serialize<S: Serializer>(
            t: &Option<PrimitiveDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::text(t)),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn naive_times_print_as_python_isoformat() {
        let t = naive(datetime!(2026-12-02 13:30:05.5 +02:00));
        assert_eq!(iso::text(&t), "2026-12-02T11:30:05.500000");
        let whole = naive(datetime!(2026-12-02 11:30:05 UTC));
        assert_eq!(iso::text(&whole), "2026-12-02T11:30:05");
    }
}
