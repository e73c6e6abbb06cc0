//! From a JSON body to a validated [`NewRun`], collecting every problem as FastAPI would:
//! `{"type", "loc": ["body", …], "msg"}` per problem, values never echoed.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use super::privacy::{Rule, Scan};
use super::{FailureType, NewFailure, NewRun, NewStep, RunStatus, StepType, timestamp};
use crate::config::{IngestConfig, PrivacyMode};

/// One problem with a request, in FastAPI's shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldError {
    #[serde(rename = "type")]
    pub kind: String,
    pub loc: Vec<Value>,
    pub msg: String,
}

impl FieldError {
    pub fn new(kind: &str, loc: Vec<Value>, msg: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            loc,
            msg: msg.into(),
        }
    }
}

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

/// A valid run and how many values the privacy policy redacted in it.
#[derive(Debug)]
pub struct Parsed {
    pub run: NewRun,
    pub redacted: u32,
}

/// Validates one run; `loc` is where it sits (`["body"]`, or `["body", "runs", 3]` in a batch).
pub fn parse_run(value: Value, loc: Vec<Value>, rules: &Rules) -> Result<Parsed, Vec<FieldError>> {
    let mut v = Validator {
        errors: Vec::new(),
        loc,
        scan: Scan::default(),
        rules: *rules,
    };
    let run = v.run(value);
    let mut errors = v.errors;
    errors.extend(v.scan.violations.into_iter().map(|violation| {
        let (kind, msg) = match violation.rule {
            Rule::ContentKey => (
                "privacy.content_key",
                format!(
                    "key holds content ({}); AgentTracer stores metadata only, never prompts or outputs",
                    violation.what
                ),
            ),
            Rule::SecretValue => (
                "privacy.secret_value",
                format!("value contains a credential ({}); it was not stored", violation.what),
            ),
        };
        FieldError::new(kind, violation.loc, msg)
    }));
    match run {
        Some(run) if errors.is_empty() => Ok(Parsed {
            run,
            redacted: v.scan.redacted,
        }),
        _ => Err(errors),
    }
}

/// The error for a body that is not JSON at all.
pub fn json_error(err: &serde_json::Error) -> FieldError {
    FieldError::new(
        "json_invalid",
        vec![Value::from("body"), Value::from(err.column())],
        format!("JSON decode error: {err}"),
    )
}

struct Validator {
    errors: Vec<FieldError>,
    loc: Vec<Value>,
    scan: Scan,
    rules: Rules,
}

fn quoted_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

impl Validator {
    fn at(&self, path: &[Value]) -> Vec<Value> {
        let mut loc = self.loc.clone();
        loc.extend_from_slice(path);
        loc
    }

    fn error(&mut self, path: &[Value], kind: &str, msg: impl Into<String>) {
        let loc = self.at(path);
        self.errors.push(FieldError::new(kind, loc, msg));
    }

