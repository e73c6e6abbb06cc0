//! Comparing an observed profile with its baseline's: which metrics drifted, by how much, how
//! surely. Pure: no database, so every rule is tested on numbers here.
//!
//! The original's rules (reference §3), with one correction: its chi-square ran on probabilities
//! × 1000, so its p-value did not depend on how many runs there were. Here a decision type (or a
//! signal type) is a 2 × k contingency table of real counts, baseline against observed, and the
//! p-value is the chi-square distribution's upper tail (`statrs`) at k − 1 degrees of freedom.

use std::collections::{BTreeMap, BTreeSet};

use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::config::DriftConfig;

/// Counts per type, then per option (a decision's `selected`, a signal's `signal_code`).
pub type Counts = BTreeMap<String, BTreeMap<String, i64>>;

/// `decision`, `signal` or `latency`: the kinds of drift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Decision,
    Signal,
    Latency,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Decision => "decision",
            Kind::Signal => "signal",
            Kind::Latency => "latency",
        }
    }
}

/// A metric that moved past the thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    /// `{type}.{option}`, or `mean_run_duration_ms` / `p95_run_duration_ms`.
    pub metric: String,
    pub baseline_value: f64,
    pub observed_value: f64,
    pub delta: f64,
    pub delta_percent: f64,
    /// The p-value (1.0 for latency, which has no test).
    pub significance: f64,
    pub test_method: &'static str,
    pub severity: &'static str,
}

/// The parts of a profile the comparison reads.
pub struct Side<'a> {
    pub decisions: &'a Counts,
    pub signals: &'a Counts,
    pub mean_ms: f64,
    pub p95_ms: f64,
}

/// The Pearson chi-square of a 2 × k table (baseline row, observed row) and its p-value, on
/// k − 1 degrees of freedom. Fewer than two options, or an empty row, tell nothing: p = 1.
pub fn chi_square(baseline: &[i64], observed: &[i64]) -> (f64, f64) {
    let k = baseline.len();
    let (b_total, o_total) = (
        baseline.iter().sum::<i64>() as f64,
        observed.iter().sum::<i64>() as f64,
    );
    if k < 2 || b_total == 0.0 || o_total == 0.0 {
        return (0.0, 1.0);
    }
    let total = b_total + o_total;
    let mut stat = 0.0;
    for (b, o) in baseline.iter().zip(observed) {
        let column = (b + o) as f64;
        for (count, row) in [(*b as f64, b_total), (*o as f64, o_total)] {
            let expected = row * column / total;
            if expected > 0.0 {
                stat += (count - expected).powi(2) / expected;
            }
        }
    }
    let p = ChiSquared::new((k - 1) as f64)
        .map(|dist| dist.sf(stat))
        .unwrap_or(1.0);
    (stat, p)
}

/// `low`, `medium` or `high` from |Δ %| and the configured bounds.
pub fn severity(delta_percent: f64, cfg: &DriftConfig) -> &'static str {
    let size = delta_percent.abs();
    if size <= cfg.low_max_delta_percent {
        "low"
    } else if size <= cfg.medium_max_delta_percent {
        "medium"
    } else {
        "high"
    }
}

/// Each type's share of its options, as the profile's distributions hold them.
pub fn shares(counts: &Counts) -> BTreeMap<String, BTreeMap<String, f64>> {
    counts
        .iter()
        .map(|(kind, options)| {
            let total = options.values().sum::<i64>() as f64;
            let shares = options
                .iter()
                .map(|(option, n)| (option.clone(), *n as f64 / total.max(1.0)))
                .collect();
            (kind.clone(), shares)
        })
        .collect()
}

