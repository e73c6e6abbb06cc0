//! From a JSON body to a validated [`NewRun`], collecting every problem as FastAPI would:
//! `{"type", "loc": ["body", …], "msg"}` per problem, values never echoed.

mod baseline;
mod behaviour;
mod fields;
mod price;
mod raw;
mod rules;
mod run;
mod shape;

use serde_json::Value;

pub use super::FieldError;
use super::NewRun;
use super::privacy::{Rule, Scan};
pub use baseline::parse_baseline;
use fields::Validator;
pub use price::parse_price;
pub use raw::{RawBatch, RawItem, RawItems, RawRun, RawRuns};
pub use rules::Rules;
pub use shape::{Shape, json_size, json_size_over};

/// The error for a body that is not JSON at all.
pub fn json_error(err: &serde_json::Error) -> FieldError {
    FieldError::new(
        "json_invalid",
        vec![Value::from("body"), Value::from(err.column())],
        format!("JSON decode error: {err}"),
    )
}

/// A valid run and how many values the privacy policy redacted in it.
#[derive(Debug)]
pub struct Parsed {
    pub run: NewRun,
    pub redacted: u32,
}

/// Validates one run (a [`RawRun`] as decoded from a body, or a `Value`); `loc` is where it sits
/// (`["body"]`, or `["body", "runs", 3]` in a batch).
pub fn parse_run(
    run: impl Into<RawRun>,
    loc: Vec<Value>,
    rules: &Rules,
) -> Result<Parsed, Vec<FieldError>> {
    let mut v = Validator::new(loc, rules);
    let run = v.run(run.into());
    let (errors, redacted) = v.finish();
    match run {
        Some(run) if errors.is_empty() => Ok(Parsed { run, redacted }),
        _ => Err(errors),
    }
}

/// One decision (or, with `signal`, one quality signal) of step `step_id`, from an object of the
/// native payload's fields (an OTLP span event's attributes): the same rules as in a run's list.
/// Returns it with the number of values redacted, or every problem.
pub fn parse_span_behaviour(
    value: Value,
    step_id: uuid::Uuid,
    signal: bool,
    rules: &Rules,
) -> Result<(Behaviour, u32), Vec<FieldError>> {
    let mut v = Validator::new(Vec::new(), rules);
    let steps = std::collections::HashSet::from([step_id]);
    let item = match signal {
        false => (v.decision(RawItem::Other(value), &[], &steps)).map(Behaviour::Decision),
        true => (v.signal(RawItem::Other(value), &[], &steps)).map(Behaviour::Signal),
    };
    let (errors, redacted) = v.finish();
    match item {
        Some(item) if errors.is_empty() => Ok((item, redacted)),
        _ => Err(errors),
    }
}

/// A decision or a quality signal.
#[derive(Clone, Debug, PartialEq)]
pub enum Behaviour {
    Decision(super::behaviour::NewDecision),
    Signal(super::behaviour::NewSignal),
}

impl Validator {
    fn new(loc: Vec<Value>, rules: &Rules) -> Validator {
        Validator {
            errors: Vec::new(),
            loc,
            scan: Scan::default(),
            rules: *rules,
        }
    }