    fn object(&mut self, value: Value, path: &[Value]) -> Option<Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            _ => {
                self.error(
                    path,
                    "model_attributes_type",
                    "Input should be a valid dictionary or object to extract fields from",
                );
                None
            }
        }
    }

    /// A name or code (an agent id, a version, an environment, a step name, a failure code):
    /// a string without control characters, which would forge log lines and terminal output.
    fn identifier(
        &mut self,
        obj: &mut Map<String, Value>,
        path: &[Value],
        key: &str,
        min: usize,
        max: usize,
        required: bool,
    ) -> Option<String> {
        let mut value = self.string(obj, path, key, min, max, required)?;
        let field = [path, &[Value::from(key)]].concat();
        if value.chars().any(char::is_control) {
            self.error(
                &field,
                "string_control_character",
                "String should not contain control characters (newlines, tabs, escapes)",
            );
            return None;
        }
        // Names and codes are free text too: a credential in one is refused or redacted.
        let loc = self.at(&field);
        self.scan.text(&mut value, self.rules.privacy, &loc);
        if value.chars().count() > max {
            // (`[REDACTED]` is longer than the shortest secret it replaces.)
            value = value.chars().take(max).collect();
        }
        Some(value)
    }

    /// A string field: `None` when absent (an error if required) or invalid.
    fn string(
        &mut self,
        obj: &mut Map<String, Value>,
        path: &[Value],
        key: &str,
        min: usize,
        max: usize,
        required: bool,
    ) -> Option<String> {
        let field = [path, &[Value::from(key)]].concat();
        match obj.remove(key) {
            None | Some(Value::Null) => {
                if required {
                    self.error(&field, "missing", "Field required");
                }
                None
            }
            Some(Value::String(s)) => {
                let len = s.chars().count();
                if s.contains('\0') {
                    self.error(
                        &field,
                        "string_nul",
                        "String should not contain the NUL character (\\u0000)",
                    );
                    None
                } else if len < min {
                    self.error(
                        &field,
                        "string_too_short",
                        format!(
                            "String should have at least {min} character{}",
                            if min == 1 { "" } else { "s" }
                        ),
                    );
                    None
                } else if len > max {
                    self.error(
                        &field,
                        "string_too_long",
                        format!("String should have at most {max} characters"),
                    );
                    None
                } else {
                    Some(s)
                }
            }
            Some(_) => {
                self.error(&field, "string_type", "Input should be a valid string");
                None
            }
        }
    }

    fn uuid(
        &mut self,
        obj: &mut Map<String, Value>,
        path: &[Value],
        key: &str,
    ) -> Option<Option<Uuid>> {
        let field = [path, &[Value::from(key)]].concat();
        match obj.remove(key) {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) => match Uuid::parse_str(&s) {
                Ok(id) => Some(Some(id)),
                Err(_) => {
                    self.error(&field, "uuid_parsing", "Input should be a valid UUID");
                    None
                }
            },
            Some(_) => {
                self.error(&field, "uuid_type", "UUID input should be a string");
                None
            }
        }
    }

    /// A required integer in `0..=i32::MAX`; numeric strings and integral floats are accepted.
    fn non_negative_int(
        &mut self,
        obj: &mut Map<String, Value>,
        path: &[Value],
        key: &str,
    ) -> Option<i32> {
        let field = [path, &[Value::from(key)]].concat();
        let number = match obj.remove(key) {
            None | Some(Value::Null) => {
                self.error(&field, "missing", "Field required");
                return None;
            }
            Some(Value::Number(n)) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1e18)
                    .map(|f| f as i64)
            }),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(_) => None,
        };
        match number {
            None => {
                self.error(&field, "int_parsing", "Input should be a valid integer");
                None
            }
            Some(n) if n < 0 => {
                self.error(
                    &field,
                    "greater_than_equal",
                    "Input should be greater than or equal to 0",
                );
                None
            }
            Some(n) => match i32::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(
                        &field,
                        "less_than_equal",
                        format!("Input should be less than or equal to {}", i32::MAX),
                    );
                    None
                }
            },
        }
    }

    fn datetime(
        &mut self,
        obj: &mut Map<String, Value>,
        path: &[Value],
        key: &str,
        required: bool,
    ) -> Option<Option<OffsetDateTime>> {
        let field = [path, &[Value::from(key)]].concat();
        let parsed = match obj.remove(key) {
            None | Some(Value::Null) => {
                if required {
                    self.error(&field, "missing", "Field required");
                    return None;
                }
                return Some(None);
            }
            Some(Value::String(s)) => timestamp::parse(&s),
            Some(Value::Number(n)) => n
                .as_f64()
                .and_then(|secs| {
                    OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9) as i128).ok()
                })
                .and_then(timestamp::normalize),
            Some(_) => None,
        };
        match parsed {
            Some(t) => Some(Some(t)),
            None => {
                self.error(
                    &field,
                    "datetime_parsing",
                    "Input should be a valid datetime (RFC 3339, or ISO 8601 read as UTC)",
                );
                None
            }
        }
    }

    fn choice<T>(
        &mut self,
        obj: &mut Map<String, Value>,
        path: &[Value],
        key: &str,
        values: &[&str],
        parse: fn(&str) -> Option<T>,
    ) -> Option<T> {
        let field = [path, &[Value::from(key)]].concat();
        match obj.remove(key) {
            None | Some(Value::Null) => {
                self.error(&field, "missing", "Field required");
                None
            }
            Some(Value::String(s)) if parse(&s).is_some() => parse(&s),
            Some(_) => {
                self.error(
                    &field,
                    "enum",
                    format!("Input should be {}", quoted_list(values)),
                );
                None
            }
        }
    }

    fn list(&mut self, obj: &mut Map<String, Value>, path: &[Value], key: &str) -> Vec<Value> {
        match obj.remove(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.error(
                    &[path, &[Value::from(key)]].concat(),
                    "list_type",
                    "Input should be a valid list",
                );
                Vec::new()
            }
        }
    }

    fn run(&mut self, value: Value) -> Option<NewRun> {
        let mut obj = self.object(value, &[])?;
        let run_id = self.uuid(&mut obj, &[], "run_id");
        let agent_id = self.identifier(&mut obj, &[], "agent_id", 1, 255, true);
        let agent_version = self.identifier(&mut obj, &[], "agent_version", 1, 100, true);
        let environment = self.identifier(&mut obj, &[], "environment", 0, 50, false);
        let status = self.choice(&mut obj, &[], "status", RunStatus::VALUES, RunStatus::parse);
        let started_at = self.datetime(&mut obj, &[], "started_at", true);
        let ended_at = self.datetime(&mut obj, &[], "ended_at", false);

        let raw_steps = self.list(&mut obj, &[], "steps");
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
        match obj.remove("failure") {
            None | Some(Value::Null) => {}
            Some(f) => raw_failures.push((vec![Value::from("failure")], f)),
        }
        for (i, f) in self.list(&mut obj, &[], "failures").into_iter().enumerate() {
            raw_failures.push((vec![Value::from("failures"), Value::from(i)], f));
        }
        let failures: Vec<Option<NewFailure>> = raw_failures
            .into_iter()
            .map(|(path, f)| self.failure(f, &path, &declared_ids))
            .collect();

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
            steps: steps?,
            failures: failures?,
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
        let step_id = self.uuid(&mut obj, path, "step_id");
        let seq = self.non_negative_int(&mut obj, path, "seq");
        let step_type = self.choice(
            &mut obj,
            path,
            "step_type",
            StepType::VALUES,
            StepType::parse,
        );
        let name = self.identifier(&mut obj, path, "name", 1, 255, true);
        let latency_ms = self.non_negative_int(&mut obj, path, "latency_ms");
        let started_at = self.datetime(&mut obj, path, "started_at", true);
        let ended_at = self.datetime(&mut obj, path, "ended_at", true);
        let meta_path = [path, &[Value::from("metadata")]].concat();
        let metadata = match obj.remove("metadata") {
            None | Some(Value::Null) => Some(Value::Object(Map::new())),
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
                        &[meta_path.as_slice(), &nul_at].concat(),
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
        };
        let (started_at, ended_at) = (started_at??, ended_at??);
        if ended_at < started_at {
            self.error(
                &[path, &[Value::from("ended_at")]].concat(),
                "value_error",
                "ended_at must not be before started_at",
            );
        }
        let metadata = metadata?;
        let (model, input_tokens, output_tokens) = super::usage_of(&metadata);
        Some(NewStep {
            step_id: step_id?.unwrap_or_else(Uuid::now_v7),
            seq: seq?,
            step_type: step_type?,
            name: name?,
            latency_ms: latency_ms?,
            started_at,
            ended_at,
            metadata,
            model,
            input_tokens,
            output_tokens,
        })
    }

    /// A failure; its `step_id`, when given, must be one of `step_ids` (this run's steps).
    fn failure(
        &mut self,
        value: Value,
        path: &[Value],
        step_ids: &HashSet<Uuid>,
    ) -> Option<NewFailure> {
        let mut obj = self.object(value, path)?;
        let step_id = self.uuid(&mut obj, path, "step_id");
        if let Some(Some(id)) = step_id
            && !step_ids.contains(&id)
        {
            self.error(
                &[path, &[Value::from("step_id")]].concat(),
                "value_error",
                "step_id is not a step of this run",
            );
        }
        let failure_type = self.choice(
            &mut obj,
            path,
            "failure_type",
            FailureType::VALUES,
            FailureType::parse,
        );
        let failure_code = self.identifier(&mut obj, path, "failure_code", 1, 100, true);
        let max_chars = self.rules.max_string_chars;
        let mut message = self.string(&mut obj, path, "message", 1, max_chars, true);
        if let Some(text) = message.as_mut() {
            let loc = self.at(&[path, &[Value::from("message")]].concat());
            self.scan.text(text, self.rules.privacy, &loc);
        }
        Some(NewFailure {
            failure_id: Uuid::now_v7(),
            step_id: step_id?,
            failure_type: failure_type?,
            failure_code: failure_code?,
            message: message?,
        })
    }
}

