//! What an export request will cost in memory once decoded, read from its encoded bytes before
//! anything is decoded (issue 14 item 3).
//!
//! A message's decoded form can be far larger than its wire form: an empty attribute is 2 bytes
//! of protobuf (or `{},` in JSON) and a `KeyValue` of 72 bytes in memory; an empty span is 2
//! bytes and a `Span` of a few hundred. 10 MiB of them (21 KB gzipped) decoded to ~340 MiB. So
//! the encoded request is walked first, along the OTLP trace schema, counting the elements of
//! every repeated message field; `estimate` is their in-memory size plus the encoded size (an
//! upper bound on the strings and bytes they hold). A request whose estimate is over
//! `otlp.max_decoded_bytes` is refused before it is decoded, and one under it reserves the
//! estimate from the shared body budget while it is decoded and stored.
//!
//! Unknown fields are skipped, as the decoders skip them; malformed input is left for the
//! decoder to name (the walk stops counting where it cannot go on).

use std::mem::size_of;

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::encoding::{WireType, decode_key, decode_varint};

/// The messages of an OTLP trace export that hold other messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Msg {
    Request,
    ResourceSpans,
    Resource,
    EntityRef,
    ScopeSpans,
    Scope,
    Span,
    Event,
    Link,
    Status,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
}

/// A field of a message, as far as memory goes.
#[derive(Clone, Copy, Debug)]
enum Field {
    /// A submessage held inline in its parent (an `Option<M>` or a oneof).
    One(Msg),
    /// One element of a repeated message field: a `Vec` entry of the element's size.
    Many(Msg),
    /// One element of a repeated string field.
    ManyStrings,
}

impl Msg {
    /// The in-memory size of one element of this type in a `Vec`.
    fn size(self) -> usize {
        match self {
            Msg::Request => 0,
            Msg::ResourceSpans => size_of::<ResourceSpans>(),
            Msg::Resource => size_of::<Resource>(),
            Msg::EntityRef => size_of::<EntityRef>(),
            Msg::ScopeSpans => size_of::<ScopeSpans>(),
            Msg::Scope => size_of::<InstrumentationScope>(),
            Msg::Span => size_of::<Span>(),
            Msg::Event => size_of::<Event>(),
            Msg::Link => size_of::<Link>(),
            Msg::Status => size_of::<Status>(),
            Msg::KeyValue => size_of::<KeyValue>(),
            Msg::AnyValue => size_of::<AnyValue>(),
            Msg::ArrayValue => size_of::<ArrayValue>(),
            Msg::KeyValueList => size_of::<KeyValueList>(),
        }
    }

    /// The field with protobuf tag `tag`, when it holds messages.
    fn by_tag(self, tag: u32) -> Option<Field> {
        use Field::{Many, ManyStrings, One};
        Some(match (self, tag) {
            (Msg::Request, 1) => Many(Msg::ResourceSpans),
            (Msg::ResourceSpans, 1) => One(Msg::Resource),
            (Msg::ResourceSpans, 2) => Many(Msg::ScopeSpans),
            (Msg::Resource, 1) => Many(Msg::KeyValue),
            (Msg::Resource, 3) => Many(Msg::EntityRef),
            (Msg::EntityRef, 3 | 4) => ManyStrings,
            (Msg::ScopeSpans, 1) => One(Msg::Scope),
            (Msg::ScopeSpans, 2) => Many(Msg::Span),
            (Msg::Scope, 3) => Many(Msg::KeyValue),
            (Msg::Span, 9) => Many(Msg::KeyValue),
            (Msg::Span, 11) => Many(Msg::Event),
            (Msg::Span, 13) => Many(Msg::Link),
            (Msg::Span, 15) => One(Msg::Status),
            (Msg::Event, 3) => Many(Msg::KeyValue),
            (Msg::Link, 4) => Many(Msg::KeyValue),
            (Msg::KeyValue, 2) => One(Msg::AnyValue),
            (Msg::AnyValue, 5) => One(Msg::ArrayValue),
            (Msg::AnyValue, 6) => One(Msg::KeyValueList),
            (Msg::ArrayValue, 1) => Many(Msg::AnyValue),
            (Msg::KeyValueList, 1) => Many(Msg::KeyValue),
            _ => return None,
        })
    }

