//! The histogram buckets of step latency and run duration (the `lat:<i>` and `dur:<i>`
//! counters), as the SQL function `agenttracer_bucket` computes them.
//!
//! Buckets are logarithmic: bucket i holds (γ^(i-1), γ^i] with γ = 1.04/0.96 and stands for
//! 0.96·γ^i (`agenttracer_bucket_value`), within 4 % of every value in it; bucket -32768 holds
//! exact zeros. Percentiles interpolated between two such values are within 4 % of the exact
//! `percentile_cont` (`agenttracer_quantiles`).

use time::OffsetDateTime;

/// `ln(γ)`, γ = 1.04 / 0.96: the bucket width, as `agenttracer_bucket` has it.
const LN_GAMMA: f64 = 0.0800427076735364;

/// The bucket of exact zeros.
pub const ZERO: i32 = -32768;

/// The histogram bucket of `x` (a latency or duration in milliseconds), exactly as the SQL
/// function `agenttracer_bucket` computes it: `ceil(ln(x) / ln γ)`, [`ZERO`] for zero, none for
/// a negative value. Both sides use the same IEEE operations on the same inputs (glibc's `log`),
/// so a row counted here is uncounted by the delete triggers from the very same bucket.
pub fn bucket(x: f64) -> Option<i32> {
    if x > 0.0 {
        Some((x.ln() / LN_GAMMA).ceil() as i32)
    } else if x == 0.0 {
        Some(ZERO)
    } else {
        None
    }
}

/// A run's duration in milliseconds as the SQL computes it
/// (`extract(epoch FROM ended_at - started_at)::float8 * 1000`).
pub fn duration_ms(started_at: OffsetDateTime, ended_at: OffsetDateTime) -> f64 {
    let micros = (ended_at - started_at).whole_microseconds();
    micros as f64 / 1_000_000.0 * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn buckets_are_logarithmic_and_zero_has_its_own() {
        assert_eq!(bucket(0.0), Some(ZERO));
        assert_eq!(bucket(-1.0), None);
        assert_eq!(bucket(1.0), Some(0));
        // 1.04/0.96 is the bucket width: its upper edge is in, just above is the next one.
        let gamma = 1.04 / 0.96;
        assert_eq!(bucket(gamma * 0.999_999), Some(1));
        assert_eq!(bucket(gamma * 1.000_001), Some(2));
        // Every value is within 4 % of what its bucket stands for.
        for x in [0.5, 3.0, 17.0, 999.0, 123_456.0] {
            let i = bucket(x).unwrap_or(ZERO);
            let stands_for = 0.96 * (f64::from(i) * LN_GAMMA).exp();
            assert!((stands_for - x).abs() <= 0.04 * x, "{x}: {stands_for}");
        }
    }

    #[test]
    fn durations_are_milliseconds_with_their_microseconds() {
        let start = datetime!(2026-01-01 0:00 UTC);
        let end = start + time::Duration::microseconds(1_234_567);
        assert_eq!(duration_ms(start, end), 1234.567);
        assert_eq!(duration_ms(start, start), 0.0);
    }
}