/// What one walk over a metadata value finds: how deep it nests (a scalar is 0, `{}` is 1) and
/// whether any key or string holds a NUL character. No allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Shape {
    pub depth: usize,
    pub nul: bool,
}

impl Shape {
    pub fn of(value: &Value) -> Shape {
        let inner = |items: &mut dyn Iterator<Item = (Option<&String>, &Value)>| {
            let mut shape = Shape::default();
            for (key, item) in items {
                let child = Shape::of(item);
                shape.depth = shape.depth.max(child.depth);
                shape.nul |= child.nul || key.is_some_and(|k| k.contains('\0'));
            }
            Shape {
                depth: shape.depth + 1,
                nul: shape.nul,
            }
        };
        match value {
            Value::String(s) => Shape {
                depth: 0,
                nul: s.contains('\0'),
            },
            Value::Array(items) => inner(&mut items.iter().map(|v| (None, v))),
            Value::Object(map) => inner(&mut map.iter().map(|(k, v)| (Some(k), v))),
            _ => Shape::default(),
        }
    }
}

/// The size of `value` as compact JSON, in bytes: counted, not built.
pub fn json_size<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, and a `Value` always serializes.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// The size of `value` as compact JSON when it is over `max` bytes.
pub fn json_size_over(value: &Value, max: usize) -> Option<usize> {
    Some(json_size(value)).filter(|&n| n > max)
}

