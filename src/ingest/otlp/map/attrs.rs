//! Attribute values: an OTLP value as JSON, names cleaned and redacted, and a span's attributes
//! by key.

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use serde_json::Value;

use crate::model::privacy;
use crate::model::privacy::PrivacyMode;

/// An attribute value as JSON (bytes as hex); NUL characters, which PostgreSQL cannot store, removed.
pub(super) fn json_of(value: &AnyValue) -> Value {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => Value::String(clean(s)),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => {
            serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number)
        }
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(json_of).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => Value::Object(
            kv.values
                .iter()
                .map(|k| (clean(&k.key), k.value.as_ref().map_or(Value::Null, json_of)))
                .collect(),
        ),
        // Bytes can carry anything, content included, and nothing reads them: dropped.
        Some(any_value::Value::BytesValue(_)) => Value::Null,
        // None, and string-table references (used by profiles, not traces).
        _ => Value::Null,
    }
}

pub(super) fn clean(s: &str) -> String {
    s.replace('\0', "")
}

pub(super) fn cut(s: &str, max: usize) -> String {
    clean(s).chars().take(max).collect()
}

/// A name or code from a span (agent id, version, environment, step name, failure code, model,
/// scope name): control characters, which would forge log lines, become spaces, and a
/// credential in it is redacted (unless privacy is off) — names are free text too.
pub(super) fn ident(s: &str, max: usize, mode: PrivacyMode) -> String {
    let mut out: String = s
        .chars()
        .filter(|&c| c != '\0')
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    redact_secrets(&mut out, mode);
    out.chars().take(max).collect()
}

/// Redacts the credentials in `text` (unless privacy is off) and counts them; returns how many.
pub(super) fn redact_secrets(text: &mut String, mode: PrivacyMode) -> u64 {
    if mode == PrivacyMode::Off {
        return 0;
    }
    let n = u64::from(privacy::redact_secrets(text));
    if n > 0 {
        metrics::counter!("privacy_violations_total", "rule" => "secret_value", "action" => "redact")
            .increment(n);
    }
    n
}

/// Attributes by key, later keys winning.
pub(super) struct Attrs<'a>(pub(super) HashMap<&'a str, &'a AnyValue>);

impl<'a> Attrs<'a> {
    pub(super) fn of(list: &'a [KeyValue]) -> Self {
        Attrs(
            list.iter()
                .filter_map(|kv| Some((kv.key.as_str(), kv.value.as_ref()?)))
                .collect(),
        )
    }

    pub(super) fn str(&self, key: &str) -> Option<String> {
        match &self.0.get(key)?.value {
            Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(clean(s)),
            _ => None,
        }
    }

    fn int(&self, key: &str) -> Option<i64> {
        match &self.0.get(key)?.value {
            Some(any_value::Value::IntValue(i)) => Some(*i),
            Some(any_value::Value::DoubleValue(d)) if d.fract() == 0.0 => Some(*d as i64),
            Some(any_value::Value::StringValue(s)) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub(super) fn first_str(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| self.str(k))
    }

    pub(super) fn first_int(&self, keys: &[&str]) -> Option<i64> {
        keys.iter().find_map(|k| self.int(k))
    }

    pub(super) fn first_tokens(&self, keys: &[&str]) -> Option<i32> {
        self.first_int(keys)
            .map(|n| n.clamp(0, i64::from(i32::MAX)) as i32)
    }
}
