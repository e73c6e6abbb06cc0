//! A native body as decoded for validation: JSON values, except that each of a run's decisions
//! and quality signals is decoded straight into the fields the validator reads ([`Slots`]), with
//! no map of its keys built. The generic `Value` tree's small maps and key strings were most of
//! what those items cost at ingest (issue 17; docs/performance.md, "Decisions and signals").
//!
//! Whatever JSON a body holds decodes: a part not in the expected shape (decisions that are no
//! list, an item that is no object) is kept as the `Value` it is, for the validator to refuse
//! exactly as it refuses the `Value`. A run decoded here and the same run decoded as a `Value`
//! ([`RawRun::from`]) validate alike: `crate::fuzzing::run_body` checks it on every input, and
//! its tests drive 2,000 generated shapes of items through it.

use std::fmt;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::fields::Slots;

/// The fields of a decision the validator reads (`super::behaviour`).
pub(super) const DECISION_FIELDS: &[&str] = &[
    "decision_id",
    "step_id",
    "decision_type",
    "selected",
    "reason_code",
    "candidates",
    "confidence",
    "metadata",
];

/// The fields of a quality signal the validator reads (`super::behaviour`).
pub(super) const SIGNAL_FIELDS: &[&str] = &[
    "signal_id",
    "step_id",
    "signal_type",
    "signal_code",
    "value",
    "weight",
    "metadata",
];

/// One run's body as decoded.
#[derive(Clone, Debug)]
pub enum RawRun {
    /// An object: its fields but `decisions` and `quality_signals`, and those two.
    Object {
        fields: Map<String, Value>,
        decisions: Option<RawItems>,
        quality_signals: Option<RawItems>,
    },
    /// Anything else: refused.
    Other(Value),
}

/// A run's `decisions` or `quality_signals` as decoded.
#[derive(Clone, Debug)]
pub enum RawItems {
    List(Vec<RawItem>),
    /// Not a list (null reads as absent; anything else is refused).
    Other(Value),
}

/// One decision or quality signal as decoded.
#[derive(Clone, Debug)]
pub enum RawItem {
    /// An object: its known fields. (Boxed: a list of unboxed ones grows past glibc's small
    /// requests, whose frees then cost a consolidation of its free lists, more than it saves.)
    Fields(Box<Slots>),
    /// Anything else: refused.
    Other(Value),
}

/// A batch body (`{"runs": [...]}`) as decoded.
#[derive(Clone, Debug)]
pub enum RawBatch {
    /// An object: its `runs` (its other fields are decoded as JSON, then left out).
    Object { runs: Option<RawRuns> },
    /// Anything else: refused.
    Other(Value),
}

/// A batch's `runs` as decoded.
#[derive(Clone, Debug)]
pub enum RawRuns {
    List(Vec<RawRun>),
    /// Not a list (null reads as absent; anything else is refused).
    Other(Value),
}

impl RawRun {
    /// The `run_id` sent, when it is a string.
    pub fn run_id(&self) -> Option<&str> {
        match self {
            RawRun::Object { fields, .. } => fields.get("run_id")?.as_str(),
            RawRun::Other(value) => value.get("run_id")?.as_str(),
        }
    }
}

impl From<Value> for RawRun {
    /// The run of a body decoded as a `Value` (its decisions and signals stay values).
    fn from(value: Value) -> RawRun {
        match value {
            Value::Object(mut fields) => {
                let decisions = fields.remove("decisions").map(RawItems::Other);
                let quality_signals = fields.remove("quality_signals").map(RawItems::Other);
                RawRun::Object {
                    fields,
                    decisions,
                    quality_signals,
                }
            }
            other => RawRun::Other(other),
        }
    }
}