/// The location of the first NUL character in any key or string of `value`.
fn find_nul(value: &Value, path: &mut Vec<Value>) -> Option<Vec<Value>> {
    match value {
        Value::String(s) if s.contains('\0') => Some(path.clone()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            path.push(Value::from(i));
            let found = find_nul(item, path);
            path.pop();
            found
        }),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            path.push(Value::from(key.as_str()));
            let found = if key.contains('\0') {
                Some(path.clone())
            } else {
                find_nul(item, path)
            };
            path.pop();
            found
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RULES: Rules = Rules {
        max_steps: 100,
        max_metadata_depth: 4,
        max_metadata_bytes: 1000,
        max_string_chars: 500,
        privacy: PrivacyMode::Reject,
    };

    fn step(seq: i64) -> Value {
        json!({"seq": seq, "step_type": "llm", "name": "call", "latency_ms": 5,
               "started_at": "2024-01-01T00:00:00Z", "ended_at": "2024-01-01T00:00:01Z",
               "metadata": {"model": "gpt-4o", "input_tokens": 10}})
    }

    fn run(steps: Vec<Value>) -> Value {
        json!({"agent_id": "a", "agent_version": "1", "status": "success",
               "started_at": "2024-01-01T00:00:00", "ended_at": "2024-01-01 00:00:02", "steps": steps})
    }

    fn errors(value: Value) -> Vec<(String, String)> {
        parse_run(value, vec![json!("body")], &RULES)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (serde_json::to_string(&e.loc).unwrap_or_default(), e.kind))
            .collect()
    }

    #[test]
    fn a_valid_run_parses_with_defaults() {
        let parsed = parse_run(run(vec![step(1), step(0)]), vec![json!("body")], &RULES);
        let Ok(parsed) = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(parsed.run.environment, "production");
        assert_eq!(
            parsed.run.steps.iter().map(|s| s.seq).collect::<Vec<_>>(),
            [0, 1]
        );
        assert!(parsed.run.failures.is_empty());
    }

    #[test]
    fn every_problem_is_listed_with_its_location() {
        let mut body = run(vec![step(0), step(0), step(5)]);
        body["agent_id"] = json!("");
        body["status"] = json!("done");
        body.as_object_mut().map(|o| o.remove("agent_version"));
        body["steps"][0]["latency_ms"] = json!(-1);
        body["steps"][1]["metadata"] = json!({"prompt": "hello"});
        let got = errors(body);
        let want = [
            (r#"["body","agent_id"]"#, "string_too_short"),
            (r#"["body","agent_version"]"#, "missing"),
            (r#"["body","status"]"#, "enum"),
            (r#"["body","steps",0,"latency_ms"]"#, "greater_than_equal"),
            (r#"["body","steps",2,"seq"]"#, "value_error"),
            (
                r#"["body","steps",1,"metadata","prompt"]"#,
                "privacy.content_key",
            ),
        ];
        for (loc, kind) in want {
            assert!(
                got.contains(&(loc.to_owned(), kind.to_owned())),
                "missing {loc} {kind} in {got:?}"
            );
        }
    }

    #[test]
    fn duplicate_seq_and_time_order_are_errors() {
        let mut body = run(vec![step(0), step(0)]);
        body["ended_at"] = json!("2023-12-31T00:00:00Z");
        body["steps"][1]["ended_at"] = json!("2023-01-01T00:00:00Z");
        let got = errors(body);
        assert!(
            got.contains(&(r#"["body","steps",1,"seq"]"#.into(), "value_error".into())),
            "{got:?}"
        );
        assert!(
            got.contains(&(r#"["body","ended_at"]"#.into(), "value_error".into())),
            "{got:?}"
        );
        assert!(
            got.contains(&(
                r#"["body","steps",1,"ended_at"]"#.into(),
                "value_error".into()
            )),
            "{got:?}"
        );
    }

    #[test]
    fn failure_status_needs_a_failure_and_step_ids_must_belong() {
        let mut body = run(vec![step(0)]);
        body["status"] = json!("failure");
        assert_eq!(
            errors(body.clone()),
            [(r#"["body","status"]"#.to_owned(), "value_error".to_owned())]
        );
        body["failure"] = json!({"failure_type": "tool", "failure_code": "timeout", "message": "took too long",
                                  "step_id": "8a0e1f4c-5b7e-4d0c-9c47-1f1f1f1f1f1f"});
        assert_eq!(
            errors(body),
            [(
                r#"["body","failure","step_id"]"#.to_owned(),
                "value_error".to_owned()
            )]
        );
    }

    #[test]
    fn failure_and_failures_combine() {
        let mut body = run(vec![]);
        body["status"] = json!("failure");
        body["failure"] =
            json!({"failure_type": "model", "failure_code": "refusal", "message": "m"});
        body["failures"] = json!([{"failure_type": "tool", "failure_code": "x", "message": "m2"}]);
        let parsed = parse_run(body, vec![], &RULES).map_err(|e| format!("{e:?}"));
        assert_eq!(parsed.map(|p| p.run.failures.len()), Ok(2));
    }

    #[test]
    fn nul_characters_are_rejected_everywhere() {
        let mut body = run(vec![step(0)]);
        body["agent_id"] = json!("a\u{0}b");
        body["steps"][0]["metadata"] = json!({"k": ["ok", "x\u{0}"]});
        let got = errors(body);
        assert!(
            got.contains(&(r#"["body","agent_id"]"#.into(), "string_nul".into())),
            "{got:?}"
        );
        assert!(
            got.contains(&(
                r#"["body","steps",0,"metadata","k",1]"#.into(),
                "string_nul".into()
            )),
            "{got:?}"
        );
    }

    #[test]
    fn not_an_object_and_wrong_types() {
        assert_eq!(
            errors(json!([1])),
            [(r#"["body"]"#.to_owned(), "model_attributes_type".to_owned())]
        );
        let mut body = run(vec![json!("nope")]);
        body["run_id"] = json!("not-a-uuid");
        body["started_at"] = json!("soon");
        let got = errors(body);
        assert!(
            got.contains(&(r#"["body","run_id"]"#.into(), "uuid_parsing".into())),
            "{got:?}"
        );
        assert!(
            got.contains(&(r#"["body","started_at"]"#.into(), "datetime_parsing".into())),
            "{got:?}"
        );
        assert!(
            got.contains(&(
                r#"["body","steps",0]"#.into(),
                "model_attributes_type".into()
            )),
            "{got:?}"
        );
    }

    #[test]
    fn too_many_steps_is_one_error() {
        let rules = Rules {
            max_steps: 2,
            ..RULES
        };
        let got = parse_run(
            run(vec![step(0), step(1), step(2)]),
            vec![json!("body")],
            &rules,
        )
        .err()
        .unwrap_or_default();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, "too_long");
    }

    #[test]
    fn metadata_depth_size_and_message_length_are_limited() {
        // Depth 4 (the object, then three more levels) is the limit; 5 is one error at metadata.
        let mut ok = step(0);
        ok["metadata"] = json!({"a": {"b": [{"c": 1}]}});
        assert_eq!(errors(run(vec![ok.clone()])), []);
        assert_eq!(Shape::of(&ok["metadata"]).depth, 4);
        let mut deep = step(0);
        deep["metadata"] = json!({"a": {"b": [{"c": [1]}]}});
        assert_eq!(
            errors(run(vec![deep])),
            [(
                r#"["body","steps",0,"metadata"]"#.to_owned(),
                "metadata_too_deep".to_owned()
            )]
        );
        // Size is counted as compact JSON: 1000 bytes pass, 1001 do not.
        let fill = |n: usize| json!({ "k": "x".repeat(n - r#"{"k":""}"#.len()) });
        assert_eq!(json_size_over(&fill(1000), 1000), None);
        assert_eq!(json_size_over(&fill(1001), 1000), Some(1001));
        let mut big = step(0);
        big["metadata"] = fill(1001);
        assert_eq!(
            errors(run(vec![big])),
            [(
                r#"["body","steps",0,"metadata"]"#.to_owned(),
                "metadata_too_large".to_owned()
            )]
        );
        let mut body = run(vec![]);
        body["failures"] =
            json!([{"failure_type": "tool", "failure_code": "x", "message": "é".repeat(500)}]);
        assert_eq!(errors(body.clone()), []);
        body["failures"][0]["message"] = json!("é".repeat(501));
        assert_eq!(
            errors(body),
            [(
                r#"["body","failures",0,"message"]"#.to_owned(),
                "string_too_long".to_owned()
            )]
        );
    }

    #[test]
    fn secrets_in_failure_messages() {
        let mut body = run(vec![]);
        body["failures"] = json!([{"failure_type": "tool", "failure_code": "auth", "message": "bad key sk-aaaaaaaaaaaaaaaaaaaaaaaaaa"}]);
        assert_eq!(
            errors(body.clone()),
            [(
                r#"["body","failures",0,"message"]"#.to_owned(),
                "privacy.secret_value".to_owned()
            )]
        );
        let rules = Rules {
            max_steps: 10,
            privacy: PrivacyMode::Redact,
            ..RULES
        };
        let parsed = parse_run(body, vec![], &rules).map_err(|e| format!("{e:?}"));
        assert_eq!(
            parsed.map(|p| (p.redacted, p.run.failures[0].message.clone())),
            Ok((1, "bad key [REDACTED]".to_owned()))
        );
    }
}