    /// The field named `name` in OTLP/JSON (lowerCamelCase; the proto name is accepted too).
    fn by_name(self, name: &str) -> Option<Field> {
        let tag = match (self, name) {
            (Msg::Request, "resourceSpans" | "resource_spans") => 1,
            (Msg::ResourceSpans, "resource") => 1,
            (Msg::ResourceSpans, "scopeSpans" | "scope_spans") => 2,
            (Msg::Resource, "attributes") => 1,
            (Msg::Resource, "entityRefs" | "entity_refs") => 3,
            (Msg::EntityRef, "idKeys" | "id_keys") => 3,
            (Msg::EntityRef, "descriptionKeys" | "description_keys") => 4,
            (Msg::ScopeSpans, "scope") => 1,
            (Msg::ScopeSpans, "spans") => 2,
            (Msg::Scope, "attributes") => 3,
            (Msg::Span, "attributes") => 9,
            (Msg::Span, "events") => 11,
            (Msg::Span, "links") => 13,
            (Msg::Span, "status") => 15,
            (Msg::Event, "attributes") => 3,
            (Msg::Link, "attributes") => 4,
            (Msg::KeyValue, "value") => 2,
            (Msg::AnyValue, "arrayValue" | "array_value") => 5,
            (Msg::AnyValue, "kvlistValue" | "kvlist_value") => 6,
            (Msg::ArrayValue | Msg::KeyValueList, "values") => 1,
            _ => return None,
        };
        self.by_tag(tag)
    }
}

/// Deeper than this, the walk stops counting (prost refuses messages nested over 100 deep, and
/// serde_json over 128).
const MAX_DEPTH: usize = 100;

/// The estimated decoded size of an OTLP/protobuf `ExportTraceServiceRequest`, in bytes.
pub fn estimate_protobuf(bytes: &[u8]) -> usize {
    let mut counted = 0usize;
    walk_protobuf(bytes, Msg::Request, 0, &mut counted);
    counted.saturating_add(bytes.len())
}

fn walk_protobuf(mut buf: &[u8], msg: Msg, depth: usize, counted: &mut usize) {
    if depth > MAX_DEPTH {
        return;
    }
    while !buf.is_empty() {
        let Ok((tag, wire_type)) = decode_key(&mut buf) else {
            return;
        };
        let skipped = match wire_type {
            WireType::Varint => decode_varint(&mut buf).map(|_| 0),
            WireType::SixtyFourBit => Ok(8),
            WireType::ThirtyTwoBit => Ok(4),
            WireType::LengthDelimited => decode_varint(&mut buf),
            // Groups are not part of OTLP; the decoder names them.
            WireType::StartGroup | WireType::EndGroup => return,
        };
        let Ok(len) = skipped.map(|n| usize::try_from(n).unwrap_or(usize::MAX)) else {
            return;
        };
        if len > buf.len() {
            return;
        }
        let (value, rest) = buf.split_at(len);
        buf = rest;
        if wire_type != WireType::LengthDelimited {
            continue;
        }
        match msg.by_tag(tag) {
            Some(Field::One(inner)) => walk_protobuf(value, inner, depth + 1, counted),
            Some(Field::Many(inner)) => {
                *counted = counted.saturating_add(inner.size());
                walk_protobuf(value, inner, depth + 1, counted);
            }
            Some(Field::ManyStrings) => *counted = counted.saturating_add(size_of::<String>()),
            None => {}
        }
    }
}

