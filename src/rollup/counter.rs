//! The counters of a rollup row: `stats_rollup.c` maps each counter's key to a number that sums
//! across rows (and across the hours, days and months of the grains).
//!
//! Keys are `kind` or `kind:name`. [`Counter::key`] writes them for the deltas the write paths
//! compute, [`Counter::parse`] reads them for `/v1/stats`, and the prefixes below are what the
//! stats and agents queries match in SQL. The other writer of keys is SQL itself: the functions
//! `agenttracer_run_entries`, `agenttracer_step_entries` and `agenttracer_failure_entries`
//! (migrations/2026-11-23-000003_stats_rollup), which the triggers and the raw part of a stats
//! query use; `tests/api/query.rs` checks that they name every counter as this module does.

use std::fmt;

use crate::model::{FailureType, RunStatus, StepType};

/// One counter of a rollup row, and its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter<'a> {
    /// `runs:<status>`: runs.
    Runs(RunStatus),
    /// `steps`: steps.
    Steps,
    /// `latency_sum`: the sum of the steps' `latency_ms`.
    LatencySum,
    /// `type:<step_type>`: steps of a type.
    StepType(StepType),
    /// `fail:<failure_type>/<failure_code>`: failure records (the code is free form).
    Failures(FailureType, &'a str),
    /// `model_steps:<model>`: steps that name a model.
    ModelSteps(&'a str),
    /// `model_in:<model>`: their input tokens (none counts 0).
    ModelInputTokens(&'a str),
    /// `model_out:<model>`: their output tokens.
    ModelOutputTokens(&'a str),
    /// `cost:<model>`: their cost in nano-dollars (10⁻⁹ USD), priced steps only.
    ModelCost(&'a str),
    /// `lat:<bucket>`: steps whose latency falls in a histogram bucket ([`super::bucket`]).
    StepLatency(i32),
    /// `dur:<bucket>`: ended runs whose duration falls in a histogram bucket.
    RunDuration(i32),
}

impl<'a> Counter<'a> {
    /// The prefix of every `runs:<status>` key.
    pub const RUNS: &'static str = "runs:";
    /// The prefix of every `fail:<type>/<code>` key.
    pub const FAILURES: &'static str = "fail:";
    /// The prefix of every `cost:<model>` key.
    pub const COST: &'static str = "cost:";
    /// The prefix of the step latency histogram's keys, `lat:<bucket>`.
    pub const STEP_LATENCY: &'static str = "lat:";
    /// The prefix of the run duration histogram's keys, `dur:<bucket>`.
    pub const RUN_DURATION: &'static str = "dur:";

    /// The key in `stats_rollup.c`.
    pub fn key(&self) -> String {
        self.to_string()
    }

    /// The counter of a key; `None` for a key this version does not know.
    pub fn parse(key: &'a str) -> Option<Counter<'a>> {
        let (kind, name) = match key.split_once(':') {
            Some((kind, name)) => (kind, Some(name)),
            None => (key, None),
        };
        Some(match (kind, name) {
            ("steps", None) => Counter::Steps,
            ("latency_sum", None) => Counter::LatencySum,
            ("runs", Some(status)) => Counter::Runs(RunStatus::parse(status)?),
            ("type", Some(step_type)) => Counter::StepType(StepType::parse(step_type)?),
            ("fail", Some(failure)) => {
                let (failure_type, code) = failure.split_once('/')?;
                Counter::Failures(FailureType::parse(failure_type)?, code)
            }
            ("model_steps", Some(model)) => Counter::ModelSteps(model),
            ("model_in", Some(model)) => Counter::ModelInputTokens(model),
            ("model_out", Some(model)) => Counter::ModelOutputTokens(model),
            ("cost", Some(model)) => Counter::ModelCost(model),
            ("lat", Some(bucket)) => Counter::StepLatency(bucket.parse().ok()?),
            ("dur", Some(bucket)) => Counter::RunDuration(bucket.parse().ok()?),
            _ => return None,
        })
    }
}

impl fmt::Display for Counter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Counter::Runs(status) => write!(f, "{}{}", Counter::RUNS, status.as_str()),
            Counter::Steps => f.write_str("steps"),
            Counter::LatencySum => f.write_str("latency_sum"),
            Counter::StepType(step_type) => write!(f, "type:{}", step_type.as_str()),
            Counter::Failures(failure_type, code) => {
                write!(f, "{}{}/{code}", Counter::FAILURES, failure_type.as_str())
            }
            Counter::ModelSteps(model) => write!(f, "model_steps:{model}"),
            Counter::ModelInputTokens(model) => write!(f, "model_in:{model}"),
            Counter::ModelOutputTokens(model) => write!(f, "model_out:{model}"),
            Counter::ModelCost(model) => write!(f, "{}{model}", Counter::COST),
            Counter::StepLatency(bucket) => write!(f, "{}{bucket}", Counter::STEP_LATENCY),
            Counter::RunDuration(bucket) => write!(f, "{}{bucket}", Counter::RUN_DURATION),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_parses_back_from_its_key() {
        let counters = [
            Counter::Runs(RunStatus::Failure),
            Counter::Runs(RunStatus::Running),
            Counter::Steps,
            Counter::LatencySum,
            Counter::StepType(StepType::Llm),
            Counter::Failures(FailureType::Tool, "timeout"),
            // A free-form code may hold the separators themselves.
            Counter::Failures(FailureType::Orchestration, "a/b:c"),
            Counter::ModelSteps("gpt-4o"),
            Counter::ModelInputTokens("ns:model/v1"),
            Counter::ModelOutputTokens(""),
            Counter::ModelCost("claude-3-5-sonnet*"),
            Counter::StepLatency(-32768),
            Counter::StepLatency(104),
            Counter::RunDuration(-3),
        ];
        for counter in counters {
            let key = counter.key();
            assert_eq!(Counter::parse(&key), Some(counter), "{key}");
        }
    }

    #[test]
    fn keys_are_those_the_sql_writes() {
        assert_eq!(Counter::Runs(RunStatus::Success).key(), "runs:success");
        assert_eq!(Counter::StepType(StepType::Tool).key(), "type:tool");
        assert_eq!(
            Counter::Failures(FailureType::Model, "rate/limit").key(),
            "fail:model/rate/limit"
        );
        assert_eq!(Counter::ModelInputTokens("m").key(), "model_in:m");
        assert_eq!(Counter::StepLatency(-32768).key(), "lat:-32768");
        assert_eq!(Counter::RunDuration(7).key(), "dur:7");
        for prefix in [
            Counter::RUNS,
            Counter::FAILURES,
            Counter::COST,
            Counter::STEP_LATENCY,
            Counter::RUN_DURATION,
        ] {
            assert!(prefix.ends_with(':') && !prefix[..prefix.len() - 1].contains(':'));
        }
    }

    #[test]
    fn unknown_keys_are_not_counters() {
        for key in [
            "",
            "steps:x",
            "runs",
            "runs:lost",
            "type:dance",
            "fail:tool",
            "fail:weather/rain",
            "lat:x",
            "dur:1.5",
            "whatever:1",
        ] {
            assert_eq!(Counter::parse(key), None, "{key}");
        }
    }
}