/// The visitor methods of every JSON scalar, each kept as the `Value` serde_json makes of it
/// (a float that is not finite, which JSON text cannot hold, as null), wrapped by `$wrap`.
macro_rules! scalars_as_values {
    ($wrap:expr) => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok($wrap(Value::Bool(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok($wrap(Value::from(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok($wrap(Value::from(v)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok($wrap(Value::from(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok($wrap(Value::String(v.to_owned())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok($wrap(Value::String(v)))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Value::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Value::Null))
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            Value::deserialize(d).map($wrap)
        }
    };
}

/// A list (or a map) the visitor does not take apart, as the `Value` serde_json makes of it.
fn seq_value<'de, A: SeqAccess<'de>>(seq: A) -> Result<Value, A::Error> {
    Value::deserialize(SeqAccessDeserializer::new(seq))
}

fn map_value<'de, A: MapAccess<'de>>(map: A) -> Result<Value, A::Error> {
    Value::deserialize(MapAccessDeserializer::new(map))
}

impl<'de> Deserialize<'de> for RawRun {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawRun, D::Error> {
        d.deserialize_any(RunVisitor)
    }
}

struct RunVisitor;

impl<'de> Visitor<'de> for RunVisitor {
    type Value = RawRun;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalars_as_values!(RawRun::Other);

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawRun, A::Error> {
        seq_value(seq).map(RawRun::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRun, A::Error> {
        let mut fields = Map::new();
        let (mut decisions, mut quality_signals) = (None, None);
        // A key sent twice keeps its last value, as in a map.
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "decisions" => decisions = Some(map.next_value_seed(ItemsSeed(DECISION_FIELDS))?),
                "quality_signals" => {
                    quality_signals = Some(map.next_value_seed(ItemsSeed(SIGNAL_FIELDS))?);
                }
                _ => {
                    let value = map.next_value()?;
                    fields.insert(key, value);
                }
            }
        }
        Ok(RawRun::Object {
            fields,
            decisions,
            quality_signals,
        })
    }
}

/// Decodes a list of items with the known fields `.0`.
#[derive(Clone, Copy)]
struct ItemsSeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for ItemsSeed {
    type Value = RawItems;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawItems, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed {
    type Value = RawItems;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalars_as_values!(RawItems::Other);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawItems, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(ItemSeed(self.0))? {
            items.push(item);
        }
        Ok(RawItems::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawItems, A::Error> {
        map_value(map).map(RawItems::Other)
    }
}

/// Decodes one item with the known fields `.0`.
#[derive(Clone, Copy)]
struct ItemSeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for ItemSeed {
    type Value = RawItem;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawItem, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed {
    type Value = RawItem;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalars_as_values!(RawItem::Other);

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawItem, A::Error> {
        seq_value(seq).map(RawItem::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawItem, A::Error> {
        let mut slots = Box::new(Slots::new(self.0));
        while let Some(place) = map.next_key_seed(KeySeed(self.0))? {
            // An unknown field is decoded as a map's value would be (the same errors for the
            // same text), then left out: the validator never reads it.
            let value: Value = map.next_value()?;
            if let Some(place) = place {
                slots.set(place, value);
            }
        }
        Ok(RawItem::Fields(slots))
    }
}

/// Decodes a key into its place among the known fields `.0`, without keeping it.
#[derive(Clone, Copy)]
struct KeySeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|name| *name == key))
    }
}

impl<'de> Deserialize<'de> for RawBatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawBatch, D::Error> {
        d.deserialize_any(BatchVisitor)
    }
}

struct BatchVisitor;

impl<'de> Visitor<'de> for BatchVisitor {
    type Value = RawBatch;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalars_as_values!(RawBatch::Other);

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawBatch, A::Error> {
        seq_value(seq).map(RawBatch::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawBatch, A::Error> {
        let mut runs = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "runs" {
                runs = Some(map.next_value::<RawRuns>()?);
            } else {
                // Decoded as a map's value would be, then left out.
                map.next_value::<Value>()?;
            }
        }
        Ok(RawBatch::Object { runs })
    }
}

impl<'de> Deserialize<'de> for RawRuns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawRuns, D::Error> {
        d.deserialize_any(RunsVisitor)
    }
}

struct RunsVisitor;

impl<'de> Visitor<'de> for RunsVisitor {
    type Value = RawRuns;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalars_as_values!(RawRuns::Other);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawRuns, A::Error> {
        let mut runs = Vec::new();
        while let Some(run) = seq.next_element::<RawRun>()? {
            runs.push(run);
        }
        Ok(RawRuns::List(runs))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawRuns, A::Error> {
        map_value(map).map(RawRuns::Other)
    }
}