    /// Every problem found, the privacy scan's included, and how many values it redacted.
    fn finish(self) -> (Vec<FieldError>, u32) {
        let mut errors = self.errors;
        errors.extend(self.scan.violations.into_iter().map(|violation| {
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
        (errors, self.scan.redacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::privacy::PrivacyMode;
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

    /// A problem as `errors` lists it: its location as JSON, and its kind.
    fn error(loc: &str, kind: &str) -> (String, String) {
        (loc.to_owned(), kind.to_owned())
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
                got.contains(&error(loc, kind)),
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
            got.contains(&error(r#"["body","steps",1,"seq"]"#, "value_error")),
            "{got:?}"
        );
        assert!(
            got.contains(&error(r#"["body","ended_at"]"#, "value_error")),
            "{got:?}"
        );
        assert!(
            got.contains(&error(r#"["body","steps",1,"ended_at"]"#, "value_error")),
            "{got:?}"
        );
    }

    #[test]
    fn failure_status_needs_a_failure_and_step_ids_must_belong() {
        let mut body = run(vec![step(0)]);
        body["status"] = json!("failure");
        assert_eq!(
            errors(body.clone()),
            [error(r#"["body","status"]"#, "value_error")]
        );
        body["failure"] = json!({"failure_type": "tool", "failure_code": "timeout", "message": "took too long",
                                  "step_id": "8a0e1f4c-5b7e-4d0c-9c47-1f1f1f1f1f1f"});
        assert_eq!(
            errors(body),
            [error(r#"["body","failure","step_id"]"#, "value_error")]
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
            got.contains(&error(r#"["body","agent_id"]"#, "string_nul")),
            "{got:?}"
        );
        assert!(
            got.contains(&error(
                r#"["body","steps",0,"metadata","k",1]"#,
                "string_nul"
            )),
            "{got:?}"
        );
    }

    #[test]
    fn not_an_object_and_wrong_types() {
        assert_eq!(
            errors(json!([1])),
            [error(r#"["body"]"#, "model_attributes_type")]
        );
        let mut body = run(vec![json!("nope")]);
        body["run_id"] = json!("not-a-uuid");
        body["started_at"] = json!("soon");
        let got = errors(body);
        assert!(
            got.contains(&error(r#"["body","run_id"]"#, "uuid_parsing")),
            "{got:?}"
        );
        assert!(
            got.contains(&error(r#"["body","started_at"]"#, "datetime_parsing")),
            "{got:?}"
        );
        assert!(
            got.contains(&error(r#"["body","steps",0]"#, "model_attributes_type")),
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
            [error(
                r#"["body","steps",0,"metadata"]"#,
                "metadata_too_deep"
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
            [error(
                r#"["body","steps",0,"metadata"]"#,
                "metadata_too_large"
            )]
        );
        let mut body = run(vec![]);
        body["failures"] =
            json!([{"failure_type": "tool", "failure_code": "x", "message": "é".repeat(500)}]);
        assert_eq!(errors(body.clone()), []);
        body["failures"][0]["message"] = json!("é".repeat(501));
        assert_eq!(
            errors(body),
            [error(
                r#"["body","failures",0,"message"]"#,
                "string_too_long"
            )]
        );
    }

    #[test]
    fn secrets_in_failure_messages() {
        let mut body = run(vec![]);
        body["failures"] = json!([{"failure_type": "tool", "failure_code": "auth", "message": "bad key sk-aaaaaaaaaaaaaaaaaaaaaaaaaa"}]);
        assert_eq!(
            errors(body.clone()),
            [error(
                r#"["body","failures",0,"message"]"#,
                "privacy.secret_value"
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

    #[test]
    fn a_bad_candidate_is_named_by_its_index_as_pydantic_does() {
        let mut body = run(vec![]);
        body["decisions"] = json!([{"decision_type": "tool_selection", "selected": "a",
            "reason_code": "fresh_data_required", "candidates": ["ok", "x".repeat(201), null, 5, "a\nb"]}]);
        let at = |i: usize| format!(r#"["body","decisions",0,"candidates",{i}]"#);
        assert_eq!(
            errors(body),
            [
                error(&at(1), "string_too_long"),
                error(&at(2), "string_type"),
                error(&at(3), "string_type"),
                error(&at(4), "string_control_character"),
            ]
        );
    }

    #[test]
    fn session_and_user_ids_are_optional_identifiers() {
        let mut body = run(vec![]);
        body["session_id"] = json!("conv-42");
        body["user_id"] = Value::Null;
        let parsed = parse_run(body, vec![json!("body")], &RULES).map_err(|e| format!("{e:?}"));
        assert_eq!(
            parsed.map(|p| (p.run.session_id, p.run.user_id)),
            Ok((Some("conv-42".to_owned()), None))
        );
        for (value, kind) in [
            (json!(""), "string_too_short"),
            (json!("x".repeat(256)), "string_too_long"),
            (json!(42), "string_type"),
            (json!("a\nb"), "string_control_character"),
            (json!("a\u{0}b"), "string_nul"),
            (
                json!("sk-aaaaaaaaaaaaaaaaaaaaaaaaaa"),
                "privacy.secret_value",
            ),
        ] {
            for field in ["session_id", "user_id"] {
                let mut body = run(vec![]);
                body[field] = value.clone();
                let loc = format!(r#"["body","{field}"]"#);
                assert_eq!(errors(body), [error(&loc, kind)], "{field} = {value}");
            }
        }
        // Redacted like an agent id in the modes that store the run.
        let mut body = run(vec![]);
        body["user_id"] = json!("sk-aaaaaaaaaaaaaaaaaaaaaaaaaa");
        let rules = Rules {
            privacy: PrivacyMode::Redact,
            ..RULES
        };
        let parsed = parse_run(body, vec![], &rules).map_err(|e| format!("{e:?}"));
        assert_eq!(
            parsed.map(|p| (p.redacted, p.run.user_id)),
            Ok((1, Some("[REDACTED]".to_owned())))
        );
    }
}
