//! A run's decisions and quality signals on its page (docs/behaviour.md): what the agent chose
//! and why, and what it observed, each linked to its step when it names one.

use std::collections::HashMap;

use uuid::Uuid;

use super::run::step_link;
use crate::model::output::{RunOut, StepOut};
use crate::ui::format;

pub struct DecisionView {
    pub decision_type: String,
    pub selected: String,
    pub reason_code: String,
    /// The confidence as a percentage, or empty.
    pub confidence: String,
    /// The other candidates it chose among, comma-separated, or empty.
    pub candidates: String,
    pub step: Option<(String, String)>,
}

pub struct SignalView {
    pub signal_type: String,
    pub signal_code: String,
    pub value: bool,
    pub weight: String,
    pub step: Option<(String, String)>,
}

/// The decisions and signals of a run, in the order the agent sent them.
pub struct RunBehaviour {
    pub decisions: Vec<DecisionView>,
    pub signals: Vec<SignalView>,
}

/// A fraction from 0 to 1 as a percentage; empty when absent.
fn percent(value: Option<f32>) -> String {
    value.map_or_else(String::new, |v| format::percent(f64::from(v) * 100.0))
}

impl RunBehaviour {
    pub fn of(base: &str, run: &RunOut) -> RunBehaviour {
        let steps: HashMap<Uuid, &StepOut> = run.steps.iter().map(|s| (s.step_id, s)).collect();
        let id = run.run_id.to_string();
        let step = |step_id| step_link(base, &id, &steps, step_id);
        RunBehaviour {
            decisions: run
                .decisions
                .iter()
                .map(|d| DecisionView {
                    decision_type: d.decision_type.to_string(),
                    selected: d.selected.clone(),
                    reason_code: d.reason_code.to_string(),
                    confidence: percent(d.confidence),
                    candidates: candidates(d.metadata.get(), &d.selected),
                    step: step(d.step_id),
                })
                .collect(),
            signals: run
                .quality_signals
                .iter()
                .map(|q| SignalView {
                    signal_type: q.signal_type.to_string(),
                    signal_code: q.signal_code.to_string(),
                    value: q.value,
                    weight: percent(q.weight),
                    step: step(q.step_id),
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty() && self.signals.is_empty()
    }
}

/// The candidates of a decision's metadata (its JSON text) other than the one selected.
fn candidates(metadata: &str, selected: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(metadata).unwrap_or_default();
    let names: Vec<&str> = value["candidates"]
        .as_array()
        .map(|c| c.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    names
        .into_iter()
        .filter(|c| *c != selected)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_candidates_and_percentages() {
        let meta = r#"{"candidates": ["api", "cache", 3], "region": "eu"}"#;
        assert_eq!(candidates(meta, "api"), "cache");
        assert_eq!(candidates("{}", "api"), "");
        assert_eq!(percent(Some(0.5)), "50.0 %");
        assert_eq!(percent(None), "");
    }
}
