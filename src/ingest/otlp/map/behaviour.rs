//! Decisions and quality signals from span events (docs/behaviour.md, From OpenTelemetry): an
//! event named `agenttracer.decision` or `agenttracer.quality_signal` on a span is a decision or a
//! signal of that span's step. Its attributes are the native payload's fields, by the same names
//! (`decision_type`, `selected`, `reason_code`, `confidence`, `candidates`; `signal_type`,
//! `signal_code`, `value`, `weight`); its other attributes are the item's metadata. The same
//! rules apply as to a run's lists; an event that breaks one is not stored, and the export's
//! partial success says which and why.

use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::attrs::json_of;
use super::{Mapped, hex};
use crate::model::behaviour::{NewDecision, NewSignal};
use crate::model::input::{Behaviour, Rules, parse_span_behaviour};
use crate::store::spans::derived_id;

pub const DECISION_EVENT: &str = "agenttracer.decision";
pub const SIGNAL_EVENT: &str = "agenttracer.quality_signal";

const DECISION_FIELDS: &[&str] = &[
    "decision_type",
    "selected",
    "reason_code",
    "confidence",
    "candidates",
];
const SIGNAL_FIELDS: &[&str] = &["signal_type", "signal_code", "value", "weight"];

/// The decisions and signals of `span`'s events, for its step `step_id`, in event order.
pub(super) fn behaviour_of(
    span: &Span,
    step_id: Uuid,
    rules: &Rules,
    mapped: &mut Mapped,
) -> (Vec<NewDecision>, Vec<NewSignal>) {
    let (mut decisions, mut signals) = (Vec::new(), Vec::new());
    for (i, event) in span.events.iter().enumerate() {
        let (signal, fields, id_key) = match event.name.as_str() {
            DECISION_EVENT => (false, DECISION_FIELDS, "decision_id"),
            SIGNAL_EVENT => (true, SIGNAL_FIELDS, "signal_id"),
            _ => continue,
        };
        let mut item = Map::new();
        let mut metadata = Map::new();
        for kv in &event.attributes {
            let value = kv.value.as_ref().map_or(Value::Null, json_of);
            match fields.contains(&kv.key.as_str()) {
                true => item.insert(kv.key.clone(), value),
                false => metadata.insert(kv.key.clone(), value),
            };
        }
        // A resent span maps to the same rows.
        let index = u32::try_from(i).unwrap_or(u32::MAX).to_be_bytes();
        let id = derived_id(step_id.as_bytes(), &index, id_key);
        item.insert(id_key.into(), Value::from(id.to_string()));
        item.insert("step_id".into(), Value::from(step_id.to_string()));
        item.insert("metadata".into(), Value::Object(metadata));
        match parse_span_behaviour(Value::Object(item), step_id, signal, rules) {
            Ok((Behaviour::Decision(d), redacted)) => {
                mapped.redacted_values += u64::from(redacted);
                decisions.push(d);
            }
            Ok((Behaviour::Signal(s), redacted)) => {
                mapped.redacted_values += u64::from(redacted);
                signals.push(s);
            }
            Err(errors) => {
                metrics::counter!("otlp_events_rejected_total").increment(1);
                let first = errors.first().map(|e| {
                    let loc: Vec<String> = e.loc.iter().map(|l| l.to_string()).collect();
                    format!("{}: {}", loc.join("."), e.msg)
                });
                mapped.rejection = Some(format!(
                    "span {}: its {} event {i} was not stored ({})",
                    hex(&span.span_id),
                    event.name,
                    first.unwrap_or_default()
                ));
            }
        }
    }
    (decisions, signals)
}