/// The estimated decoded size of an OTLP/JSON `ExportTraceServiceRequest`, in bytes; `None` when
/// the body is not JSON the decoder could read (it then names the error).
pub fn estimate_json(bytes: &[u8]) -> Option<usize> {
    use serde::de::DeserializeSeed;
    let mut counted = 0usize;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    JsonSeed {
        field: Field::One(Msg::Request),
        counted: &mut counted,
    }
    .deserialize(&mut de)
    .ok()?;
    Some(counted.saturating_add(bytes.len()))
}

/// Walks one JSON value standing for `field`, counting what it will cost.
struct JsonSeed<'a> {
    field: Field,
    counted: &'a mut usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for JsonSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an OTLP/JSON value")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (size, inner) = match self.field {
            Field::Many(msg) => (msg.size(), Some(msg)),
            Field::ManyStrings => (size_of::<String>(), None),
            // Not a repeated field: whatever it holds is not counted.
            Field::One(_) => {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                return Ok(());
            }
        };
        loop {
            let more = match inner {
                Some(msg) => seq
                    .next_element_seed(JsonSeed {
                        field: Field::One(msg),
                        counted: &mut *self.counted,
                    })?
                    .is_some(),
                None => seq.next_element::<serde::de::IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            *self.counted = self.counted.saturating_add(size);
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Field::One(msg) = self.field else {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            return Ok(());
        };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match msg.by_name(&key) {
                Some(field) => map.next_value_seed(JsonSeed {
                    field,
                    counted: &mut *self.counted,
                })?,
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use prost::Message;

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    #[test]
    fn empty_attributes_are_counted_at_their_decoded_size() {
        let n = 10_000;
        let span = Span {
            attributes: vec![KeyValue::default(); n],
            ..Default::default()
        };
        let bytes = request(vec![span]).encode_to_vec();
        // 2 bytes each on the wire, a whole KeyValue each in memory.
        assert!(bytes.len() < 3 * n);
        let estimate = estimate_protobuf(&bytes);
        let floor = n * size_of::<KeyValue>() + size_of::<Span>() + size_of::<ScopeSpans>();
        assert!(estimate >= floor, "{estimate} < {floor}");
        assert!(estimate <= floor + size_of::<ResourceSpans>() + bytes.len());
    }

    #[test]
    fn nested_values_events_and_links_are_counted() {
        let nested = kv(
            "list",
            Value::ArrayValue(ArrayValue {
                values: vec![AnyValue::default(); 7],
            }),
        );
        let span = Span {
            attributes: vec![nested.clone()],
            events: vec![Event {
                attributes: vec![kv("a", Value::BoolValue(true)); 3],
                ..Default::default()
            }],
            links: vec![Link::default(); 2],
            ..Default::default()
        };
        let req = request(vec![span]);
        let bytes = req.encode_to_vec();
        let expected = size_of::<ResourceSpans>()
            + size_of::<ScopeSpans>()
            + size_of::<Span>()
            + size_of::<KeyValue>()
            + 7 * size_of::<AnyValue>()
            + size_of::<Event>()
            + 3 * size_of::<KeyValue>()
            + 2 * size_of::<Link>();
        assert_eq!(estimate_protobuf(&bytes), expected + bytes.len());
        // The same request in OTLP/JSON counts the same elements.
        let json = serde_json::to_vec(&req).unwrap();
        assert_eq!(estimate_json(&json), Some(expected + json.len()));
    }

    #[test]
    fn json_bombs_of_empty_objects_are_counted() {
        let n = 5_000;
        let spans = vec!["{}"; n].join(",");
        let body = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{spans}]}}]}}]}}"#);
        let estimate = estimate_json(body.as_bytes()).unwrap();
        assert!(estimate >= n * size_of::<Span>());
        assert_eq!(estimate_json(b"{\"resourceSpans\": [}"), None);
    }

    #[test]
    fn malformed_protobuf_stops_the_walk_without_panicking() {
        for bytes in [&[0x0a, 0xff][..], &[0x0a], &[0xff; 12], &[0x0b, 0x00]] {
            assert!(estimate_protobuf(bytes) >= bytes.len());
        }
    }
}
