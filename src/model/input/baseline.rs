//! The body of `POST /v1/drift/baselines`, as the original UI sends it (docs/drift.md): the
//! agent version, the window its profile is built from, and the baseline's own fields.

use serde_json::Value;

use super::Rules;
use super::fields::{Object, Text, Validator};
use crate::model::FieldError;
use crate::model::behaviour::{BASELINE_TYPES, MAX_DESCRIPTION_CHARS, NewBaseline, forbidden_word};

/// The fewest and most runs a baseline's window may be asked to hold.
const SAMPLE_SIZE_BOUNDS: (i32, i32) = (1, 1_000_000);

/// Validates a baseline request; every problem at its place under `body`.
/// Names and the approver are scanned for credentials as a run's names are, under `rules`.
pub fn parse_baseline(value: Value, rules: &Rules) -> Result<NewBaseline, Vec<FieldError>> {
    let mut v = Validator::new(vec![Value::from("body")], rules);
    let baseline = v.baseline(value);
    let (errors, _) = v.finish();
    match baseline {
        Some(b) if errors.is_empty() => Ok(b),
        _ => Err(errors),
    }
}

impl Validator {
    fn baseline(&mut self, value: Value) -> Option<NewBaseline> {
        let mut obj = self.object(value, &[])?;
        let agent_id = self.identifier(&mut obj, "agent_id", Text::required(1, 255));
        let agent_version = self.identifier(&mut obj, "agent_version", Text::required(1, 100));
        let environment = self.identifier(&mut obj, "environment", Text::required(1, 50));
        let baseline_type = self.choice(&mut obj, "baseline_type", BASELINE_TYPES, |s| {
            BASELINE_TYPES.contains(&s).then(|| s.to_owned())
        });
        let window_start = self.datetime(&mut obj, "window_start", true).flatten();
        let window_end = self.datetime(&mut obj, "window_end", true).flatten();
        if let (Some(start), Some(end)) = (window_start, window_end)
            && end <= start
        {
            self.error(
                &obj.at("window_end"),
                "value_error",
                "Value error, window_end must be after window_start",
            );
        }
        let min_sample_size = self.sample_size(&mut obj);
        let approved_by = self.identifier(&mut obj, "approved_by", Text::optional(255));
        let description = self.string(&mut obj, "description", Text::optional(500));
        if let Some(text) = &description {
            let field = obj.at("description");
            if let Some(word) = forbidden_word(text) {
                self.error(
                    &field,
                    "value_error",
                    format!(
                        "Value error, Baseline description contains forbidden keyword: '{word}'"
                    ),
                );
            } else if text.chars().count() > MAX_DESCRIPTION_CHARS {
                self.error(
                    &field,
                    "value_error",
                    "Value error, Baseline description too long (max 200 characters)",
                );
            }
        }
        let auto_activate = self.boolean(&mut obj, "auto_activate", Some(false));
        Some(NewBaseline {
            agent_id: agent_id?,
            agent_version: agent_version?,
            environment: environment?,
            baseline_type: baseline_type?,
            window_start: window_start?,
            window_end: window_end?,
            min_sample_size: min_sample_size?,
            approved_by: approved_by.filter(|a| !a.is_empty()),
            description: description.filter(|d| !d.is_empty()),
            auto_activate: auto_activate?,
        })
    }

    /// `min_sample_size`: 100 when absent, else an integer within [`SAMPLE_SIZE_BOUNDS`].
    fn sample_size(&mut self, obj: &mut Object) -> Option<i32> {
        let (field, value) = obj.take("min_sample_size");
        let Some(value) = value else { return Some(100) };
        let (min, max) = SAMPLE_SIZE_BOUNDS;
        match value.as_i64() {
            None => self.invalid(&field, "int_parsing", "Input should be a valid integer"),
            Some(n) if n < i64::from(min) => self.invalid(
                &field,
                "greater_than_equal",
                format!("Input should be greater than or equal to {min}"),
            ),
            Some(n) if n > i64::from(max) => self.invalid(
                &field,
                "less_than_equal",
                format!("Input should be less than or equal to {max}"),
            ),
            Some(n) => i32::try_from(n).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::privacy::PrivacyMode;

    const RULES: Rules = Rules {
        max_steps: 100,
        max_metadata_depth: 4,
        max_metadata_bytes: 1000,
        max_string_chars: 500,
        privacy: PrivacyMode::Reject,
    };

    fn body() -> Value {
        json!({
            "agent_id": "support", "agent_version": "1.4.0", "environment": "production",
            "baseline_type": "version", "window_start": "2026-12-01T00:00:00",
            "window_end": "2026-12-02T00:00:00Z", "min_sample_size": 100,
            "approved_by": "ops@example.com", "description": "release 1.4 week one",
            "auto_activate": true
        })
    }

    fn problems(mut value: Value, key: &str, to: Value) -> Vec<(String, Value)> {
        value[key] = to;
        parse_baseline(value, &RULES)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.kind, e.loc.last().cloned().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn the_original_uis_body_is_a_baseline() {
        let b = parse_baseline(body(), &RULES).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(b.baseline_type, "version");
        assert_eq!(b.min_sample_size, 100);
        assert!(b.auto_activate);
        assert_eq!(b.approved_by.as_deref(), Some("ops@example.com"));
        let mut lean = body();
        for key in [
            "min_sample_size",
            "approved_by",
            "description",
            "auto_activate",
        ] {
            lean.as_object_mut().map(|o| o.remove(key));
        }
        let b = parse_baseline(lean, &RULES).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((b.min_sample_size, b.auto_activate), (100, false));
    }

    #[test]
    fn each_rule_names_its_field() {
        let e = |kind: &str, key: &str| vec![(kind.to_owned(), Value::from(key))];
        assert_eq!(
            problems(body(), "baseline_type", json!("weekly")),
            e("enum", "baseline_type")
        );
        assert_eq!(
            problems(body(), "window_end", json!("2026-11-30T00:00:00Z")),
            e("value_error", "window_end")
        );
        assert_eq!(
            problems(body(), "window_start", json!("soon")),
            e("datetime_parsing", "window_start")
        );
        assert_eq!(
            problems(body(), "min_sample_size", json!(0)),
            e("greater_than_equal", "min_sample_size")
        );
        assert_eq!(
            problems(body(), "description", json!("the context of it")),
            e("value_error", "description")
        );
        assert_eq!(
            problems(body(), "description", json!("x".repeat(201))),
            e("value_error", "description")
        );
        assert_eq!(
            problems(body(), "agent_id", Value::Null),
            e("missing", "agent_id")
        );
        assert_eq!(
            problems(body(), "auto_activate", json!("maybe")),
            e("bool_parsing", "auto_activate")
        );
    }
}
