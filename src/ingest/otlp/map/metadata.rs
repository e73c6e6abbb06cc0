//! A span's metadata: its attributes but content (known content attributes dropped, the others
//! through the privacy policy), within the depth and size limits, with the span kind and scope.

use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Map, Value};

use super::attrs::{clean, ident, json_of};
use super::trace::Mapped;
use crate::model::input::{Rules, Shape, json_size};
use crate::model::privacy::PrivacyMode;
use crate::model::privacy::{self, REDACTED};

/// Content attributes: dropped whatever the privacy mode, as exact keys… (docs/api.md lists
/// them all, a test checks.) Tool definitions (`gen_ai.tool.definitions`, `llm.tools.*`,
/// `llm.request.functions.*`) are not content: developer-written, kept within the metadata limit.
const CONTENT_KEYS: &[&str] = &[
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "input.value",
    "output.value",
    "traceloop.entity.input",
    "traceloop.entity.output",
    // The Vercel AI SDK's conventions.
    "ai.prompt",
    "ai.toolCall.args",
    "ai.toolCall.result",
    "ai.response.text",
    "ai.response.object",
    "ai.response.toolCalls",
    "ai.response.reasoning",
    // Bodies of HTTP requests and answers, which some instrumentations record.
    "http.request.body",
    "http.response.body",
];

/// …and as prefixes (indexed message lists, retrieved documents).
const CONTENT_PREFIXES: &[&str] = &[
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "retrieval.documents.",
    "reranker.input_documents.",
    "reranker.output_documents.",
    "embedding.embeddings.",
    "gen_ai.tool.call.arguments.",
    "gen_ai.tool.call.result.",
    "gen_ai.input.messages.",
    "gen_ai.output.messages.",
    "ai.prompt.",
    "ai.toolCall.",
    "http.request.body.",
    "http.response.body.",
];

pub fn is_content_attribute(key: &str) -> bool {
    CONTENT_KEYS.contains(&key) || CONTENT_PREFIXES.iter().any(|p| key.starts_with(p))
}

fn count_privacy(rule: &'static str, action: &'static str) {
    metrics::counter!("privacy_violations_total", "rule" => rule, "action" => action).increment(1);
}

/// A span's metadata: its attributes but content; privacy applied.
pub(super) fn metadata_of(span: &Span, scope: &str, rules: &Rules, mapped: &mut Mapped) -> Value {
    let mode = rules.privacy;
    let mut meta = Map::new();
    for kv in &span.attributes {
        let key = clean(&kv.key);
        if is_content_attribute(&key) {
            mapped.dropped_attributes += 1;
            count_privacy("content_key", "drop");
            continue;
        }
        if let Some(any_value::Value::BytesValue(_)) =
            kv.value.as_ref().and_then(|v| v.value.as_ref())
        {
            mapped.dropped_attributes += 1;
            count_privacy("content_key", "drop");
            continue;
        }
        let mut value = kv.value.as_ref().map_or(Value::Null, json_of);
        if mode != PrivacyMode::Off {
            if let Some((rule, _)) = privacy::key_rule(&key, &value) {
                if mode.redacts_attributes() {
                    value = Value::String(REDACTED.into());
                    mapped.redacted_values += 1;
                    count_privacy(rule.as_str(), "redact");
                } else {
                    mapped.dropped_attributes += 1;
                    count_privacy(rule.as_str(), "drop");
                    continue;
                }
            }
            // Inside the value: content keys and credentials at any depth, secret strings.
            let mut scan = privacy::Scan::quiet();
            scan.metadata(&mut value, PrivacyMode::Reject, &mut Vec::new());
            if let Some(first) = scan.violations.first() {
                if mode.redacts_attributes() {
                    let mut redacting = privacy::Scan::quiet();
                    redacting.metadata(&mut value, PrivacyMode::Redact, &mut Vec::new());
                    mapped.redacted_values += u64::from(redacting.redacted);
                    for v in &scan.violations {
                        count_privacy(v.rule.as_str(), "redact");
                    }
                } else {
                    mapped.dropped_attributes += 1;
                    count_privacy(first.rule.as_str(), "drop");
                    continue;
                }
            }
        }
        // Depth counts the metadata object itself, as for native runs.
        if Shape::of(&value).depth + 1 > rules.max_metadata_depth {
            mapped.over_limit_attributes += 1;
            continue;
        }
        meta.insert(key, value);
    }
    // What every step carries besides its attributes: the span kind and the scope's name (left
    // out if it would take more than half the limit).
    let kind = match span.kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    };
    let mut extras = Map::new();
    extras.insert("otel.span.kind".into(), Value::from(kind));
    if !scope.is_empty() {
        extras.insert(
            "otel.scope.name".into(),
            Value::from(ident(scope, 255, rules.privacy)),
        );
        if json_size(&extras) > rules.max_metadata_bytes / 2 {
            extras.remove("otel.scope.name");
        }
    }
    // Over the size limit: the largest attributes go first, until the rest fits. An entry
    // takes its key and value as JSON, a colon and a comma; the extras join after.
    let budget = rules
        .max_metadata_bytes
        .saturating_sub(json_size(&extras) - 1);
    let mut size = json_size(&meta);
    if size > budget {
        let mut by_size: Vec<(usize, String)> = meta
            .iter()
            .map(|(k, v)| (json_size(k) + json_size(v) + 2, k.clone()))
            .collect();
        by_size.sort_unstable_by_key(|entry| std::cmp::Reverse(entry.0));
        for (bytes, key) in by_size {
            if size <= budget {
                break;
            }
            meta.remove(&key);
            size = size.saturating_sub(bytes);
            mapped.over_limit_attributes += 1;
        }
    }
    meta.extend(extras);
    Value::Object(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_docs_list_every_content_attribute_and_no_tool_definition() {
        let docs = include_str!("../../../../docs/api.md");
        for key in CONTENT_KEYS.iter().chain(CONTENT_PREFIXES) {
            assert!(
                docs.contains(&format!("`{key}`")),
                "docs/api.md omits {key}"
            );
        }
        for key in [
            "gen_ai.tool.definitions",
            "llm.tools.0.tool.json_schema",
            "tool.parameters",
            "llm.request.functions.0.parameters",
        ] {
            assert!(!is_content_attribute(key), "{key}");
        }
    }
}