/// Every drifted metric of `observed` against `baseline`.
pub fn compare(baseline: &Side, observed: &Side, cfg: &DriftConfig) -> Vec<Finding> {
    let mut found = distributions(
        Kind::Decision,
        baseline.decisions,
        observed.decisions,
        (cfg.decision_p_value, cfg.decision_min_delta_percent),
        cfg,
    );
    found.extend(distributions(
        Kind::Signal,
        baseline.signals,
        observed.signals,
        (cfg.signal_p_value, cfg.signal_min_delta_percent),
        cfg,
    ));
    let latency = [
        ("mean_run_duration_ms", baseline.mean_ms, observed.mean_ms),
        ("p95_run_duration_ms", baseline.p95_ms, observed.p95_ms),
    ];
    for (metric, b, o) in latency {
        // No durations on either side: nothing to compare (as the original).
        if b == 0.0 || o == 0.0 {
            continue;
        }
        let delta_percent = (o - b) / b * 100.0;
        if delta_percent.abs() >= cfg.latency_min_delta_percent {
            found.push(Finding {
                kind: Kind::Latency,
                metric: metric.into(),
                baseline_value: b,
                observed_value: o,
                delta: o - b,
                delta_percent,
                significance: 1.0,
                test_method: "percent_threshold",
                severity: severity(delta_percent, cfg),
            });
        }
    }
    found
}

