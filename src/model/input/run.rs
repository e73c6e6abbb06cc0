//! The rules of a run: its fields, its steps (`seq` exactly `0..n-1`, unique ids, bounded
//! metadata), its failures, decisions and quality signals (a `step_id` must be one of the run's
//! steps; [`super::behaviour`]), and the rules across fields (time order, a `failure` status
//! needs a failure).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use uuid::Uuid;

use super::fields::{Loc, Object, Text, Validator};
use super::raw::{RawItems, RawRun};
use super::shape::{Shape, find_nul, json_size_over};
use crate::model::{FailureType, NewFailure, NewRun, NewStep, RunStatus, StepType};

impl Validator {
    pub(super) fn run(&mut self, raw: RawRun) -> Option<NewRun> {
        let (mut obj, decisions, quality_signals) = match raw {
            RawRun::Object {
                fields,
                decisions,
                quality_signals,
            } => (Object::new(&[], fields), decisions, quality_signals),
            RawRun::Other(value) => (self.object(value, &[])?, None, None),
        };
        // (Of a run decoded as a `Value`, they are still among its fields.)
        let decisions = decisions.or_else(|| obj.take("decisions").1.map(RawItems::Other));
        let quality_signals =
            quality_signals.or_else(|| obj.take("quality_signals").1.map(RawItems::Other));
        let run_id = self.uuid(&mut obj, "run_id");
        let agent_id = self.identifier(&mut obj, "agent_id", Text::required(1, 255));
        let agent_version = self.identifier(&mut obj, "agent_version", Text::required(1, 100));
        let environment = self.identifier(&mut obj, "environment", Text::optional(50));
        let status = self.choice(&mut obj, "status", RunStatus::VALUES, RunStatus::parse);
        let started_at = self.datetime(&mut obj, "started_at", true);
        let ended_at = self.datetime(&mut obj, "ended_at", false);
        let session_id = self.identifier(&mut obj, "session_id", Text::optional_between(1, 255));
        let user_id = self.identifier(&mut obj, "user_id", Text::optional_between(1, 255));

        let raw_steps = self.list(&mut obj, "steps");
        // The step ids a failure may name, from every step that declares a valid one.
        let declared_ids: HashSet<Uuid> = raw_steps
            .iter()
            .filter_map(|s| {
                s.get("step_id")?
                    .as_str()
                    .and_then(|id| Uuid::parse_str(id).ok())
            })
            .collect();
        let steps = if raw_steps.len() > self.rules.max_steps {
            self.error(
                &[Value::from("steps")],
                "too_long",
                format!(
                    "List should have at most {} items (ingest.max_steps_per_run), not {}",
                    self.rules.max_steps,
                    raw_steps.len()
                ),
            );
            None
        } else {
            self.steps(raw_steps)
        };

        let mut raw_failures = Vec::new();
        if let (at, Some(f)) = obj.take("failure") {
            raw_failures.push((at.loc(), f));
        }
        for (i, f) in self.list(&mut obj, "failures").into_iter().enumerate() {
            raw_failures.push((vec![Value::from("failures"), Value::from(i)], f));
        }
        let failures: Vec<Option<NewFailure>> = raw_failures
            .into_iter()
            .map(|(path, f)| self.failure(f, &path, &declared_ids))
            .collect();
        let decisions = self.items(
            &obj.field("decisions"),
            decisions,
            &declared_ids,
            Validator::decision,
        );
        let quality_signals = self.items(
            &obj.field("quality_signals"),
            quality_signals,
            &declared_ids,
            Validator::signal,
        );

        // Rules across fields, checked where their inputs are valid.
        if let (Some(Some(start)), Some(Some(end))) = (started_at, ended_at)
            && end < start
        {
            self.error(
                &[Value::from("ended_at")],
                "value_error",
                "ended_at must not be before started_at",
            );
        }
        if status == Some(RunStatus::Failure) && failures.is_empty() {
            self.error(
                &[Value::from("status")],
                "value_error",
                "status 'failure' needs at least one failure (`failure` or `failures`)",
            );
        }

        let failures: Option<Vec<NewFailure>> = failures.into_iter().collect();
        Some(NewRun {
            run_id: run_id?.unwrap_or_else(Uuid::now_v7),
            agent_id: agent_id?,
            agent_version: agent_version?,
            environment: environment.unwrap_or_else(|| "production".into()),
            status: status?,
            started_at: started_at??,
            ended_at: ended_at?,
            session_id,
            user_id,
            steps: steps?,
            failures: failures?,
            decisions: decisions?,
            quality_signals: quality_signals?,
        })
    }