/// The drifted options of each type present on both sides.
fn distributions(
    kind: Kind,
    baseline: &Counts,
    observed: &Counts,
    (p_max, min_delta): (f64, f64),
    cfg: &DriftConfig,
) -> Vec<Finding> {
    let mut found = Vec::new();
    let types: BTreeSet<&String> = baseline.keys().chain(observed.keys()).collect();
    for name in types {
        let (Some(b), Some(o)) = (baseline.get(name), observed.get(name)) else {
            continue;
        };
        let options: BTreeSet<&String> = b.keys().chain(o.keys()).collect();
        let count = |side: &BTreeMap<String, i64>, option: &String| -> i64 {
            side.get(option).copied().unwrap_or(0)
        };
        let b_counts: Vec<i64> = options.iter().map(|opt| count(b, opt)).collect();
        let o_counts: Vec<i64> = options.iter().map(|opt| count(o, opt)).collect();
        let (b_total, o_total) = (
            b_counts.iter().sum::<i64>() as f64,
            o_counts.iter().sum::<i64>() as f64,
        );
        if b_total == 0.0 || o_total == 0.0 {
            continue;
        }
        let (_, p) = chi_square(&b_counts, &o_counts);
        // As the original: an untestable type (one option) counts as significant, and its
        // option's share cannot move.
        if !(p == 1.0 || p <= p_max) {
            continue;
        }
        for (i, option) in options.iter().enumerate() {
            let (bv, ov) = (b_counts[i] as f64 / b_total, o_counts[i] as f64 / o_total);
            let delta = ov - bv;
            // A new option (no baseline share) has no relative change: as the original.
            let delta_percent = if bv > 0.0 { delta / bv * 100.0 } else { 0.0 };
            if delta_percent.abs() >= min_delta {
                found.push(Finding {
                    kind,
                    metric: format!("{name}.{option}"),
                    baseline_value: bv,
                    observed_value: ov,
                    delta,
                    delta_percent,
                    significance: p,
                    test_method: "chi_square",
                    severity: severity(delta_percent, cfg),
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(kind: &str, options: &[(&str, i64)]) -> Counts {
        let mut c = Counts::new();
        c.insert(
            kind.into(),
            options.iter().map(|(k, n)| ((*k).into(), *n)).collect(),
        );
        c
    }

    fn side<'a>(decisions: &'a Counts, signals: &'a Counts) -> Side<'a> {
        Side {
            decisions,
            signals,
            mean_ms: 0.0,
            p95_ms: 0.0,
        }
    }

    #[test]
    fn the_chi_square_of_a_two_by_two_table_matches_the_textbook() {
        // 130/70 against 92/108: the shifted mix at 200 runs a side. By hand:
        // expected 111/89 each row; χ² = 2·(19²/111 + 19²/89) = 14.617...
        let (stat, p) = chi_square(&[130, 70], &[92, 108]);
        assert!((stat - 14.6178).abs() < 1e-3, "{stat}");
        // Upper tail of χ²(1) at 14.6178: 1.317e-4 (erfc(sqrt(stat/2))).
        assert!((p - 1.317e-4).abs() < 1e-6, "{p}");
        // The same shares from ten times the runs are far surer.
        let (_, p10) = chi_square(&[1300, 700], &[920, 1080]);
        assert!(p10 < 1e-30, "{p10}");
        // The same shares from 20 runs a side are not significant.
        let (_, small) = chi_square(&[13, 7], &[9, 11]);
        assert!(small > 0.05, "{small}");
    }

    #[test]
    fn an_unchanged_mix_is_not_significant_and_one_option_tells_nothing() {
        let (stat, p) = chi_square(&[130, 70], &[130, 70]);
        assert_eq!(stat, 0.0);
        assert!((p - 1.0).abs() < 1e-12);
        assert_eq!(chi_square(&[5], &[9]), (0.0, 1.0));
        assert_eq!(chi_square(&[0, 0], &[3, 4]), (0.0, 1.0));
    }

    #[test]
    fn the_shifted_mix_drifts_with_the_originals_severities() {
        let cfg = DriftConfig::default();
        let none = Counts::new();
        let base = counts("tool_selection", &[("api", 130), ("cache", 70)]);
        let seen = counts("tool_selection", &[("api", 92), ("cache", 108)]);
        let found = compare(&side(&base, &none), &side(&seen, &none), &cfg);
        assert_eq!(found.len(), 2, "{found:?}");
        let api = &found[0];
        assert_eq!(api.metric, "tool_selection.api");
        assert_eq!(api.kind, Kind::Decision);
        assert!((api.delta_percent - -29.23).abs() < 0.01, "{api:?}");
        assert_eq!(api.severity, "medium");
        assert_eq!(api.test_method, "chi_square");
        let cache = &found[1];
        assert!((cache.delta_percent - 54.29).abs() < 0.01, "{cache:?}");
        assert_eq!(cache.severity, "high");
        assert!((cache.baseline_value - 0.35).abs() < 1e-12);
        assert!((cache.observed_value - 0.54).abs() < 1e-12);

        let same = compare(&side(&base, &none), &side(&base, &none), &cfg);
        assert!(same.is_empty(), "{same:?}");
    }

    #[test]
    fn signals_use_their_own_delta_and_latency_its_percent_threshold() {
        let cfg = DriftConfig::default();
        let none = Counts::new();
        // 0.5 → 0.44 is −12 %: past decisions' 10 %, short of signals' 15 %.
        let base = counts("schema_valid", &[("full_match", 5000), ("partial", 5000)]);
        let seen = counts("schema_valid", &[("full_match", 4400), ("partial", 5600)]);
        let as_signals = compare(&side(&none, &base), &side(&none, &seen), &cfg);
        assert!(as_signals.is_empty(), "{as_signals:?}");
        let as_decisions = compare(&side(&base, &none), &side(&seen, &none), &cfg);
        assert_eq!(as_decisions.len(), 2, "{as_decisions:?}");

        let mut b = side(&none, &none);
        let mut o = side(&none, &none);
        (b.mean_ms, b.p95_ms, o.mean_ms, o.p95_ms) = (1000.0, 2000.0, 1190.0, 2500.0);
        let latency = compare(&b, &o, &cfg);
        assert_eq!(latency.len(), 1, "{latency:?}");
        assert_eq!(latency[0].metric, "p95_run_duration_ms");
        assert_eq!(latency[0].severity, "medium");
        assert_eq!(latency[0].significance, 1.0);
        assert_eq!(latency[0].test_method, "percent_threshold");
        b.p95_ms = 0.0;
        assert!(compare(&b, &o, &cfg).is_empty());
    }

    #[test]
    fn severity_bounds_are_inclusive() {
        let cfg = DriftConfig::default();
        assert_eq!(severity(15.0, &cfg), "low");
        assert_eq!(severity(-15.01, &cfg), "medium");
        assert_eq!(severity(30.0, &cfg), "medium");
        assert_eq!(severity(30.01, &cfg), "high");
    }
}