    fn steps(&mut self, raw: Vec<Value>) -> Option<Vec<NewStep>> {
        let n = raw.len();
        let mut steps = Vec::with_capacity(n);
        let mut all_valid = true;
        for (i, value) in raw.into_iter().enumerate() {
            match self.step(value, &[Value::from("steps"), Value::from(i)]) {
                Some(step) => steps.push((i, step)),
                None => all_valid = false,
            }
        }
        // seq must be exactly 0..n-1: no duplicate and none out of range (then, by counting, all present).
        let mut first_at: HashMap<i32, usize> = HashMap::with_capacity(n);
        let mut ids: HashMap<Uuid, usize> = HashMap::with_capacity(n);
        for (i, step) in &steps {
            let at = [Value::from("steps"), Value::from(*i)];
            if step.seq as usize >= n {
                self.error(
                    &[&at[..], &[Value::from("seq")]].concat(),
                    "value_error",
                    format!(
                        "seq values must be exactly 0..{} (one per step), got {}",
                        n.saturating_sub(1),
                        step.seq
                    ),
                );
            } else if let Some(first) = first_at.insert(step.seq, *i) {
                self.error(
                    &[&at[..], &[Value::from("seq")]].concat(),
                    "value_error",
                    format!("seq {} is already used by steps[{first}]", step.seq),
                );
            }
            if let Some(first) = ids.insert(step.step_id, *i) {
                self.error(
                    &[&at[..], &[Value::from("step_id")]].concat(),
                    "value_error",
                    format!("step_id is already used by steps[{first}]"),
                );
            }
        }
        if !all_valid {
            return None;
        }
        let mut steps: Vec<NewStep> = steps.into_iter().map(|(_, s)| s).collect();
        steps.sort_by_key(|s| s.seq);
        Some(steps)
    }

    fn step(&mut self, value: Value, path: &[Value]) -> Option<NewStep> {
        let mut obj = self.object(value, path)?;
        let step_id = self.uuid(&mut obj, "step_id");
        let seq = self.non_negative_int(&mut obj, "seq");
        let step_type = self.choice(&mut obj, "step_type", StepType::VALUES, StepType::parse);
        let name = self.identifier(&mut obj, "name", Text::required(1, 255));
        let latency_ms = self.non_negative_int(&mut obj, "latency_ms");
        let started_at = self.datetime(&mut obj, "started_at", true);
        let ended_at = self.datetime(&mut obj, "ended_at", true);
        let metadata = self.metadata(&mut obj);
        let (started_at, ended_at) = (started_at??, ended_at??);
        if ended_at < started_at {
            self.error(
                &obj.at("ended_at"),
                "value_error",
                "ended_at must not be before started_at",
            );
        }
        let metadata = metadata?;
        let usage = crate::model::usage_of(&metadata);
        Some(NewStep {
            step_id: step_id?.unwrap_or_else(Uuid::now_v7),
            seq: seq?,
            step_type: step_type?,
            name: name?,
            latency_ms: latency_ms?,
            started_at,
            ended_at,
            metadata,
            model: usage.model,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cached_input_tokens: usage.cached_input_tokens,
            reasoning_tokens: usage.reasoning_tokens,
            cost_nanos: None,
        })
    }

    /// A step's or failure's `metadata`: an object (absent: `{}`) within the depth and size
    /// limits, without NUL, then scanned by the privacy policy.
    fn metadata(&mut self, obj: &mut Object) -> Option<Value> {
        let (meta_path, metadata) = obj.take("metadata");
        match metadata {
            None => Some(Value::Object(Map::new())),
            Some(mut meta @ Value::Object(_)) => {
                let shape = Shape::of(&meta);
                if shape.depth > self.rules.max_metadata_depth {
                    self.error(
                        &meta_path,
                        "metadata_too_deep",
                        format!(
                            "Metadata should nest at most {} levels (ingest.max_metadata_depth), not {}",
                            self.rules.max_metadata_depth, shape.depth
                        ),
                    );
                    None
                } else if let Some(nul_at) = shape
                    .nul
                    .then(|| find_nul(&meta, &mut Vec::new()))
                    .flatten()
                {
                    self.error(
                        &[meta_path.loc(), nul_at].concat(),
                        "string_nul",
                        "Strings and keys should not contain the NUL character (\\u0000)",
                    );
                    None
                } else if let Some(bytes) = json_size_over(&meta, self.rules.max_metadata_bytes) {
                    self.error(
                        &meta_path,
                        "metadata_too_large",
                        format!(
                            "Metadata should take at most {} bytes as JSON (ingest.max_metadata_bytes), not {bytes}",
                            self.rules.max_metadata_bytes
                        ),
                    );
                    None
                } else {
                    let mut loc = self.at(&meta_path);
                    self.scan.metadata(&mut meta, self.rules.privacy, &mut loc);
                    Some(meta)
                }
            }
            Some(_) => {
                self.error(
                    &meta_path,
                    "dict_type",
                    "Input should be a valid dictionary",
                );
                None
            }
        }
    }

    /// A failure; its `step_id`, when given, must be one of `step_ids` (this run's steps).
    fn failure(
        &mut self,
        value: Value,
        path: &[Value],
        step_ids: &HashSet<Uuid>,
    ) -> Option<NewFailure> {
        let mut obj = self.object(value, path)?;
        let step_id = self.step_of_run(&mut obj, step_ids);
        let failure_type = self.choice(
            &mut obj,
            "failure_type",
            FailureType::VALUES,
            FailureType::parse,
        );
        let failure_code = self.identifier(&mut obj, "failure_code", Text::required(1, 100));
        let max_chars = self.rules.max_string_chars;
        let mut message = self.string(&mut obj, "message", Text::required(1, max_chars));
        if let Some(text) = message.as_mut() {
            let loc = self.at(&obj.at("message"));
            self.scan.text(text, self.rules.privacy, &loc);
        }
        let metadata = self.metadata(&mut obj);
        Some(NewFailure {
            failure_id: Uuid::now_v7(),
            step_id: step_id?,
            failure_type: failure_type?,
            failure_code: failure_code?,
            message: message?,
            metadata: metadata?,
        })
    }
}
